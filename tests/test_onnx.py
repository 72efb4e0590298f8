"""ONNX export and the onnxruntime backend: parity with torch, integrity checks, the CLI."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import random_model, tiny_config

from infp_sdk.audio import SAMPLE_RATE
from infp_sdk.model import CheckpointError, INFPModel, save_model
from infp_sdk.runtime.generator import HopBatch, MotionStream, generate_hops, generate_motion
from infp_sdk.runtime.onnx import (
    OPSET,
    OnnxDependencyError,
    OrtHopModel,
    export_onnx,
    load_onnx_model,
    register_cli,
)
from infp_sdk.runtime.torch_backend import TorchHopModel

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread, like the sessions: on a small busy machine more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(torch model, export folder, onnxruntime model) from one random model."""
    model = random_model()
    # non-trivial statistics, so standardisation round trips are part of the comparison
    g = torch.Generator().manual_seed(1)
    model.set_motion_stats(torch.randn(200, model.config.latent_dim, generator=g) * 0.3 + 0.1)
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(model, out)
    return model, out, load_onnx_model(out, threads=1)


def test_export_writes_checked_files_and_config(exported):
    model, out, _ = exported
    meta = json.loads((out / "config.json").read_text())
    assert meta["opset"] == OPSET
    assert meta["config"] == model.config.model_dump(mode="json")
    assert set(meta["files"]) == {"encode.onnx", "condition.onnx", "velocity.onnx", "style.onnx"}
    assert np.allclose(meta["motion_std"], model.motion_std.numpy())
    assert np.allclose(meta["null_style"], model.dit.null_style.detach().numpy())
    import onnx

    for name, info in meta["files"].items():
        onnx.checker.check_model(str(out / name))
        assert (out / name).stat().st_size == info["bytes"]
        opsets = {o.domain: o.version for o in onnx.load(str(out / name)).opset_import}
        assert opsets[""] == OPSET


def ready_hops(model, seeds: list[int], hop: int, history: int = 0, **sampling) -> list:
    """One ready hop per seed, each from its own audio (and, with ``history``, its own past)."""
    hops = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        stream = MotionStream(model, seed=seed, hop=hop, **sampling)
        audio = (rng.standard_normal((2, 2 * SAMPLE_RATE)) * 0.2).astype(np.float32)
        stream.append(audio[0], audio[1])
        for _ in range(history):
            stream.accept(*generate_hops(model, [stream.next_hop()])[0])
        hops.append(stream.next_hop())
    return hops


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("hop", [10, 3, 1])
@pytest.mark.parametrize("sampling", [{}, {"cfg_scale": 2.0}, {"sampler": "ddim", "steps": 4}])
def test_a_hop_batch_matches_torch(exported, batch, hop, sampling):
    """The exported graphs (encode once, the DiT's condition once, one velocity per solver step)
    give a batch of hops the frames of the torch model."""
    model, _, ort_model = exported
    hops = ready_hops(model, list(range(batch)), hop, history=1, **sampling)
    args = HopBatch.stack(hops), hops[0].sampling
    expected = TorchHopModel(model).run_hops(*args)
    got = ort_model.run_hops(*args)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape and a.dtype == np.float32
        assert np.abs(a - b).max() <= ATOL
    assert np.abs(expected[0]).max() > 0.1  # nontrivial frames


def test_style_and_statistics_come_from_the_export(exported):
    model, _, ort_model = exported
    torch_model = TorchHopModel(model)
    assert isinstance(ort_model, OrtHopModel) and ort_model.backend == "onnxruntime"
    np.testing.assert_array_equal(ort_model.style_vector(None), torch_model.style_vector(None))
    np.testing.assert_allclose(ort_model.motion_std, model.motion_std.numpy())
    reference = np.random.default_rng(0).standard_normal((30, 62)).astype(np.float32)
    got, expected = ort_model.style_vector(reference), torch_model.style_vector(reference)
    assert got.shape == (1, model.config.style_dim)
    assert np.abs(got - expected).max() <= ATOL
    assert np.abs(got - ort_model.style_vector(None)).max() > 1e-3


