"""A person's view of the web chat: headless Chromium (Debian's) against a running gateway."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio

from gateway.testing import runtime_of

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run",
        # A synthetic microphone (a beep) the page may use without a permission prompt.
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_a_person_chats_presses_a_button_and_comes_back(demo_settings, gateway_client, browser, tmp_path) -> None:
    client = await gateway_client(demo_settings())
    url = f"http://{client.host}:{client.port}/channels/webchat/"
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                        is_mobile=True, has_touch=True, locale="en-GB")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(url)
    await page.wait_for_selector("#status[data-state='online']")
    assert await page.is_visible("#welcome")

    await page.fill("#message-input", "Hello!")
    await page.click("#send-button")
    await page.wait_for_selector(".bubble.bot")
    assert await page.inner_text(".bubble.customer") == "Hello!"
    assert await page.inner_text(".bubble.bot") == "Hi! How can I help?"
    buttons = page.locator("button.quick-reply")
    assert await buttons.all_inner_texts() == ["Opening hours", "My balance", "Talk to an agent"]

    await buttons.filter(has_text="Opening hours").click()
    # Locator waits, not wait_for_function: the page's CSP forbids evaluating strings.
    await expect(page.locator(".bubble.bot")).to_have_count(2)
    assert (await page.locator(".bubble.bot").last.inner_text()).startswith("We're open Mon-Fri")
    assert await page.locator(".bubble.customer").last.inner_text() == "Opening hours"
    assert await page.input_value("#message-input") == ""
    await page.screenshot(path=str(tmp_path / "webchat-phone.png"), full_page=True)

    # A reload keeps the conversation: same session (localStorage), same history, same customer.
    session = await page.evaluate("localStorage.getItem('voicegate.webchat.session')")
    await page.reload()
    await page.wait_for_selector("#status[data-state='online']")
    assert await page.locator(".bubble").count() == 4
    store = runtime_of(client).store
    customer_id = await store.customer_for("webchat", session)
    assert customer_id is not None and len(await store.conversations(customer_id=customer_id)) == 1
    assert errors == []
    await context.close()


async def test_the_record_button_sends_a_webm_voice_note(demo_settings, gateway_client, browser, tmp_path) -> None:
    client = await gateway_client(demo_settings())
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    await context.grant_permissions(["microphone"])
    page = await context.new_page()
    await page.goto(f"http://{client.host}:{client.port}/channels/webchat/")
    await page.wait_for_selector("#status[data-state='online']")

    await page.click("#record-button")
    await page.wait_for_selector("#record-button.recording")
    assert await page.is_visible("#recording-timer")
    await expect(page.locator("#recording-timer")).to_have_text("0:01")
    await page.screenshot(path=str(tmp_path / "webchat-recording.png"))
    await page.click("#record-button")
    await page.wait_for_selector(".bubble.bot")
    assert not await page.is_visible("#recording-timer")
    assert (await page.inner_text(".bubble.customer")).startswith("Voice note 0:01")
    assert await page.inner_text(".bubble.bot") == "I can't read files here. An agent can help."
    await page.screenshot(path=str(tmp_path / "webchat-voice-note.png"))

    runtime = runtime_of(client)
    session = await page.evaluate("localStorage.getItem('voicegate.webchat.session')")
    (conversation,) = await runtime.store.conversations(customer_id=await runtime.store.customer_for("webchat", session))
    inbound = [m for m in await runtime.store.history(conversation.id) if m.direction == "in"]
    (attachment,) = inbound[0].body["attachments"]
    assert attachment["kind"] == "audio" and attachment["mime"].startswith("audio/webm")
    await context.close()


async def test_file_upload_and_the_page_side_size_limit(demo_settings, gateway_client, browser, tmp_path) -> None:
    client = await gateway_client(demo_settings(channels={"webchat": {"max_upload_bytes": 4096}}))
    context = await browser.new_context(locale="it-IT")
    page = await context.new_page()
    await page.goto(f"http://{client.host}:{client.port}/channels/webchat/")
    await page.wait_for_selector("#status[data-state='online']")
    assert await page.get_attribute("#message-input", "placeholder") == "Scrivi un messaggio…"

    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF" + bytes(8000))
    await page.set_input_files("#file-input", str(big))
    await page.wait_for_selector(".bubble.system")
    assert (await page.inner_text(".bubble.system")).startswith("Il file è troppo grande: il limite è 4 KB.")
    assert await page.locator(".bubble.customer").count() == 0  # nothing was sent

    small = tmp_path / "ricevuta.pdf"
    small.write_bytes(b"%PDF-1.4 tiny")
    await page.set_input_files("#file-input", str(small))
    await expect(page.locator(".bubble.bot")).to_have_count(1)
    assert await page.inner_text(".bubble.customer") == "File: ricevuta.pdf"
    # The page speaks Italian, but a file says nothing about the language: the bot's default (English) answers.
    assert await page.inner_text(".bubble.bot") == "I can't read files here. An agent can help."
    await context.close()
