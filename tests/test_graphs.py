"""The fixed-shape hop runner behind CUDA graphs, checked on the CPU.

Capture itself needs a GPU; what can go wrong above it is checked here: padding a batch to its
bucket, reusing one shape's buffers for different hops, and a hop that reads a tensor back to
the host (which would break capture; on the meta device any such read raises).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_model, tiny_config

from infp_sdk.model.config import GuiderConfig
from infp_sdk.model.infp import INFPModel
from infp_sdk.runtime.generator import HopBatch, MotionStream, generate_hops
from infp_sdk.runtime.graphs import HopGraphs, bucket
from infp_sdk.runtime.torch_backend import run_hop_batch


def test_batches_pad_to_powers_of_two_up_to_the_largest_bucket():
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 9, 64)] == [1, 2, 4, 4, 8, 16, 64]
    assert bucket(65) == 65 and bucket(5, largest=4) == 5
    with pytest.raises(ValueError, match="at least one hop"):
        bucket(0)


def hops_of(model, seeds, frames_before: int = 0):
    """One ready hop per seed, each from its own audio (and, after the first, its own history)."""
    hops = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        stream = MotionStream(model, seed=seed, hop=3)
        n = 16000 * 2
        audio = (rng.standard_normal((2, n)) * 0.1).astype(np.float32)
        stream.append(audio[0], audio[1])
        for _ in range(frames_before):
            stream.accept(*generate_hops(model, [stream.next_hop()])[0])
        hops.append(stream.next_hop())
    return hops


def test_padded_fixed_shape_batches_give_the_frames_of_plain_batches():
    model = random_model()
    runner = HopGraphs(model, torch.device("cpu"), capture=False)
    first, later = hops_of(model, [1, 2, 3]), hops_of(model, [4, 5], frames_before=2)
    for batch in ([first[0], first[1], first[2]], [later[1]], [first[2], later[0], first[1]]):
        expected = generate_hops(model, batch)
        x, s = runner.run(HopBatch.stack(batch), batch[0].sampling)
        assert len(x) == len(s) == len(batch)
        for i, (x_ref, s_ref) in enumerate(expected):
            np.testing.assert_allclose(x[i], x_ref, atol=1e-5, rtol=1e-5)
            np.testing.assert_allclose(s[i], s_ref, atol=1e-5, rtol=1e-5)
    # batches of 3 share the bucket of 4; the single hop has its own
    assert runner.shapes == 2 and runner.eager == 3 and runner.replays == 0
    # the hops differ, so equal results above are not an accident of identical inputs
    x, _ = runner.run(HopBatch.stack(first[:2]), first[0].sampling)
    assert np.abs(x[0] - x[1]).max() > 1e-3


def test_results_do_not_alias_the_reused_buffers():
    model = random_model()
    runner = HopGraphs(model, torch.device("cpu"), capture=False)
    a, b = hops_of(model, [1, 2])
    x_a, _ = runner.run(HopBatch.stack([a]), a.sampling)
    kept = x_a.copy()
    runner.run(HopBatch.stack([b]), b.sampling)
    np.testing.assert_array_equal(x_a, kept)


@pytest.mark.parametrize("memory_banks", [True, False])
@pytest.mark.parametrize("sampler", ["dpmpp_2m", "ddim"])
@pytest.mark.parametrize("cfg_scale", [1.0, 2.0])
def test_a_hop_never_reads_a_tensor_back_to_the_host(memory_banks, sampler, cfg_scale):
    cfg = tiny_config()
    cfg = cfg.model_copy(update={"guider": GuiderConfig(memory_banks=memory_banks)})
    model = INFPModel(cfg).to("meta").eval()
    b, count = 3, 2
    mel_frames = (cfg.audio_context + count + cfg.encoder.lookahead) * 4
    with torch.no_grad():
        x, speaking = run_hop_batch(
            model,
            torch.zeros(b, 2, mel_frames, 80, device="meta"),
            torch.zeros(b, cfg.dit.prev_frames, cfg.latent_dim, device="meta"),
            model.style_vector(None, b),
            torch.zeros(b, count, cfg.latent_dim, device="meta"),
            torch.ones(b, device="meta"),
            (sampler, 3, cfg_scale),
        )
    assert x.shape == (b, count, cfg.latent_dim) and speaking.shape == (b, count)


def test_capture_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        HopGraphs(random_model(), torch.device("cpu"), capture=True)
