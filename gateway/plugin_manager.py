"""Loading plugins and collecting the components they register.

One fresh :class:`pluggy.PluginManager` per app (never a global), built by :func:`load_plugins`:

* the ``voicegate`` entry-point group is the only way plugins are found by name — built-in
  plugins register there exactly like third-party ones; the YAML ``plugins:`` list says which
  are loaded, in which order;
* plugin objects passed directly (tests, embedding) are registered after them;
* ``check_pending()`` makes a misspelt hook name a start-up error;
* register hooks are called once per implementation so every component is attributed to
  its plugin, and two components of one kind with the same name are an error naming both.

:class:`Notifier` runs the notification hooks: each implementation on its own, awaited with a
timeout, its failure logged with the plugin's name and never passed on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Sequence

import pluggy

from gateway import hookspecs
from gateway.components import ComponentSpec
from gateway.errors import PluginError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME

# register hook -> the kind of component it registers (used in messages and YAML sections)
REGISTER_HOOKS: dict[str, str] = {
    "register_channels": "channel",
    "register_bots": "bot",
    "register_crm_backends": "CRM backend",
    "register_authenticators": "authenticator",
}


@dataclass(frozen=True)
class Registered:
    """A component spec and the plugin that registered it."""

    spec: ComponentSpec[Any]
    plugin: str


@dataclass
class Components:
    """Everything the loaded plugins registered, by kind and name."""

    channels: dict[str, Registered] = field(default_factory=dict)
    bots: dict[str, Registered] = field(default_factory=dict)
    crm: dict[str, Registered] = field(default_factory=dict)
    authenticators: dict[str, Registered] = field(default_factory=dict)

    def of_kind(self, hook_name: str) -> dict[str, Registered]:
        return {
            "register_channels": self.channels,
            "register_bots": self.bots,
            "register_crm_backends": self.crm,
            "register_authenticators": self.authenticators,
        }[hook_name]


@dataclass(frozen=True)
class InstalledPlugin:
    """An entry point of the ``voicegate`` group, for ``voicegate plugins``."""

    name: str
    module: str
    distribution: str | None
    version: str | None


def installed_plugins() -> list[InstalledPlugin]:
    """Every plugin installed in the ``voicegate`` entry-point group, sorted by name."""
    found = []
    for ep in _entry_points().values():
        dist = getattr(ep, "dist", None)
        found.append(
            InstalledPlugin(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
        )
    return sorted(found, key=lambda p: p.name)


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def new_plugin_manager() -> pluggy.PluginManager:
    """An empty plugin manager that knows VoiceGate's hook specifications."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


class Plugins:
    """The plugins of one app: the pluggy manager plus the components they registered."""

    def __init__(self, pm: pluggy.PluginManager, components: Components, names: Sequence[str]) -> None:
        self.pm = pm
        self.components = components
        self.names = tuple(names)  # plugin names in load order

    def has_impls(self, hook_name: str) -> bool:
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())


def load_plugins(names: Sequence[str], extra_plugins: Sequence[object] = ()) -> Plugins:
    """Load the entry-point plugins ``names`` (in order) and ``extra_plugins``; collect components.

    Raises :class:`PluginError` for an unknown or unimportable plugin name, a plugin listed
    twice, a misspelt hook, or two components of one kind with the same name.
    """
    pm = new_plugin_manager()
    available = _entry_points()
    loaded: list[str] = []
    for name in names:
        if name in loaded:
            raise PluginError(f"plugin '{name}' is listed twice in 'plugins'; list each plugin once")
        ep = available.get(name)
        if ep is None:
            installed = ", ".join(sorted(available)) or "(none)"
            raise PluginError(
                f"unknown plugin '{name}' in 'plugins': no entry point of that name in the "
                f"'{ENTRY_POINT_GROUP}' group. Installed plugins: {installed}. Fix the spelling or "
                "install the package that provides it (pip install ...)."
            )
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginError(f"plugin '{name}' ({ep.value}) failed to import: {exc!r}") from exc
        _register(pm, module, name)
        loaded.append(name)
    for index, plugin in enumerate(extra_plugins):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}#{index}"
        _register(pm, plugin, name)
        loaded.append(name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin '{pm.get_name(exc.plugin) or exc.plugin}' implements a hook that does not exist "
            f"({exc}). Known hooks: {', '.join(_hook_names())}. Fix the spelling."
        ) from exc
    return Plugins(pm, _collect(pm), loaded)


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # the same object or name twice
        raise PluginError(f"plugin '{name}' is registered twice: {exc}. Load each plugin once.") from exc
    except pluggy.PluginValidationError as exc:  # wrong arguments in an implementation
        raise PluginError(f"plugin '{name}' has an invalid hook implementation: {exc}") from exc


