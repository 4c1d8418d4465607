"""Settings every Meta channel has (``channels.whatsapp``, ``channels.messenger``): the webhook's secrets and the
Graph API's address, limits and timeouts. Each channel adds its own token and ids."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class MetaAppSettings(PluginSettings):
    """What operators copy from Meta's developer console for the webhook, and the Graph API defaults.

    Take the secrets from the environment (``${WHATSAPP_APP_SECRET}``) so they never sit in the file.
    """

    # The "Verify token" you type in the console's webhook form; Meta echoes it on GET /webhook.
    verify_token: str = Field(min_length=8)
    # App secret (App settings > Basic): key of the X-Hub-Signature-256 HMAC on every POST.
    app_secret: str = Field(min_length=8)
    # Graph API host and version; tests point the host at a local server.
    graph_base_url: str = Field(default="https://graph.facebook.com", pattern=r"^https?://[^/?#]+$")
    graph_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    # Largest media file (voice note, image) downloaded from Meta (bytes).
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Timeout of each Graph API call and download (seconds).
    request_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Sent when a voice note or file could not be downloaded, so the customer resends it.
    media_failed_text: str = Field(default="Sorry, I couldn't receive your file. Please send it again.", min_length=1)
