"""Bandwidth-matched scoring: notes from 8 kHz channels are compared with a narrowband template (real model, real
recordings: DSPSpeech-20 clips are 16 kHz browser recordings, FSDD-derived passphrase clips were 8 kHz recordings)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from voiceprints import EngineSettings, NoteEmbedding, Voiceprint, decode_audio
from voiceprints.audio import TARGET_RATE, resample
from voiceprints.degrade import codec_roundtrip, phone_band
from voiceprints.quality import analyse, is_narrowband
from voiceprints.scoring import Calibration

from tests.voiceprints.conftest import wav_bytes

pytestmark = pytest.mark.model

WORDS = "passphrase-dev-words"


def _samples(read_audio, relative: str) -> np.ndarray:
    return decode_audio(read_audio(relative)).samples


def _phone(samples: np.ndarray) -> bytes:
    """A note through a phone line: 8 kHz band, AMR-NB, handed over as 16 kHz WAV (no source-rate hint)."""
    return wav_bytes(codec_roundtrip(phone_band(samples), "amr"))


def _phone_8k(samples: np.ndarray) -> bytes:
    """The same, handed over at the line's own 8 kHz rate (which alone marks it narrowband)."""
    return wav_bytes(resample(codec_roundtrip(phone_band(samples), "amr"), TARGET_RATE, 8_000), 8_000)


@pytest.fixture(scope="module")
def s01_notes(engine, read_audio):
    return [engine.check_enrolment_note(read_audio(f"{WORDS}/dsp20_s01/{i}.wav")) for i in range(3)]


@pytest.fixture(scope="module")
def s01_print(engine, s01_notes):
    return engine.enrol(s01_notes)


def test_bandwidth_is_read_from_the_spectrum_or_the_source_rate(read_audio):
    wideband = _samples(read_audio, f"{WORDS}/dsp20_s01/0.wav")
    assert not is_narrowband(analyse(wideband, TARGET_RATE), TARGET_RATE)
    assert is_narrowband(analyse(phone_band(wideband), TARGET_RATE), TARGET_RATE)
    assert is_narrowband(analyse(codec_roundtrip(wideband, "amr"), TARGET_RATE), TARGET_RATE)
    # The FSDD recordings were made at 8 kHz: narrowband even at 16 kHz; an AMR file says so by its rate alone.
    assert is_narrowband(analyse(_samples(read_audio, "passphrase-dev/george/00.wav"), TARGET_RATE), TARGET_RATE)
    assert is_narrowband(analyse(wideband, TARGET_RATE), TARGET_RATE, source_rate=8_000)
    amr = decode_audio(read_audio("voice-notes/george-phone.amr"))
    assert amr.source_rate == 8_000


def test_notes_carry_their_bandwidth(engine, read_audio):
    assert engine.check_note(read_audio("voice-notes/george-phone.amr"), "audio/amr").narrowband
    assert not engine.check_note(read_audio(f"{WORDS}/dsp20_s02/5.wav")).narrowband
    assert engine.check_note(_phone(_samples(read_audio, f"{WORDS}/dsp20_s02/5.wav"))).narrowband


def test_enrolment_builds_a_narrowband_template(engine, s01_notes, s01_print, read_audio):
    for note in s01_notes:
        assert not note.narrowband and note.narrowband_embedding is not None
        assert 0.7 < float(note.enrolment_embedding @ note.narrowband_embedding) < 0.999
    assert s01_print.narrowband_template is not None
    assert abs(float(np.linalg.norm(s01_print.narrowband_template)) - 1) < 1e-5
    # A note that is narrowband already has nothing above 4 kHz to remove: its embeddings are reused, not redone.
    fsdd = engine.check_enrolment_note(read_audio("passphrase-dev/george/00.wav"))
    assert fsdd.narrowband and np.array_equal(fsdd.narrowband_embedding, fsdd.enrolment_embedding)


def test_phone_notes_are_scored_on_the_narrowband_template(engine, s01_print, read_audio):
    own = engine.verify(s01_print, _phone(_samples(read_audio, f"{WORDS}/dsp20_s01/6.wav")))
    assert own.narrowband and own.threshold == engine.narrowband_threshold
    assert own.raw_score == pytest.approx(
        float(s01_print.narrowband_template @ engine.check_note(
            _phone(_samples(read_audio, f"{WORDS}/dsp20_s01/6.wav"))).embedding), abs=1e-6)
    assert own.accepted
    for other in ("dsp20_s02", "dsp20_s03", "dsp20_s04"):
        decision = engine.verify(s01_print, _phone(_samples(read_audio, f"{WORDS}/{other}/6.wav")))
        assert decision.narrowband and not decision.accepted, other
    wide = engine.verify(s01_print, read_audio(f"{WORDS}/dsp20_s01/6.wav"))
    assert wide.accepted and not wide.narrowband and wide.threshold == engine.threshold


