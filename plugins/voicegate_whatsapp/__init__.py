"""The WhatsApp channel: Meta's WhatsApp Business Cloud API (webhook in, Graph API out).

See ``docs/channels.md`` for the set-up in Meta's developer console.
"""
