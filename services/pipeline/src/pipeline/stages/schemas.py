"""The stages and settings API's bodies (camelCase JSON; decimals as strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from pipeline.stages.domain import PipelineSetup, Stage, StageDraft

Probability = Annotated[Decimal, Field(ge=0, le=1, max_digits=6, examples=["0.25"])]


class StageIn(RequestBody):
    id: Annotated[str | None, Field(max_length=100, description="An existing stage's id")] = None
    name: Annotated[str, Field(min_length=1, max_length=1000, examples=["site visit"])]
    probability: Probability
    holds_room: bool = False

    def draft(self) -> StageDraft:
        return StageDraft(self.name, self.probability, self.holds_room, self.id)


class StagesIn(RequestBody):
    stages: Annotated[list[StageIn], Field(min_length=1, max_length=30)]


class StageOut(ResponseBody):
    id: str
    name: str
    probability: Decimal
    holds_room: bool
    position: int

    @classmethod
    def of(cls, stage: Stage, position: int) -> StageOut:
        return cls(
            id=stage.id,
            name=stage.name,
            probability=stage.probability,
            holds_room=stage.holds_room,
            position=position,
        )


class StagesOut(ResponseBody):
    stages: list[StageOut]

    @classmethod
    def of(cls, setup: PipelineSetup) -> StagesOut:
        return cls(stages=[StageOut.of(stage, n) for n, stage in enumerate(setup.stages)])


class SettingsIn(RequestBody):
    currency: Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"])]


class SettingsOut(ResponseBody):
    currency: str

    @classmethod
    def of(cls, setup: PipelineSetup) -> SettingsOut:
        return cls(currency=setup.currency)
