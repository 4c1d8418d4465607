"""Process-wide settings for a process that serves the gateway (``voicegate run``, the benchmark).

Not applied by :func:`gateway.app.create_app`: they change the whole Python process, which
is the CLI's to own (tests build many apps in one process).

Garbage collection: after start-up the heap holds hundreds of thousands of long-lived objects
(SQLAlchemy, pydantic, aiohttp, plugins). Every full collection would walk them all — tens
of milliseconds with the event loop stopped, a latency spike for every conversation in
flight. :func:`gc.freeze` moves them out of the collector's sight once, and a larger
young-generation threshold makes the cheap collections rarer (a chat turn allocates a few
hundred containers, nearly all freed by reference counting).
"""

from __future__ import annotations

import gc

from aiohttp import web

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def tune_for_serving(app: web.Application) -> None:
    """Freeze the start-up heap once the app has started; call before the app runs."""
    app.on_startup.append(_freeze_startup_heap)  # runs after the cleanup_ctx start-up (aiohttp's order)


async def _freeze_startup_heap(app: web.Application) -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
