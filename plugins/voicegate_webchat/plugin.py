"""Registers the ``webchat`` channel (entry point ``webchat``)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_webchat.channel import WebChatChannel
from voicegate_webchat.settings import WebChatSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(name="webchat", factory=WebChatChannel.create, settings_model=WebChatSettings,
                           description="browser chat page with voice notes (GET /channels/webchat/)"))
