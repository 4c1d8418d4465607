"""The WhatsApp endpoints of Meta's Graph API (on :class:`voicegate_meta.graph.GraphApi`)."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import aiohttp

from voicegate_meta.graph import GraphApi, GraphError
from voicegate_whatsapp.settings import WhatsAppSettings
from voicegate_whatsapp.wire import MediaRef

__all__ = ["GraphClient", "GraphError"]

_TOO_LARGE_HINT = "raise channels.whatsapp.max_media_bytes"


class GraphClient:
    """``send`` messages from the configured number, ``upload`` files, ``fetch_media`` a customer's file."""

    def __init__(self, http: aiohttp.ClientSession, settings: WhatsAppSettings) -> None:
        self._api = GraphApi(http, base_url=settings.graph_base_url, version=settings.graph_api_version,
                             token=settings.access_token, timeout_s=settings.request_timeout_s, vendor="WhatsApp")
        self._phone = settings.phone_number_id

    async def send(self, body: Mapping[str, Any]) -> str | None:
        """POST one message (retrying a transient failure); returns WhatsApp's message id (``wamid...``)."""
        data = await self._api.post_with_retries(f"/{self._phone}/messages", json=body)
        messages = data.get("messages")
        return messages[0].get("id") if isinstance(messages, list) and messages else None

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """Upload a file to send it by id; returns the media id."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, content_type=mime, filename=filename)
        answer = await self._api.call("POST", f"/{self._phone}/media", data=form)
        if not isinstance(answer.get("id"), str):
            raise GraphError("WhatsApp media upload answered without an 'id'")
        return answer["id"]

    async def fetch_media(self, ref: MediaRef, max_bytes: int) -> tuple[bytes, str]:
        """The bytes and MIME type of ``ref``: its URL from ``GET /{media-id}``, then the download."""
        info = await self._api.call("GET", f"/{ref.media_id}")
        url, size = info.get("url"), info.get("file_size")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise GraphError(f"WhatsApp media {ref.media_id}: the answer has no download URL")
        if isinstance(size, int) and size > max_bytes:
            raise GraphError(f"WhatsApp media {ref.media_id} is {size} bytes; the channel accepts {max_bytes} "
                             f"({_TOO_LARGE_HINT})")
        data, _ = await self._api.download(url, max_bytes, f"media {ref.media_id}", authorised=True,
                                           too_large_hint=_TOO_LARGE_HINT)
        expected = ref.sha256 or info.get("sha256")
        if isinstance(expected, str) and expected and hashlib.sha256(data).hexdigest() != expected.lower():
            raise GraphError(f"WhatsApp media {ref.media_id}: the download does not match its sha256")
        mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else ref.mime
        return data, mime
