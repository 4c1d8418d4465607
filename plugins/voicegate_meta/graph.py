"""A Graph API client base with Meta's error handling, on the gateway's shared HTTP session.

The access token travels only in the ``Authorization`` header, never in a URL, so it cannot
end up in a log line or an error message.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import aiohttp

from gateway.downloads import DownloadTooLarge, read_limited

_RETRY_DELAYS_S = (0.5, 1.5, None)  # None: the last attempt


class GraphError(Exception):
    """A Graph API call failed; the message says which call, the status and Meta's explanation.

    ``transient`` is True when trying again later may succeed (Meta's 5xx or rate limit, a refused connection).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class GraphApi:
    """``call`` a Graph API path, ``post_with_retries`` a message, ``download`` a file within a size limit."""

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, version: str, token: str,
                 timeout_s: float, vendor: str) -> None:
        self._http = http
        self._root = f"{base_url}/{version}"
        self._auth = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._vendor = vendor

    async def post_with_retries(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """POST a message; a transient failure is retried twice (after 0.5 s and 1.5 s).

        The webhook was already answered, so Meta will not redeliver and this is the reply's only
        chance. A timeout is not retried, because the message may have gone out.
        """
        for delay in _RETRY_DELAYS_S:
            try:
                return await self.call("POST", path, **kwargs)
            except GraphError as exc:
                if not exc.transient or delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One Graph API call; its JSON object, or :class:`GraphError`."""
        try:
            async with self._http.request(method, self._root + path, headers=self._auth,
                                          timeout=self._timeout, **kwargs) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 300 or not isinstance(data, dict):
                    raise GraphError(f"{self._vendor} Graph API {method} {path} answered HTTP {response.status}: "
                                     f"{explain(data)}", transient=response.status >= 500 or response.status == 429)
                return data
        except aiohttp.ClientConnectorError as exc:  # no connection: certainly not sent, safe to retry
            raise GraphError(f"{self._vendor} Graph API {method} {path} failed: {type(exc).__name__}",
                             transient=True) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(f"{self._vendor} Graph API {method} {path} failed: {type(exc).__name__}") from None

    async def download(self, url: str, max_bytes: int, what: str, *, authorised: bool,
                       too_large_hint: str) -> tuple[bytes, str | None]:
        """The bytes at ``url`` and their Content-Type, refusing more than ``max_bytes``.

        ``authorised``: send the access token (WhatsApp's media URLs want it; Messenger's CDN
        URLs are pre-signed and must not see it)."""
        headers: Mapping[str, str] = self._auth if authorised else {}
        try:
            async with self._http.get(url, headers=headers, timeout=self._timeout) as response:
                if response.status != 200:
                    raise GraphError(f"{self._vendor} {what}: download answered HTTP {response.status}")
                try:
                    data = await read_limited(response, max_bytes)
                except DownloadTooLarge as exc:
                    raise GraphError(f"{self._vendor} {what} {exc.describe()}; the channel accepts {max_bytes} "
                                     f"({too_large_hint})") from None
                return data, response.headers.get("Content-Type")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(f"{self._vendor} {what}: download failed ({type(exc).__name__})") from None


def explain(data: Any) -> str:
    """Meta's error message and code from an error body."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"{error.get('message', 'no message')} (code {error.get('code')})"
    return "no JSON error body"
