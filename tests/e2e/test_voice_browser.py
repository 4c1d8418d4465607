"""A person verifying by voice in the web chat: Debian's Chromium, headless, its microphone fed from real recordings.

Chromium's fake microphone plays one WAV file per browser launch (``--use-file-for-fake-audio-capture``; ``%noloop``
stops it from looping), so every voice note is recorded in a fresh browser built for the digits the chat just
asked for. The chat session (localStorage) is carried from one launch to the next, so it stays one customer and
one conversation, exactly as a person reloading the page would. Notes go through the page's record button and
MediaRecorder (WebM/Opus), the WebSocket, the real gateway and the real model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from support.chat import prompted_digits
from support.speech import RATE, DigitSpeaker, write_fake_mic_wav
from support.voice import ENROLMENT_TRIES, GENUINE_ATTEMPTS, seed_challenges

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.model]

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
EURO = "€"
SESSION_KEY = "voicegate.webchat.session"
SCREENSHOT = "voice-verified-chat.png"


class Gateway:
    """The real app on a free port with aiohttp's runner (a browser needs a real socket)."""

    def __init__(self, settings: Any) -> None:
        self.app = create_app(settings)
        self.runner = web.AppRunner(self.app)
        self.url = ""

    async def __aenter__(self) -> "Gateway":
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/channels/webchat/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


class Person:
    """One customer using the chat page across browser launches (the session is kept in ``storage``)."""

    def __init__(self, playwright: Any, url: str, workdir: Path) -> None:
        self.playwright = playwright
        self.url = url
        self.workdir = workdir
        self.storage: dict[str, Any] | None = None
        self.notes = 0

    async def open(self, wav: Path | None = None, height: int = 844) -> tuple[Any, Any]:
        args = list(BASE_ARGS)
        if wav is not None:
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        browser = await self.playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        context = await browser.new_context(viewport={"width": 390, "height": height}, device_scale_factor=1,
                                            locale="en-GB", storage_state=self.storage)
        await context.grant_permissions(["microphone"])
        page = await context.new_page()
        await page.goto(self.url)
        await page.wait_for_selector("#status[data-state='online']")
        return browser, page

    async def close(self, browser: Any, page: Any) -> None:
        self.storage = await page.context.storage_state()
        await browser.close()

    async def bot_texts(self, page: Any) -> list[str]:
        return await page.locator(".bubble.bot").all_inner_texts()

    async def speak(self, speaker: DigitSpeaker, page_before: list[str]) -> list[str]:
        """Record a note of the digits the chat last asked for, in ``speaker``'s voice; return the new bot bubbles."""
        digits = prompted_digits(page_before[-1])
        samples = speaker.say(digits)
        self.notes += 1
        wav = write_fake_mic_wav(self.workdir / f"note-{self.notes}.wav", samples)
        browser, page = await self.open(wav)
        try:
            before = await page.locator(".bubble.bot").count()
            await page.click("#record-button")
            await page.wait_for_selector("#record-button.recording")
            await asyncio.sleep(len(samples) / RATE + 1.0 + 0.3)  # the clip, its 2 x 0.5 s padding, a margin
            await page.click("#record-button")
            await expect(page.locator(".bubble.bot")).not_to_have_count(before, timeout=30_000)
            await page.wait_for_timeout(500)  # a verified note is answered by two bubbles (auth + balance)
            texts = await self.bot_texts(page)
            return texts[before:]
        finally:
            await self.close(browser, page)


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    return CHROMIUM


async def test_a_person_enrols_and_verifies_by_voice_in_the_web_chat(voice_settings, chromium_path, tmp_path) -> None:
    from playwright.async_api import async_playwright

    theo, impostor = DigitSpeaker("theo", seed=11), DigitSpeaker("jackson", seed=11)
    async with Gateway(voice_settings(webchat=True)) as gateway, async_playwright() as pw:
        seed_challenges(gateway.app, "browser-e2e")
        person = Person(pw, gateway.url, tmp_path)

        # Ask for the balance and accept the consent (no microphone needed yet).
        browser, page = await person.open()
        await page.fill("#message-input", "What is my balance?")
        await page.click("#send-button")
        consent = page.locator("button.quick-reply", has_text="Accept / Accetto")
        await consent.wait_for()
        assert EURO not in "".join(await person.bot_texts(page))
        await consent.click()
        await expect(page.locator(".bubble.bot").last).to_contain_text("Note 1 — say:")
        texts = await person.bot_texts(page)
        await person.close(browser, page)

        # Enrol: one note per prompt, re-recording when the chat asks to (a misheard note is asked again).
        for _ in range(ENROLMENT_TRIES):
            new = await person.speak(theo, texts)
            texts += new
            assert EURO not in "".join(new)
            if "voiceprint is saved" in new[-1]:
                break
        else:
            raise AssertionError(f"enrolment did not finish: {texts[-3:]}")

        # Someone else's voice saying the right digits is refused.
        new = await person.speak(impostor, texts)
        texts += new
        assert EURO not in "".join(new)
        assert "didn't match your voiceprint" in new[-1] and "try again" in new[-1], new

        # The customer's own voice: verified, and only now the balance.
        for _ in range(GENUINE_ATTEMPTS - 2):
            new = await person.speak(theo, texts)
            texts += new
            if "didn't hear the requested words" not in "".join(new):
                break
        joined = "\n".join(new)
        assert "it's you" in joined and EURO in joined, new
        assert all(EURO not in text for text in texts[: -len(new)])

        browser, page = await person.open(height=1500)  # tall enough for the whole conversation
        await expect(page.locator(".bubble.bot").last).to_contain_text(EURO)
        await page.screenshot(path=str(tmp_path / SCREENSHOT), full_page=True)
        await person.close(browser, page)
    assert (tmp_path / SCREENSHOT).stat().st_size > 10_000
