"""Meta's Graph API, as far as lead intake needs it: read one lead by its leadgen id.

``GET {graph_url}/{leadgen_id}?access_token=...&appsecret_proof=...`` answers
``{"id": ..., "created_time": ..., "field_data": [{"name": ..., "values": [...]}]}``.
The token travels in the query, so the URL is never logged as is (httpx logs requests
at INFO): a filter on httpx's logger blanks the token and the proof.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from types import TracebackType
from typing import Any, Protocol

import httpx

from contacts.intake.domain import meta_id

_SECRET_PARAMS = re.compile(r"(access_token|appsecret_proof)=[^&\s\"']*")


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message or "appsecret_proof=" in message:
            record.msg = _SECRET_PARAMS.sub(r"\1=[redacted]", message)
            record.args = None
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
        logger.addFilter(_RedactSecrets())


_install_redaction()


class GraphError(Exception):
    """The Graph API did not answer a lead (worth retrying later)."""


class LeadReader(Protocol):
    async def lead(self, leadgen_id: str) -> Any: ...


class GraphClient:
    """Reads leads with a page access token."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        app_secret: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._params = {"access_token": access_token}
        if app_secret:
            proof = hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256)
            self._params["appsecret_proof"] = proof.hexdigest()
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def lead(self, leadgen_id: str) -> Any:
        if meta_id(leadgen_id) != leadgen_id:
            raise ValueError(f"{leadgen_id!r} is not a leadgen id")  # never into the path
        try:
            response = await self._http.get(f"{self._base_url}/{leadgen_id}", params=self._params)
        except httpx.HTTPError as exc:
            raise GraphError(f"the Graph API cannot be reached: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise GraphError(f"the Graph API answered {response.status_code}: {_error(response)}")
        try:
            return response.json()
        except ValueError:
            raise GraphError("the Graph API answered something that is not JSON") from None


def _error(response: httpx.Response) -> str:
    """Meta's error message (``{"error": {"message": ...}}``), briefly."""
    try:
        error = response.json().get("error", {})
        return str(error.get("message", ""))[:300] or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase
