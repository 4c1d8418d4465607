"""Settings of the WhatsApp channel (``channels.whatsapp`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from voicegate_meta.settings import MetaAppSettings


class WhatsAppSettings(MetaAppSettings):
    """The webhook and Graph API settings every Meta channel has, plus the business number (WhatsApp > API set-up)."""

    # A system-user access token with whatsapp_business_messaging permission (sent as Bearer).
    access_token: str = Field(min_length=8)
    # The id of the business phone number that sends and receives (not the number itself).
    phone_number_id: str = Field(pattern=r"^\d{5,32}$")
    # Label of the button that opens a list of more than three choices (WhatsApp: at most 20 characters).
    list_button_text: str = Field(default="Choose", min_length=1, max_length=20)
    # Body text of a choice message whose reply has no text (WhatsApp requires one).
    choice_prompt: str = Field(default="Please choose:", min_length=1, max_length=1024)
