"""Real speech for tests: prompted digit strings spoken by one FSDD speaker, encoded as apps send them.

The Free Spoken Digit Dataset (``../shared/audio/fsdd/recordings/{digit}_{speaker}_{rep}.wav``, 8 kHz, CC BY-SA
4.0) has 25 repetitions of each digit by each of six speakers. :class:`DigitSpeaker` assembles "4 7 2 9" from
separate recordings of that speaker, never reusing a recording, so each note is a new live repetition, as a
customer saying the digits again would produce. Encoders produce OGG/Opus (WhatsApp, Telegram), WebM/Opus
(browsers' MediaRecorder) and WAV (Chromium's fake microphone) with PyAV and soundfile.
"""

from __future__ import annotations

import io
import os
import random
from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = 16_000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
REPETITIONS = 25


def shared_dir() -> Path:
    """``VOICEGATE_SHARED_DIR`` or ``<repo>/../shared``."""
    default = Path(__file__).resolve().parents[3] / "shared"
    return Path(os.environ.get("VOICEGATE_SHARED_DIR", str(default)))


def model_dir() -> Path:
    """``VOICEGATE_MODEL_DIR`` or ``<shared>/models/spkrec-ecapa-voxceleb``."""
    return Path(os.environ.get("VOICEGATE_MODEL_DIR", str(shared_dir() / "models" / "spkrec-ecapa-voxceleb")))


def fsdd_dir() -> Path:
    path = shared_dir() / "audio" / "fsdd" / "recordings"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing: set VOICEGATE_SHARED_DIR to the folder holding audio/ and models/")
    return path


def read_clip(digit: int, speaker: str, rep: int) -> np.ndarray:
    """One FSDD recording as 16 kHz mono float32."""
    import soundfile as sf
    import torch
    import torchaudio.functional as taf

    samples, rate = sf.read(fsdd_dir() / f"{digit}_{speaker}_{rep}.wav", dtype="float32", always_2d=True)
    mono = torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1)))
    return taf.resample(mono, rate, RATE).numpy().astype(np.float32)


def silence(seconds: float, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Near-silence with a faint noise floor (a real room is never digital zero).

    The noise is band-limited to 4 kHz like the 8 kHz FSDD recordings around it: broadband noise between
    phone-band words is a mismatch no real recording has, and it confuses the recogniser.
    """
    rng = rng or np.random.default_rng(0)
    n = int(seconds * RATE)
    narrow = rng.standard_normal(n // 2 + 1) * 3e-4  # white at 8 kHz ...
    return np.repeat(narrow, 2)[:n].astype(np.float32)  # ... held to 16 kHz: energy stays mostly below 4 kHz


class DigitSpeaker:
    """Says digit strings in one FSDD speaker's voice, each digit from a recording not used before.

    ``seed`` makes the choice of recordings reproducible; ``excluded`` holds (digit, rep) pairs another speaker
    object already used, when two objects must not share recordings.
    """

    def __init__(self, speaker: str, *, seed: int = 0) -> None:
        if speaker not in SPEAKERS:
            raise ValueError(f"unknown FSDD speaker {speaker!r}; one of {', '.join(SPEAKERS)}")
        self.speaker = speaker
        self._rng = random.Random(f"{speaker}:{seed}")
        self._unused = {d: self._rng.sample(range(REPETITIONS), REPETITIONS) for d in range(10)}
        self._noise = np.random.default_rng(seed)

    def say(self, digits: str, *, gap_s: float = 0.2, lead_s: float = 0.3) -> np.ndarray:
        """16 kHz float32 audio of the digits spoken one after the other with short pauses."""
        parts = [silence(lead_s, rng=self._noise)]
        for char in digits.replace(" ", ""):
            digit = int(char)
            if not self._unused[digit]:
                raise RuntimeError(f"all {REPETITIONS} recordings of {digit} by {self.speaker} are used up")
            parts.append(read_clip(digit, self.speaker, self._unused[digit].pop()))
            parts.append(silence(gap_s, rng=self._noise))
        parts.append(silence(lead_s, rng=self._noise))
        return np.concatenate(parts)


# --------------------------------------------------------------------------- encoders


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit PCM WAV in memory."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, dtype=np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_fake_mic_wav(path: Path, samples: np.ndarray, *, pad_s: float = 0.5, rate: int = 48_000) -> Path:
    """A WAV for Chromium's ``--use-file-for-fake-audio-capture``: 48 kHz 16-bit mono, padded with silence."""
    import soundfile as sf
    import torch
    import torchaudio.functional as taf

    padded = np.concatenate([silence(pad_s), np.asarray(samples, dtype=np.float32), silence(pad_s)])
    resampled = taf.resample(torch.from_numpy(padded), RATE, rate).numpy()
    sf.write(path, resampled, rate, subtype="PCM_16")
    return path


def _encode(samples: np.ndarray, container: str, codec: str, rate: int = 48_000, bit_rate: int = 32_000) -> bytes:
    import av
    import torch
    import torchaudio.functional as taf

    pcm = taf.resample(torch.from_numpy(np.asarray(samples, dtype=np.float32)), RATE, rate).numpy()
    pcm16 = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame_size = 960  # 20 ms at 48 kHz, Opus' usual frame
        pts = 0
        for start in range(0, len(pcm16), frame_size):
            chunk = pcm16[start:start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += frame_size
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def ogg_opus(samples: np.ndarray) -> bytes:
    """OGG/Opus as WhatsApp and Telegram send voice notes."""
    return _encode(samples, "ogg", "libopus")


def webm_opus(samples: np.ndarray) -> bytes:
    """WebM/Opus as browsers' MediaRecorder produces."""
    return _encode(samples, "webm", "libopus")
