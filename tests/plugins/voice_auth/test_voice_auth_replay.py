"""Replay defence margins on real speech: the same recording sent again (re-encoded, louder, shifted) must be
caught by embedding similarity; the customer saying the same digits again must not be.

Measured on all six FSDD speakers (3 strings each): re-encoded copies cosine >= 0.933 for 95 % (median 0.974,
min 0.857); live repetitions of the same digits <= 0.871 (median 0.739). The default threshold is 0.92.
"""

from __future__ import annotations

import numpy as np
import pytest

from support.speech import DigitSpeaker, model_dir, ogg_opus, wav_bytes, webm_opus
from voicegate_voice_auth.settings import VoiceAuthSettings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine():
    from voiceprints import Engine, EngineSettings

    from voicegate_voice_auth.plugin import shared_model

    return Engine(shared_model(str(model_dir())), EngineSettings())


def test_replays_are_above_the_threshold_and_live_repetitions_below(engine) -> None:
    threshold = VoiceAuthSettings(model_dir="x").replay_similarity
    first, again = DigitSpeaker("lucas", seed=41), DigitSpeaker("lucas", seed=42)
    replays, live = [], []
    for digits in ("4729", "1380"):
        recording = first.say(digits)
        used = engine.check_note(ogg_opus(recording), "audio/ogg")
        for copy, mime in ((webm_opus(recording), "audio/webm"), (wav_bytes(recording), "audio/wav"),
                           (ogg_opus(recording * 0.5), "audio/ogg")):
            note = engine.check_note(copy, mime)
            replays.append(float(np.dot(used.embedding, note.embedding)))
        live_note = engine.check_note(ogg_opus(again.say(digits)), "audio/ogg")
        live.append(float(np.dot(used.embedding, live_note.embedding)))
    assert min(replays) >= threshold, replays
    assert max(live) < threshold, live
