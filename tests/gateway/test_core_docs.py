"""The docs cannot drift from the code: every hook and core key documented, the first-plugin example runs."""

from __future__ import annotations

import re
from pathlib import Path

import example_shout
import pytest
from pydantic import BaseModel

from gateway.hookspecs import ALL_HOOKS
from gateway.settings import GatewaySettings
from gateway.testing import RestDriver, make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_hook_has_a_section_in_the_plugin_guide():
    guide = (DOCS / "plugins.md").read_text()
    for hook in ALL_HOOKS:
        assert f"### {hook.__name__}\n" in guide, f"docs/plugins.md has no section for {hook.__name__}"
        assert hook.__doc__ and len(hook.__doc__.strip()) > 40, f"{hook.__name__} needs a docstring"


def test_the_first_plugin_in_the_guide_is_the_tested_example():
    guide = (DOCS / "plugins.md").read_text()
    first_block = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    assert first_block == Path(example_shout.__file__).read_text()


async def test_the_first_plugin_answers_through_the_app(tmp_path, gateway_client):
    settings = make_settings(tmp_path, bots=[{"use": "shout", "settings": {"suffix": "!!"}}])
    client = await gateway_client(settings, extra_plugins=[example_shout])
    assert await RestDriver(client).say("hello") == [{"text": "HELLO!!", "buttons": []}]


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    found = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        annotation = field.annotation
        inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else (inner[0] if inner else None)
        if nested is not None and key != "agents":
            separator = "[]." if str(annotation).startswith("tuple") else "."
            found += _keys(nested, key + separator)
        else:
            found.append(key)
    return found


@pytest.mark.parametrize("key", _keys(GatewaySettings))
def test_every_core_key_is_documented(key):
    assert f"`{key}`" in (DOCS / "configuration.md").read_text(), f"docs/configuration.md does not explain {key}"
