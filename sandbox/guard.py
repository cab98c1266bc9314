"""The sandbox must never run in production: it accepts well-known demo credentials."""

from __future__ import annotations

from collections.abc import Mapping

_FALSE = {"0", "false", "no", "off", "f", "n"}


def refusal_reason(environ: Mapping[str, str]) -> str | None:
    """Why the sandbox must not start under this environment, or None when it may."""
    if environ.get("DJANGO_ENV", "").strip().lower() == "production":
        return "DJANGO_ENV=production: the sandbox providers are never run in production."
    if environ.get("SANDBOX_ENABLED", "").strip().lower() in _FALSE:
        return "SANDBOX_ENABLED is switched off in this environment."
    return None
