"""Enrolment and verification with the real model on real recordings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from voiceprints import (
    AudioRejected, EngineSettings, EnrolmentRejected, ModelMismatchError, NoteEmbedding, Voiceprint,
)

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def george_print(engine, read_audio):
    notes = [engine.check_note(read_audio(f"passphrase-dev/george/0{i}.wav"), "audio/wav") for i in range(3)]
    return engine.enrol(notes)


def test_check_note_reports_speech_and_pcm_hash(engine, read_audio):
    data = read_audio("voice-notes/george-whatsapp.ogg")
    note = engine.check_note(data, "audio/ogg")
    assert note.embedding.dtype == np.float32 and abs(float(np.linalg.norm(note.embedding)) - 1) < 1e-5
    assert 1.5 < note.speech_s < 2.7
    assert note.audio_sha256 == engine.check_note(data, "audio/ogg").audio_sha256
    assert note.audio_sha256 != engine.check_note(read_audio("voice-notes/george-browser.webm")).audio_sha256


def test_silent_note_is_rejected(engine, read_audio):
    with pytest.raises(AudioRejected) as info:
        engine.check_note(read_audio("voice-notes/silence-3s.ogg"), "audio/ogg")
    assert info.value.code == "silent"


@pytest.mark.parametrize("note", ["george-whatsapp.ogg", "george-phone.amr", "george-iphone.m4a", "george-browser.webm"])
def test_enrolled_speaker_is_accepted_through_codecs(engine, george_print, read_audio, note):
    decision = engine.verify(george_print, read_audio(f"voice-notes/{note}"))
    assert decision.accepted and decision.code == "match"
    assert decision.score > 0.9 and decision.raw_score > decision.threshold


def test_other_speakers_are_refused(engine, george_print, read_audio):
    for speaker in ("jackson", "lucas", "nicolas", "theo", "yweweler"):
        decision = engine.verify(george_print, read_audio(f"passphrase-dev/{speaker}/05.wav"))
        assert not decision.accepted and decision.code == "no_match", speaker
        assert decision.score < 0.5


def test_decision_repr_hides_scores(engine, george_print, read_audio):
    decision = engine.verify(george_print, read_audio("passphrase-dev/george/07.wav"))
    assert repr(decision) == "Decision(accepted=True, code='match')"
    assert str(round(decision.raw_score, 3)) not in repr(decision)


def test_enrolment_names_the_odd_note(engine, read_audio):
    notes = [engine.check_note(read_audio(f"passphrase-dev/{p}")) for p in
             ("theo/00.wav", "theo/01.wav", "jackson/02.wav", "theo/02.wav")]
    with pytest.raises(EnrolmentRejected) as info:
        engine.enrol(notes)
    assert info.value.note_index == 2 and "Voice note 3" in str(info.value)
    voiceprint = engine.enrol(notes[:2] + notes[3:])
    assert voiceprint.notes == 3


def test_enrolment_needs_enough_notes(engine, read_audio):
    note = engine.check_note(read_audio("passphrase-dev/theo/00.wav"))
    with pytest.raises(EnrolmentRejected, match="needs 3 voice notes; 1 received"):
        engine.enrol([note])


def test_other_model_embeddings_are_never_compared(engine, george_print, read_audio):
    note = engine.check_note(read_audio("passphrase-dev/george/05.wav"))
    foreign = dataclasses.replace(george_print, model_revision="0" * 40)
    with pytest.raises(ModelMismatchError, match="enrol again"):
        engine.verify_note(foreign, note)
    with pytest.raises(ModelMismatchError):
        engine.enrol([dataclasses.replace(note, model_id="other/model")] * 3)


def test_voiceprint_and_note_round_trip(george_print, engine, read_audio):
    again = Voiceprint.from_bytes(george_print.to_bytes())
    assert np.array_equal(again.template, george_print.template) and again.created_at == george_print.created_at
    note = engine.check_note(read_audio("passphrase-dev/george/05.wav"))
    back = NoteEmbedding.from_bytes(note.to_bytes())
    assert np.array_equal(back.embedding, note.embedding) and back.audio_sha256 == note.audio_sha256


def test_explicit_threshold_overrides_calibration(ecapa, george_print, read_audio):
    from voiceprints import Engine

    strict = Engine(ecapa, EngineSettings(threshold=0.999))
    decision = strict.verify(george_print, read_audio("passphrase-dev/george/05.wav"))
    assert not decision.accepted and decision.threshold == 0.999


def test_enrolment_notes_carry_a_multi_condition_embedding(engine, read_audio):
    notes = [engine.check_enrolment_note(read_audio(f"passphrase-dev/nicolas/0{i}.wav")) for i in range(3)]
    for note in notes:
        assert note.enrolment_embedding is not None
        similarity = float(note.embedding @ note.enrolment_embedding)
        assert 0.8 < similarity < 0.9999  # the augmented copies move it, but it is still this voice
        again = NoteEmbedding.from_bytes(note.to_bytes())
        assert np.array_equal(again.enrolment_embedding, note.enrolment_embedding)
    voiceprint = engine.enrol(notes)
    plain = engine.enrol([dataclasses.replace(n, enrolment_embedding=None) for n in notes])
    assert not np.allclose(voiceprint.template, plain.template)
    street = read_audio("voice-notes/george-phone.amr")
    assert engine.verify(voiceprint, read_audio("passphrase-dev/nicolas/07.wav")).accepted
    assert not engine.verify(voiceprint, street, "audio/amr").accepted
