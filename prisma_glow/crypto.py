"""Encryption at rest for secrets (provider API keys, HTTP tool secret headers).

Fernet (AES-128-CBC + HMAC) from ``cryptography``. The key comes from ``DJANGO_FIELD_ENCRYPTION_KEY``
or, when unset, is derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


def _fernet() -> Fernet:
    material = settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(("prisma-glow-fields:" + material).encode()).digest())
    return Fernet(key)


def encrypt_str(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "A stored secret cannot be decrypted: DJANGO_FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed."
        ) from exc


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database and plain in Python.

    An empty string is stored as an empty string (no secret set).
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt_str(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt_str(value)
