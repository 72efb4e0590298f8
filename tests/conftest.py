"""Shared fixtures: a small stage-2 model trained on the toy dyadic task (once per session).

torch is imported where a fixture needs it, so tests of the torch-free runtime (the adapters'
environment, say) can share this file without torch installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_task import make_session  # noqa: E402

from infp_sdk.model.config import (  # noqa: E402
    AudioEncoderConfig,
    DiTConfig,
    StyleEncoderConfig,
    preset,
)

if TYPE_CHECKING:
    from infp_sdk.model import INFPModel

ROOT = Path(__file__).resolve().parent.parent
TOY_STEPS = 700


def tiny_config():
    """The realtime preset scaled down so a CPU trains it in about a minute."""
    return preset(
        "realtime",
        encoder=AudioEncoderConfig(width=64, layers=4, kernel=5, lookahead=2),
        style=StyleEncoderConfig(width=64),
        style_dim=32,
        dit=DiTConfig(width=96, depth=2, heads=4),
        window=10,
        audio_context=16,
        # the sampling the tests were written for (the shipped preset streams at hop 1 with 2
        # steps; tests that need that say so)
        hop=None,
        steps=6,
    )


def random_model(seed: int = 0) -> INFPModel:
    """An untrained tiny model whose output depends on every input.

    A fresh model's zero-initialised output layers would ignore audio and history entirely, which
    would let tests of the audio path pass vacuously; random weights everywhere avoid that.
    """
    import torch

    from infp_sdk.model import INFPModel

    torch.manual_seed(seed)
    model = INFPModel(tiny_config())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture(scope="session")
def toy_trained():
    """(model, loss history, held-out session, unrelated session) for the toy task."""
    import torch

    from infp_sdk.data.windows import Session, random_batch
    from infp_sdk.model import INFPModel
    from infp_sdk.train.stage2 import make_optimizer, train_step

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    raw = [make_session(20.0, rng) for _ in range(12)]
    sessions = [
        Session.from_audio(r["own"], r["partner"], r["latents"], r["speaking"]) for r in raw
    ]
    cfg = tiny_config()
    model = INFPModel(cfg)
    model.set_motion_stats(torch.cat([s.motion for s in sessions]))
    # a higher learning rate than the paper's 1e-4 so a minute of CPU is enough
    optimizer = make_optimizer(model, lr=2e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    history = [
        train_step(model, optimizer, random_batch(sessions, 32, cfg, generator))["diffusion"]
        for _ in range(TOY_STEPS)
    ]
    model.eval()
    held_out = make_session(40.0, np.random.default_rng(99))
    unrelated = [make_session(40.0, np.random.default_rng(seed)) for seed in (98, 97)]
    return model, history, held_out, unrelated


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """A tiny synthetic dataset (2 train sessions, 1 val, 8 s each) for training runs."""
    from infp_sdk.data.synth import build_dataset

    root = tmp_path_factory.mktemp("data")
    build_dataset(root, 2, seconds=8, split="train", workers=1, progress=False)
    build_dataset(root, 1, seconds=8, split="val", workers=1, progress=False)
    return root
