"""Meta's Graph API, as far as lead intake needs it: whose a page access token is, and
one lead by its leadgen id, each read with a page's own token.

- ``GET {graph_url}/me?fields=id,name&access_token=...&appsecret_proof=...``: ``/me``
  is the object the token belongs to; for a page access token, the page
  (``{"id": <page id>, "name": ...}``). Asking ``/{page_id}`` instead would prove
  nothing: any valid token reads a public page.
- ``GET {graph_url}/{leadgen_id}?access_token=...&appsecret_proof=...`` answers
  ``{"id": ..., "created_time": ..., "field_data": [{"name": ..., "values": [...]}]}``.

Tokens travel in the query, so URLs are never logged as they are (httpx logs requests
at INFO): a filter on httpx's logger blanks the token and the proof. Errors Meta marks
as transient (``is_transient``, its throttling and outage codes, 5xx, 429) are "not
reachable"; any other refusal means the token is not good.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from types import TracebackType
from typing import Any, Final, Protocol

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


TRANSIENT_CODES: Final = frozenset({1, 2, 4, 17, 32, 341, 368, 613})
"""Meta's error codes for outages and throttling: wait and retry, the token may be fine."""


class GraphError(Exception):
    """The Graph API did not answer (worth retrying later)."""


class LeadReader(Protocol):
    async def lead(self, leadgen_id: str, access_token: str) -> Any: ...


class TokenChecker(Protocol):
    async def token_owner(self, access_token: str) -> str | None: ...


class GraphClient:
    """Reads, with a page access token, whose it is and the page's leads."""

    def __init__(
        self,
        base_url: str,
        *,
        app_secret: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._app_secret = app_secret
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    def _params(self, access_token: str, **more: str) -> dict[str, str]:
        params = {**more, "access_token": access_token}
        if self._app_secret:
            proof = hmac.new(self._app_secret.encode(), access_token.encode(), hashlib.sha256)
            params["appsecret_proof"] = proof.hexdigest()
        return params

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

    async def token_owner(self, access_token: str) -> str | None:
        """The id of the object (for a page access token, the page) ``access_token``
        belongs to; ``None`` when the Graph API refuses the token. GraphError when the
        Graph API cannot tell now."""
        try:
            response = await self._http.get(
                f"{self._base_url}/me", params=self._params(access_token, fields="id,name")
            )
        except httpx.HTTPError as exc:
            raise GraphError(f"the Graph API cannot be reached: {type(exc).__name__}") from None
        if response.status_code != 200:
            if _transient(response):
                raise GraphError(
                    f"the Graph API answered {response.status_code}: {_error(response)}"
                )
            return None
        try:
            body = response.json()
        except ValueError:
            raise GraphError("the Graph API answered something that is not JSON") from None
        owner = meta_id(body.get("id")) if isinstance(body, dict) else None
        if owner is None:
            raise GraphError("the Graph API answered no id for the token")
        return owner

    async def lead(self, leadgen_id: str, access_token: str) -> Any:
        if meta_id(leadgen_id) != leadgen_id:
            raise ValueError(f"{leadgen_id!r} is not a leadgen id")  # never into the path
        try:
            response = await self._http.get(
                f"{self._base_url}/{leadgen_id}", params=self._params(access_token)
            )
        except httpx.HTTPError as exc:
            raise GraphError(f"the Graph API cannot be reached: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise GraphError(f"the Graph API answered {response.status_code}: {_error(response)}")
        try:
            return response.json()
        except ValueError:
            raise GraphError("the Graph API answered something that is not JSON") from None


def _transient(response: httpx.Response) -> bool:
    """Whether a refusal is Meta's outage or throttling rather than about the token."""
    if response.status_code >= 500 or response.status_code == 429:
        return True
    try:
        error = response.json().get("error", {})
        code = error.get("code")
        return error.get("is_transient") is True or (
            isinstance(code, int) and code in TRANSIENT_CODES
        )
    except (ValueError, AttributeError):
        return False


def _error(response: httpx.Response) -> str:
    """Meta's error message (``{"error": {"message": ...}}``), briefly."""
    try:
        error = response.json().get("error", {})
        return str(error.get("message", ""))[:300] or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase
