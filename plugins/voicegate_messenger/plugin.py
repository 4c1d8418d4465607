"""Registers the ``messenger`` channel (entry point ``messenger`` in the ``voicegate`` group)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_messenger.channel import MessengerChannel
from voicegate_messenger.settings import MessengerSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(
        name="messenger",
        factory=MessengerChannel.create,
        settings_model=MessengerSettings,
        description="Facebook Messenger, one Page (webhook /channels/messenger/webhook, replies via the Send API)",
    ))
