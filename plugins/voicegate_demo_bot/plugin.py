"""Registers the ``demo`` bot (entry point ``demo_bot``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.components import Bot, ComponentSpec, GatewayContext, PluginSettings, Register
from gateway.hookspecs import hookimpl

from voicegate_demo_bot.bot import DemoBot
from voicegate_demo_bot.flows import load_flows


class DemoBotSettings(PluginSettings):
    # Path of the flows file, relative to the gateway YAML's folder.
    flows: str = Field(default="flows.yaml", min_length=1)
    # False: return nothing for an unrecognised message, so the next bot in 'bots:' can try.
    answer_unmatched: bool = True


def create(settings: DemoBotSettings, context: GatewayContext) -> DemoBot:
    path = Path(settings.flows)
    if not path.is_absolute():
        path = Path(context.config_dir) / path
    return DemoBot(load_flows(path), answer_unmatched=settings.answer_unmatched)  # a bad file stops start-up


@hookimpl
def register_bots(register: Register[Bot]) -> None:
    register(ComponentSpec(name="demo", factory=create, settings_model=DemoBotSettings,
                           description="intents from flows.yaml in Italian and English"))
