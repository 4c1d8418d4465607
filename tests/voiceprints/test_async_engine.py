"""The async façade: work runs off the event loop, admission is bounded, slow work times out."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voiceprints import AsyncEngine, EngineBusy, EngineTimeout

pytestmark = pytest.mark.model


async def test_event_loop_keeps_running_during_inference(engine, read_audio):
    data = read_audio("voice-notes/george-whatsapp.ogg")
    ticks = 0
    main_thread = threading.get_ident()

    async def heartbeat(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async with AsyncEngine(engine, workers=1, queue_limit=4) as pool:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop))
        notes = await asyncio.gather(*(pool.check_note(data, "audio/ogg") for _ in range(3)))
        stop.set()
        await beat
        voiceprint = await pool.enrol(notes)
        decision = await pool.verify(voiceprint, read_audio("passphrase-dev/george/06.wav"), "audio/wav")
    assert decision.accepted
    assert ticks >= 5  # the loop kept ticking while three embeddings were computed in the pool
    assert threading.get_ident() == main_thread


async def test_full_queue_raises_engine_busy_at_once(engine, read_audio):
    data = read_audio("passphrase-dev/george/03.wav")
    async with AsyncEngine(engine, workers=1, queue_limit=2) as pool:
        first = [asyncio.create_task(pool.check_note(data)) for _ in range(2)]
        await asyncio.sleep(0)  # both admitted
        assert pool.in_flight == 2
        with pytest.raises(EngineBusy, match="try again"):
            await pool.check_note(data)
        results = await asyncio.gather(*first)
        assert len(results) == 2 and pool.in_flight == 0
        assert (await pool.check_note(data)).speech_s > 1  # capacity is back


async def test_timeout_frees_the_slot_only_when_work_ends(engine, read_audio):
    data = read_audio("passphrase-dev/george/03.wav")
    async with AsyncEngine(engine, workers=1, queue_limit=1, timeout_s=0.001) as pool:
        with pytest.raises(EngineTimeout, match="longer than"):
            await pool.check_note(data)
        for _ in range(200):  # the embedding still finishes in its thread, then releases its slot
            if pool.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert pool.in_flight == 0


def test_pool_bounds_are_validated(engine):
    with pytest.raises(ValueError):
        AsyncEngine(engine, workers=2, queue_limit=1)


async def test_run_admits_a_callers_own_job_under_the_same_limit(engine, read_audio):
    """``run`` is how a caller puts its own step (decode + embed + its check) in the pool as one admitted job."""
    data = read_audio("passphrase-dev/george/03.wav")
    release = threading.Event()
    async with AsyncEngine(engine, workers=1, queue_limit=1) as pool:
        blocker = asyncio.create_task(pool.run(release.wait, 30))
        await asyncio.sleep(0)
        with pytest.raises(EngineBusy):
            await pool.run(engine.check_note, data, "audio/wav")
        release.set()
        assert await blocker is True
        note = await pool.run(lambda: engine.check_note(data, "audio/wav"))
        assert note.speech_s > 1 and pool.in_flight == 0
