"""What Meta's channels (WhatsApp Cloud API, Messenger) share: the webhook signature and subscription
handshake, and a Graph API client with Meta's error handling. A library for those plugins, not a plugin."""
