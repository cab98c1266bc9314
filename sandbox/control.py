"""The JSON control API under ``/_sandbox/`` that tests, drills and the control page use.

GET  state                         overview (accounts, campaigns, faults, maintenance, latency)
POST reset {"seed": true}          forget everything, then re-seed the demo data unless seed is false
POST seed                          add/restore the demo data
GET|POST|DELETE faults             list / add {provider, operation, kind, count|permanent, ms,
                                   seconds, status, apply} / clear (?provider=&operation=)
DELETE faults/<id>                 remove one fault
POST latency {"ms": N, "jitter_ms": J} default latency of every provider call (+ 0..J ms random)
GET|POST maintenance               LINA maintenance switch {enabled, spelling}
GET|DELETE journal                 money-moving calls (?provider=&operation=&since=<seq>&applied=1)
GET|DELETE requests                provider calls received per provider/operation, faulted or not
                                   (?provider=&operation=)
GET|POST tokens, GET tokens/<code> LINA tokens (add or replace by code)
GET|POST lina/accounts             LINA accounts and their [assumed] options
POST lina/templates                add or replace a template of an account
POST lina/sessions/expire          forget session hashes ({"account": ...} or all)
POST lina/client-ip {"ip": ...}    pretend the client's public IP changed (null: the real one)
GET|POST lina/session-rejection    how a rejected session hash is answered {status: 400|401, text}
POST lina/denied {scope, reset}    DENIED counted per calling "address" (default) or "account"
GET|POST stock                     Allsafe stock per vault/vendor/value (POST sets a count)
GET|POST allsafe/campaigns         Allsafe campaigns and their options
POST allsafe/vendors               make a vendor known to Allsafe
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from .allsafe import set_stock
from .formats import berlin_today, normalize_code, parse_decimal
from .lina import new_token
from .replies import Reply
from .seed import seed_demo
from .state import FAULT_KINDS, OPERATIONS, RECIPES, AllsafeCampaign, LinaAccount, Store, Template, Vault


class BadRequest(ValueError):
    pass


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, int):  # days from today
        return berlin_today() + timedelta(days=value)
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise BadRequest(f"not a date (YYYY-MM-DD or days from today): {value!r}") from exc


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return parse_decimal(value).quantize(Decimal("0.01"))
    except (ValueError, ArithmeticError) as exc:
        raise BadRequest(f"{what} must be a number") from exc


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{what} must be a whole number") from exc


class Control:
    def __init__(self, store: Store):
        self.store = store
        self.routes: dict[tuple[str, str], Callable[[dict, dict], Any]] = {
            ("GET", "state"): self.state,
            ("POST", "reset"): self.reset,
            ("POST", "seed"): self.seed,
            ("GET", "faults"): self.faults,
            ("POST", "faults"): self.add_fault,
            ("DELETE", "faults"): self.clear_faults,
            ("POST", "latency"): self.latency,
            ("GET", "maintenance"): self.maintenance,
            ("POST", "maintenance"): self.set_maintenance,
            ("GET", "journal"): self.journal,
            ("DELETE", "journal"): self.clear_journal,
            ("GET", "requests"): self.requests,
            ("DELETE", "requests"): self.clear_requests,
            ("GET", "tokens"): self.tokens,
            ("POST", "tokens"): self.add_token,
            ("GET", "lina/accounts"): self.lina_accounts,
            ("POST", "lina/accounts"): self.set_lina_account,
            ("POST", "lina/templates"): self.set_template,
            ("POST", "lina/sessions/expire"): self.expire_sessions,
            ("POST", "lina/client-ip"): self.client_ip,
            ("GET", "lina/session-rejection"): self.session_rejection,
            ("POST", "lina/session-rejection"): self.set_session_rejection,
            ("POST", "lina/denied"): self.set_denied,
            ("GET", "stock"): self.stock,
            ("POST", "stock"): self.set_stock,
            ("GET", "allsafe/campaigns"): self.allsafe_campaigns,
            ("POST", "allsafe/campaigns"): self.set_allsafe_campaign,
            ("POST", "allsafe/vendors"): self.add_vendor,
        }

    def handle(self, method: str, path: str, query: str, body: bytes) -> Reply:
        route = path.strip("/")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise BadRequest("the body must be a JSON object")
        except ValueError as exc:
            return Reply.json({"error": f"bad JSON body: {exc}"}, 400)
        try:
            if route.startswith("tokens/") and method == "GET":
                return self.token(route.removeprefix("tokens/"))
            if route.startswith("faults/") and method == "DELETE":
                return self.remove_fault(route.removeprefix("faults/"))
            handler = self.routes.get((method, route))
            if handler is None:
                known = any(r == route for _m, r in self.routes)
                return Reply.json(
                    {"error": f"no control endpoint {method} /_sandbox/{route}"}, 405 if known else 404
                )
            result = handler(data, params)
            return result if isinstance(result, Reply) else Reply.json(result)
        except BadRequest as exc:
            return Reply.json({"error": str(exc)}, 400)

    # --- everything ---------------------------------------------------------------------------
    def state(self, data, params):
        store = self.store
        with store.lock:
            now = store.clock()
            return {
                "latency_ms": store.base_latency_ms,
                "maintenance": vars(store.lina_maintenance).copy(),
                "lina_client_ip": store.lina_seen_ip,
                "lina_session_rejection": vars(store.lina_session_rejection).copy(),
                "lina_denied_scope": store.lina_denied_scope,
                "lina_failure_counts": {
                    key: {
                        "recent_failures": len(c.failures),
                        "locked_for_seconds": round(max(0.0, c.locked_until - now), 1),
                    }
                    for key, c in store.lina_failure_counts.items()
                },
                "lina_accounts": [
                    a.as_dict(now, store.lina_count_for(a)) for a in store.lina_accounts.values()
                ],
                "lina_sessions": len(store.lina_sessions),
                "lina_tokens": len(store.lina_tokens),
                "allsafe_campaigns": [c.as_dict() for c in store.allsafe_campaigns.values()],
                "allsafe_vendors": sorted(store.allsafe_vendors.values()),
                "stock": store.stock_rows(),
                "faults": [f.as_dict() for f in store.faults],
                "journal_entries": len(store.journal),
                "requests": store.request_rows(),
            }

    def reset(self, data, params):
        self.store.reset()
        if _bool(data.get("seed", True)):
            seed_demo(self.store)
        return {"ok": True}

    def seed(self, data, params):
        seed_demo(self.store)
        return {"ok": True}

    # --- faults -------------------------------------------------------------------------------
    def faults(self, data, params):
        with self.store.lock:
            return [f.as_dict() for f in self.store.faults]

    def add_fault(self, data, params):
        provider = str(data.get("provider", "")).lower()
        operation = str(data.get("operation", "*")).lower()
        kind = str(data.get("kind", "")).lower()
        if provider not in OPERATIONS:
            raise BadRequest(f"provider must be one of {sorted(OPERATIONS)}")
        if operation != "*" and operation not in OPERATIONS[provider]:
            raise BadRequest(f"operation must be '*' or one of {list(OPERATIONS[provider])}")
        if kind not in FAULT_KINDS:
            raise BadRequest(f"kind must be one of {list(FAULT_KINDS)}")
        if kind == "denied" and provider != "lina":
            raise BadRequest("DENIED is a LINA answer; Allsafe has no such state")
        count = data.get("count", 1)
        if _bool(data.get("permanent")) or count is None or count == "permanent":
            remaining = None
        else:
            remaining = _int(count, "count")
            if remaining < 1:
                raise BadRequest("count must be at least 1 (or permanent)")
        status = data.get("status")
        fault = self.store.add_fault(
            provider=provider,
            operation=operation,
            kind=kind,
            remaining=remaining,
            ms=max(0, _int(data.get("ms", 0), "ms")),
            seconds=float(_decimal(data.get("seconds", 30), "seconds")),
            status=_int(status, "status") if status not in (None, "") else None,
            apply=_bool(data.get("apply", False)),
        )
        return fault.as_dict()

    def clear_faults(self, data, params):
        removed = self.store.clear_faults(
            params.get("provider") or data.get("provider"), params.get("operation") or data.get("operation")
        )
        return {"removed": removed}

    def remove_fault(self, fault_id: str):
        with self.store.lock:
            before = len(self.store.faults)
            self.store.faults = [f for f in self.store.faults if str(f.id) != fault_id]
            if len(self.store.faults) == before:
                return Reply.json({"error": f"no fault {fault_id}"}, 404)
        return Reply.json({"removed": 1})

    def latency(self, data, params):
        with self.store.lock:
            self.store.base_latency_ms = max(0, _int(data.get("ms", 0), "ms"))
            self.store.latency_jitter_ms = max(0, _int(data.get("jitter_ms", 0), "jitter_ms"))
            return {"latency_ms": self.store.base_latency_ms, "jitter_ms": self.store.latency_jitter_ms}

    def maintenance(self, data, params):
        return vars(self.store.lina_maintenance).copy()

    def set_maintenance(self, data, params):
        spelling = data.get("spelling", "Maintenance")
        if spelling not in ("Maintenance", "Maintanance"):
            raise BadRequest("spelling must be 'Maintenance' or 'Maintanance'")
        with self.store.lock:
            self.store.lina_maintenance.enabled = _bool(data.get("enabled", True))
            self.store.lina_maintenance.spelling = spelling
            return vars(self.store.lina_maintenance).copy()

    # --- journal ------------------------------------------------------------------------------
    def journal(self, data, params):
        since = _int(params.get("since", 0) or 0, "since")
        with self.store.lock:
            entries = [e for e in self.store.journal if e["seq"] > since]
        for key in ("provider", "operation"):
            if params.get(key):
                entries = [e for e in entries if e[key] == params[key]]
        if params.get("applied"):
            wanted = _bool(params["applied"])
            entries = [e for e in entries if e["applied"] == wanted]
        return entries

    def clear_journal(self, data, params):
        with self.store.lock:
            self.store.journal.clear()
        return {"ok": True}

    # --- request counts -------------------------------------------------------------------------
    def requests(self, data, params):
        rows = self.store.request_rows()
        for key in ("provider", "operation"):
            if params.get(key):
                rows = [r for r in rows if r[key] == params[key]]
        return rows

    def clear_requests(self, data, params):
        with self.store.lock:
            self.store.requests.clear()
        return {"ok": True}

    # --- LINA ---------------------------------------------------------------------------------
    def tokens(self, data, params):
        with self.store.lock:
            tokens = list(self.store.lina_tokens.values())
            account = params.get("account")
            return [t.as_dict() for t in tokens if not account or t.account == account]

    def token(self, code: str) -> Reply:
        with self.store.lock:
            token = self.store.lina_tokens.get(normalize_code(code))
            if token is None:
                return Reply.json({"error": "no such token"}, 404)
            return Reply.json(token.as_dict())

    def add_token(self, data, params):
        value = _decimal(data.get("value", "50.00"), "value")
        remaining = data.get("remaining")
        try:
            token = new_token(
                self.store,
                account=str(data.get("account", "demo-shop")),
                code=str(data.get("code") or ""),
                value=value,
                remaining=_decimal(remaining, "remaining") if remaining not in (None, "") else None,
                valid_until=_date(data.get("valid_until")),
                full_value_only=_bool(data.get("full_value_only", False)),
                blocked=_bool(data.get("blocked", False)),
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        return token.as_dict()

    def lina_accounts(self, data, params):
        with self.store.lock:
            now = self.store.clock()
            return [a.as_dict(now, self.store.lina_count_for(a)) for a in self.store.lina_accounts.values()]

    def set_lina_account(self, data, params):
        username = str(data.get("username", "")).strip()
        if not username:
            raise BadRequest("username is required")
        if "recipe" in data and data["recipe"] not in RECIPES:
            raise BadRequest(f"recipe must be one of {list(RECIPES)}")
        with self.store.lock:
            account = self.store.lina_accounts.get(username)
            if account is None:
                if not data.get("password") or "shared_key" not in data:
                    raise BadRequest("a new account needs password and shared_key")
                account = LinaAccount(username, str(data["password"]), str(data["shared_key"]))
                self.store.lina_accounts[username] = account
            for option in LinaAccount.OPTIONS:
                if option in data:
                    current = getattr(account, option)
                    convert = _bool if isinstance(current, bool) else type(current)
                    try:
                        setattr(account, option, convert(data[option]))
                    except (TypeError, ValueError) as exc:
                        raise BadRequest(f"{option}: {exc}") from exc
            if _bool(data.get("unlock", False)):  # per address, so every caller is unlocked
                self.store.lina_failure_counts.clear()
            return account.as_dict(self.store.clock(), self.store.lina_count_for(account))

    def set_template(self, data, params):
        with self.store.lock:
            account = self.store.lina_accounts.get(str(data.get("account", "demo-shop")))
            if account is None:
                raise BadRequest("unknown account")
            if not data.get("hash") or not data.get("name"):
                raise BadRequest("name and hash are required")
            template = Template(
                name=str(data["name"]),
                hash=str(data["hash"]),
                layouts={_int(n, "layouts") for n in data.get("layouts", [])},
                valid_days=_int(data.get("valid_days", 3 * 365), "valid_days"),
                full_value_only=_bool(data.get("full_value_only", False)),
            )
            account.templates[template.hash] = template
            return template.as_dict()

    def expire_sessions(self, data, params):
        account = data.get("account")
        with self.store.lock:
            doomed = [h for h, s in self.store.lina_sessions.items() if not account or s.account == account]
            for session_hash in doomed:
                del self.store.lina_sessions[session_hash]
        return {"expired": len(doomed)}

    def session_rejection(self, data, params):
        return vars(self.store.lina_session_rejection).copy()

    def set_session_rejection(self, data, params):
        status = _int(data.get("status", 400), "status")
        if status not in (400, 401):
            raise BadRequest("status must be 400 (documented) or 401")
        text = data.get("text")
        with self.store.lock:
            rejection = self.store.lina_session_rejection
            rejection.status = status
            if text is not None:
                rejection.text = str(text)
            return vars(rejection).copy()

    def set_denied(self, data, params):
        """Where DENIED is counted ({"scope": "address"|"account"}); "reset" forgets the counts."""
        with self.store.lock:
            scope = data.get("scope", self.store.lina_denied_scope)
            if scope not in ("address", "account"):
                raise BadRequest("scope must be 'address' or 'account'")
            self.store.lina_denied_scope = scope
            if _bool(data.get("reset", False)):
                self.store.lina_failure_counts.clear()
            return {"scope": scope, "counts": len(self.store.lina_failure_counts)}

    def client_ip(self, data, params):
        ip = data.get("ip") or None
        with self.store.lock:
            self.store.lina_seen_ip = str(ip) if ip else None
        return {"ip": ip}

    # --- Allsafe ------------------------------------------------------------------------------
    def stock(self, data, params):
        with self.store.lock:
            campaign = self.store.allsafe_campaigns.get(params.get("campaign", ""))
            if params.get("campaign") and campaign is None:
                raise BadRequest("unknown campaign")
            return self.store.stock_rows(campaign)

    def set_stock(self, data, params):
        vendor = str(data.get("vendor", "")).strip()
        if not vendor:
            raise BadRequest("vendor is required")
        value = _decimal(data.get("value"), "value")
        count = _int(data.get("count"), "count")
        if count < 0:
            raise BadRequest("count must not be negative")
        with self.store.lock:
            vault = data.get("vault")
            campaign_name = data.get("campaign", "demo-allsafe")
            campaign = self.store.allsafe_campaigns.get(campaign_name) if campaign_name else None
            if campaign_name and campaign is None:
                raise BadRequest("unknown campaign")
            if not vault:
                if campaign is None:
                    raise BadRequest("give a vault or a campaign")
                if not campaign.vaults:
                    campaign.vaults.append(f"{campaign.username} vault")
                vault = campaign.vaults[0]
            elif campaign is not None and vault not in campaign.vaults:
                campaign.vaults.append(vault)
            set_stock(self.store, vault=vault, vendor=vendor, value=value, count=count, today=berlin_today())
            return self.store.stock_rows(campaign)

    def allsafe_campaigns(self, data, params):
        with self.store.lock:
            return [c.as_dict() for c in self.store.allsafe_campaigns.values()]

    def set_allsafe_campaign(self, data, params):
        username = str(data.get("username", "")).strip()
        if not username:
            raise BadRequest("username is required")
        if "status" in data and data["status"] not in ("pending", "live", "completed", "archived"):
            raise BadRequest("status must be pending, live, completed or archived")
        if "availability_empty" in data and data["availability_empty"] not in ("204", "list"):
            raise BadRequest("availability_empty must be 204 or list")
        if "availability_style" in data and data["availability_style"] not in (
            "plain",
            "wrapped",
            "synonyms",
        ):
            raise BadRequest("availability_style must be plain, wrapped or synonyms")
        with self.store.lock:
            campaign = self.store.allsafe_campaigns.get(username)
            if campaign is None:
                if not data.get("password"):
                    raise BadRequest("a new campaign needs a password")
                campaign = AllsafeCampaign(username, str(data["password"]))
                self.store.allsafe_campaigns[username] = campaign
            for option in AllsafeCampaign.OPTIONS:
                if option not in data:
                    continue
                value = data[option]
                if option in ("starts_on", "ends_on"):
                    value = _date(value)
                elif option == "vaults":
                    value = [str(v) for v in value]
                elif option == "integration_active":
                    value = _bool(value)
                else:
                    value = str(value)
                setattr(campaign, option, value)
            for name in campaign.vaults:  # linking a vault that does not exist yet creates it empty
                self.store.allsafe_vaults.setdefault(name, Vault(name=name))
            return campaign.as_dict()

    def add_vendor(self, data, params):
        vendor = str(data.get("vendor", "")).strip()
        if not vendor:
            raise BadRequest("vendor is required")
        with self.store.lock:
            self.store.allsafe_vendors.setdefault(vendor.lower(), vendor)
            return sorted(self.store.allsafe_vendors.values())
