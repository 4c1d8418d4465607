"""Bad input through the real REST channel: clear errors, nothing stored, earlier data intact."""

from __future__ import annotations

import json

import gw_plugins as gp

from gateway.testing import RestDriver, make_settings, runtime_of, sign


async def rest_client(tmp_path, gateway_client, **server):
    sections = {"bots": [{"use": "script"}]}
    if server:
        sections["server"] = {"port": 0, **server}
    client = await gateway_client(make_settings(tmp_path, **sections), extra_plugins=[gp.CorePlugin()])
    return client, runtime_of(client)


async def test_the_rest_channel_through_the_testing_helpers(tmp_path, gateway_client):
    client, runtime = await rest_client(tmp_path, gateway_client)
    chat = RestDriver(client)
    assert (await chat.say("hello"))[0]["buttons"] == [{"title": "Opening hours", "payload": "hours"}, {"title": "Balance", "payload": "balance"}]
    assert (await chat.press("hours"))[0]["text"] == "pressed hours"
    assert await runtime.store.count_messages() == 4


async def test_malformed_json_bad_signature_and_oversized_bodies(tmp_path, gateway_client):
    client, runtime = await rest_client(tmp_path, gateway_client, max_body_bytes=4096)
    chat = RestDriver(client)
    await chat.say("hello")
    before = await runtime.store.count_messages()

    response = await chat.post(raw=b'{"sender": "alice", "message_id": ')
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]

    body = json.dumps({"sender": "alice", "message_id": "m-bad-sig", "text": "hi"}).encode()
    response = await chat.post(raw=body, signature=sign(body, "wrong-secret"))
    assert response.status in (401, 403)
    assert "signature" in (await response.json())["error"].lower()

    big = {"type": "audio", "mime": "audio/ogg", "data_base64": "A" * 12_000}
    response = await chat.post({"sender": "alice", "message_id": "m-big", "attachments": [big]})
    assert response.status == 413
    answer = await response.json()
    assert set(answer) == {"error", "hint"}  # the same shape as every other error answer
    assert "larger than" in answer["error"] and "max_body_bytes" in answer["hint"]
    response = await client.post("/agents/conversations/nope/close", headers={"X-VoiceGate-Agent": "ghost"})
    assert response.status == 401 and set(await response.json()) == {"error", "hint"}

    assert await runtime.store.count_messages() == before
    assert (await chat.say("still here?"))[0]["text"] == "echo: still here?"


async def test_voice_notes_reach_the_pipeline_but_their_audio_is_not_stored(tmp_path, gateway_client):
    plugin = gp.CorePlugin()
    client = await gateway_client(make_settings(tmp_path, bots=[{"use": "script"}]), extra_plugins=[plugin])
    runtime = runtime_of(client)
    audio = bytes(range(256)) * 8
    replies = await RestDriver(client).send_audio(audio, mime="audio/ogg")
    assert replies[0]["text"] == "echo: None"
    assert plugin.built["script"].turns[-1].message.audio.data == audio  # the bot (or authenticator) gets the bytes
    [conv] = await runtime.store.conversations()
    [inbound, _] = await runtime.store.history(conv.id)
    assert inbound.body["attachments"] == [{"kind": "audio", "mime": "audio/ogg", "size": len(audio)}]
    assert "data" not in str(inbound.body)
