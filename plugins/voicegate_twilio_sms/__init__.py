"""The SMS channel through Twilio: signed form webhooks in, TwiML and the Messages API out.

SMS has no buttons: the core turns choices into a numbered list and maps the customer's
digit back to the button. See ``docs/channels.md`` for the set-up in the Twilio console.
"""
