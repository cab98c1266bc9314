"""The Allsafe Redemption API: ``GET /availability`` and allocate, HTTP Basic auth on every call.

Errors are status codes produced by the situations providers.md lists, checked in this order:
401 (no or wrong credentials, integration revoked, campaign not Live), 491 (no vault linked),
495 (malformed allocate request), 496 (unknown vendor), 492 (no voucher for that vendor/value).
The allocate path and field names are options of each :class:`~sandbox.state.AllsafeCampaign`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from datetime import timedelta
from decimal import Decimal

from .formats import json_number, parse_decimal
from .replies import Reply
from .state import AllsafeCampaign, Store, Vault, Voucher

VOUCHER_DAYS = 2 * 365


def _problem(status: int, detail: str, **headers: str) -> Reply:
    return Reply.json({"detail": detail}, status, **headers)


def _unauthorized(detail: str) -> Reply:
    return _problem(401, detail, **{"WWW-Authenticate": 'Basic realm="Allsafe"'})


def credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class Allsafe:
    def __init__(self, store: Store):
        self.store = store

    def handle(
        self, method: str, path: str, *, authorization: str, body: bytes, today, fault: str = ""
    ) -> Reply:
        with self.store.lock:
            pair = credentials(authorization)
            campaign = self.store.allsafe_campaigns.get(pair[0]) if pair else None
            if campaign is None or not hmac.compare_digest(pair[1].encode(), campaign.password.encode()):
                return _unauthorized("Invalid username or password.")
            if not campaign.integration_active:
                return _unauthorized("The integration has been revoked.")
            if not campaign.is_live(today):
                return _unauthorized("The campaign is not live.")
            if method == "GET" and path == "/availability":
                return self._availability(campaign)
            if method == "POST" and path == campaign.allocate_path:
                return self._allocate(campaign, body, today, fault)
            return _problem(404, "Not Found")

    def _linked_vaults(self, campaign: AllsafeCampaign):
        return [self.store.allsafe_vaults[n] for n in campaign.vaults if n in self.store.allsafe_vaults]

    def _availability(self, campaign: AllsafeCampaign) -> Reply:
        vaults = self._linked_vaults(campaign)
        if not vaults:
            return _problem(491, "No vaults linked to your integration's campaign.")
        totals: dict[tuple[str, Decimal], int] = {}
        for vault in vaults:
            for key, vouchers in vault.vouchers.items():
                totals[key] = totals.get(key, 0) + len(vouchers)
        if not any(totals.values()):
            # An empty vault: the seed documents 204 as a success, and there is nothing to list.
            return Reply.empty(204) if campaign.availability_empty == "204" else Reply.json([])
        rows = sorted(totals.items())
        if campaign.availability_style == "synonyms":
            # The variant the client's parser must also accept: wrapper, synonyms, strings, extras.
            items = [
                {"vendor": v, "denomination": str(json_number(value)), "count": str(n), "currency": "ZAR"}
                for (v, value), n in rows
            ]
            return Reply.json({"data": items, "total": len(items)})
        items = [{"vendor": v, "value": json_number(value), "remaining": n} for (v, value), n in rows]
        if campaign.availability_style == "wrapped":
            return Reply.json({"items": items})
        return Reply.json(items)

    def _allocate(self, campaign: AllsafeCampaign, body: bytes, today, fault: str) -> Reply:
        store = self.store
        vaults = self._linked_vaults(campaign)
        if not vaults:
            return _problem(491, "No vaults linked to your integration's campaign.")
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            payload = None
        journal = {"account": campaign.username, "fault": fault or None}
        problem = self._validate(campaign, payload)
        if problem:
            store.record("allsafe", "allocate", **journal, applied=False, result=495, message=problem)
            return _problem(495, problem)
        vendor_given = payload[campaign.vendor_field].strip()
        value = parse_decimal(payload[campaign.value_field])
        reference = str(payload[campaign.reference_field]).strip()
        journal.update(value=json_number(value), reference=reference)
        vendor = store.allsafe_vendors.get(vendor_given.lower())
        if vendor is None:
            store.record("allsafe", "allocate", **journal, vendor=vendor_given, applied=False, result=496)
            return _problem(496, "The supplied vendor is not known.")
        journal["vendor"] = vendor
        for vault in vaults:
            vouchers = vault.vouchers.get((vendor, value))
            if vouchers:
                voucher = vouchers.pop(0)
                break
        else:
            store.record("allsafe", "allocate", **journal, applied=False, result=492)
            return _problem(492, "No vouchers for this vendor and value.")
        store.record(
            "allsafe",
            "allocate",
            **journal,
            serial=voucher.serial,
            vault=vault.name,
            applied=True,
            result=200,
        )
        return Reply.json(
            {
                "pin": voucher.pin,
                "serial": voucher.serial,
                "vendor": vendor,
                "value": json_number(value),
                "expiry": voucher.expiry.isoformat(),
                "reference": reference,
                "vault": vault.name,
                "currency": "ZAR",
            }
        )

    @staticmethod
    def _validate(campaign: AllsafeCampaign, payload) -> str:
        if not isinstance(payload, dict):
            return "The request body must be a JSON object."
        vendor = payload.get(campaign.vendor_field)
        if not isinstance(vendor, str) or not vendor.strip():
            return f"Field {campaign.vendor_field!r} is required."
        raw_value = payload.get(campaign.value_field)
        if raw_value is None or isinstance(raw_value, bool) or not isinstance(raw_value, int | float | str):
            return f"Field {campaign.value_field!r} must be a number."
        try:
            value = parse_decimal(raw_value)
        except ValueError:
            return f"Field {campaign.value_field!r} must be a number."
        if not value.is_finite() or value <= 0:
            return f"Field {campaign.value_field!r} must be above zero."
        reference = payload.get(campaign.reference_field)
        if isinstance(reference, bool) or not isinstance(reference, str | int) or not str(reference).strip():
            return f"Field {campaign.reference_field!r} is required."
        if len(str(reference)) > 100:
            return f"Field {campaign.reference_field!r} is too long."
        return ""


def make_vouchers(store: Store, vendor: str, value: Decimal, count: int, today) -> list:
    """Fresh vouchers with random PINs and sequential serials (for seeding and the control API)."""
    with store.lock:
        return [
            Voucher(
                pin="".join(secrets.choice("0123456789") for _ in range(16)),
                serial=f"AS{store.next_serial():010d}",
                expiry=today + timedelta(days=VOUCHER_DAYS),
            )
            for _ in range(count)
        ]


def set_stock(store: Store, *, vault: str, vendor: str, value: Decimal, count: int, today) -> None:
    """Make a vault hold exactly ``count`` vouchers of vendor/value (the vendor becomes known)."""
    with store.lock:
        store.allsafe_vendors.setdefault(vendor.lower(), vendor)
        vendor = store.allsafe_vendors[vendor.lower()]
        target = store.allsafe_vaults.setdefault(vault, Vault(name=vault))
        vouchers = target.vouchers.setdefault((vendor, value), [])
        if count < len(vouchers):
            del vouchers[count:]
        else:
            vouchers.extend(make_vouchers(store, vendor, value, count - len(vouchers), today))
