"""Reading an HTTP body (a vendor's file download, a webhook request) without ever holding more than a limit."""

from __future__ import annotations

import aiohttp
from aiohttp import web

_CHUNK = 64 * 1024


class DownloadTooLarge(Exception):
    """The download is over the limit; ``size`` is its declared length when the server said it, else ``None``."""

    def __init__(self, limit: int, size: int | None) -> None:
        super().__init__(f"{size} bytes" if size is not None else f"larger than {limit} bytes")
        self.limit, self.size = limit, size

    def describe(self) -> str:
        """``"is N bytes"`` or ``"is larger than LIMIT bytes"``, for the channel's own error message."""
        return f"is {self.size} bytes" if self.size is not None else f"is larger than {self.limit} bytes"


async def read_limited(response: aiohttp.ClientResponse | web.BaseRequest, max_bytes: int) -> bytes:
    """The body of ``response`` (or of a request); :class:`DownloadTooLarge` as soon as its Content-Length, or the
    bytes streamed so far, pass ``max_bytes`` (the sender may give no length, or a wrong one)."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise DownloadTooLarge(max_bytes, response.content_length)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise DownloadTooLarge(max_bytes, None)
        chunks.append(chunk)
    return b"".join(chunks)
