"""The demo bot: intents from ``config/flows.yaml`` in Italian and English, matched by keywords."""