@pytest.mark.parametrize("cfg_scale", [None, 2.0])
def test_generate_motion_matches_torch(exported, cfg_scale):
    model, _, ort_model = exported
    rng = np.random.default_rng(3)
    n = int(2.1 * SAMPLE_RATE)  # 52 frames: five full hops and a partial one of 2 frames
    envelope = (np.sin(np.arange(n) / SAMPLE_RATE * 2 * np.pi * 1.5) > 0).astype(np.float32)
    own = (rng.standard_normal(n) * 0.2 * envelope).astype(np.float32)
    partner = (rng.standard_normal(n) * 0.2 * (1 - envelope)).astype(np.float32)
    expected = generate_motion(model, own, partner, seed=7, cfg_scale=cfg_scale)
    got = generate_motion(ort_model, own, partner, seed=7, cfg_scale=cfg_scale)
    assert got.latents.shape == expected.latents.shape == (52, model.config.latent_dim)
    assert np.abs(got.latents - expected.latents).max() <= ATOL
    assert np.abs(got.speaking - expected.speaking).max() <= ATOL
    # a different seed moves the frames far more than the backends differ
    other = generate_motion(model, own, partner, seed=8, cfg_scale=cfg_scale)
    assert np.abs(other.latents - expected.latents).max() > 0.05


