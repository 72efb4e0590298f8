"""The stage-2 model learns a known dyadic rule and joins windows without seams."""

from __future__ import annotations

import numpy as np
from toy_task import JAW, PITCH

from infp_sdk.motion import RIG_BLENDSHAPES
from infp_sdk.runtime.generator import generate_motion

JAW_DIM = RIG_BLENDSHAPES.start + JAW


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_loss_drops_many_fold(toy_trained):
    _, history, _, _ = toy_trained
    first, last = np.mean(history[:20]), np.mean(history[-50:])
    assert first / last > 5, f"loss went from {first:.3f} to {last:.3f}"


def test_sampled_motion_follows_the_rules_and_shuffled_audio_does_not(toy_trained):
    model, _, session, unrelated = toy_trained
    motion = generate_motion(model, session["own"], session["partner"], seed=0, cfg_scale=2.0)
    jaw, nod = (
        corr(motion.latents[:, JAW_DIM], session["jaw"]),
        corr(motion.latents[:, PITCH], session["nod"]),
    )
    assert jaw > 0.7, f"mouth does not follow own loudness (r = {jaw:.2f})"
    assert nod > 0.5, f"head does not nod along with the partner (r = {nod:.2f})"
    # speaking (attention share on the verbal bank) tracks who is talking
    assert corr(motion.speaking, session["speaking"]) > 0.8
    for other in unrelated:  # same model, audio of a different conversation
        control = generate_motion(model, other["own"], other["partner"], seed=0, cfg_scale=2.0)
        jaw_c = corr(control.latents[:, JAW_DIM], session["jaw"])
        nod_c = corr(control.latents[:, PITCH], session["nod"])
        assert jaw_c < 0.4 and jaw - jaw_c > 0.4, (jaw, jaw_c)
        assert nod_c < 0.4 and nod - nod_c > 0.3, (nod, nod_c)


def test_windows_join_without_a_jump(toy_trained):
    model, _, session, _ = toy_trained
    hop = model.config.window
    latents = generate_motion(model, session["own"], session["partner"], seed=1).latents
    steps = np.abs(np.diff(latents, axis=0)).mean(axis=1)  # step from frame i to i + 1
    at_boundary = np.arange(len(steps)) % hop == hop - 1
    boundary, inside = steps[at_boundary], steps[~at_boundary]
    # the typical boundary step lies within the spread of ordinary steps inside a window
    assert np.median(boundary) <= np.percentile(inside, 75), (
        f"median boundary step {np.median(boundary):.4f} exceeds the 75th percentile of steps "
        f"inside windows ({np.percentile(inside, 75):.4f})"
    )
    assert boundary.mean() <= 1.5 * inside.mean(), (boundary.mean(), inside.mean())
