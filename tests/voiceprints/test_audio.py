"""Decoding real voice notes in every format customers send, and the quality gate's verdicts (no model needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.voiceprints.conftest import wav_bytes
from voiceprints import AudioRejected, decode_audio
from voiceprints.quality import analyse, gate

GATE = dict(min_speech_s=1.0, max_duration_s=30.0, silence_dbfs=-50.0, max_clipped_fraction=0.01, min_snr_db=10.0)

NOTES = {
    "george-whatsapp.ogg": ("audio/ogg", 48_000, 1),
    "george-browser.webm": ("audio/webm;codecs=opus", 48_000, 1),
    "george-phone.amr": ("audio/amr", 8_000, 1),
    "george-iphone.m4a": ("audio/mp4", 44_100, 2),
    "george-voicemail.mp3": ("audio/mpeg", 22_050, 1),
    "george-48k-stereo.wav": ("audio/wav", 48_000, 2),
    "george-8k.wav": ("audio/wav", 8_000, 1),
}


@pytest.mark.parametrize("name", sorted(NOTES))
def test_every_customer_format_decodes_to_16k_mono(name, read_audio, george_wave):
    mime, rate, channels = NOTES[name]
    wave = decode_audio(read_audio(f"voice-notes/{name}"), mime=mime)
    assert (wave.sample_rate, wave.source_rate, wave.source_channels) == (16_000, rate, channels)
    assert wave.samples.dtype == np.float32 and wave.samples.ndim == 1
    # Same passphrase clip as passphrase-dev/george/00.wav: the length survives every codec (encoder padding aside).
    assert abs(wave.duration_s - len(george_wave) / 16_000) < 0.15
    assert float(np.sqrt(np.mean(wave.samples ** 2))) > 0.01
    gate(analyse(wave.samples, 16_000), **GATE)  # every real note passes the gate


def test_mime_is_only_a_hint(read_audio):
    # Apps mislabel files: a WebM labelled as OGG and an OGG labelled as WebM still decode.
    assert decode_audio(read_audio("voice-notes/george-browser.webm"), mime="audio/ogg").codec == "opus"
    assert decode_audio(read_audio("voice-notes/george-whatsapp.ogg"), mime="audio/webm").duration_s > 2


def test_silence_is_rejected_as_silent(read_audio):
    wave = decode_audio(read_audio("voice-notes/silence-3s.ogg"), mime="audio/ogg")
    with pytest.raises(AudioRejected) as info:
        gate(analyse(wave.samples, 16_000), **GATE)
    assert info.value.code == "silent"
    assert "microphone" in str(info.value)


@pytest.mark.parametrize("data", [b"", b"hello, this is not audio" * 40, bytes(range(256)) * 50, b"RIFF" + b"\0" * 500])
def test_garbage_is_not_audio(data):
    with pytest.raises(AudioRejected) as info:
        decode_audio(data, mime="audio/ogg")
    assert info.value.code == "not_audio"
    assert "record a voice note" in str(info.value)


def test_oversize_is_rejected_before_decoding(read_audio):
    data = read_audio("voice-notes/george-48k-stereo.wav")
    with pytest.raises(AudioRejected) as info:
        decode_audio(data, max_bytes=len(data) - 1)
    assert info.value.code == "too_large" and "MB" in str(info.value)


def test_truncated_upload_keeps_what_decodes(read_audio):
    data = read_audio("voice-notes/george-browser.webm")
    wave = decode_audio(data[: len(data) * 2 // 3], mime="audio/webm")
    assert 0.5 < wave.duration_s < 2.6


def test_long_audio_stops_decoding_early(george_wave):
    long = wav_bytes(np.tile(george_wave, 20))  # ~54 s
    with pytest.raises(AudioRejected) as info:
        decode_audio(long, max_duration_s=30)
    assert info.value.code == "too_long" and "30 seconds" in str(info.value)


def test_paths_and_urls_are_refused():
    with pytest.raises(TypeError):
        decode_audio("https://example.com/a.wav")  # type: ignore[arg-type]


def test_pyav_decodes_opus_it_encoded(george_wave):
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48_000)
        stream.layout = "mono"
        pcm = (np.interp(np.arange(0, len(george_wave), 1 / 3), np.arange(len(george_wave)), george_wave) * 32767)
        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate = 48_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    wave = decode_audio(buffer.getvalue(), mime="audio/webm")
    assert wave.codec == "opus" and abs(wave.duration_s - len(george_wave) / 16_000) < 0.1


# -- the quality gate -----------------------------------------------------------------------------------------

def _gate(samples: np.ndarray) -> str | None:
    try:
        gate(analyse(samples.astype(np.float32), 16_000), **GATE)
    except AudioRejected as exc:
        return exc.code
    return None


def test_gate_accepts_clean_speech_and_trims_pauses(george_wave):
    padded = np.concatenate([np.zeros(16_000, np.float32), george_wave, np.zeros(16_000, np.float32)])
    analysis = analyse(padded, 16_000)
    assert _gate(padded) is None
    assert analysis.speech_s < len(george_wave) / 16_000  # the two seconds of padding (and pauses) are cut


def test_gate_reasons(george_wave):
    rng = np.random.default_rng(7)
    power = float(np.mean(george_wave ** 2))
    noise = rng.standard_normal(len(george_wave)).astype(np.float32)
    assert _gate(george_wave[:8_000]) == "too_short"
    assert _gate(np.clip(george_wave * 20, -1, 1)) == "clipped"
    assert _gate(george_wave + noise * np.sqrt(power)) == "too_noisy"  # 0 dB SNR
    assert _gate(george_wave + noise * np.sqrt(power / 100)) is None  # 20 dB SNR is fine
    assert _gate(np.zeros(48_000)) == "silent"
    assert _gate(np.tile(george_wave, 12)) == "too_long"


def test_rejections_carry_customer_actionable_messages():
    for code in ("too_short", "silent", "clipped", "too_noisy", "too_long", "not_audio", "too_large"):
        err = AudioRejected(code, "Please record again.")
        assert err.code == code and str(err) == "Please record again."
    with pytest.raises(ValueError):
        AudioRejected("loud", "x")
