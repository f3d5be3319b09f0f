"""Wires the pipeline service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition
from gala.contracts.pipeline import OPPORTUNITY_EVENTS
from pipeline.board import api as board_api
from pipeline.board import repository as board_repository
from pipeline.contacts import repository as contacts_repository
from pipeline.opportunities import api as opportunities_api
from pipeline.opportunities import repository as opportunities_repository
from pipeline.rooms import api as rooms_api
from pipeline.rooms import repository as rooms_repository
from pipeline.settings import PipelineSettings
from pipeline.stages import api as stages_api
from pipeline.stages import repository as stages_repository
from pipeline.subscriptions import subscriptions

service = ServiceDefinition(
    name="pipeline",
    port=8002,
    description="Opportunities through per-venue stages, rooms without double bookings.",
    routers=[opportunities_api.router, stages_api.router, board_api.router, rooms_api.router],
    publishes=[*OPPORTUNITY_EVENTS],
    subscriptions=subscriptions,
    indexes=[
        *opportunities_repository.INDEXES,
        *stages_repository.INDEXES,
        *rooms_repository.INDEXES,
        *contacts_repository.INDEXES,
        *board_repository.INDEXES,
    ],
    outbox_collections=[opportunities_repository.COLLECTION],
    settings_type=PipelineSettings,
)
