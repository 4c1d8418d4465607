"""Decoding what customers actually send into 16 kHz mono float32.

soundfile (libsndfile) first: WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3. Then PyAV (FFmpeg's libraries, in process) for
WebM/Opus, AMR-NB, M4A/AAC and anything else. Input always stays in memory: never a path or URL, so nothing here can
be talked into reading files or fetching from the network. Resampling is torchaudio's band-limited sinc.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional as taf

from voiceprints.errors import AudioProblem, AudioRejected

TARGET_RATE = 16_000
# Decoding stops once this much audio has come out, whatever the engine's own limit: a 10 MB Opus file at 6 kbit/s
# holds hours of audio and would otherwise expand to gigabytes of float32.
HARD_MAX_DURATION_S = 600.0


@dataclass(frozen=True)
class Waveform:
    """Decoded audio: 16 kHz mono float32 in [-1, 1], plus what it came from."""

    samples: np.ndarray
    sample_rate: int = TARGET_RATE
    source_rate: int = TARGET_RATE
    source_channels: int = 1
    codec: str = "pcm"

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def sha256(self) -> str:
        """Hash of the decoded PCM (float32 little-endian); identical notes re-sent hash the same."""
        return hashlib.sha256(np.ascontiguousarray(self.samples, dtype="<f4").tobytes()).hexdigest()


def _not_audio() -> AudioRejected:
    return AudioRejected(
        AudioProblem.NOT_AUDIO,
        "This file is not a voice recording we can play. Please record a voice note in the chat app and send it again.",
    )


def _too_long(max_duration_s: float) -> AudioRejected:
    return AudioRejected(
        AudioProblem.TOO_LONG,
        f"The voice note is too long. Please send a note shorter than {max_duration_s:.0f} seconds.",
    )


def _decode_soundfile(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int, int, str] | None:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            rate, channels = handle.samplerate, handle.channels
            if handle.frames > 0 and handle.frames / rate > max_duration_s:
                raise _too_long(max_duration_s)
            frames = handle.read(dtype="float32", always_2d=True)
            codec = f"{handle.format}/{handle.subtype}".lower()
    except AudioRejected:
        raise
    except Exception:  # libsndfile raises RuntimeError/LibsndfileError/TypeError for unknown containers
        return None
    if frames.size == 0:
        return None
    return frames.mean(axis=1), rate, channels, codec


def _frame_to_mono(frame: "object") -> np.ndarray:
    array = frame.to_ndarray()  # type: ignore[attr-defined]
    fmt = frame.format  # type: ignore[attr-defined]
    if not fmt.is_planar:  # packed: (1, samples * channels)
        array = array.reshape(-1, len(frame.layout.channels)).T  # type: ignore[attr-defined]
    if array.dtype.kind == "i":
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max + 1)
    elif array.dtype.kind == "u":  # 8-bit PCM is unsigned
        array = (array.astype(np.float32) - 128.0) / 128.0
    return array.astype(np.float32).mean(axis=0)


def _decode_pyav(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int, int, str] | None:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception:
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        channels = int(stream.codec_context.channels or 1)
        codec = str(stream.codec_context.name)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                mono = _frame_to_mono(frame)
                rate = int(frame.sample_rate or rate)
                chunks.append(mono)
                total += len(mono)
                if rate and total / rate > max_duration_s:
                    raise _too_long(max_duration_s)
        except AudioRejected:
            raise
        except Exception:
            # A truncated upload still yields the frames decoded so far; an undecodable one yields none.
            if not chunks:
                return None
    if not chunks or rate <= 0:
        return None
    return np.concatenate(chunks), rate, channels, codec


def resample(samples: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Band-limited resampling with torchaudio (no-op when the rates match)."""
    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return taf.resample(tensor, rate, target).numpy()


def decode_audio(
    data: bytes, *, mime: str | None = None, max_bytes: int = 10_000_000, max_duration_s: float = HARD_MAX_DURATION_S
) -> Waveform:
    """Decode a voice note from bytes to a 16 kHz mono float32 :class:`Waveform`.

    ``mime`` is only a hint (apps mislabel files): the container is sniffed from the bytes. Raises
    :class:`AudioRejected` with code ``too_large`` (over ``max_bytes``), ``not_audio`` (nothing decodable) or
    ``too_long`` (over ``max_duration_s``; decoding stops early so hostile files cannot exhaust memory).

    >>> wave = decode_audio(open("note.ogg", "rb").read(), mime="audio/ogg")  # doctest: +SKIP
    >>> wave.sample_rate, wave.samples.dtype  # doctest: +SKIP
    (16000, dtype('float32'))
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode_audio takes the note's bytes, never a path or URL")
    if len(data) > max_bytes:
        raise AudioRejected(
            AudioProblem.TOO_LARGE,
            f"The file is too large ({len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB). "
            "Please send a short voice note instead.",
        )
    if len(data) < 32:
        raise _not_audio()
    data = bytes(data)
    limit = min(max_duration_s, HARD_MAX_DURATION_S)
    # WebM/MP4/AMR are never libsndfile's; skip straight to PyAV for them (saves a failed parse).
    prefer_av = bool(mime) and any(k in mime.lower() for k in ("webm", "mp4", "m4a", "aac", "amr", "3gp", "matroska"))
    decoders = (_decode_pyav, _decode_soundfile) if prefer_av else (_decode_soundfile, _decode_pyav)
    decoded = None
    for decoder in decoders:
        decoded = decoder(data, limit)
        if decoded is not None:
            break
    if decoded is None:
        raise _not_audio()
    samples, rate, channels, codec = decoded
    if not np.all(np.isfinite(samples)):
        raise _not_audio()
    samples = resample(samples, rate)
    return Waveform(
        samples=np.clip(samples, -1.0, 1.0).astype(np.float32),
        source_rate=rate,
        source_channels=channels,
        codec=codec,
    )
