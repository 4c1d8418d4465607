"""Settings of the Twilio SMS channel (``channels.sms`` in the gateway YAML)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from gateway.components import PluginSettings


class TwilioSmsSettings(PluginSettings):
    """The Twilio account, the sending number and how the webhook URL looks from outside.

    Take the auth token from the environment (``${TWILIO_AUTH_TOKEN}``): it signs the webhooks
    and authenticates every API call.
    """

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=16)
    # Sender of out-of-band messages: a Twilio number (E.164) or a Messaging Service (MG...).
    from_number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    # The gateway's public address as Twilio calls it (scheme, host, any path prefix of a proxy),
    # e.g. https://chat.example.com. Twilio signs the URL it called; behind a proxy or TLS
    # terminator the gateway sees another one, so set this. Unset: the URL of the request.
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^/?#]+(/[^?#]*[^/?#])?$")
    # Twilio REST API host; tests point it at a local server. Media is fetched only from here.
    api_base_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://[^/?#]+$")
    # Longest SMS the gateway sends (characters); Twilio's limit is 1600. Longer text is split at
    # line or word boundaries. 153 GSM characters (67 with emoji) make one billed segment.
    max_message_chars: int = Field(default=480, ge=70, le=1600)
    # At most this many SMS per answer: consecutive short messages are joined, and when more would
    # remain, the middle is cut and the last one (with any numbered choices) is kept.
    max_messages_per_reply: int = Field(default=3, ge=1, le=10)
    # Replace typographic quotes, dashes and ellipses with plain ones, so a message stays in the
    # GSM alphabet (160 characters per segment instead of 70).
    plain_punctuation: bool = True
    # Largest MMS file (voice note) fetched (bytes); Twilio MMS carries at most 5 MB.
    max_media_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    request_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Twilio waits 15 s for the webhook's answer. Replies not ready within this many seconds (a voice
    # check on a busy machine) are answered with an empty TwiML and sent through the Messages API.
    reply_within_s: float = Field(default=10.0, gt=0, le=14)
    # Sent when an MMS file could not be fetched from Twilio, so the customer resends it.
    media_failed_text: str = Field(default="Sorry, I couldn't receive your file. Please send it again.", min_length=1)

    @model_validator(mode="after")
    def _one_sender(self) -> Self:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number (a Twilio number, +E.164) or messaging_service_sid (MG...)")
        return self
