"""The chat service's own settings (prefix ``GALA_``), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field

from gala.settings import Settings, settings_as


class ChatSettings(Settings):
    socket_queue_size: int = Field(
        default=256, ge=1, description="Frames a socket may have waiting; more: it is closed."
    )
    send_rate_per_minute: int = Field(
        default=60, ge=1, description="Messages a user may send per minute (per replica)."
    )


def chat_settings(settings: Settings) -> ChatSettings:
    return settings_as(settings, ChatSettings)
