"""Harder variants of clean recordings, for evaluation: codecs, noise, reverberation, phone band, level, length.

Customers send compressed notes from noisy streets and trains; clean studio-ish clips say little about that. Every
codec here is a real encode -> bytes -> :func:`decode_audio` round trip through FFmpeg's encoders (PyAV), so the
decoder is exercised too. Everything is deterministic given the ``seed``.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import numpy as np

from voiceprints.audio import decode_audio, resample

RATE = 16_000

# codec name -> (PyAV encoder, container, sample rate, bit rate)
CODECS: dict[str, tuple[str, str, int, int]] = {
    "opus8k": ("libopus", "ogg", 48_000, 8_000),
    "opus16k": ("libopus", "ogg", 48_000, 16_000),
    "amr": ("libopencore_amrnb", "amr", 8_000, 7_950),
    "aac": ("aac", "adts", 44_100, 32_000),
    "mp3": ("libmp3lame", "mp3", 22_050, 24_000),
}


def codec_roundtrip(samples: np.ndarray, codec: str) -> np.ndarray:
    """Encode 16 kHz samples with a real lossy codec and decode them back to 16 kHz."""
    import av

    encoder, container_format, rate, bit_rate = CODECS[codec]
    pcm = resample(samples, RATE, rate)
    pcm16 = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm16[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return decode_audio(buffer.getvalue()).samples


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def coloured_noise(n: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """1/f^exponent noise (0 = white, 1 = pink, 2 = brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """Add coloured noise at ``snr_db`` relative to the clip's speech power."""
    power = float(np.mean(samples ** 2))
    noise = coloured_noise(len(samples), rng, exponent) * np.sqrt(power / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def reverberate(samples: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room impulse response (exponentially decaying noise tail after a direct path)."""
    length = int(rt60_s * RATE)
    t = np.arange(length) / RATE
    rir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    rir[0] = 1.0 / 0.3
    rir /= np.sqrt(np.sum(rir ** 2))
    wet = np.convolve(samples, rir)[: len(samples)]
    return (wet * (np.abs(samples).max() / (np.abs(wet).max() + 1e-9))).astype(np.float32)


def phone_band(samples: np.ndarray) -> np.ndarray:
    """Narrowband telephone: down to 8 kHz and back (drops everything above ~3.8 kHz)."""
    return resample(resample(samples, RATE, 8_000), 8_000, RATE)


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """Level change (no clipping beyond [-1, 1])."""
    return np.clip(samples * 10 ** (db / 20), -1, 1).astype(np.float32)


Condition = Callable[[np.ndarray, np.random.Generator], np.ndarray]

CONDITIONS: dict[str, Condition] = {
    "clean": lambda x, r: x,
    "opus8k": lambda x, r: codec_roundtrip(x, "opus8k"),
    "amr": lambda x, r: codec_roundtrip(x, "amr"),
    "phone": lambda x, r: codec_roundtrip(add_noise(phone_band(x), 15, r, 1.0), "amr"),
    "noise5": lambda x, r: add_noise(x, 5, r, 1.0),
    "noise0": lambda x, r: add_noise(x, 0, r, 1.0),
    "reverb": lambda x, r: reverberate(x, 0.5, r),
    "quiet": lambda x, r: gain(add_noise(x, 20, r, 0.0), -30),
    # A note recorded in a reverberant, noisy place, sent through an app at a low bit rate.
    "street": lambda x, r: codec_roundtrip(add_noise(reverberate(x, 0.4, r), 5, r, 1.0), "opus16k"),
}


def degrade(samples: np.ndarray, condition: str, *, seed: int = 0, key: str = "") -> np.ndarray:
    """Apply a named condition (see :data:`CONDITIONS`); ``key`` (e.g. the file name) varies the noise per clip."""
    try:
        apply = CONDITIONS[condition]
    except KeyError:
        raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}") from None
    return apply(np.asarray(samples, dtype=np.float32), _rng(seed, f"{condition}:{key}"))


# Enrolment augmentation: each enrolment note is also embedded under these conditions and the template averages
# them, so a voiceprint made from clean notes still matches notes from noisy, echoing rooms and low-bit-rate apps.
# Deliberately generic: white noise on an SNR ladder (20, 10, 5 dB: customers record anywhere from an office to a
# street), a mid-size room, a common app codec. No pink noise, no AMR: the benchmarks' pink-noise and phone
# conditions stay outside the augmentation's noise spectrum and codecs (the 5 dB step shares noise5's SNR, and the
# benchmark flags that).
ENROLMENT_AUGMENTATIONS: dict[str, Condition] = {
    "white10": lambda x, r: add_noise(x, 10, r, 0.0),
    "reverb03": lambda x, r: reverberate(x, 0.3, r),
    "opus16k": lambda x, r: codec_roundtrip(x, "opus16k"),
    "white5": lambda x, r: add_noise(x, 5, r, 0.0),
    "white20": lambda x, r: add_noise(x, 20, r, 0.0),
}


def enrolment_variants(samples: np.ndarray, *, key: str) -> list[np.ndarray]:
    """The augmented copies of one enrolment note (deterministic per ``key``, e.g. the PCM hash)."""
    return [augment(np.asarray(samples, dtype=np.float32), _rng(7, f"{name}:{key}"))
            for name, augment in ENROLMENT_AUGMENTATIONS.items()]
