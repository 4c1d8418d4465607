"""Throughput and latency of the gateway against a bare aiohttp JSON echo server, in one run.

    .venv/bin/python benchmarks/throughput.py [--messages 6000] [--concurrency 32] [--rate 1000] [--seconds 5]

Each server runs in its own process (the load generator in this one), one after the other,
driven by exactly the same load:

* **gateway**: SQLite (WAL) in a temporary folder, the REST channel, the demo bot from
  ``config/flows.yaml``; every inbound and outbound message is committed before the reply
  is returned (group commit shares each commit among concurrent conversations).
* **bare**: an aiohttp app that parses the JSON body and answers a ``replies`` list; it
  persists nothing.

Phase 1 (saturation): ``--concurrency`` requests in flight, ``--messages`` messages after a
warm-up; prints msg/s, p50, p99 and the ratio gateway/bare. Phase 2 (fixed rate): requests are
started at ``--rate`` per second for ``--seconds`` whatever the answers do (open loop), and the
latency is measured from each request's scheduled start, so queueing counts. Every message id
is used once (a repeated id would be a duplicate delivery). Senders are spread over
``--customers`` conversations.

Both servers stay up for the whole run and the saturation rounds alternate between them, so
load from other programs on the machine hits both alike; the server processes' CPU time per
message (from /proc) is printed too, as it depends much less on such load than msg/s does.

``VOICEGATE_BENCH_CPROFILE=FILE`` runs the gateway process under cProfile and writes its stats
to FILE at exit (read them with ``pstats``; the profiler roughly doubles the gateway's CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret"
TEXTS = ["hello", "what are your opening hours?", "ciao, a che ora aprite?", "thanks"]
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- servers


def serve_bare(port: int) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"replies": [{"text": data.get("text", ""), "buttons": []}]})

    app = web.Application()
    app.router.add_post("/channels/rest/messages", echo)
    app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class EchoBotPlugin:
    """``--bot echo``: a one-line bot, for comparing the core without the demo bot's matching."""

    __name__ = "bench_echo_bot"

    def __init__(self) -> None:
        from gateway.hookspecs import hookimpl

        self.register_bots = hookimpl(self._register_bots)

    @staticmethod
    def _register_bots(register):  # type: ignore[no-untyped-def]
        from gateway.components import BotReply, ComponentSpec
        from gateway.messages import OutboundMessage

        class Echo:
            name = "echo"

            async def handle(self, turn):  # type: ignore[no-untyped-def]
                return BotReply(messages=(OutboundMessage(text=turn.message.text or ""),))

        register(ComponentSpec("echo", lambda settings, context: Echo()))


def serve_gateway(port: int, folder: str, bot: str) -> None:
    import logging

    from aiohttp import web

    from gateway.app import create_app
    from gateway.serving import tune_for_serving
    from gateway.settings import GatewaySettings

    logging.basicConfig(level=logging.WARNING)
    flows = REPO / "config" / "flows.yaml"
    settings = GatewaySettings.model_validate(
        {
            "server": {"host": "127.0.0.1", "port": port},
            "database": {"url": f"sqlite+aiosqlite:///{folder}/bench.db"},
            "plugins": ["rest", "demo_bot"] if bot == "demo" else ["rest"],
            "channels": {"rest": {"secret": SECRET}},
            "bots": [{"use": "demo", "settings": {"flows": str(flows)}}] if bot == "demo" else [{"use": "echo"}],
            "data_dir": f"{folder}/data",
        }
    ).with_source(config_path=None, config_dir=str(REPO / "config"))
    extra = [] if bot == "demo" else [EchoBotPlugin()]
    app = create_app(settings, extra_plugins=extra)
    tune_for_serving(app)  # as `voicegate run` does

    async def statistics_at_exit(app: web.Application) -> None:
        from gateway.app import RUNTIME

        runtime = app[RUNTIME]
        committer, cache = runtime.store.committer, runtime.pipeline.cache
        per_batch = committer.write_sets / committer.batches if committer.batches else 0
        print(f"  gateway: {committer.write_sets} write sets in {committer.batches} transactions "
              f"({per_batch:.1f} per commit); conversation cache hits {cache.hits if cache else 0}, "
              f"misses {cache.misses if cache else 0}", flush=True)

    app.on_shutdown.append(statistics_at_exit)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --------------------------------------------------------------------------- load


@dataclass
class Result:
    name: str
    phase: str
    sent: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    cpu_ms_per_msg: float = float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Load:
    """Builds signed, unique messages and sends them."""

    def __init__(self, base: str, session: aiohttp.ClientSession, customers: int) -> None:
        self.url = base + "/channels/rest/messages"
        self.session = session
        self.customers = customers
        self.run = uuid.uuid4().hex[:8]
        self.counter = 0

    async def one(self) -> float:
        self.counter += 1
        n = self.counter
        body = json.dumps(
            {"sender": f"bench-{n % self.customers}", "message_id": f"{self.run}-{n}", "text": TEXTS[n % len(TEXTS)]}
        ).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        started = time.perf_counter()
        async with self.session.post(
            self.url, data=body, headers={"Content-Type": "application/json", "X-VoiceGate-Signature": signature}
        ) as response:
            payload = await response.read()
            if response.status != 200 or not json.loads(payload)["replies"]:
                raise RuntimeError(f"{response.status}: {payload[:200]!r}")
        return (time.perf_counter() - started) * 1000


