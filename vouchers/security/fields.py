"""Model fields whose value is stored encrypted (MultiFernet over FIELD_ENCRYPTION_KEYS).

Every encrypted column is declared with :class:`EncryptedTextField` (or its JSON variant), so
code reads and writes plain values (``sale.full_code = code``) and never calls
``vouchers.security.crypto`` itself. ``manage.py rotate_encryption_keys`` finds the columns by
this type.

Decryption happens when the attribute is read, not when the row is loaded: a list of rows still
loads while a key is missing, and only the code that needs the secret gets
:class:`~vouchers.security.crypto.CredentialDecryptionError` (one behaviour everywhere: never
ciphertext, never an empty string standing in for a value that exists).
"""

from __future__ import annotations

import json

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from . import crypto


class Ciphertext(str):
    """A value exactly as stored in the column (already encrypted); written back unchanged."""


class _EncryptedAttribute(DeferredAttribute):
    """Keeps the stored ciphertext on the instance and decrypts it on every read.

    A deferred column (``.only()``/``.defer()``) is loaded on first access, as Django's own
    attribute does; what is kept is always the stored form (or a plain value set since).
    """

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        stored = self.stored(instance)
        if not isinstance(stored, Ciphertext):
            return stored  # set in this process and not saved yet: already plain
        return self.field.decrypt(stored, instance)

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value

    def stored(self, instance):
        return super().__get__(instance, type(instance))


class EncryptedTextField(models.TextField):
    """Text encrypted at rest. ``what`` names the value in the error ("API password").

    Reading the attribute decrypts; ``values()``/``values_list()`` return the stored ciphertext
    (:class:`Ciphertext`) untouched; filtering can only ask whether a value is stored (``""``).
    """

    descriptor_class = _EncryptedAttribute

    def __init__(self, *args, what: str = "value", **kwargs):
        self.what = what
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.what != "value":
            kwargs["what"] = self.what
        return name, path, args, kwargs

    # --- plain <-> stored ----------------------------------------------------------------------
    def empty(self):
        return ""

    def encode(self, value) -> str:
        return value or ""

    def decode(self, plain: str):
        return plain

    def describe(self, instance) -> str:
        """What the error names: "API password of campaign 3"."""
        return f"{self.what} of {instance._meta.verbose_name} {instance.pk}"

    def decrypt(self, stored: str, instance):
        if not stored:
            return self.empty()
        return self.decode(crypto.decrypt(stored, what=self.describe(instance)))

    # --- Django hooks --------------------------------------------------------------------------
    def from_db_value(self, value, expression, connection):
        return Ciphertext(value) if value else self.empty()

    def get_prep_value(self, value):
        if isinstance(value, Ciphertext):
            return str(value)
        return crypto.encrypt(self.encode(value))

    def pre_save(self, model_instance, add):
        # Saving never decrypts (a row whose key is gone still saves); a plain value set since the
        # last save is encrypted once here and kept on the instance as exactly what was stored.
        stored = model_instance.__dict__.get(self.attname, "")
        if not isinstance(stored, Ciphertext):
            stored = Ciphertext(crypto.encrypt(self.encode(stored)))
            model_instance.__dict__[self.attname] = stored if stored else self.empty()
        return stored

    def value_from_object(self, obj):
        stored = getattr(type(obj), self.attname).stored(obj)
        return str(stored) if isinstance(stored, Ciphertext) else self.get_prep_value(stored)

    def has_value(self, instance) -> bool:
        """Whether anything is stored, without decrypting it."""
        return bool(getattr(type(instance), self.attname).stored(instance))

    def stored(self, instance) -> str:
        """The ciphertext as stored (for a plain value not saved yet: a fresh encryption of it)."""
        return self.value_from_object(instance)


class EncryptedJSONField(EncryptedTextField):
    """A dict encrypted at rest as sorted JSON; an empty dict stores nothing."""

    def empty(self):
        return {}

    def encode(self, value) -> str:
        return json.dumps(value, sort_keys=True) if value else ""

    def decode(self, plain: str):
        return json.loads(plain) if plain else {}

    def get_default(self):
        return {}
