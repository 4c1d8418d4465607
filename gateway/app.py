"""The aiohttp application factory.

:func:`create_app` loads the plugins and checks the configuration against them, but opens
nothing: the database, the HTTP session, the components and the desk are started in one
``cleanup_ctx`` pair and torn down in reverse order. Routes of channels are mounted under
``/channels/<name>`` during start-up (before aiohttp freezes the router), the live-agent
desk's under ``/agents``. ``GET /healthz`` answers 200 once everything is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from gateway.agents import AgentDesk
from gateway.components import Authenticator, Bot, Channel, CrmBackend, Inbox
from gateway.config_loader import component_problems, resolved_database_url
from gateway.db.database import Database
from gateway.db.migrate import upgrade_async
from gateway.db.store import Store
from gateway.enrichment import ConfiguredCrm
from gateway.errors import ConfigError, GatewayError, InboundRejected, UnknownConversation
from gateway.http_errors import error_response
from gateway.pipeline import Components, Pipeline, utcnow
from gateway.plugin_manager import Notifier, Plugins, Registered, load_plugins
from gateway.sequencer import Sequencer, make_sequencer
from gateway.turn_cache import TurnCache
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a started gateway runs on (``app[RUNTIME]``)."""

    settings: GatewaySettings
    database: Database
    store: Store
    pipeline: Pipeline
    channels: dict[str, Channel]
    bots: list[Bot]
    crm: list[CrmBackend]
    authenticator: Authenticator | None
    desk: AgentDesk
    http: aiohttp.ClientSession
    plugin_manager: Plugins
    sequencer: Sequencer
    notifier: Notifier


SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("voicegate_settings", GatewaySettings)
PLUGINS: web.AppKey[Plugins] = web.AppKey("voicegate_plugins", Plugins)
RUNTIME: web.AppKey[Runtime] = web.AppKey("voicegate_runtime", Runtime)


@dataclass
class Context:
    """The :class:`gateway.components.GatewayContext` component factories receive."""

    inbox: Inbox
    http: aiohttp.ClientSession
    db_engine: Any
    config_dir: str
    data_dir: str
    clock: Callable[[], datetime] = utcnow
    redis_url: str | None = None  # coordination.redis_url: several instances share the database

    def now(self) -> datetime:
        return self.clock()


def create_app(
    settings: GatewaySettings,
    *,
    extra_plugins: Sequence[object] = (),
    clock: Callable[[], datetime] = utcnow,
) -> web.Application:
    """Build the gateway app for ``settings`` (plus plugin objects passed directly, for tests).

    Raises :class:`gateway.errors.PluginError` (unknown plugin, misspelt hook, duplicate name)
    or :class:`gateway.errors.ConfigError` (unknown component, invalid plugin settings) now;
    connections are opened only when the app starts.
    """
    plugins = load_plugins(settings.plugins, extra_plugins)
    problems = component_problems(settings, plugins.components)
    if problems:
        raise ConfigError(problems)
    # No middleware: every route is wrapped in _guarded as it is added. A middleware would cost
    # each request two extra coroutine layers (aiohttp adds its own current-app one beside it).
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    app[PLUGINS] = plugins
    app.router.add_get("/healthz", _guarded(_healthz, settings.server.max_body_bytes))
    app.cleanup_ctx.append(lambda app: _lifecycle(app, clock))
    app.on_shutdown.append(_close_channels)
    return app


async def _close_channels(app: web.Application) -> None:
    """Close every channel as shut-down begins (``close()`` is idempotent; cleanup calls it again).

    aiohttp waits for open requests, WebSockets included, before running the cleanup steps: a
    web chat page left open would hold shut-down for the whole timeout unless its socket is
    closed (1001, "going away") here first.
    """
    runtime = app.get(RUNTIME)
    if runtime is not None:
        await asyncio.gather(*(_close_quietly(channel, name) for name, channel in runtime.channels.items()))


