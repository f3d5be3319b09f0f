"""Signed, expiring download links: ``/api/v1/documents/{id}/content?expires=..&signature=..``.

The signature is an HMAC-SHA256 over the document id and the expiry, with a secret of the
billing service; a link cannot be guessed, altered or used after it expires, and needs no
login (the gateway lets it through; the link is the credential).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from gala.errors import Forbidden

PATH = "/api/v1/documents/{id}/content"


class LinkRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__("This download link is not valid, or it has expired.")


def _mac(secret: bytes, document_id: str, expires: int) -> str:
    return hmac.new(secret, f"{document_id}|{expires}".encode(), hashlib.sha256).hexdigest()


def signed_link(secret: bytes, document_id: str, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    signature = _mac(secret, document_id, expires)
    return f"{PATH.format(id=document_id)}?expires={expires}&signature={signature}"


def check_link(
    secret: bytes, document_id: str, expires: int, signature: str, now: datetime
) -> None:
    if expires < now.timestamp():
        raise LinkRefused()
    if not hmac.compare_digest(_mac(secret, document_id, expires), signature):
        raise LinkRefused()
