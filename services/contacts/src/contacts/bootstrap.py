"""Wires the contacts service: what it serves, stores, publishes and reacts to."""

from contacts.users import api as users_api
from contacts.users import repository as users_repository
from gala.app import ServiceDefinition
from gala.contracts.contacts import USER_EVENTS

service = ServiceDefinition(
    name="contacts",
    port=8001,
    description="Leads, their heat, and the people directory: staff and clients with roles.",
    routers=[users_api.router, users_api.internal_router],
    publishes=[*USER_EVENTS],
    indexes=[*users_repository.INDEXES],
    outbox_collections=[users_repository.COLLECTION],
)
