"""The Telegram channel: a Telegram bot (Bot API webhook in, Bot API methods out).

See ``docs/channels.md`` for creating the bot with @BotFather and registering the webhook.
"""
