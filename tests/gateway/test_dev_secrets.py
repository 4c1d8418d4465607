"""scripts/dev-secrets writes every secret config/gateway.yaml reads, once, and completes older files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dev-secrets"


def _values(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(.*)$", path.read_text(), flags=re.M))


def test_writes_every_variable_the_default_config_needs_and_never_overwrites(tmp_path):
    target = tmp_path / "var" / "secrets.env"
    subprocess.run(["bash", str(SCRIPT), str(target)], check=True, env={"PATH": "/usr/bin:/bin"})
    first = _values(target)
    config = "\n".join(line.split("#")[0] for line in (REPO / "config" / "gateway.yaml").read_text().splitlines())
    needed = set(re.findall(r"\$\{(VOICEGATE_\w+)\}", config))  # those without a default
    assert needed <= set(first), needed - set(first)
    assert {"VOICEGATE_AGENT_TOKEN", "VOICEGATE_AGENT_TOKEN_LUCA"} <= set(first)
    assert first["VOICEGATE_AGENT_TOKEN"] != first["VOICEGATE_AGENT_TOKEN_LUCA"]
    assert target.stat().st_mode & 0o077 == 0

    subprocess.run(["bash", str(SCRIPT), str(target)], check=True, env={"PATH": "/usr/bin:/bin"})
    assert _values(target) == first


def test_an_older_file_gets_only_what_it_lacks(tmp_path):
    target = tmp_path / "secrets.env"
    target.write_text("export VOICEGATE_REST_SECRET=kept\nexport VOICEGATE_AGENT_TOKEN=kept-too\n")
    subprocess.run(["bash", str(SCRIPT), str(target)], check=True, env={"PATH": "/usr/bin:/bin"})
    values = _values(target)
    assert values["VOICEGATE_REST_SECRET"] == "kept" and values["VOICEGATE_AGENT_TOKEN"] == "kept-too"
    assert values["VOICEGATE_AGENT_TOKEN_LUCA"] and values["VOICEGATE_VOICEPRINT_KEYS"].startswith("dev1:")
