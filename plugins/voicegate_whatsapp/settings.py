"""Settings of the WhatsApp channel (``channels.whatsapp`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class WhatsAppSettings(PluginSettings):
    """What operators copy from Meta's developer console (App settings, WhatsApp > API set-up).

    Take the secrets from the environment (``${WHATSAPP_APP_SECRET}``) so they never sit in the file.
    """

    # The "Verify token" you type in the console's webhook form; Meta echoes it on GET /webhook.
    verify_token: str = Field(min_length=8)
    # App secret (App settings > Basic): key of the X-Hub-Signature-256 HMAC on every POST.
    app_secret: str = Field(min_length=8)
    # A system-user access token with whatsapp_business_messaging permission (sent as Bearer).
    access_token: str = Field(min_length=8)
    # The id of the business phone number that sends and receives (not the number itself).
    phone_number_id: str = Field(pattern=r"^\d{5,32}$")
    # Graph API host and version; tests point the host at a local server.
    graph_base_url: str = Field(default="https://graph.facebook.com", pattern=r"^https?://[^/?#]+$")
    graph_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    # Largest media file (voice note, image) fetched from WhatsApp (bytes); WhatsApp allows 16 MB audio.
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Timeout of each Graph API call (seconds).
    request_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Label of the button that opens a list of more than three choices (WhatsApp: at most 20 characters).
    list_button_text: str = Field(default="Choose", min_length=1, max_length=20)
    # Body text of a choice message whose reply has no text (WhatsApp requires one).
    choice_prompt: str = Field(default="Please choose:", min_length=1, max_length=1024)
    # Sent when a voice note or file could not be downloaded from WhatsApp, so the customer resends it.
    media_failed_text: str = Field(default="Sorry, I couldn't receive your file. Please send it again.", min_length=1)
