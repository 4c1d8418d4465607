"""Registers the ``whatsapp`` channel (entry point ``whatsapp`` in the ``voicegate`` group)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_whatsapp.channel import WhatsAppChannel
from voicegate_whatsapp.settings import WhatsAppSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(
        name="whatsapp",
        factory=WhatsAppChannel.create,
        settings_model=WhatsAppSettings,
        description="WhatsApp Business Cloud API (webhook /channels/whatsapp/webhook, replies via the Graph API)",
    ))
