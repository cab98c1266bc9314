"""The QR image of a sold gift token: the provider's PNG, or drawn here when it sent none."""

from __future__ import annotations

import base64
import binascii
import io

import segno

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def provider_png(qrcode_base64: str) -> bytes | None:
    """The provider's base64 PNG decoded, or None when it is absent or not a PNG."""
    text = (qrcode_base64 or "").strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if not text:
        return None
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None
    return data if data.startswith(_PNG_SIGNATURE) else None


def drawn_png(code: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def qr_png(*, code: str, qrcode_base64: str = "") -> tuple[bytes, str]:
    """(PNG bytes, "provider" or "drawn")."""
    png = provider_png(qrcode_base64)
    if png is not None:
        return png, "provider"
    return drawn_png(code), "drawn"
