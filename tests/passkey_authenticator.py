"""A software WebAuthn authenticator for server-side tests: real keys (ECDSA P-256), real CBOR, real
signatures over the server's challenge, as a security key would make them (attestation "none").

The browser's part (clientDataJSON: type, challenge, origin) is built here too, so that a test can
play a browser at another origin, answer a challenge twice, or sign for another relying party.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from base64 import urlsafe_b64encode

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).decode("ascii").rstrip("=")


class SoftAuthenticator:
    """One credential, created by ``create`` and used by ``get``."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle = ""

    def _client_data(self, kind: str, options: dict, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def create(self, options: dict, *, origin: str, rp_id: str | None = None) -> str:
        """The browser's answer (JSON) to registration ``options`` from ``origin``."""
        rp_id = rp_id or options["rp"]["id"]
        self.user_handle = options["user"]["id"]
        self.sign_count += 1
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([0x01 | 0x04 | 0x40])  # user present, verified, attested credential data
            + struct.pack(">I", self.sign_count)
            + bytes(16)  # AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(self._client_data("webauthn.create", options, origin)),
                    "attestationObject": b64url(attestation),
                    "transports": ["usb"],
                },
                "clientExtensionResults": {"credProps": {"rk": False}},
                "authenticatorAttachment": "cross-platform",
            }
        )

    def get(self, options: dict, *, origin: str, rp_id: str | None = None) -> str:
        """The browser's answer (JSON) to authentication ``options`` from ``origin``."""
        rp_id = rp_id or options["rpId"]
        self.sign_count += 1
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([0x01 | 0x04])
            + struct.pack(">I", self.sign_count)
        )
        client_data = self._client_data("webauthn.get", options, origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": self.user_handle,
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "cross-platform",
            }
        )
