"""Where the benchmarks find ../shared (VOICEGATE_SHARED_DIR) and the model (VOICEGATE_MODEL_DIR)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOICEGATE_SHARED_DIR", REPO.parent / "shared"))
AUDIO = SHARED / "audio"
MODEL_DIR = Path(os.environ.get("VOICEGATE_MODEL_DIR", SHARED / "models" / "spkrec-ecapa-voxceleb"))


def opus_note(samples: np.ndarray, rate: int = 16_000, bit_rate: int = 24_000) -> bytes:
    """An OGG/Opus voice note (48 kHz, mono), encoded like a messaging app does it."""
    import av

    from voiceprints.audio import resample

    pcm = (np.clip(resample(samples, rate, 48_000), -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = 48_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def reference_recognizer(threads: int = 2):
    """SpeechBrain's own ``SpeakerRecognition`` from the same local folder, offline (the reference use)."""
    import tempfile

    import torch
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig, LocalStrategy

    from voiceprints.model import verify_model_dir

    directory = str(verify_model_dir(MODEL_DIR))
    torch.set_num_threads(threads)
    return SpeakerRecognition.from_hparams(
        source=directory, savedir=tempfile.mkdtemp(prefix="vg-ref-"), overrides={"pretrained_path": directory},
        local_strategy=LocalStrategy.NO_LINK, fetch_config=FetchConfig(allow_network=False),
    )


def percentiles(times: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 95) * 1000)


def timed(fn, runs: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out
