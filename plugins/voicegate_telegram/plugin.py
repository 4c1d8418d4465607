"""Registers the ``telegram`` channel (entry point ``telegram`` in the ``voicegate`` group)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_telegram.channel import TelegramChannel
from voicegate_telegram.settings import TelegramSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(
        name="telegram",
        factory=TelegramChannel.create,
        settings_model=TelegramSettings,
        description="Telegram bot (webhook /channels/telegram/webhook, replies via the Bot API)",
    ))
