"""The docs cannot drift from the code: every hook and core key documented, the first-plugin example runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import example_shout
import pytest
from pydantic import BaseModel

from gateway.hookspecs import ALL_HOOKS
from gateway.settings import GatewaySettings

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


def _run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``project`` as a project of its own would run it (its own rootdir and configuration)."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_guides_plugin_and_test_pass_in_a_project_of_their_own(tmp_path):
    """The plugin guide's code and configuration, verbatim, outside this repository: no conftest, the fixture from
    the installed pytest plugin, async tests as the guide configures them."""
    guide = (DOCS / "plugins.md").read_text()
    plugin, test = re.findall(r"```python\n(.*?)```", guide, re.S)[:2]
    pytest_config = next(b for b in re.findall(r"```toml\n(.*?)```", guide, re.S) if "asyncio_mode" in b)
    (tmp_path / "voicegate_shout").mkdir()
    (tmp_path / "voicegate_shout" / "__init__.py").write_text("")
    (tmp_path / "voicegate_shout" / "plugin.py").write_text(plugin)
    (tmp_path / "test_shout.py").write_text(test)
    (tmp_path / "pyproject.toml").write_text(pytest_config)
    result = _run_pytest(tmp_path, "test_shout.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_fixture_says_what_to_install_without_pytest_asyncio(tmp_path):
    # pytest-asyncio made unimportable: its pytest plugin (and pytest-aiohttp, which imports it) disabled, its module
    # shadowed by one that fails to import.
    (tmp_path / "pytest_asyncio.py").write_text("raise ImportError('pytest-asyncio is not installed here')\n")
    (tmp_path / "test_plugin.py").write_text("def test_uses_the_gateway(gateway_client):\n    pass\n")
    result = _run_pytest(tmp_path, "-p", "no:asyncio", "-p", "no:aiohttp", "test_plugin.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the gateway_client fixture is async and needs pytest-asyncio: pip install 'voicegate[test]'" in result.stdout
    assert 'asyncio_mode = "auto"' in result.stdout


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
