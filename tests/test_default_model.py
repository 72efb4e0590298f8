"""The bundled default model: it loads, it is small, and on the bundled conversation it talks
while its own voice speaks and listens (mouth at rest) while the partner speaks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import ROOT

from infp_sdk.audio import load_audio
from infp_sdk.eval.metrics import frame_loudness_db
from infp_sdk.model import load_model
from infp_sdk.model.checkpoint import WEIGHTS_DIR
from infp_sdk.motion import ARKIT_BLENDSHAPES

CONVERSATION = ROOT / "examples" / "conversation"
JAW = ARKIT_BLENDSHAPES.index("jawOpen")


def test_default_model_is_bundled_and_small():
    path = WEIGHTS_DIR / "default" / "model.safetensors"
    assert path.exists() and path.stat().st_size < 25e6
    assert (WEIGHTS_DIR / "MODEL_CARD.md").exists()
    model = load_model()
    assert model.config.preset == "realtime" and model.config.latent_dim == 62


def test_main_job_shows_both_roles(tmp_path):
    out = tmp_path / "motion.jsonl"
    res = subprocess.run(
        [sys.executable, "-m", "infp_sdk", "motion", "--own", str(CONVERSATION / "own.wav"),
         "--partner", str(CONVERSATION / "partner.wav"), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    jaw = np.array([f["blendshapes"][JAW] for f in frames])
    speaking = np.array([f["speaking"] for f in frames])
    own_db = frame_loudness_db(load_audio(CONVERSATION / "own.wav"))[: len(frames)]
    partner_db = frame_loudness_db(load_audio(CONVERSATION / "partner.wav"))[: len(frames)]
    own_only = (own_db > -45) & (partner_db < -60)
    partner_only = (partner_db > -45) & (own_db < -60)
    assert own_only.sum() > 50 and partner_only.sum() > 50
    # talking: the mouth moves and `speaking` is high; listening: mouth still, `speaking` low
    assert jaw[own_only].std() > 3 * jaw[partner_only].std()
    assert speaking[own_only].mean() > 0.8 and speaking[partner_only].mean() < 0.2
    assert np.corrcoef(jaw[own_only], own_db[own_only])[0, 1] > 0.3


def test_the_mouth_says_the_syllables_inside_turns(tmp_path):
    """Inside the agent's own turns the jaw follows each syllable's loudness, not just who talks
    (the previous default, which sampled its mouth, scored 0.52 here; this one 0.65)."""
    from infp_sdk.data.dataset import energy_vad
    from infp_sdk.eval.metrics import frame_rms, inside_turns, lagged_correlation
    from infp_sdk.motion import latent_to_rig
    from infp_sdk.runtime.generator import generate_motion

    own = load_audio(CONVERSATION / "own.wav")
    partner = load_audio(CONVERSATION / "partner.wav")
    motion = generate_motion(load_model(), own, partner, seed=0)
    jaw = latent_to_rig(motion.latents)[2][:, JAW]
    frames = len(jaw)
    mask = inside_turns(energy_vad(own, frames), energy_vad(partner, frames))
    assert mask.sum() > 50
    r, _ = lagged_correlation(jaw, frame_rms(own, frames), mask, max_lag=4)
    assert r > 0.6


def test_the_shipped_graphs_are_the_checkpoint():
    """The ONNX graphs in the package (what Agent() runs) give the bundled checkpoint's frames:
    they were exported from it, and were not left behind when it changed. Hop by hop on the same
    inputs the two agree to 1e-4; streamed freely, each backend feeds its own frames back as
    history, which lets float rounding grow a little."""
    from infp_sdk.runtime.backend import bundled_onnx
    from infp_sdk.runtime.generator import HopBatch, MotionStream, generate_motion
    from infp_sdk.runtime.onnx import load_onnx_model
    from infp_sdk.runtime.torch_backend import TorchHopModel

    own, partner = load_audio(CONVERSATION / "own.wav"), load_audio(CONVERSATION / "partner.wav")
    n = 16000 * 4
    shipped = load_onnx_model(bundled_onnx("default"), threads=1)
    checkpoint = TorchHopModel(load_model("default"), "cpu")
    assert shipped.config == checkpoint.config
    for sampling in ({}, {"cfg_scale": 2.0}):
        stream = MotionStream(checkpoint, **sampling)
        stream.append(own[:n], partner[:n])
        worst = 0.0
        while stream.hop_ready():
            batch = HopBatch.stack([stream.next_hop()])
            expected = checkpoint.run_hops(batch, stream.sampling)
            got = shipped.run_hops(batch, stream.sampling)
            pairs = zip(got, expected, strict=True)
            worst = max(worst, *(float(np.abs(a - b).max()) for a, b in pairs))
            stream.accept(expected[0][0], expected[1][0])
        assert stream.frames_out == 99 and worst <= 1e-4
        free = generate_motion(shipped, own[:n], partner[:n], **sampling)
        reference = generate_motion(checkpoint, own[:n], partner[:n], **sampling)
        assert np.abs(free.latents - reference.latents).max() <= 1e-3
