"""CPU time per message of the gateway against a bare aiohttp JSON echo app, both served in this one process.

    .venv/bin/python benchmarks/cpu_per_message.py [--messages 4000] [--rounds 3] [--bot demo|echo]

`throughput.py` measures rates across processes, and on a shared machine its figures move with whatever else
runs (the bare server's own CPU per message varied nearly 2x in one session). This benchmark answers a narrower,
steadier question for A/B comparisons of the gateway's code: how much CPU (process time, so time the process
did not run is not counted) one message costs, HTTP included. Each round serves the gateway (SQLite WAL, the REST
channel, the demo bot) and then the bare echo app on a local port, and drives each with the same 32 keep-alive
raw-socket clients in the same event loop (signed requests, every message id used once). Both figures include
the clients' own work, which is the same for both; the difference is what the gateway adds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import statistics
import sys
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Iterator

from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import EchoBotPlugin  # noqa: E402
SECRET = "benchmark-secret"
TEXTS = ["hello", "what are your opening hours?", "ciao, a che ora aprite?", "thanks"]
CLIENTS = 32
CUSTOMERS = 500


def gateway_app(folder: str, bot: str = "demo") -> web.Application:
    from gateway.app import create_app
    from gateway.serving import tune_for_serving
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.model_validate(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": f"sqlite+aiosqlite:///{folder}/bench.db"},
            "plugins": ["rest", "demo_bot"] if bot == "demo" else ["rest"],
            "channels": {"rest": {"secret": SECRET}},
            "bots": ([{"use": "demo", "settings": {"flows": str(REPO / "config" / "flows.yaml")}}] if bot == "demo"
                     else [{"use": "echo"}]),
            "data_dir": f"{folder}/data",
        }
    ).with_source(config_path=None, config_dir=str(REPO / "config"))
    app = create_app(settings, extra_plugins=[] if bot == "demo" else [EchoBotPlugin()])
    tune_for_serving(app)
    return app


def bare_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"replies": [{"text": data.get("text", ""), "buttons": []}]})

    app = web.Application()
    app.router.add_post("/channels/rest/messages", echo)
    return app


async def drive(port: int, messages: int, ids: Iterator[int], rnd: random.Random) -> None:
    """``messages`` signed REST posts from CLIENTS keep-alive connections; every answer must be a 200."""

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(n):
                k = next(ids)
                body = json.dumps({"sender": f"c{rnd.randrange(CUSTOMERS)}", "message_id": f"m{k}",
                                   "text": TEXTS[k % len(TEXTS)]}).encode()
                signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().encode()
                writer.write(b"POST /channels/rest/messages HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json"
                             b"\r\nX-VoiceGate-Signature: sha256=" + signature + b"\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {head[:200]!r}")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(client(messages // CLIENTS) for _ in range(CLIENTS)))


async def measure(app: web.Application, messages: int, warm_up: int, ids: Iterator[int]) -> float:
    """CPU seconds per message for ``app``, after ``warm_up`` messages (every customer seen, caches warm)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rnd = random.Random(1)
    try:
        await drive(port, warm_up, ids, rnd)
        start = time.process_time()
        await drive(port, messages, ids, rnd)
        return (time.process_time() - start) / (messages // CLIENTS * CLIENTS)
    finally:
        await runner.cleanup()


async def main_async(args: argparse.Namespace) -> None:
    ids = count()
    gateway, bare = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="voicegate-cpu-") as folder:
            gateway.append(await measure(gateway_app(folder, args.bot), args.messages, args.warm_up, ids))
        bare.append(await measure(bare_app(), args.messages, args.warm_up, ids))
    g, b = statistics.median(gateway), statistics.median(bare)
    print(f"CPU per message, server and clients in one process, {args.rounds} rounds of {args.messages} at "
          f"{CLIENTS} connections:")
    print(f"  gateway {g * 1e6:.1f} us (rounds: {', '.join(f'{x * 1e6:.1f}' for x in gateway)})")
    print(f"  bare    {b * 1e6:.1f} us (rounds: {', '.join(f'{x * 1e6:.1f}' for x in bare)})")
    print(f"  gateway adds {(g - b) * 1e6:.1f} us a message; ratio bare/gateway {b / g:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--warm-up", type=int, default=2560, help="messages before measuring (nearly every one of the 500 customers seen)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bot", choices=["demo", "echo"], default="demo",
                        help="the gateway's bot (echo: the core without the demo bot's work, as in throughput.py)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
