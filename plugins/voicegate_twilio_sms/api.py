"""A small Twilio REST client on the gateway's shared session: send an SMS, fetch an MMS file.

Credentials go in the ``Authorization`` header (HTTP basic auth), never in a URL. Media is
fetched only from the configured API host, so a forged ``MediaUrl`` cannot make the gateway
send the account's credentials elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

import aiohttp

from gateway.downloads import DownloadTooLarge, read_limited

from voicegate_twilio_sms.settings import TwilioSmsSettings



class TwilioError(Exception):
    """A Twilio call failed; the message says which, the status and Twilio's explanation."""


class TwilioApi:
    def __init__(self, http: aiohttp.ClientSession, settings: TwilioSmsSettings) -> None:
        self._http = http
        self._settings = settings
        # aiohttp drops this header when a redirect leaves the origin (Twilio media -> storage).
        self._auth = {"Authorization": aiohttp.encode_basic_auth(settings.account_sid, settings.auth_token)}
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        self._messages_url = f"{settings.api_base_url}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"

    async def send_sms(self, to: str, body: str, media_urls: Sequence[str] = ()) -> str | None:
        """Create one outgoing message; returns its SID (``SM...``)."""
        form: list[tuple[str, str]] = [("To", to), ("Body", body)]
        if self._settings.messaging_service_sid:
            form.append(("MessagingServiceSid", self._settings.messaging_service_sid))
        else:
            form.append(("From", self._settings.from_number or ""))
        form.extend(("MediaUrl", url) for url in media_urls)
        try:
            async with self._http.post(self._messages_url, data=form, headers=self._auth, timeout=self._timeout) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 300 or not isinstance(data, dict):
                    detail = f"{data.get('message')} (code {data.get('code')})" if isinstance(data, dict) else "no JSON body"
                    raise TwilioError(f"Twilio Messages API answered HTTP {response.status}: {detail}")
                sid = data.get("sid")
                return sid if isinstance(sid, str) else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TwilioError(f"Twilio Messages API call failed: {type(exc).__name__}") from None

    def is_twilio_media(self, url: str) -> bool:
        return url.startswith(self._settings.api_base_url + "/")

    async def fetch_media(self, url: str, max_bytes: int) -> bytes:
        """The bytes behind an MMS ``MediaUrl`` (Twilio redirects to its storage; aiohttp follows)."""
        if not self.is_twilio_media(url):
            raise TwilioError("the media URL is not on the configured Twilio API host (channels.sms.api_base_url)")
        try:
            async with self._http.get(url, headers=self._auth, timeout=self._timeout) as response:
                if response.status != 200:
                    raise TwilioError(f"Twilio media download answered HTTP {response.status}")
                try:
                    return await read_limited(response, max_bytes)
                except DownloadTooLarge as exc:
                    raise TwilioError(f"the MMS file {exc.describe()}; the channel accepts {max_bytes} "
                                      "(raise channels.sms.max_media_bytes)") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TwilioError(f"Twilio media download failed: {type(exc).__name__}") from None
