"""A venue's pipeline setup: its currency and its ordered stages.

Pure: no I/O. Rules:

- a venue that never changed anything has the default stages (new inquiry 0.1,
  qualified 0.25, site visit 0.4, proposal sent 0.6, contract sent 0.8; the last two
  hold a room) and EUR;
- stages have stable ids, so a rename (same id, new name) is told apart from a removal
  plus an addition; a new stage gets a fresh id;
- names are unique in a venue (ignoring case), probabilities are decimals from 0 to 1;
- renaming, removing or changing whether a stage holds a room while open opportunities
  are in it is refused (409, with how many) until they are moved; changing its
  probability or the order is always allowed;
- the currency cannot change while the venue has opportunities with a value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from gala.errors import Conflict, GalaError, InvalidInput
from gala.money import normalize_currency

DEFAULT_CURRENCY: Final = "EUR"
MAX_STAGES: Final = 30
NAME_MAX: Final = 100
PROPOSAL_SENT: Final = "proposal-sent"
CONTRACT_SENT: Final = "contract-sent"


class StageError(GalaError):
    """Base of the stages module's errors."""


class InvalidStages(StageError, InvalidInput):
    pass


class StagesInUse(StageError, Conflict):
    def __init__(self, in_use: Mapping[str, int]) -> None:
        total = sum(in_use.values())
        names = ", ".join(f"{name} ({count})" for name, count in in_use.items())
        super().__init__(
            f"{total} open opportunit{'y is' if total == 1 else 'ies are'} in stages this"
            f" change renames, removes or re-purposes: {names}. Move them first.",
            inUse=dict(in_use),
            opportunities=total,
        )


class CurrencyInUse(StageError, Conflict):
    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} opportunities have a value in the current currency.", opportunities=count
        )


class StagesChangedDuringMove(StageError, Conflict):
    def __init__(self) -> None:
        super().__init__(
            "The venue's stages changed while the opportunity moved: the move was undone;"
            " look at the stages again."
        )


class SetupChangedConcurrently(StageError, Conflict):
    def __init__(self) -> None:
        super().__init__("The pipeline setup kept changing meanwhile; try again.")


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    probability: Decimal
    holds_room: bool = False


@dataclass(frozen=True)
class StageDraft:
    """A stage as a PUT sends it: ``id`` names an existing stage, none is a new one."""

    name: str
    probability: Decimal
    holds_room: bool = False
    id: str | None = None


DEFAULT_STAGES: Final = (
    Stage("new-inquiry", "new inquiry", Decimal("0.1")),
    Stage("qualified", "qualified", Decimal("0.25")),
    Stage("site-visit", "site visit", Decimal("0.4")),
    Stage(PROPOSAL_SENT, "proposal sent", Decimal("0.6"), holds_room=True),
    Stage(CONTRACT_SENT, "contract sent", Decimal("0.8"), holds_room=True),
)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:40] or "stage"


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidStages("A stage needs a name.")
    if len(name) > NAME_MAX:
        raise InvalidStages(f"A stage name has at most {NAME_MAX} characters.")
    return name


@dataclass(frozen=True)
class StagePlan:
    stages: tuple[Stage, ...]
    affected: dict[str, str]
    """Ids of current stages renamed, removed or re-purposed -> their current names."""


@dataclass
class PipelineSetup:
    venue_id: str
    currency: str = DEFAULT_CURRENCY
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    version: int = 0
    """0: never stored (the defaults)."""
    updated_at: datetime | None = None

    def stage(self, ref: str) -> Stage | None:
        """A stage by id, else by name (ignoring case)."""
        for stage in self.stages:
            if stage.id == ref:
                return stage
        key = " ".join(ref.split()).casefold()
        for stage in self.stages:
            if stage.name.casefold() == key:
                return stage
        return None

    def by_id(self, stage_id: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.id == stage_id), None)

    def position(self, stage_id: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return index
        return -1

    @property
    def first(self) -> Stage:
        return self.stages[0]

    @property
    def last(self) -> Stage:
        return self.stages[-1]

    def plan(self, drafts: Sequence[StageDraft]) -> StagePlan:
        """Validate a new list of stages; what it would rename, remove or re-purpose."""
        if not drafts:
            raise InvalidStages("A pipeline needs at least one stage.")
        if len(drafts) > MAX_STAGES:
            raise InvalidStages(f"A pipeline has at most {MAX_STAGES} stages.")
        current = {stage.id: stage for stage in self.stages}
        names: set[str] = set()
        ids: set[str] = set()
        stages: list[Stage] = []
        for draft in drafts:
            name = normalize_name(draft.name)
            if name.casefold() in names:
                raise InvalidStages(f"Two stages are named {name!r}.")
            names.add(name.casefold())
            if not Decimal(0) <= draft.probability <= Decimal(1):
                raise InvalidStages(f"The probability of {name!r} must be from 0 to 1.")
            if draft.id is not None:
                if draft.id not in current:
                    raise InvalidStages(f"There is no stage with id {draft.id!r} to change.")
                if draft.id in ids:
                    raise InvalidStages(f"The stage {draft.id!r} appears twice.")
                stage_id = draft.id
            else:
                stage_id = f"{_slug(name)}-{uuid.uuid4().hex[:6]}"
            ids.add(stage_id)
            probability = draft.probability.normalize()
            if probability == 0:
                probability = Decimal(0)
            stages.append(Stage(stage_id, name, probability, draft.holds_room))
        affected: dict[str, str] = {}
        planned = {stage.id: stage for stage in stages}
        for stage_id, old in current.items():
            new = planned.get(stage_id)
            if new is None or new.name != old.name or new.holds_room != old.holds_room:
                affected[stage_id] = old.name
        return StagePlan(tuple(stages), affected)

    def apply(self, plan: StagePlan, now: datetime) -> None:
        self.stages = plan.stages
        self.updated_at = now

    def change_currency(self, currency: str, now: datetime) -> bool:
        code = normalize_currency(currency)
        if code == self.currency:
            return False
        self.currency = code
        self.updated_at = now
        return True

    def copy(self) -> PipelineSetup:
        return replace(self)
