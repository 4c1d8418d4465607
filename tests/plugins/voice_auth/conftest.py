"""Fixtures for the voice authenticator's tests: the real app, real config files, the real model."""

from support.voice import voice_settings  # noqa: F401 - a fixture, shared with tests/e2e
