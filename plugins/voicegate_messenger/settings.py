"""Settings of the Messenger channel (``channels.messenger`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class MessengerSettings(PluginSettings):
    """What operators copy from Meta's developer console (App settings, Messenger > Settings).

    Take the secrets from the environment (``${MESSENGER_APP_SECRET}``) so they never sit in the file.
    """

    # The "Verify token" you type in the console's webhook form; Meta echoes it on GET /webhook.
    verify_token: str = Field(min_length=8)
    # App secret (App settings > Basic): key of the X-Hub-Signature-256 HMAC on every POST.
    app_secret: str = Field(min_length=8)
    # The Page access token (pages_messaging permission), sent as a Bearer header, never in a URL.
    page_access_token: str = Field(min_length=8)
    # The id of the Facebook Page customers write to; deliveries for other Pages are skipped.
    page_id: str = Field(pattern=r"^\d{5,32}$")
    # Graph API host and version; tests point the host at a local server.
    graph_base_url: str = Field(default="https://graph.facebook.com", pattern=r"^https?://[^/?#]+$")
    graph_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    # Largest attachment (voice clip, image) downloaded from Messenger (bytes); Messenger allows 25 MB.
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Timeout of each Graph API call (seconds).
    request_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Messages sent outside a reply (a live agent's, an acknowledgement) go with the HUMAN_AGENT tag, which lets an
    # agent answer up to 7 days after the customer's last message instead of 24 hours. The tag needs the app's
    # "Human Agent" permission; set false without it (such messages then go as UPDATE, inside the 24-hour window).
    human_agent_tag: bool = True
    # Sent when a voice clip or file could not be downloaded from Messenger, so the customer resends it.
    media_failed_text: str = Field(default="Sorry, I couldn't receive your file. Please send it again.", min_length=1)
    # Text of a choice message whose reply has no text (Messenger shows quick replies under a text).
    choice_prompt: str = Field(default="Please choose:", min_length=1, max_length=2000)
