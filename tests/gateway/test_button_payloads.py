"""gateway.button_payloads: payloads fitted to a vendor's id limit, and what a press of one reads as."""

from __future__ import annotations

from gateway.button_payloads import PayloadCodec


def test_a_press_reads_as_its_payload_or_after_a_restart_as_its_title() -> None:
    codec = PayloadCodec(40)
    short, long = codec.encode("hours"), codec.encode("x" * 50)
    assert short == "hours" and len(long.encode()) <= 40 and long != "x" * 50
    assert codec.pressed(short, "Opening hours", "Opening hours") == ("Opening hours", "hours")
    assert codec.pressed(long, "Long one", None) == (None, "x" * 50)
    restarted = PayloadCodec(40)  # a digest this process never made: the title, as if typed
    assert restarted.pressed(long, "Long one", None) == ("Long one", None)
    assert restarted.pressed(None, None, "just text") == ("just text", None)
