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
    signal_rate_per_minute: int = Field(
        default=120,
        ge=1,
        description="Typing and read frames a user may send per minute (per replica); more "
        "are answered with an error frame and dropped.",
    )
    socket_max_frame_bytes: int = Field(
        default=16 * 1024,
        ge=256,
        description="The largest frame a socket may send (bytes); a larger one closes it (1009).",
    )
    socket_recheck_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often each replica re-judges every open socket's membership (the "
        "safety net: a change reaches sockets at once through membership signals).",
    )


def chat_settings(settings: Settings) -> ChatSettings:
    return settings_as(settings, ChatSettings)
