"""Signed, expiring download links: ``/api/v1/documents/{id}/content?expires=..&signature=..``.

The signature is an HMAC-SHA256 over the document id and the expiry, with a secret of the
billing service; a link cannot be guessed, altered or used after it expires, and needs no
login (the gateway lets it through; the link is the credential). A link issued to a
CLIENT also names them (``&client=..``, signed too): it works only while they still
belong to the document's project.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import quote

from gala.errors import Forbidden

PATH = "/api/v1/documents/{id}/content"


class LinkRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__("This download link is not valid, or it has expired.")


def _mac(secret: bytes, document_id: str, expires: int, client_id: str | None) -> str:
    message = f"{document_id}|{expires}" + (f"|client|{client_id}" if client_id else "")
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def signed_link(
    secret: bytes,
    document_id: str,
    now: datetime,
    ttl: timedelta,
    client_id: str | None = None,
) -> str:
    """A link to the file; one for ``client_id`` works only while it is theirs."""
    expires = int((now + ttl).timestamp())
    signature = _mac(secret, document_id, expires, client_id)
    link = f"{PATH.format(id=document_id)}?expires={expires}&signature={signature}"
    return link + (f"&client={quote(client_id, safe='')}" if client_id else "")


def check_link(
    secret: bytes,
    document_id: str,
    expires: int,
    signature: str,
    now: datetime,
    client_id: str | None = None,
) -> None:
    if expires < now.timestamp():
        raise LinkRefused()
    expected = _mac(secret, document_id, expires, client_id).encode()
    # bytes: compare_digest refuses a str holding non-ASCII characters with a TypeError
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
        raise LinkRefused()
