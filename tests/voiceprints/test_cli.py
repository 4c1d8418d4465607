"""`voicegate voiceprints ...` through voiceprints.cli.main (the gateway CLI delegates here)."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from voiceprints import KeyRing, Vault
from voiceprints.cli import main
from voiceprints.scoring import Calibration


@pytest.fixture
def small_trials(tmp_path):
    """A small real trial list over passphrase-dev: george enrolled, one target and two impostor tests."""
    enroll = [f"george/0{i}.wav" for i in range(3)]
    lines = [{"enroll": enroll, "test": "george/04.wav", "target": True},
             {"enroll": enroll, "test": "jackson/05.wav", "target": False},
             {"enroll": enroll, "test": "theo/05.wav", "target": False}]
    path = tmp_path / "trials.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.mark.model
def test_evaluate_json_and_calibrate(small_trials, tmp_path, audio_dir, model_dir, monkeypatch, capsys):
    monkeypatch.setenv("VOICEGATE_MODEL_DIR", str(model_dir))  # the model comes from the environment
    root = str(audio_dir / "passphrase-dev")
    code, out = _run("evaluate", "--trials", str(small_trials), "--audio-root", root, "--json")
    assert code == 0
    figures = json.loads(out)
    assert {"eer", "min_dcf", "frr_at_far_1pct", "frr_at_far_0_1pct", "trials"} <= set(figures)
    assert figures["trials"] == 3 and figures["eer"] == 0.0  # clean passphrase clips separate perfectly
    assert "] 6/6" in capsys.readouterr().err  # progress bar on stderr (6 files)
    code, out = _run("evaluate", "--trials", str(small_trials), "--audio-root", root, "--quiet")
    assert code == 0 and "EER         0.00 %" in out and "minDCF" in out

    target = tmp_path / "thresholds.yaml"
    code, out = _run("calibrate", "--trials", str(small_trials), "--audio-root", root, "--out", str(target),
                     "--far", "0.5", "--quiet")
    import yaml

    calibration = Calibration.from_dict(yaml.safe_load(target.read_text()))
    assert code == 0 and "FAR 50 %" in out and not calibration.normalised
    assert -1.0 < calibration.thresholds[0.5] < 0.5 and calibration.slope > 0  # between the two impostors


def test_evaluate_errors_are_reported_not_raised(tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.delenv("VOICEGATE_MODEL_DIR", raising=False)
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"enroll": "a.wav", "test": "b.wav", "target": true}\n')
    assert main(["evaluate", "--trials", str(bad), "--audio-root", str(tmp_path)]) == 1
    assert "pass --model DIR, set VOICEGATE_MODEL_DIR" in capsys.readouterr().err
    assert main(["evaluate", "--trials", str(bad), "--audio-root", str(tmp_path), "--model", str(model_dir)]) == 1
    assert "t.jsonl:1: not a trial" in capsys.readouterr().err
    assert main(["evaluate"]) == 2  # usage error: argparse's message, no exit
    assert main(["fetch-model", str(tmp_path / "m"), "--source", "bogus"]) == 2


async def test_rotate_key_and_delete(tmp_path, monkeypatch):
    import numpy as np

    from tests.voiceprints.test_vault import _print

    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    old = KeyRing.generate("old")
    engine = create_async_engine(url)
    vault = Vault(engine, old)
    await vault.create_schema()
    await vault.save("alice", _print(1))
    await vault.save("bob", _print(2))

    code, entry = _run("rotate-key", "--new-key", "--key-id", "new")
    assert code == 0 and entry.startswith("new:")
    monkeypatch.setenv("VOICEGATE_VOICEPRINT_KEYS", f"{entry.strip()},{old.export()}")
    # main() runs its own event loop: call it from a worker thread, as a real CLI process would be separate.
    import asyncio

    code, out = await asyncio.to_thread(_run, "rotate-key", "--database-url", url)
    assert code == 0 and "Re-encrypted 2 rows under key 'new'" in out and "old can be removed" not in out
    assert "No rows use old any more" in out
    assert await Vault(engine, KeyRing.from_env()).count_by_key() == {"new": 2}

    code, out = await asyncio.to_thread(_run, "delete", "alice", "--database-url", url)
    assert code == 0 and "Deleted all voice data of alice" in out
    fresh = Vault(engine, KeyRing.from_env())
    assert await fresh.load("alice") is None
    assert np.array_equal((await fresh.load("bob")).template, _print(2).template)
    code, out = await asyncio.to_thread(_run, "delete", "alice", "--database-url", url)
    assert "Nothing stored for alice" in out
    await engine.dispose()


def test_the_model_folder_comes_from_model_else_the_environment_else_the_config(tmp_path, monkeypatch, capsys):
    """``voicegate voiceprints evaluate``: --model, else VOICEGATE_MODEL_DIR, else the gateway YAML's
    authentication.authenticators.voice.model_dir (--config FILE, default config/gateway.yaml), relative to its folder.
    The folders do not exist, so the error names the one that was chosen."""
    from gateway.cli import main as voicegate

    trials = tmp_path / "t.jsonl"
    trials.write_text('{"enroll": ["a.wav"], "test": "b.wav", "target": true}\n')
    (tmp_path / "config").mkdir()
    yaml_text = "authentication:\n  use: voice\n  authenticators:\n    voice: {model_dir: models/from-config}\n"
    (tmp_path / "config" / "gateway.yaml").write_text(yaml_text)
    (tmp_path / "other.yaml").write_text(yaml_text.replace("from-config", "from-other"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOICEGATE_MODEL_DIR", raising=False)

    def folder_tried(*extra: str) -> str:
        code = voicegate(["voiceprints", "evaluate", "--trials", str(trials), "--audio-root", str(tmp_path), *extra])
        err = capsys.readouterr().err
        assert code == 1, err
        return err

    assert f"{tmp_path / 'config' / 'models' / 'from-config'} does not exist" in folder_tried()  # default config
    assert f"{tmp_path / 'models' / 'from-other'} does not exist" in folder_tried("--config", "other.yaml")
    monkeypatch.setenv("VOICEGATE_MODEL_DIR", str(tmp_path / "from-env"))
    assert f"{tmp_path / 'from-env'} does not exist" in folder_tried("--config", "other.yaml")
    assert f"{tmp_path / 'from-flag'} does not exist" in folder_tried("--model", str(tmp_path / "from-flag"))
    monkeypatch.delenv("VOICEGATE_MODEL_DIR")
    (tmp_path / "config" / "gateway.yaml").unlink()
    assert "No model folder" in folder_tried()  # nothing configured anywhere: says how to give one
    assert "cannot read the configuration missing.yaml" in folder_tried("--config", "missing.yaml")
