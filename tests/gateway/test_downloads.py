"""gateway.downloads.read_limited: a vendor download never holds more than the limit, with or without a length."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.downloads import DownloadTooLarge, read_limited


async def test_declared_and_streamed_sizes_are_both_limited() -> None:
    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.add_routes([web.get("/declared", declared), web.get("/streamed", streamed)])
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/declared")) as response:
                assert await read_limited(response, 5000) == b"x" * 5000
            async with http.get(server.make_url("/declared")) as response:
                with pytest.raises(DownloadTooLarge) as declared_error:
                    await read_limited(response, 4999)
            assert declared_error.value.describe() == "is 5000 bytes"
            async with http.get(server.make_url("/streamed")) as response:
                assert response.content_length is None
                with pytest.raises(DownloadTooLarge) as streamed_error:
                    await read_limited(response, 2500)
            assert streamed_error.value.describe() == "is larger than 2500 bytes"
    finally:
        await server.close()