def test_a_guider_without_memory_banks_exports_and_matches(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config()
    model = INFPModel(
        cfg.model_copy(update={"guider": cfg.guider.model_copy(update={"memory_banks": False})})
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export_onnx(model, tmp_path)
    ort_model = load_onnx_model(tmp_path, threads=1)
    rng = np.random.default_rng(4)
    own = (rng.standard_normal(SAMPLE_RATE) * 0.2).astype(np.float32)
    expected = generate_motion(model, own, None, seed=2)
    got = generate_motion(ort_model, own, None, seed=2)
    assert np.abs(got.latents - expected.latents).max() <= ATOL
    assert np.abs(got.speaking - expected.speaking).max() <= ATOL


@pytest.fixture
def copy_of(exported, tmp_path):
    _, out, _ = exported
    return shutil.copytree(out, tmp_path / "export")


def test_tampered_graph_is_rejected(copy_of):
    path = copy_of / "velocity.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the weights
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"(?i)velocity\.onnx.*SHA-256.*re-export"):
        load_onnx_model(copy_of)


def test_missing_graph_is_named(copy_of):
    (copy_of / "condition.onnx").unlink()
    with pytest.raises(CheckpointError, match=r"condition\.onnx is missing.*infp-sdk export"):
        load_onnx_model(copy_of)


def test_config_that_does_not_match_the_graphs(copy_of):
    meta = json.loads((copy_of / "config.json").read_text())
    meta["config"]["encoder"]["width"] = 32
    (copy_of / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"encode\.onnx.*different models"):
        load_onnx_model(copy_of)
    (copy_of / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json does not exist.*infp-sdk export"):
        load_onnx_model(copy_of)
    with pytest.raises(CheckpointError, match=r"nowhere does not exist.*infp-sdk export"):
        load_onnx_model(copy_of / "nowhere")


def test_missing_onnxruntime_says_what_to_install(copy_of, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImportError, match=r"pip install onnxruntime") as info:
        load_onnx_model(copy_of)
    assert isinstance(info.value, OnnxDependencyError) and "infp-sdk[gpu]" in str(info.value)


def test_export_cli(tmp_path, capsys):
    model = random_model(seed=1)
    checkpoint = save_model(model, tmp_path / "m.safetensors")
    parser = argparse.ArgumentParser(prog="infp-sdk")
    register_cli(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["export", "--out", str(out), "--model", str(checkpoint)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    for name in ("encode.onnx", "condition.onnx", "velocity.onnx", "style.onnx", "config.json"):
        assert (out / name).exists() and name in printed
    loaded = load_onnx_model(out, threads=1)
    assert loaded.config == model.config
    (hop,) = ready_hops(model, [0], 4)
    args = HopBatch.stack([hop]), hop.sampling
    assert np.abs(loaded.run_hops(*args)[0] - TorchHopModel(model).run_hops(*args)[0]).max() <= ATOL


def test_an_export_is_cached_by_content_and_reused(tmp_path, monkeypatch):
    import infp_sdk.runtime.onnx as onnx_module
    from infp_sdk.runtime.onnx import cached_export

    exports = []
    real_export = onnx_module.export_onnx
    monkeypatch.setattr(
        onnx_module, "export_onnx", lambda m, out: exports.append(out) or real_export(m, out)
    )
    model = random_model()
    first = cached_export(model, tmp_path)
    again = cached_export(random_model(), tmp_path)  # equal weights, another object
    assert again == first and len(exports) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no staging folder left
    load_onnx_model(first)
    other = random_model(seed=1)
    assert cached_export(other, tmp_path) != first and len(exports) == 2


def test_a_failed_export_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    import infp_sdk.runtime.onnx as onnx_module
    from infp_sdk.runtime.onnx import cached_export

    def half_then_fail(model, out):
        out.mkdir(parents=True)
        (out / "encode.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_module, "export_onnx", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        cached_export(random_model(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_auto_backend_runs_checkpoints_in_onnxruntime_and_model_objects_in_torch(
    tmp_path, monkeypatch
):
    from infp_sdk import Engine
    from infp_sdk.runtime.backend import pick_backend

    monkeypatch.setenv("INFP_SDK_CACHE", str(tmp_path / "cache"))
    path = save_model(random_model(), tmp_path / "m.safetensors")
    assert pick_backend(str(path), "cpu") == "onnxruntime"
    assert pick_backend("default", "cpu") == "onnxruntime"
    assert pick_backend(random_model(), "cpu") == "torch"
    with Engine(str(path)) as engine:
        assert engine.backend == "onnxruntime"
        agent = engine.agent()
        agent.set_style(np.zeros((40, 62), np.float32))  # the exported style encoder
        agent.push(own=np.zeros(16000, np.float32))
        agent.flush(timeout=60)
        assert len(agent.pull()) == 25
    assert len(list((tmp_path / "cache").iterdir())) == 1
    with Engine(random_model()) as engine:
        assert engine.backend == "torch"


def test_graphs_can_read_their_weights_from_the_checkpoint_beside_them(tmp_path):
    """How the bundled models ship: one copy of the weights, read by both backends."""
    import torch

    model = random_model()
    with torch.no_grad():  # a float16 checkpoint, like the bundled ones
        for p in model.parameters():
            p.copy_(p.half().float())
    checkpoint = save_model(model, tmp_path / "model.safetensors", dtype=torch.float16)
    parser = argparse.ArgumentParser(prog="infp-sdk")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--out", str(tmp_path), "--model", str(checkpoint)])
    assert args.func(args) == 0
    graphs = sum(p.stat().st_size for p in tmp_path.glob("*.onnx"))
    assert graphs < checkpoint.stat().st_size / 4  # the weights stayed in the checkpoint
    meta = json.loads((tmp_path / "config.json").read_text())
    assert "model.safetensors" in meta["files"]
    loaded = load_onnx_model(tmp_path, threads=1)
    (hop,) = ready_hops(model, [0], 3)
    args = HopBatch.stack([hop]), hop.sampling
    expected = TorchHopModel(model).run_hops(*args)[0]
    assert np.abs(loaded.run_hops(*args)[0] - expected).max() <= ATOL
    data = bytearray(checkpoint.read_bytes())
    data[-3] ^= 0x01  # a flipped bit in the weights the graphs read
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*SHA-256"):
        load_onnx_model(tmp_path)


def test_the_cache_forgets_exports_unused_for_a_month(tmp_path, monkeypatch):
    import os
    import time

    import infp_sdk.runtime.onnx as onnx_module
    from infp_sdk.runtime.onnx import CACHE_UNUSED_DAYS, cached_export

    day = 86400
    old, recent, used = (tmp_path / f"onnx-{name}" for name in ("old", "recent", "used"))
    staging = tmp_path / ".onnx-x.partial-1-ab"
    foreign = tmp_path / "notes"
    for folder in (old, recent, used, staging, foreign):
        folder.mkdir()
    (used / "config.json").write_text("{}")
    now = time.time()
    os.utime(old, (now, now - (CACHE_UNUSED_DAYS + 1) * day))
    os.utime(used, (now, now - (CACHE_UNUSED_DAYS + 1) * day))
    os.utime(recent, (now, now - 2 * day))
    os.utime(staging, (now, now - 2 * day))
    os.utime(foreign, (now, now - 400 * day))
    monkeypatch.setattr(onnx_module, "_export_key", lambda model: "used")
    assert cached_export(random_model(), tmp_path) == used  # a use marks it ...
    monkeypatch.setattr(onnx_module, "_export_key", lambda model: "new")
    fresh = cached_export(random_model(), tmp_path)  # ... and a new export prunes the rest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, recent.name, used.name, foreign.name]
    )
