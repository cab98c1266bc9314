"""Which addresses a provider's stored credentials may be sent to (ARCHITECTURE.md, "Stored secrets").

Each provider has an allow-list of endpoints (``PROVIDER_ALLOWED_HOSTS`` in settings, read from
``LINA_ALLOWED_HOSTS`` and ``ALLSAFE_ALLOWED_HOSTS``). An entry is ``host`` (https on port 443),
``host:port`` (https), or ``scheme://host[:port]``; the port ``*`` stands for any port. A base URL
is allowed when its scheme, host and port match one entry exactly: no wildcard hosts, so a
look-alike or sub-domain never matches.

Pure: no database. :func:`normalise_entry` is also used by the settings module to refuse a
malformed entry at start-up.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .errors import Misconfigured

DEFAULT_PORTS = {"https": 443, "http": 80}
ANY_PORT = "*"


def setting_name(provider: str) -> str:
    """The environment variable that holds ``provider``'s allow-list (named in every refusal)."""
    return f"{(provider or 'provider').upper()}_ALLOWED_HOSTS"


def normalise_entry(entry: str) -> str:
    """``scheme://host:port`` (port may be ``*``) for one allow-list entry; ValueError if malformed."""
    text = (entry or "").strip().lower()
    if not text:
        raise ValueError("an empty entry")
    if "://" not in text:
        text = "https://" + text
    scheme, _sep, rest = text.partition("://")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{entry!r}: the scheme must be https or http")
    if any(ch in rest for ch in "/?#@\\ \t"):
        raise ValueError(f"{entry!r}: give only [scheme://]host[:port], without path or user")
    port = ""
    if rest.startswith("["):  # an IPv6 literal: [::1] or [::1]:8001
        host, _sep, tail = rest.partition("]")
        host += "]"
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"{entry!r}: malformed IPv6 address")
            port = tail[1:]
    elif ":" in rest:
        host, _sep, port = rest.rpartition(":")
    else:
        host = rest
    host = host.rstrip(".")
    if not host or host == "[]":
        raise ValueError(f"{entry!r}: no host")
    if not port:
        port = str(DEFAULT_PORTS[scheme])
    elif port != ANY_PORT and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535 or *")
    return f"{scheme}://{host}:{int(port) if port != ANY_PORT else ANY_PORT}"


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a base URL, or None when it is not one plain, unambiguous address.

    Two URL parsers read a tricky URL differently (``https://good\\@evil/``: the standard library
    sees host ``evil``, urllib3 — which requests connects with — sees ``good``), so a URL is only
    accepted when both agree on scheme, host and port and it carries no user name or password.
    """
    from urllib3.util import parse_url

    text = (url or "").strip()
    if not text or any(ch in text for ch in "\\ \t\r\n"):
        return None
    try:
        split = urlsplit(text)
        parsed = parse_url(text)
        split_port = split.port
    except ValueError:
        return None
    scheme = (split.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or split.username is not None or split.password is not None:
        return None
    if parsed.auth or (parsed.scheme or "").lower() != scheme:
        return None
    host = (split.hostname or "").rstrip(".")
    other_host = (parsed.host or "").lower().strip("[]").rstrip(".")
    if not host or host != other_host:
        return None
    port = split_port or DEFAULT_PORTS[scheme]
    if (parsed.port or DEFAULT_PORTS[scheme]) != port:
        return None
    if ":" in host:  # IPv6: compare in the bracketed form the entries use
        host = f"[{host}]"
    return scheme, host, port


def allowed_entries(provider: str) -> list[str]:
    configured = getattr(settings, "PROVIDER_ALLOWED_HOSTS", {}) or {}
    entries = []
    for entry in configured.get(provider, ()) or ():
        try:
            entries.append(normalise_entry(entry))
        except ValueError:
            continue  # settings refuse malformed entries at start; a test override may not
    return entries


def is_allowed(provider: str, url: str) -> bool:
    origin = origin_of(url)
    if origin is None:
        return False
    scheme, host, port = origin
    entries = set(allowed_entries(provider))
    return f"{scheme}://{host}:{port}" in entries or f"{scheme}://{host}:{ANY_PORT}" in entries


def display_host(url: str) -> str:
    """scheme://host[:port] of a URL for messages and the audit trail (never a path or user)."""
    origin = origin_of(url)
    if origin is None:
        try:
            split = urlsplit((url or "").strip())
            return f"{split.scheme}://{split.hostname or '?'}"
        except ValueError:
            return "?"
    scheme, host, port = origin
    return f"{scheme}://{host}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}")


def refusal_message(provider: str, url: str) -> str:
    entries = allowed_entries(provider)
    return _(
        "%(address)s is not an address the portal may send this campaign's credentials to. "
        "Allowed (%(setting)s): %(allowed)s."
    ) % {
        "address": display_host(url),
        "setting": setting_name(provider),
        "allowed": ", ".join(entries) or _("none"),
    }


def require_allowed(provider: str, url: str) -> None:
    """Raise Misconfigured (nothing is sent) unless ``url`` is on the provider's allow-list."""
    if is_allowed(provider, url):
        return
    raise Misconfigured(
        refusal_message(provider, url),
        what_to_check=[
            _("The campaign's base URL: use the provider's documented address."),
            _("Or, if the provider really moved, add the new address to %(setting)s and restart.")
            % {"setting": setting_name(provider)},
        ],
        detail=f"base URL {display_host(url)} not in {setting_name(provider)}",
    )