async def saturate(name: str, load: Load, messages: int, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    remaining = messages

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                latencies.append(await load.one())
            except Exception as exc:  # noqa: BLE001 - counted and shown
                errors += 1
                if errors <= 3:
                    print(f"  {name}: error {exc}", file=sys.stderr)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, "saturation", messages, time.perf_counter() - started, latencies, errors)


async def fixed_rate(name: str, load: Load, rate: float, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    interval = 1.0 / rate
    tasks: list[asyncio.Task[None]] = []

    async def send(scheduled: float) -> None:
        nonlocal errors
        try:
            await load.one()
            latencies.append((time.perf_counter() - scheduled) * 1000)  # queueing included
        except Exception:  # noqa: BLE001
            errors += 1

    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(scheduled)))
    await asyncio.gather(*tasks)
    return Result(name, f"fixed {rate:.0f}/s", total, time.perf_counter() - start, latencies, errors)


# --------------------------------------------------------------------------- driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(base: str, session: aiohttp.ClientSession, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server process exited with {process.returncode} (see its error above)")
        try:
            async with session.get(base + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {base} did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One server process (bare or gateway) and the load aimed at it."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="voicegate-bench-")
        profile_to = os.environ.get("VOICEGATE_BENCH_CPROFILE") if name == "gateway" else None
        profiler = ["-m", "cProfile", "-o", os.path.abspath(profile_to)] if profile_to else []  # the child runs in REPO
        command = [sys.executable, *profiler, __file__, "--serve", name, "--port", str(self.port), "--folder", self.folder,
                   "--bot", args.bot]
        self.process = subprocess.Popen(command, cwd=REPO)
        self.base = f"http://127.0.0.1:{self.port}"
        self.load: Load | None = None

    async def phase(self, run) -> Result:  # type: ignore[no-untyped-def]
        before = cpu_seconds(self.process.pid)
        result = await run(self.name, self.load)
        result.cpu_ms_per_msg = (cpu_seconds(self.process.pid) - before) * 1000 / max(1, len(result.latencies_ms))
        return result

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


async def measure_all(args: argparse.Namespace) -> list[Result]:
    """Both servers up at once; saturation rounds alternate between them, so background load on
    this machine hits both alike; then the fixed-rate phase for each."""
    servers = [Server("bare", args), Server("gateway", args)]
    results: list[Result] = []
    try:
        connector = aiohttp.TCPConnector(limit=max(args.concurrency, 256))
        async with aiohttp.ClientSession(connector=connector) as session:
            for server in servers:
                await wait_ready(server.base, session, server.process)
                server.load = Load(server.base, session, args.customers)
                await saturate(server.name, server.load, args.warmup, args.concurrency)  # connections, caches
            for _ in range(args.rounds):
                for server in servers:
                    results.append(await server.phase(lambda n, l: saturate(n, l, args.messages, args.concurrency)))
                    await asyncio.sleep(0.3)
            for server in servers:
                results.append(await server.phase(lambda n, l: fixed_rate(n, l, args.rate, args.seconds)))
                await asyncio.sleep(0.3)
    finally:
        for server in servers:
            server.stop()
    return results


def report(results: list[Result]) -> None:
    print(f"\n{'server':<8} {'phase':<12} {'msgs':>6} {'errors':>6} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/msg':>11}")
    for r in results:
        print(f"{r.name:<8} {r.phase:<12} {len(r.latencies_ms):>6} {r.errors:>6} {r.rate:>8.0f} {r.pct(0.50):>8.2f} "
              f"{r.pct(0.99):>8.2f} {r.cpu_ms_per_msg:>11.3f}")
    sat = {name: [r for r in results if r.name == name and r.phase == "saturation"] for name in ("bare", "gateway")}
    ratios = [g.rate / b.rate for g, b in zip(sat["gateway"], sat["bare"]) if b.rate]
    cpu = {name: statistics.median(r.cpu_ms_per_msg for r in rs) for name, rs in sat.items()}
    fixed = next(r for r in results if r.name == "gateway" and r.phase.startswith("fixed"))
    fixed_bare = next(r for r in results if r.name == "bare" and r.phase.startswith("fixed"))
    best = max(r.rate for r in sat["gateway"]) / max(r.rate for r in sat["bare"])
    print(f"\nratio gateway/bare, msg/s at saturation: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; best/best {best:.2f}; target >= 0.65)")
    print(f"server CPU per message: gateway {cpu['gateway']:.3f} ms, bare {cpu['bare']:.3f} ms "
          f"(capacity ratio bare/gateway CPU: {cpu['bare'] / cpu['gateway']:.2f})")
    print(f"at {fixed.phase.split()[1]}: gateway p50 {fixed.pct(0.50):.2f} ms, p99 {fixed.pct(0.99):.2f} ms "
          f"(target <= 25 ms); bare p50 {fixed_bare.pct(0.50):.2f} ms, p99 {fixed_bare.pct(0.99):.2f} ms")


async def main_async(args: argparse.Namespace) -> None:
    print(f"gateway bot: {args.bot}; {args.rounds} x {args.messages} messages at concurrency {args.concurrency} over "
          f"{args.customers} customers, then {args.rate:.0f} msg/s for {args.seconds:.0f} s; CPUs: {os.cpu_count()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    report(await measure_all(args))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--bot", choices=["demo", "echo"], default="demo", help="the gateway's bot (default: demo bot)")
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bare":
        serve_bare(args.port)
    elif args.serve == "gateway":
        serve_gateway(args.port, args.folder, args.bot)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
