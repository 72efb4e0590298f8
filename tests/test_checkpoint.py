"""Checkpoints: safetensors + config round trip; pickles, tampering and mismatches refused."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from conftest import tiny_config

from infp_sdk.model import CheckpointError, INFPModel, load_model, save_model
from infp_sdk.model.config import DiTConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = INFPModel(tiny_config())
    model.set_motion_stats(torch.randn(100, 62) * 0.3 + 0.1)
    return model, save_model(model, tmp_path / "model.safetensors")


def test_round_trip(saved, tmp_path):
    model, path = saved
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert load_model(tmp_path).config == model.config  # a folder with one checkpoint


def test_half_precision_file(saved, tmp_path):
    model, full = saved
    half = save_model(model, tmp_path / "half.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    for name, value in loaded.state_dict().items():
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, model.state_dict()[name], atol=2e-3, rtol=1e-2)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt"])
def test_pickles_are_refused_by_name(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="pickle.*safetensors"):
        load_model(path)


def test_pickle_in_disguise_is_refused(tmp_path):
    for i, payload in enumerate([pickle.dumps({"a": 1}), None]):
        path = tmp_path / f"disguised{i}.safetensors"
        if payload is None:
            torch.save({"w": torch.zeros(3)}, path)  # zip container
        else:
            path.write_bytes(payload)
        with pytest.raises(CheckpointError, match="pickle"):
            load_model(path)


def test_tampered_weights_are_caught(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55  # a byte inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_model(path)


@pytest.mark.parametrize("keep", [4, 100, -50])
def test_truncated_or_corrupt_files(saved, keep):
    _, path = saved
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(CheckpointError, match="truncated|corrupt|not a safetensors"):
        load_model(path)


def _rewrite_config(path, update):
    """Change the config stored in a checkpoint's header, keeping the tensors."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    cfg = json.loads(header["__metadata__"]["infp.config"])
    update(cfg)
    header["__metadata__"]["infp.config"] = json.dumps(cfg)
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    path.write_bytes(len(body).to_bytes(8, "little") + body + raw[8 + n :])


def test_config_and_tensor_mismatch_names_the_tensor(saved):
    _, path = saved

    def wider(cfg):
        cfg["dit"] = DiTConfig(**{**cfg["dit"], "width": 128}).model_dump()

    _rewrite_config(path, wider)
    with pytest.raises(CheckpointError, match=r"tensor 'dit\.[\w.]+' has shape"):
        load_model(path)


def test_config_with_more_blocks_names_the_missing_tensor(saved):
    _, path = saved
    _rewrite_config(path, lambda cfg: cfg["dit"].update(depth=3))
    with pytest.raises(CheckpointError, match=r"tensor 'dit\.blocks\.2\.[\w.]+'.*missing"):
        load_model(path)


def test_not_an_infp_checkpoint(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not an infp-sdk checkpoint"):
        load_model(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no bundled model named 'nope'"):
        load_model("nope")
