"""Throughput: verification decisions per second with 8 concurrent requests through AsyncEngine.

Each request is the 3-second OGG/Opus note from bytes to decision. Compared, in the same process, with the
sequential rate of the bare SpeechBrain forward pass (``encode_batch``, fp32) on the same audio, and with our own
engine called sequentially. Pool shapes tried: workers x torch threads (the machine has 2 cores).

    .venv/bin/python benchmarks/voice_throughput.py [--requests 64] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared_paths import AUDIO, MODEL_DIR, opus_note, reference_recognizer, timed  # noqa: E402


async def _drive(pool, voiceprint, note: bytes, requests: int, concurrency: int) -> tuple[float, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        while not queue.empty():
            queue.get_nowait()
            decision = await pool.verify(voiceprint, note, "audio/ogg")
            accepted += decision.accepted

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started), accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    import torch

    from voiceprints import AsyncEngine, Engine, EngineSettings, decode_audio, load_ecapa

    read = lambda rel: decode_audio((AUDIO / rel).read_bytes()).samples  # noqa: E731
    clip = np.concatenate([read("passphrase-dev/george/04.wav"), read("passphrase-dev/george/05.wav")])[:48_000]
    note = opus_note(clip)
    wave = decode_audio(note, mime="audio/ogg")

    reference = reference_recognizer(2)
    tensor = torch.from_numpy(wave.samples)[None]
    bare = 1.0 / float(np.mean(timed(lambda: reference.encode_batch(tensor), 20)))
    print(f"bare SpeechBrain encode_batch, sequential, 2 threads: {bare:6.2f} embeddings/s")

    model = load_ecapa(MODEL_DIR, threads=2)
    engine = Engine(model, EngineSettings())
    voiceprint = engine.enrol([engine.check_note((AUDIO / f"passphrase-dev/george/0{i}.wav").read_bytes())
                               for i in range(3)])
    sequential = 1.0 / float(np.mean(timed(lambda: engine.verify(voiceprint, note, "audio/ogg"), 20)))
    print(f"our engine, sequential, 2 threads:                 {sequential:6.2f} decisions/s")

    best = 0.0
    for workers, threads in ((1, 2), (2, 1), (2, 2)):
        torch.set_num_threads(threads)

        async def run() -> tuple[float, int]:
            async with AsyncEngine(engine, workers=workers, queue_limit=max(16, args.concurrency)) as pool:
                await _drive(pool, voiceprint, note, 8, args.concurrency)  # warm-up
                return await _drive(pool, voiceprint, note, args.requests, args.concurrency)

        rate, accepted = asyncio.run(run())
        assert accepted == args.requests
        best = max(best, rate)
        print(f"AsyncEngine {workers} worker(s) x {threads} thread(s), {args.concurrency} concurrent: "
              f"{rate:6.2f} decisions/s ({rate / bare:.2f}x bare sequential)")
    torch.set_num_threads(2)
    print(f"RESULT throughput {best:.2f} decisions/s with {args.concurrency} concurrent requests; "
          f"bare forward {bare:.2f}/s; ratio {best / bare:.2f}x")


if __name__ == "__main__":
    main()
