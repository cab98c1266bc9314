"""What a handler answers; the HTTP server turns it into bytes (or, for a lost answer, nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

# Allsafe's own status codes have no standard reason phrase; these are its documentation's names.
REASONS = {491: "No Vault Linked", 492: "No Vouchers", 495: "Validation Failed", 496: "Invalid Vendor"}


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Reply:
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), JSON, dict(headers))

    @classmethod
    def html(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), HTML)

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status, b"", "")

    @classmethod
    def redirect(cls, location: str) -> Reply:
        return cls(303, b"", "", {"Location": location})

    def data(self) -> Any:
        """The JSON body decoded (for tests and the control page)."""
        return json.loads(self.body) if self.body else None
