"""``voicegate run`` freezes the start-up heap (gateway.serving) once the app has started."""

from __future__ import annotations

import gc

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import RUNTIME, create_app
from gateway.serving import YOUNG_THRESHOLD, tune_for_serving
from gateway.testing import make_settings


async def test_the_heap_is_frozen_after_start_up(tmp_path):
    threshold = gc.get_threshold()
    app = create_app(make_settings(tmp_path))
    tune_for_serving(app)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    try:
        gc.unfreeze()
        await client.start_server()
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert RUNTIME in app  # frozen after the gateway's own start-up, so its objects are frozen too
        response = await client.get("/healthz")
        assert response.status == 200
    finally:
        await client.close()
        gc.unfreeze()  # the test process is not a server: undo
        gc.set_threshold(*threshold)
