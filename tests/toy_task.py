"""A small synthetic dyadic task with known rules, for checking that the stage-2 model learns.

Two channels of speech-like noise (syllable-rate bursts) take turns. The "own" side's motion obeys
two rules: the jaw and lips open with the own voice's loudness, and while the partner talks the
head nods along (pitch down, brows raised) with the partner's smoothed loudness, a beat later.
Everything else stays at rest.
"""

from __future__ import annotations

import numpy as np

from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME
from infp_sdk.motion import ARKIT_BLENDSHAPES, RIG_DIM, rig_to_latent

JAW = ARKIT_BLENDSHAPES.index("jawOpen")
PITCH = 1
# shapes that move with the jaw (weight relative to jawOpen) and with a nod
MOUTH_GROUP = {"jawOpen": 1.0, "mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6,
               "mouthUpperUpLeft": 0.3, "mouthUpperUpRight": 0.3, "mouthStretchLeft": 0.2,
               "mouthStretchRight": 0.2}  # fmt: skip
NOD_GROUP = {"browInnerUp": 0.8, "browOuterUpLeft": 0.5, "browOuterUpRight": 0.5}
NOD_DELAY_FRAMES = 3
NOD_RAD = 0.2


def speechlike(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise modulated by a syllable-rate envelope with random syllable gaps and levels."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rate = rng.uniform(3.0, 6.0)
    env = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.28)), 0, None) ** 1.5
    syllable = (t * rate).astype(int)
    gate = rng.random(syllable.max() + 1) > 0.2
    env *= gate[syllable] * rng.uniform(0.3, 1.0, syllable.max() + 1)[syllable]
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")  # soften the top end a little
    return (0.3 * env * noise).astype(np.float32)


def frame_rms(audio: np.ndarray) -> np.ndarray:
    frames = len(audio) // SAMPLES_PER_MOTION_FRAME
    x = audio[: frames * SAMPLES_PER_MOTION_FRAME].reshape(frames, -1)
    return np.sqrt((x**2).mean(axis=1))


def make_session(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """own, partner audio (16 kHz) and the own side's motion latents (T, 62) and speaking (T,)."""
    n = int(seconds * SAMPLE_RATE)
    own = np.zeros(n, np.float32)
    partner = np.zeros(n, np.float32)
    cursor = int(rng.uniform(0.2, 1.0) * SAMPLE_RATE)
    speaker = rng.integers(2)
    while cursor < n:
        length = rng.uniform(1.0, 3.0)
        piece = speechlike(length, rng)[: n - cursor]
        (own if speaker == 0 else partner)[cursor : cursor + len(piece)] = piece
        cursor += len(piece) + int(rng.uniform(0.3, 0.9) * SAMPLE_RATE)
        speaker = 1 - speaker
    frames = n // SAMPLES_PER_MOTION_FRAME
    loud = frame_rms(own)
    jaw = np.clip(loud / 0.15, 0, 1) * 0.8
    jaw = np.convolve(jaw, [0.25, 0.5, 0.25], mode="same")
    partner_loud = np.clip(frame_rms(partner) / 0.15, 0, 1)
    smooth = np.convolve(partner_loud, np.hanning(9) / np.hanning(9).sum(), mode="same")
    nod = NOD_RAD * np.concatenate([np.zeros(NOD_DELAY_FRAMES), smooth[:-NOD_DELAY_FRAMES]])
    head = np.zeros((frames, 6), np.float32)
    head[:, PITCH] = nod
    blend = np.zeros((frames, 52), np.float32)
    for name, weight in MOUTH_GROUP.items():
        blend[:, ARKIT_BLENDSHAPES.index(name)] = weight * jaw
    for name, weight in NOD_GROUP.items():
        blend[:, ARKIT_BLENDSHAPES.index(name)] = weight * nod / NOD_RAD
    latents = rig_to_latent(head, np.zeros((frames, 4), np.float32), blend)
    assert latents.shape == (frames, RIG_DIM)
    speaking = (loud > 1e-3).astype(np.float32)
    speaking = np.maximum.reduce([np.roll(speaking, s) for s in range(-3, 4)])  # bridge gaps
    return {
        "own": own,
        "partner": partner,
        "latents": latents.astype(np.float32),
        "speaking": speaking,
        "jaw": jaw.astype(np.float32),
        "nod": nod.astype(np.float32),
    }
