"""The built-in voice authenticator: customers verify by voice note inside the chat before a sensitive step.

Channel-agnostic: it works on any inbound audio attachment (web chat, REST, and WhatsApp/Telegram voice notes when
those channels land). See docs/voice-verification-operators.md and docs/voice-verification-customers.md.
"""
