"""Development without an identity provider: a local RS256 key pair and its JWKS.

``make dev`` runs the gateway in dev mode: it serves this key's JWKS at ``/dev/jwks.json``
and verifies tokens against it exactly as it would against Clerk's. ``gala dev-token``
mints tokens with the private key; tests use the same class.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_FILE = "dev-signing-key.pem"


class SigningKey:
    """An RS256 key with its ``kid``; mints Clerk-shaped session tokens."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        public = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(public).digest()[:12]
        self.kid = "dev-" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, directory: Path) -> SigningKey:
        """The key kept in ``directory`` (created on first use, readable by its owner only)."""
        path = directory / KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} does not hold an RSA private key")
            return cls(key)
        directory.mkdir(parents=True, exist_ok=True)
        signing_key = cls.generate()
        pem = signing_key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        temporary.replace(path)  # two processes racing both end with one valid key file
        return cls.load_or_create(directory)

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def mint(
        self,
        subject: str,
        *,
        issuer: str,
        ttl_seconds: int = 3600,
        authorized_party: str | None = "gala-dev",
        now: float | None = None,
        **extra: Any,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "sid": f"sess_{uuid.uuid4().hex}",
            "iss": issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            **extra,
        }
        if authorized_party:
            claims["azp"] = authorized_party
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}
