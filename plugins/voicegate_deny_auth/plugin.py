"""Registers the ``deny`` authenticator (entry point ``deny_auth``)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import (
    AuthSession,
    AuthStatus,
    AuthStep,
    Authenticator,
    ComponentSpec,
    GatewayContext,
    PluginSettings,
    Register,
)
from gateway.hookspecs import hookimpl
from gateway.messages import Button, InboundMessage, OutboundMessage


class DenySettings(PluginSettings):
    # What the customer reads, per language ("it", "en"); the default language is "en".
    text: dict[str, str] = Field(default_factory=lambda: {
        "en": "I can't verify your identity in this chat yet, so I can't do that here. An agent can help you.",
        "it": "Non posso ancora verificare la tua identità in questa chat, quindi non posso farlo qui. "
              "Un operatore può aiutarti.",
    })
    button_title: dict[str, str] = Field(default_factory=lambda: {"en": "Talk to an agent", "it": "Parla con un operatore"})
    # The payload of the agent button: the bot's "talk to an agent" intent must answer it.
    button_payload: str = Field(default="agent", min_length=1)
    # True: hand the conversation to an agent at once instead of offering the button.
    handoff: bool = False


class DenyAuthenticator:
    """Refuses every verification; offers (or starts) a handoff to a live agent."""

    def __init__(self, settings: DenySettings, *, name: str = "deny") -> None:
        self.name = name
        self.settings = settings

    @classmethod
    def create(cls, settings: DenySettings, context: GatewayContext) -> "DenyAuthenticator":
        return cls(settings)

    async def start(self, session: AuthSession) -> AuthStep:
        lang = session.language if session.language in self.settings.text else "en"
        text = self.settings.text.get(lang) or next(iter(self.settings.text.values()))
        if self.settings.handoff:
            return AuthStep(AuthStatus.FAILED, (OutboundMessage(text=text),), handoff=True,
                            reason="no authenticator configured")
        title = self.settings.button_title.get(lang) or next(iter(self.settings.button_title.values()), "Agent")
        message = OutboundMessage(text=text, buttons=(Button(title=title, payload=self.settings.button_payload),))
        # DECLINED returns the conversation to the bot, whose agent intent answers the button.
        return AuthStep(AuthStatus.DECLINED, (message,), reason="no authenticator configured")

    async def handle(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        # start() never leaves a verification pending, but answer consistently if asked.
        return await self.start(session)

    async def forget(self, customer_id: str) -> bool:
        return False  # nothing is ever stored


@hookimpl
def register_authenticators(register: Register[Authenticator]) -> None:
    register(ComponentSpec(name="deny", factory=DenyAuthenticator.create, settings_model=DenySettings,
                           description="refuses verification politely and offers a live agent"))
