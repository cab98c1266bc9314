"""Encryption at rest for provider credentials.

Keys come from ``settings.FIELD_ENCRYPTION_KEYS``, newest first: the newest encrypts, any of them
decrypts (``MultiFernet``), so a new key can be put in front and the old ones retired after
``manage.py rotate_encryption_keys`` has re-encrypted everything.

Ciphertext never leaves this module as if it were a secret: a value no key can decrypt raises
:class:`CredentialDecryptionError` instead of being handed back.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptionError(Exception):
    """Stored credentials cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS."""

    def __init__(self, what: str = "credentials"):
        super().__init__(
            f"The stored {what} cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS. "
            "The key they were encrypted with was removed or changed: put it back (newest key first), "
            "or enter the credentials again."
        )


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: give at least one Fernet key.")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry #{position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key())."
            ) from exc
    return MultiFernet(fernets)


def _keys() -> MultiFernet:
    return _multifernet(tuple(k for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()))


def validate_keys() -> None:
    """Raise ImproperlyConfigured when a configured key is malformed."""
    _keys()


def encrypt(plaintext: str) -> str:
    """Encrypt with the newest key. The empty string stays empty (nothing stored)."""
    if not plaintext:
        return ""
    return _keys().encrypt(plaintext.encode("utf-8")).decode("ascii")


def _open(method: str, ciphertext: str, what: str, encoding: str) -> str:
    """``decrypt`` or ``rotate`` with the keys; a value no key opens raises, never comes back."""
    if not ciphertext:
        return ""
    try:
        return getattr(_keys(), method)(ciphertext.encode("ascii")).decode(encoding)
    except (InvalidToken, UnicodeError) as exc:
        raise CredentialDecryptionError(what) from exc


def decrypt(ciphertext: str, *, what: str = "credentials") -> str:
    return _open("decrypt", ciphertext, what, "utf-8")


def rotate(ciphertext: str, *, what: str = "credentials") -> str:
    """Re-encrypt with the newest key (raises when no key can decrypt)."""
    return _open("rotate", ciphertext, what, "ascii")
