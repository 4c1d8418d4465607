"""The REST channel's wire format and signature check, without an app."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.messages import AttachmentKind, Button, OutboundMessage
from gateway.testing import sign as gateway_sign
from voicegate_rest.signature import sign, signature_problem
from voicegate_rest.wire import Limits, RequestProblem, parse_message, reply_json

LIMITS = Limits(max_attachment_bytes=1000, max_attachments=2, max_text_chars=50)


def body(**fields: object) -> bytes:
    return json.dumps({"sender": "alice", "message_id": "m-1", **fields}).encode()


def problem(raw: bytes) -> RequestProblem:
    with pytest.raises(RequestProblem) as caught:
        parse_message(raw, "rest", LIMITS)
    return caught.value


def test_signature_matches_the_documented_scheme_and_gateway_testing() -> None:
    raw = body(text="hi")
    assert sign(raw, "s3cret-key") == gateway_sign(raw, "s3cret-key")
    assert sign(raw, "s3cret-key").startswith("sha256=")
    assert signature_problem(sign(raw, "s3cret-key"), raw, "s3cret-key") is None
    assert signature_problem(sign(raw, "s3cret-key").upper().replace("SHA256=", "sha256="), raw, "s3cret-key") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, "missing"), ("", "missing"), ("md5=abc", "sha256=<hex>"), ("sha256=00", "does not match"),
     ("sha256=é", "does not match")],
)
def test_bad_signatures_say_what_is_wrong(header: str | None, expected: str) -> None:
    assert expected in (signature_problem(header, b"{}", "s3cret-key") or "")


def test_signature_of_another_body_or_secret_is_refused() -> None:
    raw = body(text="hi")
    assert signature_problem(sign(raw, "other-secret"), raw, "s3cret-key") == "the signature does not match the body"
    assert signature_problem(sign(body(text="ho"), "s3cret-key"), raw, "s3cret-key") is not None


def test_a_full_message_is_parsed() -> None:
    audio = b"OggS\x00fake-but-bytes"
    message = parse_message(
        body(text="ciao", button="hours",
             attachments=[{"type": "audio", "mime": "Audio/OGG", "data_base64": base64.b64encode(audio).decode(),
                           "duration_s": 2.5, "filename": "note.ogg"}]),
        "rest", LIMITS,
    )
    assert (message.channel, message.sender, message.message_id) == ("rest", "alice", "m-1")
    assert (message.text, message.button) == ("ciao", "hours")
    note = message.audio
    assert note is not None and note.kind is AttachmentKind.AUDIO
    assert (note.data, note.mime, note.duration_s, note.filename) == (audio, "audio/ogg", 2.5, "note.ogg")


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"[1, 2]", 400, "must be a JSON object, found a list"),
        (json.dumps({"message_id": "m", "text": "x"}).encode(), 400, "'sender' is missing"),
        (json.dumps({"sender": "a", "text": "x"}).encode(), 400, "'message_id' is missing"),
        (json.dumps({"sender": 5, "message_id": "m", "text": "x"}).encode(), 400, "'sender' must be a non-empty string"),
        (body(txt="typo"), 400, "unknown field(s): txt"),
        (body(), 400, "the message is empty"),
        (body(text="   "), 400, "the message is empty"),
        (body(text=["a"]), 400, "'text' must be a string"),
        (body(text="x" * 51), 413, "the limit is 50"),
        (body(attachments="nope"), 400, "'attachments' must be a list"),
        (body(attachments=[{"type": "audio", "mime": "audio/ogg", "data_base64": "!!!"}]), 400, "not valid base64"),
        (body(attachments=[{"type": "sound", "mime": "audio/ogg", "data_base64": "AAAA"}]), 400, ".type is 'sound'"),
        (body(attachments=[{"type": "audio", "data_base64": "AAAA"}]), 400, "mime is missing"),
        (body(attachments=[{"type": "audio", "mime": "audio/ogg"}]), 400, "data_base64 is missing"),
        (body(attachments=[{"type": "audio", "mime": "audio/ogg", "data_base64": "AAAA", "url": "http://x"}]),
         400, "unknown field(s): url"),
        (body(attachments=[{"type": "audio", "mime": "audio/ogg",
                            "data_base64": base64.b64encode(b"x" * 1001).decode()}]), 413, "1001 bytes; the limit is 1000"),
        (body(attachments=[{"type": "file", "mime": "text/plain", "data_base64": "QQ=="}] * 3), 413, "the limit is 2"),
    ],
)
def test_bad_requests_get_a_clear_error_and_hint(raw: bytes, status: int, error: str) -> None:
    found = problem(raw)
    assert found.status == status
    assert error in found.error
    assert found.hint and found.body() == {"error": found.error, "hint": found.hint}


def test_replies_have_the_documented_shape() -> None:
    replies = [OutboundMessage(text="Hi!", buttons=(Button("Opening hours", "hours"),)), OutboundMessage(text="Bye")]
    assert reply_json(replies) == {
        "replies": [
            {"text": "Hi!", "buttons": [{"title": "Opening hours", "payload": "hours"}]},
            {"text": "Bye", "buttons": []},
        ]
    }


def test_ids_fit_the_database_columns() -> None:
    assert parse_message(json.dumps({"sender": "s" * 255, "message_id": "m" * 255, "text": "x"}).encode(), "rest", LIMITS)
    assert "longer than 255" in problem(json.dumps({"sender": "s" * 256, "message_id": "m", "text": "x"}).encode()).error
