"""Billing's own copy of what it needs of opportunities and their projects (a "deal"),
fed by pipeline and projects events, so that it never calls those services.

One per opportunity: its venue, contact, currency, outcome and event date; once won,
its project and the project's CLIENT users (who may see its payments). A copy keeps
the newest opportunity state by event time, and, apart from it, the newest project
state by event time: the project's newest event replaces the client list, so a client
taken off the project loses its payments and documents, and one added gains them (an
older event arriving late changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gala.contracts.pipeline import OpportunityOutcome
from gala.errors import GalaError, InvalidInput


class DealError(GalaError):
    """Base of the deals module's errors."""


class UnknownOpportunity(DealError, InvalidInput):
    def __init__(self, opportunity_id: str) -> None:
        super().__init__(
            f"The venue has no won opportunity {opportunity_id!r}.", opportunityId=opportunity_id
        )


@dataclass(frozen=True)
class Deal:
    opportunity_id: str
    venue_id: str
    outcome: OpportunityOutcome
    currency: str | None
    name: str | None = None
    contact_id: str | None = None
    event_date: datetime | None = None
    project_id: str | None = None
    client_ids: list[str] = field(default_factory=list)
