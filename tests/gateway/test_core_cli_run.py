"""``voicegate run`` as an operator uses it: the real console script, real plugins, a signal to stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

CONFIG = """\
server: {host: 127.0.0.1, port: 0}
database: {url: "sqlite+aiosqlite:///gateway.db"}
data_dir: data
plugins: [rest, webchat, demo_bot]
channels:
  rest: {secret: "${VG_RUN_SECRET}"}
  webchat: {}
bots:
  - use: demo
    settings: {flows: %s}
"""


def voicegate_command() -> list[str]:
    script = Path(sys.executable).with_name("voicegate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


async def test_run_prints_the_web_chat_url_serves_and_stops_on_sigterm(tmp_path):
    flows = Path(__file__).resolve().parents[2] / "config" / "flows.yaml"
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG % flows)
    process = await asyncio.create_subprocess_exec(
        *voicegate_command(), "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "VG_RUN_SECRET": "run-secret-123"},
    )
    try:
        output = b""
        while b"/channels/webchat/" not in output:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"voicegate run exited early:\n{output.decode()}"
            output += line
        url = re.search(rb"(http://127\.0\.0\.1:\d+/channels/webchat/)", output).group(1).decode()
        base = url.rsplit("/channels/", 1)[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as response:
                assert response.status == 200
            async with http.get(url) as response:
                assert response.status == 200
                assert "text/html" in response.headers["Content-Type"]
        assert (tmp_path / "gateway.db").exists()  # relative paths resolve against the config's folder
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 30)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert b"Traceback" not in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_run_with_an_invalid_config_exits_2_with_file_and_line(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("server: {port: 0}\nplugins: [rest]\nchanels: {}\n")
    process = await asyncio.create_subprocess_exec(
        *voicegate_command(), "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"{config}:3 at 'chanels': unknown key" in err.decode()


async def test_voiceprints_commands_are_delegated_to_the_voiceprints_cli():
    process = await asyncio.create_subprocess_exec(
        *voicegate_command(), "voiceprints", "--help",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    assert b"voicegate voiceprints" in out and b"fetch-model" in out
