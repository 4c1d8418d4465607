"""Settings of the Messenger channel (``channels.messenger`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from voicegate_meta.settings import MetaAppSettings


class MessengerSettings(MetaAppSettings):
    """The webhook and Graph API settings every Meta channel has, plus the Page (Messenger > Settings)."""

    # The Page access token (pages_messaging permission), sent as a Bearer header, never in a URL.
    page_access_token: str = Field(min_length=8)
    # The id of the Facebook Page customers write to; deliveries for other Pages are skipped.
    page_id: str = Field(pattern=r"^\d{5,32}$")
    # Messages sent outside a reply (a live agent's, an acknowledgement) go with the HUMAN_AGENT tag, which lets an
    # agent answer up to 7 days after the customer's last message instead of 24 hours. The tag needs the app's
    # "Human Agent" permission; set false without it (such messages then go as UPDATE, inside the 24-hour window).
    human_agent_tag: bool = True
    # Text of a choice message whose reply has no text (Messenger shows quick replies under a text).
    choice_prompt: str = Field(default="Please choose:", min_length=1, max_length=2000)