async def _healthz(request: web.Request) -> web.Response:
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ok", "channels": sorted(runtime.channels)})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler, limit: int) -> Handler:
    """``handler`` that refuses bodies over ``limit`` bytes up front and turns the core's errors
    into clear JSON answers; every route the gateway serves (channels, agents, health) gets it."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > limit:
            # Before any handler reads it: channels that stream the body would otherwise accept it.
            return _too_large(limit)
        try:
            return await handler(request)
        except InboundRejected as exc:
            return error_response(exc.status, str(exc), "Fix the request as the error says and resend it")
        except UnknownConversation as exc:
            return error_response(404, str(exc), "Check the conversation id; list conversations first")
        except web.HTTPRequestEntityTooLarge:
            return _too_large(limit)
        except GatewayError as exc:  # a core error the handler did not expect: the caller may retry
            log.exception("request %s %s failed", request.method, request.path)
            return error_response(503, f"the gateway could not process this request ({exc})", "Retry later")

    return guarded


def _too_large(limit: int) -> web.Response:
    return error_response(
        413, f"the request body is larger than the gateway accepts ({limit} bytes)",
        "Send less data (e.g. a shorter voice note), or raise server.max_body_bytes in the gateway's YAML",
    )


async def _lifecycle(app: web.Application, clock: Callable[[], datetime]) -> AsyncIterator[None]:
    settings, plugins = app[SETTINGS], app[PLUGINS]
    async with contextlib.AsyncExitStack() as stack:
        database = await Database.connect(resolved_database_url(settings), schema=settings.database.db_schema)
        stack.push_async_callback(database.close)
        if settings.database.migrate_on_start:
            await upgrade_async(database)
        store = Store(database)
        stack.push_async_callback(store.committer.drain)
        sequencer = make_sequencer(settings.coordination.redis_url)
        stack.push_async_callback(sequencer.close)
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        notifier = Notifier(plugins.pm, timeout_s=settings.hooks.timeout_s)
        stack.push_async_callback(notifier.drain)  # before the session closes: hooks may use it
        auth = settings.authentication
        pipeline = Pipeline(
            store, sequencer, notifier, agents=settings.agents,
            verified_ttl_s=auth.verified_ttl_s if auth else 900, clock=clock,
            # One instance sees every delivery, so it may skip re-reading its own last write.
            cache=None if settings.coordination.redis_url else TurnCache(),
        )
        os.makedirs(settings.data_path, exist_ok=True)
        context = Context(pipeline, http, database.engine, settings.config_dir, settings.data_path, clock,
                          redis_url=settings.coordination.redis_url)

        channels: dict[str, Channel] = {}
        for name, raw in settings.channels.items():
            channel = await _build(plugins.components.channels[name], raw, context)
            stack.push_async_callback(_close_quietly, channel, name)
            channels[name] = channel
        bots: list[Bot] = []
        for use in settings.bots:
            bot = await _build(plugins.components.bots[use.use], use.settings, context)
            stack.push_async_callback(_close_quietly, bot, use.use)
            bots.append(bot)
        crm: list[ConfiguredCrm] = []
        for crm_use in settings.crm:
            backend = await _build(plugins.components.crm[crm_use.use], crm_use.settings, context)
            stack.push_async_callback(_close_quietly, backend, crm_use.use)
            crm.append(ConfiguredCrm(backend, crm_use.cache_ttl_s))
        authenticator = None
        if auth is not None:
            raw = auth.authenticators.get(auth.use, {})
            authenticator = await _build(plugins.components.authenticators[auth.use], raw, context)
            stack.push_async_callback(_close_quietly, authenticator, auth.use)
        desk = _make_desk(settings, store, pipeline, clock, notifier)
        pipeline.attach(Components(channels=channels, bots=bots, crm=crm, authenticator=authenticator, desk=desk))

        limit = settings.server.max_body_bytes
        for name, channel in channels.items():
            _mount(app, f"/channels/{name}", channel.routes(), limit)
        _mount(app, "/agents", desk.routes(), limit)
        stop = asyncio.Event()
        sweeper = asyncio.create_task(desk.run(stop), name="voicegate-agent-desk")
        stack.push_async_callback(_stop_task, sweeper, stop)

        app[RUNTIME] = Runtime(
            settings=settings, database=database, store=store, pipeline=pipeline, channels=channels, bots=bots,
            crm=[c.backend for c in crm], authenticator=authenticator, desk=desk, http=http,
            plugin_manager=plugins, sequencer=sequencer, notifier=notifier,
        )
        log.info("gateway ready: channels %s, bots %s", ", ".join(channels) or "none", ", ".join(b.name for b in bots) or "none")
        yield


async def _build(registered: Registered, raw: Any, context: Context) -> Any:
    spec = registered.spec
    settings = spec.settings_model.model_validate(raw or {})  # already checked by create_app
    try:
        component = spec.factory(settings, context)
        if inspect.isawaitable(component):
            component = await component
    except GatewayError:
        raise
    except Exception as exc:
        raise GatewayError(f"plugin '{registered.plugin}' failed to build '{spec.name}': {exc!r}") from exc
    return component


def _make_desk(
    settings: GatewaySettings, store: Store, pipeline: Pipeline, clock: Callable[[], datetime], notifier: Notifier
) -> AgentDesk:
    return AgentDesk(settings.agents, store, pipeline, clock, notifier)


def _mount(app: web.Application, prefix: str, routes: Sequence[web.AbstractRouteDef], limit: int) -> None:
    for route in routes:
        if isinstance(route, web.RouteDef):
            route = web.RouteDef(route.method, prefix + route.path, _guarded(route.handler, limit), route.kwargs)
        elif isinstance(route, web.StaticDef):
            route = web.StaticDef(prefix + route.prefix, route.path, route.kwargs)
        else:
            raise GatewayError(f"cannot mount {route!r} under {prefix}: return aiohttp RouteDef/StaticDef objects")
        route.register(app.router)


async def _close_quietly(component: Any, name: str) -> None:
    close = getattr(component, "close", None)
    if close is None:
        return
    try:
        result = close()
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - shut-down goes on
        log.exception("'%s' failed to close", name)


async def _stop_task(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 10)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        task.cancel()
