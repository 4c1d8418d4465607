"""Plugin loading: the entry-point group, start-up errors, notification hooks isolated with a timeout."""

from __future__ import annotations

import logging
import textwrap

import gw_plugins as gp
import pytest

from gateway.components import ComponentSpec
from gateway.errors import ConfigError, PluginError
from gateway.hookspecs import hookimpl
from gateway.plugin_manager import installed_plugins, load_plugins
from gateway.testing import RestDriver, make_settings, runtime_of


def install_plugin(tmp_path, monkeypatch, name: str, source: str, *, dist: str = "vg-tmp-plugin") -> None:
    """Install a real distribution with a ``voicegate`` entry point into a folder on sys.path."""
    module = f"vg_tmp_{name}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{dist.replace('-', '_')}_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[voicegate]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


GREETER = """
    from aiohttp import web
    from gateway.components import BotReply, ComponentSpec, PluginSettings
    from gateway.hookspecs import hookimpl
    from gateway.messages import OutboundMessage

    class GreeterSettings(PluginSettings):
        greeting: str = "Hello"

    class Greeter:
        name = "greeter"
        def __init__(self, settings, context):
            self.greeting = settings.greeting
        async def handle(self, turn):
            return BotReply(messages=(OutboundMessage(text=f"{self.greeting}, {turn.message.text}"),))

    @hookimpl
    def register_bots(register):
        register(ComponentSpec("greeter", Greeter, GreeterSettings))
"""


async def test_an_entry_point_plugin_is_loaded_by_name_and_answers(tmp_path, monkeypatch, gateway_client):
    install_plugin(tmp_path, monkeypatch, "greeter", GREETER)
    assert any(p.name == "greeter" and p.distribution == "vg-tmp-plugin-greeter" for p in installed_plugins())
    settings = make_settings(
        tmp_path, **gp.core_sections(auth=False, plugins=["greeter"], bots=[{"use": "greeter", "settings": {"greeting": "Ciao"}}])
    )
    client = await gateway_client(settings, extra_plugins=[gp.CorePlugin()])
    assert await RestDriver(client, path=gp.CHAT_PATH).say("Mario") == [{"text": "Ciao, Mario", "buttons": []}]
    assert runtime_of(client).plugin_manager.names[0] == "greeter"


def test_unknown_plugin_name_lists_the_installed_ones(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "greeter", GREETER)
    with pytest.raises(PluginError, match=r"unknown plugin 'greeterz'.*Installed plugins: .*greeter"):
        load_plugins(["greeterz"])


def test_misspelt_hook_is_a_startup_error(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "typo", """
        from gateway.hookspecs import hookimpl

        @hookimpl
        def register_chanels(register):
            pass
    """)
    with pytest.raises(PluginError, match=r"plugin 'typo'.*register_chanels.*Known hooks: register_channels"):
        load_plugins(["typo"])


def test_plugin_listed_twice_and_import_errors(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "greeter", GREETER)
    with pytest.raises(PluginError, match="listed twice"):
        load_plugins(["greeter", "greeter"])
    install_plugin(tmp_path, monkeypatch, "broken", "import no_such_module_anywhere\n")
    with pytest.raises(PluginError, match=r"plugin 'broken' .*failed to import"):
        load_plugins(["broken"])


def test_duplicate_component_names_name_both_plugins():
    class One:
        __name__ = "one"

        @hookimpl
        def register_bots(self, register):
            register(ComponentSpec("same", lambda s, c: None))

    class Two:
        __name__ = "two"

        @hookimpl
        def register_bots(self, register):
            register(ComponentSpec("same", lambda s, c: None))

    with pytest.raises(PluginError, match=r"two bots are named 'same': registered by plugin 'one' and by plugin 'two'"):
        load_plugins([], [One(), Two()])


def test_async_register_hook_is_refused():
    class Async:
        __name__ = "async_reg"

        @hookimpl
        async def register_bots(self, register):
            pass

    with pytest.raises(PluginError, match="register hooks are synchronous"):
        load_plugins([], [Async()])


def test_unknown_component_and_bad_plugin_settings_are_config_errors(tmp_path):
    from gateway.app import create_app

    sections = gp.core_sections(bots=[{"use": "scrpit"}])
    with pytest.raises(ConfigError, match=r"'bots\[0\]\.use': no loaded plugin provides a bot named 'scrpit'.*Registered bots: fallback, script"):
        create_app(make_settings(tmp_path, **sections), extra_plugins=[gp.CorePlugin()])
    sections = gp.core_sections(channels={"testchat": {"secrte": "x"}})
    with pytest.raises(ConfigError) as info:
        create_app(make_settings(tmp_path, **sections), extra_plugins=[gp.CorePlugin()])
    text = str(info.value)
    assert "'channels.testchat.secret': a required key is missing" in text
    assert "'channels.testchat.secrte': unknown key. Remove it or fix the spelling; allowed keys here: secret, buttons" in text


async def test_a_failing_or_slow_notification_hook_is_logged_and_isolated(tmp_path, gateway_client, caplog):
    recorder = gp.Recorder()
    settings = make_settings(tmp_path, **gp.core_sections(hooks={"timeout_s": 0.2}))
    client = await gateway_client(settings, extra_plugins=[gp.CorePlugin(), gp.Broken(), gp.Slow(), recorder])
    caplog.set_level(logging.ERROR, logger="gateway.plugin_manager")
    replies = await RestDriver(client, path=gp.CHAT_PATH).say("hello")
    assert replies[0]["text"] == "Hi! How can I help?"  # delivered although two plugins misbehave
    runtime = runtime_of(client)
    await runtime.notifier.drain()
    assert runtime.notifier.failures == 2
    assert [k for k, _ in recorder.events] == ["received", "sent"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("plugin 'broken_plugin' raised in on_message_received" in m for m in messages)
    assert any("plugin 'slow_plugin' did not finish on_message_received within 0.2 s" in m for m in messages)


def test_each_app_gets_its_own_plugin_manager(tmp_path):
    from gateway.app import PLUGINS, create_app

    settings = make_settings(tmp_path, **gp.core_sections())
    first = create_app(settings, extra_plugins=[gp.CorePlugin(), gp.Recorder()])
    second = create_app(settings, extra_plugins=[gp.CorePlugin()])
    assert first[PLUGINS].pm is not second[PLUGINS].pm
    assert first[PLUGINS].has_impls("on_handoff") and not second[PLUGINS].has_impls("on_handoff")
