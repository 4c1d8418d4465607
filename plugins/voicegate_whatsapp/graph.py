"""A small client for the WhatsApp endpoints of Meta's Graph API, on the gateway's shared session.

The access token travels only in the ``Authorization`` header, never in a URL, so it cannot
end up in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Mapping

import aiohttp

from voicegate_whatsapp.settings import WhatsAppSettings
from voicegate_whatsapp.wire import MediaRef

_CHUNK = 64 * 1024
_RETRY_DELAYS_S = (0.5, 1.5, None)  # None: the last attempt


class GraphError(Exception):
    """A Graph API call failed; the message says which call, the status and Meta's explanation.

    ``transient`` is True when trying again later may succeed (Meta's 5xx or rate limit, a refused connection).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class GraphClient:
    """``send`` messages from the configured number, ``fetch_media`` a customer's file."""

    def __init__(self, http: aiohttp.ClientSession, settings: WhatsAppSettings) -> None:
        self._http = http
        self._root = f"{settings.graph_base_url}/{settings.graph_api_version}"
        self._auth = {"Authorization": f"Bearer {settings.access_token}"}
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        self._phone = settings.phone_number_id

    async def send(self, body: Mapping[str, Any]) -> str | None:
        """POST one message; returns WhatsApp's message id (``wamid...``).

        A transient failure is retried twice (after 0.5 s and 1.5 s): the webhook was already
        answered, so WhatsApp will not redeliver and this is the reply's only chance. A timeout
        is not retried, because the message may have gone out.
        """
        for delay in _RETRY_DELAYS_S:
            try:
                data = await self._json("POST", f"/{self._phone}/messages", json=body)
                break
            except GraphError as exc:
                if not exc.transient or delay is None:
                    raise
                await asyncio.sleep(delay)
        messages = data.get("messages") if isinstance(data, dict) else None
        return messages[0].get("id") if isinstance(messages, list) and messages else None

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """Upload a file to send it by id; returns the media id."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, content_type=mime, filename=filename)
        answer = await self._json("POST", f"/{self._phone}/media", data=form)
        if not isinstance(answer.get("id"), str):
            raise GraphError("WhatsApp media upload answered without an 'id'")
        return answer["id"]

    async def fetch_media(self, ref: MediaRef, max_bytes: int) -> tuple[bytes, str]:
        """The bytes and MIME type of ``ref``: its URL from ``GET /{media-id}``, then the download."""
        info = await self._json("GET", f"/{ref.media_id}")
        url, size = info.get("url"), info.get("file_size")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise GraphError(f"WhatsApp media {ref.media_id}: the answer has no download URL")
        if isinstance(size, int) and size > max_bytes:
            raise GraphError(f"WhatsApp media {ref.media_id} is {size} bytes; the channel accepts {max_bytes} "
                             "(raise channels.whatsapp.max_media_bytes)")
        try:
            async with self._http.get(url, headers=self._auth, timeout=self._timeout) as response:
                if response.status != 200:
                    raise GraphError(f"WhatsApp media {ref.media_id}: download answered HTTP {response.status}")
                data = await _read_limited(response, max_bytes, ref.media_id)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(f"WhatsApp media {ref.media_id}: download failed ({type(exc).__name__})") from None
        expected = ref.sha256 or info.get("sha256")
        if isinstance(expected, str) and expected and hashlib.sha256(data).hexdigest() != expected.lower():
            raise GraphError(f"WhatsApp media {ref.media_id}: the download does not match its sha256")
        mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else ref.mime
        return data, mime

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http.request(method, self._root + path, headers=self._auth,
                                          timeout=self._timeout, **kwargs) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 300 or not isinstance(data, dict):
                    raise GraphError(f"WhatsApp Graph API {method} {path} answered HTTP {response.status}: "
                                     f"{_explain(data)}", transient=response.status >= 500 or response.status == 429)
                return data
        except aiohttp.ClientConnectorError as exc:  # no connection: certainly not sent, safe to retry
            raise GraphError(f"WhatsApp Graph API {method} {path} failed: {type(exc).__name__}",
                             transient=True) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(f"WhatsApp Graph API {method} {path} failed: {type(exc).__name__}") from None


async def _read_limited(response: aiohttp.ClientResponse, limit: int, media_id: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise GraphError(f"WhatsApp media {media_id} is larger than {limit} bytes "
                             "(raise channels.whatsapp.max_media_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _explain(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"{error.get('message', 'no message')} (code {error.get('code')})"
    return "no JSON error body"
