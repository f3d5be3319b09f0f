"""Building blocks of every service's HTTP layer, so that all APIs look alike.

JSON is camelCase with ids as ``id``; requests refuse unknown fields (a typo must not be
silently ignored); lists answer ``{"items": [...], "nextCursor": ...}`` with keyset
cursors; the errors an endpoint can answer are declared from their exception classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from gala.errors import PROBLEM_JSON, GalaError, Unauthorized

MAX_PAGE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page (1-200).")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="The `nextCursor` of the previous page.")
]


class RequestBody(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="forbid"
    )


class ResponseBody(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )


Item = TypeVar("Item", bound=BaseModel)


class PageOut(ResponseBody, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


def problems(*errors: type[GalaError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an endpoint can answer (401 always)."""
    answers: dict[int | str, dict[str, Any]] = {}
    every: tuple[type[GalaError], ...] = (Unauthorized, *errors)
    for error in every:
        entry = answers.setdefault(
            int(error.status), {"description": error.title, "content": {PROBLEM_JSON: {}}}
        )
        if error.title not in entry["description"]:
            entry["description"] += f"; {error.title}"
    return answers
