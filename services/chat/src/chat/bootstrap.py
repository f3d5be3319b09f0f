"""Wires the chat service: what it serves, stores, publishes and reacts to."""

from chat.conversations import repository as conversations_repository
from chat.live import api as live_api
from chat.live.broadcast import broadcast, signals_out
from chat.messages import api as messages_api
from chat.messages import repository as messages_repository
from chat.settings import ChatSettings
from chat.subscriptions import subscriptions
from gala.app import ServiceDefinition
from gala.contracts.chat import MessageSent

service = ServiceDefinition(
    name="chat",
    port=8004,
    description="Each project's live conversation between the venue's team and the client.",
    routers=[messages_api.router, live_api.router],
    publishes=[MessageSent],
    subscriptions=subscriptions,
    indexes=[*conversations_repository.INDEXES, *messages_repository.INDEXES],
    outbox_collections=[messages_repository.COLLECTION],
    background=[signals_out],
    api_background=[broadcast],
    settings_type=ChatSettings,
)
