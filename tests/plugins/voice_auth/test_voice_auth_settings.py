"""The voice authenticator's settings: defaults, and mistakes caught when the YAML is loaded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voicegate_voice_auth.settings import VoiceAuthSettings


def test_defaults_are_the_documented_ones(monkeypatch) -> None:
    monkeypatch.setenv("VOICEGATE_MODEL_DIR", "/models/ecapa")
    s = VoiceAuthSettings()
    assert (s.mode, s.challenge_digits, s.enrol_notes, s.max_attempts) == ("challenge", 4, 3, 3)
    assert s.keep_audio is False and s.model_dir == "/models/ecapa"
    assert s.keys_env == "VOICEGATE_VOICEPRINT_KEYS" and s.key_file is None
    assert "Accept" in s.consent_accept_title and "Accetto" in s.consent_accept_title
    assert "Decline" in s.consent_decline_title and "Rifiuto" in s.consent_decline_title
    consent = s.consent["en"].format(notes=3, retention_days=365)
    for promise in ("voiceprint", "365 days", "delete", "confirm it's you"):
        assert promise in consent


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "passphrase"}, "needs a 'passphrase'"),
        ({"consent": {"en": "We keep it {forever}"}}, "may use only {notes} and {retention_days}"),
        ({"consent": {"it": "Solo italiano"}}, "needs an 'en' text"),
        ({"max_attempts": 0}, "greater than or equal to 1"),
        ({"challenge_digits": 2}, "greater than or equal to 3"),
        ({"workers": 4, "queue_limit": 2}, "queue_limit must be at least"),
        ({"max_attemps": 3}, "Extra inputs are not permitted"),
        ({"mode": "face"}, "'challenge' or 'passphrase'"),
    ],
)
def test_mistakes_are_errors_that_say_what_is_wrong(values: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        VoiceAuthSettings(**values)
    assert message in str(err.value)


def test_requests_to_delete_the_voiceprint_are_recognised_in_both_languages() -> None:
    from voicegate_voice_auth.texts import asks_to_forget

    for said in ("delete my voiceprint", "Please delete my voice.", "cancella la mia impronta vocale",
                 "elimina impronta vocale", "forget my voice"):
        assert asks_to_forget(said), said
    for said in ("what is my balance", "delete", "la mia voce è bassa", "4 7 2 9"):
        assert not asks_to_forget(said), said


def test_every_setting_is_documented_for_operators() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "voice-verification-operators.md").read_text()
    missing = [name for name in VoiceAuthSettings.model_fields if f"`{name}`" not in doc]
    assert missing == [], f"document these settings in docs/voice-verification-operators.md: {missing}"
