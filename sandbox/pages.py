"""HTML: the small control page (``/`` and ``/_sandbox/``) and LINA's printable voucher layouts."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import parse_qs

from .control import Control
from .formats import display_code, euro, german_date, mask_code
from .qr import qr_png_base64
from .replies import Reply
from .state import FAULT_KINDS, OPERATIONS, Store

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
form.inline{display:inline}fieldset{margin:0 0 1rem;border:1px solid #ccc}label{margin-right:.8rem}
.on{color:#b00;font-weight:bold}code{font-size:.95em}
"""


def control_page(store: Store, base_url: str, message: str = "") -> Reply:
    state = Control(store).state({}, {})
    with store.lock:
        tokens = list(store.lina_tokens.values())[-30:]
        journal = list(store.journal)[-25:]
    e = escape
    kinds = "".join(f"<option>{k}</option>" for k in FAULT_KINDS)
    operations = "".join(
        f"<option value='{p}:{o}'>{p} {o}</option>" for p, ops in OPERATIONS.items() for o in ("*", *ops)
    )
    faults = "".join(
        f"<tr><td>{f['id']}</td><td>{f['provider']}</td><td>{f['operation']}</td><td>{f['kind']}</td>"
        f"<td>{'permanent' if f['permanent'] else f['count']}</td><td>ms={f['ms']} s={f['seconds']} "
        f"status={f['status']} apply={f['apply']}</td></tr>"
        for f in state["faults"]
    )
    token_rows = "".join(
        f"<tr><td><code>{e(display_code(t.code))}</code></td><td>{e(t.account)}</td><td>{euro(t.original)}</td>"
        f"<td>{euro(t.remaining)}</td><td>{german_date(t.valid_until)}</td><td>{'yes' if t.full_value_only else ''}"
        f"</td><td>{'blocked' if t.blocked else ''}</td></tr>"
        for t in tokens
    )
    stock_rows = "".join(
        f"<tr><td>{e(r['vault'])}</td><td>{e(r['vendor'])}</td><td>{r['value']}</td><td>{r['count']}</td></tr>"
        for r in state["stock"]
    )
    journal_rows = "".join(
        f"<tr><td>{j['seq']}</td><td>{e(j['at'])}</td><td>{j['provider']} {j['operation']}</td>"
        f"<td>{e(str(j.get('account')))}</td><td>{e(str(j.get('code_masked') or j.get('vendor') or ''))}</td>"
        f"<td>{e(str(j.get('amount') or j.get('value') or ''))}</td><td>{e(str(j.get('result')))}</td>"
        f"<td>{'applied' if j.get('applied') else ''}</td><td>{e(str(j.get('fault') or ''))}</td></tr>"
        for j in reversed(journal)
    )
    accounts = "".join(
        f"<li>{e(a['username'])}: recipe <code>{e(a['recipe'])}</code>, {a['recent_failures']} recent failures"
        + (
            f", <span class='on'>DENIED for {a['locked_for_seconds']} s</span>"
            if a["locked_for_seconds"]
            else ""
        )
        + "</li>"
        for a in state["lina_accounts"]
    )
    campaigns = "".join(
        f"<li>{e(c['username'])}: {e(c['status'])}, integration "
        f"{'active' if c['integration_active'] else 'revoked'}, vaults {e(', '.join(c['vaults']) or 'none')}</li>"
        for c in state["allsafe_campaigns"]
    )
    maintenance = state["maintenance"]
    rejection = state["lina_session_rejection"]
    rejection_options = "".join(
        f"<option value='{code}'{' selected' if rejection['status'] == code else ''}>{label}</option>"
        for code, label in ((400, "400 + status error (documented)"), (401, "401"))
    )
    account_options = "".join(f"<option>{e(a['username'])}</option>" for a in state["lina_accounts"])
    scope_options = "".join(
        f"<option{' selected' if state['lina_denied_scope'] == scope else ''}>{scope}</option>"
        for scope in ("address", "account")
    )
    failure_counts = ", ".join(
        f"{e(key)}: {c['recent_failures']}"
        + (f" (DENIED {c['locked_for_seconds']} s)" if c["locked_for_seconds"] else "")
        for key, c in state["lina_failure_counts"].items()
    )
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox providers</title>
<style>{STYLE}</style></head><body>
<h1>Sandbox providers</h1>
<p>LINA: <code>{e(base_url)}/lina/extern/tokenapi</code> · Allsafe: <code>{e(base_url)}/allsafe</code> ·
JSON control API: <code>{e(base_url)}/_sandbox/state</code></p>
{f"<p class='on'>{e(message)}</p>" if message else ""}
<fieldset><legend>Add a fault</legend><form method="post" action="/_sandbox/ui/fault">
<label>Call <select name="target">{operations}</select></label>
<label>Kind <select name="kind">{kinds}</select></label>
<label>Count <input name="count" value="1" size="3"></label>
<label><input type="checkbox" name="permanent" value="1"> permanent</label>
<label>ms <input name="ms" value="500" size="5"></label>
<label>seconds <input name="seconds" value="30" size="4"></label>
<label>status <input name="status" size="4"></label>
<label><input type="checkbox" name="apply" value="1"> apply first</label>
<button>Add</button></form></fieldset>
<h2>Active faults</h2>
<table><tr><th>id</th><th>provider</th><th>call</th><th>kind</th><th>left</th><th>parameters</th></tr>{faults}</table>
<form class="inline" method="post" action="/_sandbox/ui/clear-faults"><button>Clear all faults</button></form>
<form class="inline" method="post" action="/_sandbox/ui/maintenance">
<input type="hidden" name="enabled" value="{"0" if maintenance["enabled"] else "1"}">
<button>{"End" if maintenance["enabled"] else "Start"} LINA maintenance</button></form>
<form class="inline" method="post" action="/_sandbox/ui/latency"><label>Default latency (ms)
<input name="ms" value="{state["latency_ms"]}" size="5"></label><button>Set</button></form>
<form class="inline" method="post" action="/_sandbox/ui/reset"><button>Reset to demo data</button></form>
<fieldset><legend>LINA sessions and DENIED</legend>
<form class="inline" method="post" action="/_sandbox/ui/session-rejection">
<label>Reject lapsed sessions with <select name="status">{rejection_options}</select></label>
<label>text <input name="text" value="{e(rejection["text"])}" size="36"></label><button>Set</button></form>
<form class="inline" method="post" action="/_sandbox/ui/session-lapse">
<label>Account <select name="username">{account_options}</select></label>
<label>sessions last <input name="session_max_uses" value="0" size="3"> uses (0: no limit)</label>
<label><input type="checkbox" name="session_ip_bound" value="1" checked> bound to the IP</label>
<button>Set</button></form>
<form class="inline" method="post" action="/_sandbox/ui/expire-sessions"><button>Expire every session now</button></form>
<form class="inline" method="post" action="/_sandbox/ui/client-ip"><label>Pretend the client IP is
<input name="ip" value="{e(state["lina_client_ip"] or "")}" size="15"></label><button>Set</button></form>
<form class="inline" method="post" action="/_sandbox/ui/denied"><label>Count DENIED per
<select name="scope">{scope_options}</select></label>
<label><input type="checkbox" name="reset" value="1"> forget the counts</label><button>Set</button></form>
<p>Failure counts: {failure_counts or "none"}</p>
</fieldset>
<p>LINA maintenance: <span class="{"on" if maintenance["enabled"] else ""}">{"ON" if maintenance["enabled"] else "off"}</span></p>
<h2>LINA accounts</h2><ul>{accounts}</ul>
<h2>LINA tokens (latest 30)</h2>
<table><tr><th>code</th><th>account</th><th>start</th><th>left</th><th>valid until</th><th>full only</th><th></th></tr>{token_rows}</table>
<h2>Allsafe campaigns</h2><ul>{campaigns}</ul>
<h2>Allsafe stock</h2>
<table><tr><th>vault</th><th>vendor</th><th>value</th><th>count</th></tr>{stock_rows}</table>
<h2>Journal (latest 25 money-moving calls)</h2>
<table><tr><th>#</th><th>at</th><th>call</th><th>account</th><th>code / vendor</th><th>amount / value</th>
<th>result</th><th></th><th>fault</th></tr>{journal_rows}</table>
</body></html>"""
    return Reply.html(html)


def control_action(store: Store, action: str, body: bytes) -> Reply:
    """A form on the control page: apply it through the JSON control API, then show the page."""
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    control = Control(store)
    if action == "fault":
        provider, _, operation = form.get("target", "").partition(":")
        spec = {
            "provider": provider,
            "operation": operation,
            "kind": form.get("kind", ""),
            "count": form.get("count") or 1,
            "permanent": form.get("permanent", ""),
            "ms": form.get("ms") or 0,
            "seconds": form.get("seconds") or 30,
            "status": form.get("status") or None,
            "apply": form.get("apply", ""),
        }
        path, data = "faults", spec
    elif action == "clear-faults":
        path, data = "faults", {}
    elif action == "maintenance":
        path, data = "maintenance", {"enabled": form.get("enabled", "1")}
    elif action == "latency":
        path, data = "latency", {"ms": form.get("ms") or 0}
    elif action == "reset":
        path, data = "reset", {"seed": True}
    elif action == "session-rejection":
        path, data = "lina/session-rejection", {"status": form.get("status") or 400, "text": form.get("text")}
    elif action == "session-lapse":
        path, data = (
            "lina/accounts",
            {
                "username": form.get("username", ""),
                "session_max_uses": form.get("session_max_uses") or 0,
                "session_ip_bound": form.get("session_ip_bound", "0"),
            },
        )
    elif action == "expire-sessions":
        path, data = "lina/sessions/expire", {}
    elif action == "client-ip":
        path, data = "lina/client-ip", {"ip": form.get("ip") or None}
    elif action == "denied":
        path, data = "lina/denied", {"scope": form.get("scope", "address"), "reset": form.get("reset", "")}
    else:
        return Reply.html("<p>Unknown action.</p>", 404)
    method = "DELETE" if action == "clear-faults" else "POST"
    reply = control.handle(method, path, "", json.dumps(data).encode())
    if reply.status >= 400:
        return Reply.html(
            f"<p>{escape(reply.data().get('error', 'failed'))}</p><p><a href='/_sandbox/'>back</a></p>", 400
        )
    return Reply.redirect("/_sandbox/")


LAYOUT_STYLES = {
    1: ("Klassisch", "#1d3557", "#f1faee"),
    2: ("Festlich", "#9d0208", "#fff3e0"),
    3: ("Winter", "#023e8a", "#e0f2fe"),
}


def voucher_page(store: Store, ref: str) -> Reply:
    """The printable voucher LINA links to in ``layouthttp``: value, names, valid-until, code, QR."""
    with store.lock:
        code = store.lina_layout_refs.get(ref)
        token = store.lina_tokens.get(code) if code else None
        if token is None:
            return Reply.html("<h1>Gutschein nicht gefunden</h1>", 404)
        snapshot = token.as_dict()
        original, valid_until, layout = token.original, token.valid_until, token.layout or 1
    name, ink, paper = LAYOUT_STYLES.get(layout, (f"Layout {layout}", "#333", "#fff"))
    e = escape
    names = ""
    if snapshot["from_name"]:
        names += f"<p>Von: <strong>{e(snapshot['from_name'])}</strong></p>"
    if snapshot["for_name"]:
        names += f"<p>Für: <strong>{e(snapshot['for_name'])}</strong></p>"
    html = f"""<!doctype html><html lang="de"><head><meta charset="utf-8">
<title>Gutschein {e(mask_code(code))}</title><style>
body{{font-family:Georgia,serif;background:#eee;margin:0}}
.voucher{{width:170mm;margin:1.5rem auto;padding:12mm;background:{paper};color:{ink};border:3px double {ink}}}
.value{{font-size:2.6rem;font-weight:bold}}.code{{font-family:monospace;font-size:1.4rem;letter-spacing:.1em}}
img{{width:38mm;height:38mm;float:right;image-rendering:pixelated}}
@media print{{body{{background:#fff}}.voucher{{margin:0 auto}}}}</style></head><body>
<div class="voucher" data-layout="{layout}"><img alt="QR-Code" src="data:image/png;base64,{qr_png_base64(code)}">
<p>Gutschein · {e(snapshot["template"])} · {e(name)}</p>
<p class="value">{euro(original)} €</p>{names}
<p>Gültig bis {german_date(valid_until)}</p>
<p class="code">{e(display_code(code))}</p>
<p><small>Sandbox-Gutschein, kein echter Wert.</small></p></div></body></html>"""
    return Reply.html(html)
