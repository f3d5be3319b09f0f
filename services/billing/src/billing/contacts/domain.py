"""Billing's own copy of the venue's contacts: who a reminder is mailed to.

Fed by contact events; keeps the newest state by event time; an erased contact stays
erased (its name and address are forgotten, and it gets no more mail).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContactCopy:
    id: str
    venue_id: str
    name: str | None
    email: str | None
    erased: bool = False
