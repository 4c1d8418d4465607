from gateway.components import BotReply, BotTurn, ComponentSpec, GatewayContext, PluginSettings
from gateway.hookspecs import hookimpl
from gateway.messages import OutboundMessage


class ShoutSettings(PluginSettings):
    suffix: str = "!"


class ShoutBot:
    name = "shout"

    def __init__(self, settings: ShoutSettings, context: GatewayContext) -> None:
        self.suffix = settings.suffix

    async def handle(self, turn: BotTurn) -> BotReply | None:
        if not turn.message.text:
            return None  # not mine: the next bot in the YAML answers
        return BotReply(messages=(OutboundMessage(text=turn.message.text.upper() + self.suffix),))


@hookimpl
def register_bots(register) -> None:
    register(ComponentSpec("shout", ShoutBot, ShoutSettings, description="answers in capitals"))
