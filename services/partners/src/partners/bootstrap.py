"""Wires the partners service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition
from gala.contracts.partners import ENDPOINT_EVENTS, PARTNER_APP_EVENTS
from partners.apps import api as apps_api
from partners.apps import repository as apps_repository
from partners.contract import api as contract_api
from partners.deliveries import api as deliveries_api
from partners.deliveries import repository as deliveries_repository
from partners.deliveries.engine import deliver_webhooks
from partners.events import api as events_api
from partners.events import repository as events_repository
from partners.events.retention import expire_old_events
from partners.settings import PartnersSettings
from partners.subscriptions import subscriptions
from partners.webhooks import api as webhooks_api
from partners.webhooks import repository as webhooks_repository

service = ServiceDefinition(
    name="partners",
    port=8006,
    description="Partner apps and keys, signed webhooks with a delivery log, the event log.",
    routers=[
        contract_api.router,
        apps_api.router,
        apps_api.internal_router,
        events_api.router,
        webhooks_api.router,
        deliveries_api.router,
    ],
    publishes=[
        *PARTNER_APP_EVENTS,
        *ENDPOINT_EVENTS,
    ],
    subscriptions=subscriptions,
    indexes=[
        *apps_repository.INDEXES,
        *events_repository.INDEXES,
        *webhooks_repository.INDEXES,
        *deliveries_repository.INDEXES,
    ],
    outbox_collections=[
        apps_repository.COLLECTION,
        webhooks_repository.COLLECTION,
    ],
    background=[
        expire_old_events,
        deliver_webhooks,
    ],
    settings_type=PartnersSettings,
)
