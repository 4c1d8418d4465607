"""The REST channel: a signed JSON webhook for integrators and load tests.

The wire contract is documented in ``docs/rest-api.md``; other tools depend on it.
"""
