"""Registers the ``rest`` channel (entry point ``rest`` in the ``voicegate`` group)."""

from __future__ import annotations

from gateway.components import Channel, ComponentSpec, Register
from gateway.hookspecs import hookimpl

from voicegate_rest.channel import RestChannel
from voicegate_rest.settings import RestSettings


@hookimpl
def register_channels(register: Register[Channel]) -> None:
    register(ComponentSpec(
        name="rest",
        factory=RestChannel.create,
        settings_model=RestSettings,
        description="signed JSON webhook (POST /channels/rest/messages) for integrators and load tests",
    ))
