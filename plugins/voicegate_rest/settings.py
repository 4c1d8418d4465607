"""Settings of the REST channel (``channels.rest`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class RestSettings(PluginSettings):
    """What operators configure for the REST channel.

    ``secret`` signs every request (HMAC-SHA256); take it from the environment with
    ``${VOICEGATE_REST_SECRET}`` so it never sits in the file.
    """

    secret: str = Field(min_length=8, description="shared secret for the X-VoiceGate-Signature HMAC")
    # Largest request body accepted (bytes); base64 attachments count here, so keep it above
    # max_attachment_bytes * 4/3. Larger bodies get 413 before anything is parsed.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Largest decoded attachment (bytes).
    max_attachment_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_attachments: int = Field(default=4, ge=0, le=32)
    max_text_chars: int = Field(default=4096, ge=1)
    # False makes the channel behave like one without buttons (SMS): choices come as a
    # numbered list in the text and the integrator answers with the digit.
    buttons: bool = True
    # Messages sent outside a request (agent replies) wait in a per-sender outbox that the
    # integrator polls with GET /channels/rest/outbox/<sender>. Kept in the gateway's database
    # (shared by every instance, kept across restarts) and bounded: the oldest are dropped
    # beyond max_per_sender, and an outbox neither filled nor read for ttl_s is forgotten.
    outbox_max_per_sender: int = Field(default=100, ge=1)
    outbox_ttl_s: float = Field(default=24 * 3600.0, gt=0)
