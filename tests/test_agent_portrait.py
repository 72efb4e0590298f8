"""Agent(portrait): every frame carries the portrait rendered with its motion."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, random_model

from infp_sdk import Agent, Engine
from infp_sdk.face import PortraitError, load_portrait

PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def renderer():
    return load_portrait(PORTRAIT, size=128)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    env = (np.sin(np.arange(n) / 900) > 0).astype(np.float32)
    return (rng.standard_normal(n) * 0.2 * env).astype(np.float32)


def test_frames_carry_the_rendered_portrait(model, renderer):
    with Agent(renderer, model=model, seed=1, hop=5) as agent:
        agent.push(own=speech(1.0))
        agent.flush()
        frames = agent.pull()
    assert len(frames) == 25
    for frame in frames:
        assert frame.image is not None
        assert frame.image.shape == (128, 128, 3) and frame.image.dtype == np.uint8
    # the picture is the renderer's picture of that frame's motion, and it moves
    np.testing.assert_array_equal(frames[7].image, renderer.render(frames[7]))
    assert np.abs(frames[0].image.astype(int) - frames[-1].image.astype(int)).max() > 0


def test_a_photo_path_works_and_motion_only_has_no_image(model):
    with Agent(PORTRAIT, model=model) as agent:  # the bundled .avatar beside it: no detector
        agent.push(own=speech(0.5))
        agent.flush()
        frames = agent.pull()
    assert frames[0].image.shape == (512, 512, 3)
    with Agent(model=model) as agent:
        agent.push(own=speech(0.5))
        agent.flush()
        assert all(f.image is None for f in agent.pull())


def test_reset_drops_frames_still_waiting_for_the_renderer(model, renderer):
    with Engine(model=model) as engine:
        agent = engine.agent(renderer, seed=2, hop=2)
        agent.push(own=speech(2.0))
        agent.reset()
        agent.push(own=speech(0.4, seed=3))
        agent.flush()
        frames = agent.pull()
    assert [f.index for f in frames] == list(range(10))
    assert all(f.image is not None for f in frames)


def test_a_portrait_that_is_not_a_picture_is_a_clear_error(model, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(PortraitError):
        Agent(bad, model=model)