def _hook_names() -> list[str]:
    return [h.__name__ for h in hookspecs.ALL_HOOKS]


def _collect(pm: pluggy.PluginManager) -> Components:
    components = Components()
    for hook_name, kind in REGISTER_HOOKS.items():
        target = components.of_kind(hook_name)
        # One call per implementation: pluggy would hide which plugin registered what.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():

            def register(spec: ComponentSpec[Any], _plugin: str = impl.plugin_name) -> None:
                if not isinstance(spec, ComponentSpec):
                    raise PluginError(
                        f"plugin '{_plugin}' passed {spec!r} to register in {hook_name}; "
                        "pass a gateway.components.ComponentSpec"
                    )
                previous = target.get(spec.name)
                if previous is not None:
                    raise PluginError(
                        f"two {kind}s are named '{spec.name}': registered by plugin '{previous.plugin}' and by "
                        f"plugin '{_plugin}'. Disable one of the plugins in 'plugins'."
                    )
                target[spec.name] = Registered(spec, _plugin)

            kwargs = {"register": register} if "register" in impl.argnames else {}
            try:
                result = impl.function(**kwargs)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001 - a start-up error naming the plugin
                raise PluginError(f"plugin '{impl.plugin_name}' failed in {hook_name}: {exc!r}") from exc
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise PluginError(
                    f"plugin '{impl.plugin_name}' implements {hook_name} as async; register hooks are "
                    "synchronous (they only hand ComponentSpecs to register)"
                )
    return components


class Notifier:
    """Runs notification hooks in the background, each implementation isolated and time-limited.

    Delivery to the customer never waits for plugins: :meth:`notify` schedules the calls and
    returns. :meth:`drain` waits for what is scheduled (shut-down, tests).
    """

    def __init__(self, pm: pluggy.PluginManager, *, timeout_s: float = 5.0) -> None:
        self._pm = pm
        self._timeout_s = timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0  # implementations that raised or timed out (statistics, tests)
        # Plugins are fixed once the app is built; asked on every message, so computed once.
        self._implemented = {
            h.__name__ for h in hookspecs.ALL_HOOKS if getattr(pm.hook, h.__name__).get_hookimpls()
        }

    def wanted(self, hook_name: str) -> bool:
        """True if any plugin implements ``hook_name`` (skip building events otherwise)."""
        return hook_name in self._implemented

    def notify(self, calls: Sequence[tuple[str, object]]) -> None:
        """Schedule ``(hook_name, event)`` calls, run in order, after the caller's commit."""
        calls = [c for c in calls if self.wanted(c[0])]
        if not calls:
            return
        task = asyncio.create_task(self._run(calls), name="voicegate-notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every scheduled notification finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, calls: Sequence[tuple[str, object]]) -> None:
        for hook_name, event in calls:
            impls = getattr(self._pm.hook, hook_name).get_hookimpls()
            await asyncio.gather(*(self._call_one(hook_name, impl, event) for impl in impls))

    async def _call_one(self, hook_name: str, impl: Any, event: object) -> None:
        try:
            kwargs = {"event": event} if "event" in impl.argnames else {}
            result = impl.function(**kwargs)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, self._timeout_s)
        except asyncio.TimeoutError:
            self.failures += 1
            log.error("plugin '%s' did not finish %s within %.1f s; ignored", impl.plugin_name, hook_name, self._timeout_s)
        except Exception:  # noqa: BLE001 - one broken plugin never stops the others
            self.failures += 1
            log.exception("plugin '%s' raised in %s; ignored", impl.plugin_name, hook_name)
