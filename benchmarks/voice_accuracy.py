"""Accuracy: this engine vs the reference use of SpeechBrain, on the real recordings in ../shared/audio.

Reference = SpeechBrain's ``SpeakerRecognition``: ``encode_batch`` on each whole clip (no VAD), the enrolment
embeddings averaged, cosine against the test embedding, no normalisation. Ours = the engine as shipped: energy VAD,
length-normalised template of multi-condition enrolment embeddings (``Engine.check_enrolment_note``), a second
template of the same copies band-limited to 8 kHz for test notes that have no energy above ~4 kHz (``nb`` column:
how many test notes the engine found narrowband), cosine (or AS-norm with ``--cohort``). Both see exactly the same
(degraded) audio.

Conditions degrade the *test* notes only (enrolment is clean, as in the product): ``clean``; ``street`` (0.4 s room
echo + pink noise at 5 dB + Opus 16 kbit/s); ``phone`` (8 kHz band, pink noise 15 dB, AMR-NB 7.95 kbit/s);
``noise5`` (pink noise 5 dB); ``opus8k``. The enrolment augmentation uses white noise at 20/10/5 dB, a 0.3 s room and
Opus 16k, so ``street`` (room, codec) and ``noise5`` (same SNR, other noise colour) share a family with it (flagged
with *). ``phone`` shares no noise or codec with it; its 8 kHz band is matched from the note's own spectrum.

    .venv/bin/python benchmarks/voice_accuracy.py [--conditions clean,street,phone,noise5] [--scores-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared_paths import AUDIO, MODEL_DIR, reference_recognizer  # noqa: E402

SETS = ("passphrase-dev", "passphrase-dev-words")
OVERLAPS_AUGMENTATION = {"street", "noise5"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", default="clean,street,phone,noise5")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cohort", type=Path, help="cohort JSON for AS-norm (must not contain these speakers)")
    parser.add_argument("--scores-out", type=Path, help="write per-trial scores (for `calibrate`-style fitting)")
    args = parser.parse_args()

    import torch

    from voiceprints import Engine, EngineSettings, decode_audio, load_ecapa
    from voiceprints.degrade import degrade
    from voiceprints.evaluation import load_trials
    from voiceprints.metrics import summary
    from voiceprints.scoring import Calibration, Cohort

    torch.set_num_threads(args.threads)
    model = load_ecapa(MODEL_DIR, threads=args.threads)
    cohort = Cohort.load(args.cohort) if args.cohort else None
    engine = Engine(model, EngineSettings(calibration=Calibration(1, 0, {0.01: 0}, normalised=cohort is not None)),
                    cohort=cohort)
    reference = reference_recognizer(args.threads)

    def ref_embed(samples: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return reference.encode_batch(torch.from_numpy(samples)[None]).reshape(-1).numpy()

    conditions = args.conditions.split(",")
    rows, dump = [], {}
    pooled: dict[str, dict[str, list]] = {c: {"ref": [], "ours": [], "labels": []} for c in conditions}
    for name in SETS:
        root = AUDIO / name
        trials = load_trials(root / "trials.jsonl")
        labels = np.array([t.target for t in trials])
        clean = {f: decode_audio((root / f).read_bytes()).samples
                 for f in sorted({f for t in trials for f in (*t.enroll, t.test)})}
        started = time.monotonic()
        enrol_files = sorted({f for t in trials for f in t.enroll})
        ref_enrol = {f: ref_embed(clean[f]) for f in enrol_files}
        our_enrol = {}
        for f in enrol_files:
            note, _ = engine.embed_samples(clean[f], enrolment=True, key=f"{name}/{f}")
            our_enrol[f] = note
        print(f"{name}: {len(trials)} trials ({labels.sum()} target), {len(enrol_files)} enrolment clips embedded "
              f"in {time.monotonic() - started:.0f} s", file=sys.stderr)
        for condition in conditions:
            started = time.monotonic()
            tests = sorted({t.test for t in trials})
            audio = {f: clean[f] if condition == "clean" else degrade(clean[f], condition, key=f"{name}/{f}")
                     for f in tests}
            ref_test = {f: ref_embed(audio[f]) for f in tests}
            our_test, gate = {}, 0
            for f in tests:
                our_test[f], problem = engine.embed_samples(audio[f])
                gate += problem is not None
            narrow = sum(our_test[f].narrowband for f in tests)
            ref_scores, our_scores, our_narrow = [], [], []
            for t in trials:
                enrol = np.mean([ref_enrol[f] for f in t.enroll], axis=0)
                test = ref_test[t.test]
                ref_scores.append(float(enrol @ test / (np.linalg.norm(enrol) * np.linalg.norm(test))))
                voiceprint = engine.template([our_enrol[f] for f in t.enroll])
                our_scores.append(engine.score(voiceprint, our_test[t.test])[1])
                our_narrow.append(engine.narrowband_match(voiceprint, our_test[t.test]))
            ref_s, our_s = summary(np.array(ref_scores), labels), summary(np.array(our_scores), labels)
            rows.append((name, condition, ref_s, our_s, gate, len(tests), narrow))
            pooled[condition]["ref"] += ref_scores
            pooled[condition]["ours"] += our_scores
            pooled[condition]["labels"] += labels.tolist()
            dump[f"{name}/{condition}"] = {"labels": labels.tolist(), "ref": ref_scores, "ours": our_scores,
                                           "narrowband": our_narrow}
            print(f"  {condition}: {time.monotonic() - started:.0f} s; EER reference {100 * ref_s['eer']:.2f} % "
                  f"ours {100 * our_s['eer']:.2f} %", file=sys.stderr, flush=True)
            if args.scores_out:
                args.scores_out.write_text(json.dumps(dump))

    for condition in conditions:
        p = pooled[condition]
        rows.append(("both sets", condition, summary(np.array(p["ref"]), np.array(p["labels"])),
                     summary(np.array(p["ours"]), np.array(p["labels"])), None, None, None))

    scoring = "AS-norm" if cohort is not None else "cosine"
    print(f"\nEER / minDCF(0.01) / FRR@FAR1% — reference (SpeechBrain, plain cosine) vs ours ({scoring}); "
          "* = condition in the enrolment augmentation's family")
    print(f"{'set':22s} {'condition':10s} {'reference':>26s} {'ours':>26s} {'EER ratio':>9s}  gate / nb")
    for name, condition, ref_s, our_s, gate, n, narrow in rows:
        ratio = "0 = 0" if ref_s["eer"] == our_s["eer"] == 0 else (
            "inf" if our_s["eer"] == 0 else f"{ref_s['eer'] / our_s['eer']:.2f}x")
        fmt = lambda s: f"{100 * s['eer']:5.2f}% / {s['min_dcf']:.3f} / {100 * s['frr_at_far_1pct']:5.1f}%"  # noqa: E731
        mark = "*" if condition in OVERLAPS_AUGMENTATION else " "
        gate_txt = "" if gate is None else f"{gate}/{n} re-record, {narrow}/{n} narrowband"
        print(f"{name:22s} {condition + mark:10s} {fmt(ref_s):>26s} {fmt(our_s):>26s} {ratio:>9s}  {gate_txt}")
    if args.scores_out:
        args.scores_out.write_text(json.dumps(dump))


if __name__ == "__main__":
    main()
