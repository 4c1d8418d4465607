"""Registers the ``sms`` channel (entry point ``sms`` in the ``voicegate`` group)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_twilio_sms.channel import TwilioSmsChannel
from voicegate_twilio_sms.settings import TwilioSmsSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(
        name="sms",
        factory=TwilioSmsChannel.create,
        settings_model=TwilioSmsSettings,
        description="SMS/MMS through Twilio (webhook /channels/sms/webhook answered with TwiML)",
    ))
