"""Second-factor devices whose secrets are protected at rest (ASVS 5.0 V6.5.2, V13.3.1).

Both are django-otp devices (``Device`` with ``ThrottlingMixin`` and ``TimestampMixin``), so
django-otp's middleware, ``devices_for_user``, ``login()`` and ``is_verified()`` work with them as with
its own plugins, whose tables kept secrets in clear:

- ``AuthenticatorDevice``: an authenticator app (TOTP, RFC 6238, checked with ``django_otp.oath.TOTP``:
  30-second steps, six digits, one step either side, each step accepted once). Its key is encrypted
  with the product's field key (``prisma_glow.crypto``, ``DJANGO_FIELD_ENCRYPTION_KEY``), like provider
  API keys: the application needs it back to compute codes, so it cannot be hashed.
- ``BackupCodeDevice`` with its ``BackupCode`` rows: one-time backup codes. A code is ten base32
  characters: two make a clear *index* (distinct within the device, chosen at random, not secret) and
  eight (40 random bits) the secret, stored only as a salted password hash (``make_password``, the
  project's hasher). A check finds the one row by its index and checks one hash, under the device's
  row lock, and deletes the row when it matches: each code works once. The index tells an attacker
  who reads the table nothing of the secret; 40 bits against the password hash, or online against
  django-otp's throttling (every wrong code doubles the wait on the device), is out of reach.
"""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from prisma_glow.crypto import EncryptedTextField
from prisma_glow.ids import is_ascii_digits

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
INDEX_LENGTH = 2
SECRET_LENGTH = 8  # 8 base32 characters: 40 random bits
CODE_LENGTH = INDEX_LENGTH + SECRET_LENGTH


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (TOTP) whose key is encrypted at rest.

    The key is 20 random bytes (160 bits, ``os.urandom``), kept as hex in an ``EncryptedTextField``;
    a new device draws its own when saved. Step, digits and tolerance are fixed (not columns): every
    device follows the same rules, and no clock drift is learnt, so a code is accepted only within one
    step of the server's clock. ``last_t`` is the last accepted time step: a code of that step or an
    earlier one is refused (one use)."""

    step = 30
    t0 = 0
    digits = 6
    tolerance = 1

    key = EncryptedTextField(help_text="The TOTP key (hex), encrypted with the field encryption key.")
    last_t = models.BigIntegerField(
        default=-1, help_text="The time step of the last accepted code: only later steps are accepted."
    )

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    def save(self, *args, **kwargs):
        if not self.key:
            self.key = random_hex(20)
        super().save(*args, **kwargs)

    @property
    def bin_key(self) -> bytes:
        """The key as bytes."""
        return unhexlify(self.key.encode())

    def get_throttle_factor(self):
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        """Whether ``token`` is this device's code now (consumed: its step and earlier ones are then
        refused). Refused unchecked while throttled; a wrong code counts toward the throttling."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token or "")
        verified = False
        if len(token) == self.digits and is_ascii_digits(token):
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, 0)
            totp.time = time.time()
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment(commit=True)
        return verified

    @property
    def config_url(self) -> str:
        """The ``otpauth://`` URL an authenticator app reads from the QR code (Key Uri Format)."""
        label = str(self.user.get_username())
        query = urlencode(
            {
                "secret": b32encode(self.bin_key),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        issuer = str(getattr(settings, "OTP_TOTP_ISSUER", "") or "").replace(":", "")
        if issuer:
            label = f"{issuer}:{label}"
            query += f"&issuer={quote(issuer)}"
        return f"otpauth://totp/{quote(label)}?{query}"


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's set of one-time backup codes (the ``codes`` rows), each stored hashed."""

    class Meta(Device.Meta):
        verbose_name = "backup codes"

    def get_throttle_factor(self):
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)

    def issue(self, count: int) -> list[str]:
        """Store ``count`` new codes on this device (replacing none) and return them in clear: the only
        time they exist outside the user's hands."""
        taken = set(self.codes.values_list("index", flat=True))
        issued = []
        while len(issued) < count:
            index = _random_base32(INDEX_LENGTH)
            if index in taken:
                continue
            taken.add(index)
            secret = _random_base32(SECRET_LENGTH)
            BackupCode.objects.create(device=self, index=index, hashed=make_password(secret))
            issued.append(index + secret)
        return issued

    def verify_token(self, token) -> bool:
        """Whether ``token`` is one of the unused codes (then deleted). One row is read by the clear
        index and one hash checked; call it with the device locked (``devices_for_user(...,
        for_verify=True)`` in a transaction) so that two requests cannot both use one code."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token or "").lower()
        match = None
        if len(token) == CODE_LENGTH:
            index, secret = token[:INDEX_LENGTH], token[INDEX_LENGTH:]
            row = self.codes.filter(index=index).first()
            if row is None:
                make_password(secret)  # as long as a check: the time says nothing of which indexes exist
            elif check_password(secret, row.hashed):
                match = row
        if match is None:
            self.throttle_increment(commit=True)
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


class BackupCode(models.Model):
    """One unused backup code: its clear index and the password hash of its secret part."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    index = models.CharField(max_length=INDEX_LENGTH)
    hashed = models.CharField(max_length=256)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "index"], name="accounts_backupcode_index_unique")
        ]

    def __str__(self) -> str:
        return f"Backup code {self.index}… of {self.device}"


def _random_base32(length: int) -> str:
    return "".join(secrets.choice(BASE32) for _ in range(length))
