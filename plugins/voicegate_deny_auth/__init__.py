"""An authenticator that verifies nobody: it refuses politely and offers a live agent.

The safe default before a real authenticator (voice) is configured: sensitive intents never
run unverified, and the customer is never left stuck.
"""
