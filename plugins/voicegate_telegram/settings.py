"""Settings of the Telegram channel (``channels.telegram`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class TelegramSettings(PluginSettings):
    """The bot's token from @BotFather and the webhook secret you chose for ``setWebhook``.

    Take both from the environment (``${TELEGRAM_BOT_TOKEN}``): the token is the bot's password.
    """

    bot_token: str = Field(pattern=r"^\d+:[A-Za-z0-9_-]{20,}$")
    # The secret_token given to setWebhook; Telegram sends it in X-Telegram-Bot-Api-Secret-Token.
    webhook_secret: str = Field(pattern=r"^[A-Za-z0-9_-]{16,256}$")
    # Bot API host; tests point it at a local server.
    api_base_url: str = Field(default="https://api.telegram.org", pattern=r"^https?://[^/?#]+$")
    # Largest file fetched (bytes); the Bot API serves at most 20 MB through getFile.
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024)
    request_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Group chats are not customer conversations: only private chats with the bot are served.
    private_chats_only: bool = True
    # What bots receive when a customer opens the bot: Telegram sends the command /start.
    start_text: str = Field(default="hello", min_length=1, max_length=200)
    # Text of a choice message whose reply has no text (Telegram requires one).
    choice_prompt: str = Field(default="Please choose:", min_length=1, max_length=4096)
    # Sent when a voice note or file could not be downloaded, so the customer resends it.
    media_failed_text: str = Field(default="Sorry, I couldn't receive your file. Please send it again.", min_length=1)
