"""QR codes of token codes as base64 PNG, as LINA's ``purchase`` answers them in ``qrcode``."""

from __future__ import annotations

import base64
import io

import segno


def qr_png_base64(text: str, *, scale: int = 5) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=scale, border=2)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
