"""Loading the ECAPA model: offline, sha256-verified, clear errors for missing or altered files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from voiceprints import MODEL_ID, MODEL_REVISION, ModelError, load_ecapa
from voiceprints.model import PINNED_FILES, verify_model_dir


def _link_copy(src: Path, dst: Path, skip: str | None = None) -> None:
    dst.mkdir()
    for name in PINNED_FILES:
        if name != skip:
            os.symlink(src / name, dst / name)


def test_missing_folder_says_how_to_get_the_model(tmp_path):
    with pytest.raises(ModelError) as info:
        load_ecapa(tmp_path / "nowhere")
    assert "does not exist" in str(info.value) and "voicegate voiceprints fetch-model" in str(info.value)


def test_incomplete_folder_names_the_missing_file(tmp_path, model_dir):
    _link_copy(model_dir, tmp_path / "m", skip="embedding_model.ckpt")
    with pytest.raises(ModelError) as info:
        load_ecapa(tmp_path / "m")
    assert "embedding_model.ckpt is missing" in str(info.value)


def test_label_encoder_hint(tmp_path, model_dir):
    _link_copy(model_dir, tmp_path / "m", skip="label_encoder.txt")
    os.symlink(model_dir / "label_encoder.ckpt", tmp_path / "m" / "label_encoder.ckpt")
    with pytest.raises(ModelError, match="copy label_encoder.ckpt to label_encoder.txt"):
        verify_model_dir(tmp_path / "m")


def test_altered_file_fails_the_hash_check(tmp_path, model_dir):
    _link_copy(model_dir, tmp_path / "m", skip="hyperparams.yaml")
    text = (model_dir / "hyperparams.yaml").read_bytes()
    (tmp_path / "m" / "hyperparams.yaml").write_bytes(text.replace(b"n_mels: 80", b"n_mels: 81"))  # same size
    with pytest.raises(ModelError, match="pinned sha256"):
        verify_model_dir(tmp_path / "m")
    (tmp_path / "m" / "hyperparams.yaml").write_bytes(text + b"\n")
    with pytest.raises(ModelError, match="expected 1919"):
        verify_model_dir(tmp_path / "m")


def test_copied_folder_loads_without_network(tmp_path, model_dir, monkeypatch):
    # A verbatim copy elsewhere loads; hub access is impossible (any attempt would raise).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("README.md"))
    import torch

    # The backend in force, not "auto": timing both again could flip the process-wide choice under the session's
    # shared model (the two are close on some CPUs).
    model = load_ecapa(copy, conv_backend="onednn" if torch.backends.mkldnn.enabled else "native")
    assert (model.model_id, model.model_revision) == (MODEL_ID, MODEL_REVISION)
    assert model.model_dir == copy.resolve()


@pytest.mark.model
def test_real_weights_separate_speakers(ecapa, read_audio):
    from voiceprints import decode_audio

    emb = {name: ecapa.embed(decode_audio(read_audio(f"passphrase-dev/{name}")).samples)
           for name in ("george/00.wav", "george/01.wav", "jackson/00.wav")}
    same = float(emb["george/00.wav"] @ emb["george/01.wav"])
    other = float(emb["george/00.wav"] @ emb["jackson/00.wav"])
    assert emb["george/00.wav"].shape == (192,) and abs(np.linalg.norm(emb["george/00.wav"]) - 1) < 1e-5
    # A randomly initialised ECAPA scores ~0.98 on every pair: check the gap, not only the same-speaker score.
    assert same > 0.45 and other < 0.3 and same - other > 0.3


@pytest.mark.model
def test_both_convolution_backends_give_the_same_embedding(ecapa, read_audio):
    """load_ecapa picks oneDNN or ATen's own convolutions by timing both (whichever is faster on this CPU); the
    choice must never change a score."""
    import torch

    from voiceprints import decode_audio
    from voiceprints.model import use_conv_backend

    assert ecapa.conv_backend in ("onednn", "native")
    # Not checked: that ecapa's choice is still in force. The choice is process-wide and any later load_ecapa in
    # this session (the evaluate CLI's, in test_cli) makes its own, as load_ecapa documents.
    samples = decode_audio(read_audio("passphrase-dev/george/00.wav")).samples
    try:
        use_conv_backend("onednn")
        assert torch.backends.mkldnn.enabled
        onednn = ecapa.embed(samples)
        use_conv_backend("native")
        assert not torch.backends.mkldnn.enabled
        native = ecapa.embed(samples)
    finally:
        use_conv_backend(ecapa.conv_backend)
    assert float(onednn @ native) > 0.9999
    with pytest.raises(ValueError, match="onednn"):
        use_conv_backend("fast")
    with pytest.raises(ValueError, match="conv_backend"):
        load_ecapa(ecapa.model_dir, conv_backend="gpu")
    with pytest.raises(ValueError, match="oneDNN only"):
        load_ecapa(ecapa.model_dir, precision="bf16", conv_backend="native")
