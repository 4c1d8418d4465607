"""A small Bot API client on the gateway's shared HTTP session.

The Bot API puts the bot token in every URL path (``/bot<token>/sendMessage``) by design.
So nothing here ever formats a URL into an error or a log line: errors name the method and
Telegram's description, and aiohttp's own exceptions (whose text holds the URL) are replaced
by their type name, with the token redacted from anything else that could echo it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

import aiohttp

from gateway.downloads import DownloadTooLarge, read_limited

from voicegate_telegram.settings import TelegramSettings

log = logging.getLogger(__name__)

_MAX_RETRY_AFTER_S = 10
_RETRY_DELAYS_S = (0.5, 1.5, None)  # None: the last attempt


class TelegramError(Exception):
    """A Bot API call failed; the message names the method and Telegram's description, never the token.

    ``transient``: Telegram could not be reached at all, so trying again is safe.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BotApi:
    """``call`` a Bot API method; ``download`` a file found with ``getFile``."""

    def __init__(self, http: aiohttp.ClientSession, settings: TelegramSettings) -> None:
        self._http = http
        self._token = settings.bot_token
        self._api = f"{settings.api_base_url}/bot{settings.bot_token}/"
        self._files = f"{settings.api_base_url}/file/bot{settings.bot_token}/"
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)

    def redact(self, text: str) -> str:
        """``text`` with the bot token replaced, for anything that may reach a log."""
        return text.replace(self._token, "<bot-token>")

    async def call(self, method: str, params: Mapping[str, Any] | None = None, *,
                   form: aiohttp.FormData | None = None) -> Any:
        """The ``result`` of ``method``.

        Retried (JSON calls only; a form's body is consumed) when Telegram could not be reached,
        answered 5xx, or asked to wait at most 10 s (429 ``retry_after``): the webhook was already
        answered, so Telegram will not redeliver and this is the reply's only chance.
        """
        for attempt, delay in enumerate(_RETRY_DELAYS_S, start=1):
            try:
                data = await self._post(method, params, form)
            except TelegramError as exc:
                if not exc.transient or delay is None or form is not None:
                    raise
                await asyncio.sleep(delay)
                continue
            if data.get("ok") is True:
                return data.get("result")
            retry_after = (data.get("parameters") or {}).get("retry_after")
            code = data.get("error_code")
            wait = retry_after if code == 429 and isinstance(retry_after, int) and retry_after <= _MAX_RETRY_AFTER_S \
                else delay if isinstance(code, int) and code >= 500 else None
            if wait is None or delay is None or form is not None:
                raise TelegramError(f"Telegram {method} failed: "
                                    f"{self.redact(str(data.get('description', 'no description')))} (error {code})")
            log.info("Telegram %s answered error %s; trying again in %s s (attempt %d)", method, code, wait, attempt)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the last delay is None: the loop returns or raises

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        """The bytes of ``file_id``: ``getFile`` for its path, then ``/file/bot<token>/<path>``."""
        info = await self.call("getFile", {"file_id": file_id})
        path, size = (info or {}).get("file_path"), (info or {}).get("file_size")
        if not isinstance(path, str) or not path:
            raise TelegramError("Telegram getFile answered without a file_path (the file may be over 20 MB)")
        if isinstance(size, int) and size > max_bytes:
            raise TelegramError(f"the file is {size} bytes; the channel accepts {max_bytes} "
                                "(raise channels.telegram.max_file_bytes)")
        try:
            async with self._http.get(self._files + path, timeout=self._timeout) as response:
                if response.status != 200:
                    raise TelegramError(f"Telegram file download answered HTTP {response.status}")
                try:
                    return await read_limited(response, max_bytes)
                except DownloadTooLarge as exc:
                    raise TelegramError(f"the file {exc.describe()}; the channel accepts {max_bytes} "
                                        "(raise channels.telegram.max_file_bytes)") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TelegramError(f"Telegram file download failed: {type(exc).__name__}") from None

    async def _post(self, method: str, params: Mapping[str, Any] | None, form: aiohttp.FormData | None) -> dict[str, Any]:
        try:
            async with self._http.post(self._api + method, json=None if form else dict(params or {}),
                                       data=form, timeout=self._timeout) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    raise TelegramError(f"Telegram {method} answered HTTP {response.status} without a JSON body")
                return data
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # str(exc) may contain the URL, and with it the token: keep only the type. Only a
            # failed connection is retried: after a timeout the message may have been sent.
            raise TelegramError(f"Telegram {method} failed: {type(exc).__name__}",
                                transient=isinstance(exc, aiohttp.ClientConnectorError)) from None
