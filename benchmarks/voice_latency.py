"""Latency of one verification: a 3-second OGG/Opus voice note, from bytes to decision, on this machine.

Prints p50/p95 over N runs of the engine (decode + quality gate/VAD + embedding + scoring) next to the bare
SpeechBrain forward pass (``encode_batch`` on the same decoded 3 s of audio, fp32) measured in the same process,
plus the ablations that explain the difference (precision, convolution kernels, VAD, threads) and a per-stage
breakdown.

    .venv/bin/python benchmarks/voice_latency.py [--runs 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared_paths import AUDIO, MODEL_DIR, opus_note, percentiles, reference_recognizer, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from voiceprints import Engine, EngineSettings, decode_audio, load_ecapa
    from voiceprints.quality import analyse

    torch.set_num_threads(args.threads)
    read = lambda rel: decode_audio((AUDIO / rel).read_bytes()).samples  # noqa: E731
    clip = np.concatenate([read("passphrase-dev/george/04.wav"), read("passphrase-dev/george/05.wav")])[:48_000]
    note = opus_note(clip)  # exactly 3.0 s, OGG/Opus 24 kbit/s like a messaging app
    wave = decode_audio(note, mime="audio/ogg")
    print(f"note: OGG/Opus, {len(note)} bytes, {wave.duration_s:.2f} s; torch threads {torch.get_num_threads()}; "
          f"{args.runs} runs each")

    reference = reference_recognizer(args.threads)
    tensor = torch.from_numpy(wave.samples)[None]
    bare = timed(lambda: reference.encode_batch(tensor), args.runs)
    b50, b95 = percentiles(bare)
    print(f"bare SpeechBrain encode_batch (fp32, 3 s audio): p50 {b50:6.1f} ms  p95 {b95:6.1f} ms")

    results = {}

    def measure(model, vad: bool, label: str) -> tuple[float, float]:
        engine = Engine(model, EngineSettings(vad=vad))
        voiceprint = engine.enrol([engine.check_note((AUDIO / f"passphrase-dev/george/0{i}.wav").read_bytes())
                                   for i in range(3)])
        assert engine.verify(voiceprint, note, "audio/ogg").accepted
        p50, p95 = percentiles(timed(lambda: engine.verify(voiceprint, note, "audio/ogg"), args.runs))
        print(f"engine bytes->decision  {label}:  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
              f"({b50 / p50:.2f}x faster than bare at p50)")
        return p50, p95

    # Ablations: precision x convolution kernels x VAD (the bare run above used torch's defaults: fp32, oneDNN).
    for precision, conv in (("fp32", "onednn"), ("fp32", "native"), ("bf16", "onednn")):
        model = load_ecapa(MODEL_DIR, threads=args.threads, precision=precision, conv_backend=conv)
        for vad in (False, True):
            results[(precision, conv, vad)] = measure(model, vad, f"{precision} {conv:6s} VAD {'on ' if vad else 'off'}")

    # The default: load_ecapa() is fp32 and times both convolution backends at load (conv_backend="auto");
    # EngineSettings.vad is on.
    model = load_ecapa(MODEL_DIR, threads=args.threads)
    shipped = measure(model, True, f"default (fp32, auto -> {model.conv_backend}, VAD on)")

    # Where the time goes (default configuration).
    stages = {
        "decode (PyAV/libsndfile + resample)": lambda: decode_audio(note, mime="audio/ogg"),
        "VAD + quality figures": lambda: analyse(wave.samples, 16_000),
        "embedding of VAD speech": (lambda s: lambda: model.embed(s))(analyse(wave.samples, 16_000).speech),
    }
    for name, fn in stages.items():
        p50, _ = percentiles(timed(fn, max(10, args.runs // 3)))
        print(f"  stage {name:38s} p50 {p50:6.1f} ms")
    torch.set_num_threads(1)
    one = percentiles(timed(lambda: model.embed(wave.samples), max(10, args.runs // 3)))[0]
    torch.set_num_threads(args.threads)
    print(f"  embedding of the full 3 s with 1 thread (fp32): p50 {one:6.1f} ms")
    print(f"RESULT latency (default: fp32, {model.conv_backend} convolutions, VAD on) p50 {shipped[0]:.1f} ms / p95 {shipped[1]:.1f} ms "
          f"(goal p50 <= 150 ms); bare forward p50 {b50:.1f} ms / p95 {b95:.1f} ms; speed-up {b50 / shipped[0]:.2f}x")


if __name__ == "__main__":
    main()