def test_phone_notes_are_closer_to_the_narrowband_template(engine, s01_print, read_audio):
    # The mechanism; the accuracy gain (and the matching impostor shift the calibration absorbs) is measured over
    # every trial by benchmarks/voice_accuracy.py.
    for clip in (6, 8):
        note = engine.check_note(_phone(_samples(read_audio, f"{WORDS}/dsp20_s01/{clip}.wav")))
        assert float(s01_print.narrowband_template @ note.embedding) > float(s01_print.template @ note.embedding)


def test_voiceprints_stored_before_narrowband_scoring_still_verify(engine, s01_print, read_audio):
    old = json.loads(s01_print.to_bytes())
    del old["narrowband_template"]
    legacy = Voiceprint.from_bytes(json.dumps(old).encode())
    assert legacy.narrowband_template is None and np.array_equal(legacy.template, s01_print.template)
    decision = engine.verify(legacy, _phone(_samples(read_audio, f"{WORDS}/dsp20_s01/6.wav")))
    assert not decision.narrowband and decision.threshold == engine.threshold
    again = Voiceprint.from_bytes(s01_print.to_bytes())
    assert np.array_equal(again.narrowband_template, s01_print.narrowband_template)
    assert (again.model_id, again.model_revision) == (s01_print.model_id, s01_print.model_revision)


def test_notes_round_trip_with_and_without_narrowband_fields(s01_notes):
    note = s01_notes[0]
    back = NoteEmbedding.from_bytes(note.to_bytes())
    assert np.array_equal(back.narrowband_embedding, note.narrowband_embedding) and back.narrowband == note.narrowband
    old = json.loads(note.to_bytes())
    del old["narrowband_embedding"], old["narrowband"]
    legacy = NoteEmbedding.from_bytes(json.dumps(old).encode())
    assert legacy.narrowband_embedding is None and not legacy.narrowband


def test_enrolment_from_legacy_notes_has_no_narrowband_template(engine, s01_notes):
    voiceprint = engine.enrol([dataclasses.replace(n, narrowband_embedding=None) for n in s01_notes])
    assert voiceprint.narrowband_template is None


def test_a_voiceprint_enrolled_from_narrowband_notes_keeps_one_template(engine, read_audio):
    # Phone-line enrolment: the template is narrowband already, and scores stay on the full-band calibration.
    notes = [engine.check_enrolment_note(_phone_8k(_samples(read_audio, f"{WORDS}/dsp20_s01/{i}.wav")))
             for i in range(3)]
    assert all(n.narrowband for n in notes)
    voiceprint = engine.enrol(notes)
    assert voiceprint.narrowband_template is None
    decision = engine.verify(voiceprint, _phone(_samples(read_audio, f"{WORDS}/dsp20_s01/6.wav")))
    assert decision.accepted and not decision.narrowband and decision.threshold == engine.threshold


def test_narrowband_matching_can_be_switched_off(ecapa, read_audio):
    from voiceprints import Engine

    off = Engine(ecapa, EngineSettings(narrowband=False))
    note = off.check_enrolment_note(read_audio(f"{WORDS}/dsp20_s01/0.wav"))
    assert note.narrowband_embedding is None and not note.narrowband
    assert not off.check_note(read_audio("voice-notes/george-phone.amr"), "audio/amr").narrowband


def test_calibrations_per_bandwidth(ecapa):
    from voiceprints import Engine

    default = Engine(ecapa, EngineSettings())
    assert default.narrowband_calibration != default.calibration
    assert default.narrowband_threshold > default.threshold  # band-limited embeddings agree more, impostors too
    own = Calibration(20.0, -8.0, {0.01: 0.5}, normalised=False)
    custom = Engine(ecapa, EngineSettings(calibration=own))
    assert custom.narrowband_calibration is own and custom.narrowband_threshold == 0.5
    fixed = Engine(ecapa, EngineSettings(threshold=0.42))
    assert fixed.threshold == fixed.narrowband_threshold == 0.42
