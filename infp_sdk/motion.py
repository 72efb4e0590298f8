"""The motion contract: frames, the rig vector and the ARKit-52 blendshape names.

This module is the single source of truth for the frame rate, the blendshape order and the rig
layout. Everything that produces or consumes motion (the model, the runtime, the sinks, the engine
bindings) imports these names rather than restating them.

Conventions
-----------
* ``FPS`` frames per second on the agent's media clock; ``Frame.t`` is the frame centre in seconds.
* ``head`` = yaw, pitch, roll in radians (right-handed; +yaw turns the head to the avatar's left,
  +pitch tilts the chin down, +roll tilts the head towards the avatar's right shoulder) followed by
  x, y, z translation in metres relative to the rest pose (+x towards the avatar's left, +y up,
  +z towards the avatar's front, i.e. the camera).
* ``gaze`` = left eye yaw, left eye pitch, right eye yaw, right eye pitch in radians
  (same signs as the head).
* ``blendshapes`` = 52 ARKit weights in 0..1 in the order of :data:`ARKIT_BLENDSHAPES`, which is
  Unreal's ``EARFaceBlendShape`` / Live Link Face order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FPS = 25
"""Frames per second of the model's clock."""

ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)  # fmt: skip
"""The 52 ARKit blendshape names in our order (Unreal / Live Link Face)."""

NUM_BLENDSHAPES = len(ARKIT_BLENDSHAPES)
HEAD_FIELDS: tuple[str, ...] = ("yaw", "pitch", "roll", "x", "y", "z")
GAZE_FIELDS: tuple[str, ...] = ("left_yaw", "left_pitch", "right_yaw", "right_pitch")

UNITY_BLENDSHAPES: tuple[str, ...] = tuple(
    name[0].upper() + name[1:] for name in sorted(ARKIT_BLENDSHAPES, key=str.lower)
)
"""Unity's ``ARKitBlendShapeLocation`` enum order (alphabetical, capitalised)."""

MEDIAPIPE_BLENDSHAPES: tuple[str, ...] = ("_neutral",) + tuple(
    sorted(n for n in ARKIT_BLENDSHAPES if n != "tongueOut")
)
"""MediaPipe's face-blendshape order: ``_neutral`` then 51 names alphabetically, no tongueOut."""


def _canonical_key(name: str) -> str:
    """Lower-case key that ARKit (``eyeBlink_L``), Unity and our spellings share."""
    key = name.strip()
    key = re.sub(r"^(blendshape\d*\.|arkit[._]?)", "", key, flags=re.IGNORECASE)
    key = re.sub(r"_L$", "Left", key)
    key = re.sub(r"_R$", "Right", key)
    return key.replace("_", "").lower()


_INDEX_BY_KEY = {_canonical_key(n): i for i, n in enumerate(ARKIT_BLENDSHAPES)}


def blendshape_index(name: str) -> int:
    """Index of a blendshape name in :data:`ARKIT_BLENDSHAPES`.

    Matching is case-insensitive and accepts ARKit's ``eyeBlink_L`` spellings, Unity's
    ``EyeBlinkLeft`` and a ``blendShape.`` prefix. Raises ``KeyError`` naming the unknown name.
    """
    try:
        return _INDEX_BY_KEY[_canonical_key(name)]
    except KeyError:
        raise KeyError(
            f"unknown blendshape name {name!r}: expected one of the 52 ARKit names "
            f"(e.g. 'jawOpen', 'eyeBlink_L'); see infp_sdk.ARKIT_BLENDSHAPES"
        ) from None


def to_arkit_order(
    weights: Sequence[float] | np.ndarray | Mapping[str, float],
    names: Sequence[str] | None = None,
    *,
    strict: bool = False,
) -> np.ndarray:
    """Reorder blendshape weights given in another naming/order into ours (float32[52]).

    ``weights`` is either a mapping name -> weight, or a sequence whose i-th value belongs to
    ``names[i]`` (for example :data:`MEDIAPIPE_BLENDSHAPES` or :data:`UNITY_BLENDSHAPES`). Names we
    do not know (such as MediaPipe's ``_neutral``) are skipped unless ``strict``; shapes the source
    lacks (MediaPipe has no ``tongueOut``) are 0.
    """
    if isinstance(weights, Mapping):
        pairs = list(weights.items())
    else:
        values = np.asarray(weights, dtype=np.float32).reshape(-1)
        if names is None:
            raise ValueError("to_arkit_order: pass `names` when `weights` is a sequence")
        if len(names) != len(values):
            raise ValueError(
                f"to_arkit_order: {len(values)} weights but {len(names)} names; they must match"
            )
        pairs = list(zip(names, values.tolist(), strict=True))
    out = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    for name, value in pairs:
        key = _canonical_key(name)
        if key not in _INDEX_BY_KEY:
            if strict:
                blendshape_index(name)  # raises with the helpful message
            continue
        out[_INDEX_BY_KEY[key]] = value
    return out


def from_arkit_order(weights: Sequence[float] | np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Reorder our float32[52] weights into the order of ``names`` (unknown names get 0)."""
    values = np.asarray(weights, dtype=np.float32).reshape(-1)
    if values.shape[0] != NUM_BLENDSHAPES:
        raise ValueError(
            f"expected {NUM_BLENDSHAPES} weights in ARKit order, got {values.shape[0]}"
        )
    out = np.zeros(len(names), dtype=np.float32)
    for i, name in enumerate(names):
        idx = _INDEX_BY_KEY.get(_canonical_key(name))
        if idx is not None:
            out[i] = values[idx]
    return out


# ----------------------------------------------------------------------------------------------
# The rig vector: the shipped motion space. latent = (raw - RIG_OFFSET) / RIG_SCALE.
# ----------------------------------------------------------------------------------------------

RIG_HEAD = slice(0, 6)
RIG_GAZE = slice(6, 10)
RIG_BLENDSHAPES = slice(10, 10 + NUM_BLENDSHAPES)
RIG_DIM = 10 + NUM_BLENDSHAPES  # 62

# Head angles span about +-0.35 rad in conversation, translations a few cm, gaze +-0.4 rad;
# blendshapes 0..1 map to -1..1, so each part is roughly unit-range for the diffusion model.
RIG_OFFSET = np.concatenate([np.zeros(6), np.zeros(4), np.full(NUM_BLENDSHAPES, 0.5)]).astype(
    np.float32
)
RIG_SCALE = np.concatenate(
    [np.full(3, 0.3), np.full(3, 0.03), np.full(4, 0.4), np.full(NUM_BLENDSHAPES, 0.5)]
).astype(np.float32)


def rig_to_latent(head: np.ndarray, gaze: np.ndarray, blendshapes: np.ndarray) -> np.ndarray:
    """Pack raw head (…,6), gaze (…,4) and blendshapes (…,52) into normalised rig latents (…,62)."""
    raw = np.concatenate(
        [np.asarray(head, np.float32), np.asarray(gaze, np.float32),
         np.asarray(blendshapes, np.float32)], axis=-1,
    )  # fmt: skip
    if raw.shape[-1] != RIG_DIM:
        raise ValueError(f"rig parts must have 6 + 4 + 52 values, got {raw.shape[-1]} in all")
    return (raw - RIG_OFFSET) / RIG_SCALE


def latent_to_rig(latent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unpack normalised rig latents (…,62) into head (…,6), gaze (…,4), blendshapes (…,52).

    Blendshapes are clipped to 0..1, as engines expect.
    """
    latent = np.asarray(latent, dtype=np.float32)
    if latent.shape[-1] != RIG_DIM:
        raise ValueError(
            f"a rig latent has {RIG_DIM} values, got {latent.shape[-1]}: this model's motion space "
            "is not the rig; map it to the rig first"
        )
    raw = latent * RIG_SCALE + RIG_OFFSET
    return (
        raw[..., RIG_HEAD].copy(),
        raw[..., RIG_GAZE].copy(),
        np.clip(raw[..., RIG_BLENDSHAPES], 0.0, 1.0),
    )


# ----------------------------------------------------------------------------------------------
# Frame
# ----------------------------------------------------------------------------------------------


@dataclass
class Frame:
    """One frame of conversational motion on the agent's media clock."""

    index: int
    """Frame number, 0 for the first frame after start or ``reset()``."""
    t: float
    """Media time in seconds of the frame's centre (``(index + 0.5) / FPS``)."""
    latent: np.ndarray
    """float32[D]: the motion latent the model produced."""
    blendshapes: np.ndarray
    """float32[52]: ARKit weights in 0..1, order :data:`ARKIT_BLENDSHAPES`."""
    head: np.ndarray
    """float32[6]: yaw, pitch, roll (rad), x, y, z (m)."""
    gaze: np.ndarray
    """float32[4]: left yaw, left pitch, right yaw, right pitch (rad)."""
    speaking: float
    """0..1: how much the frame is driven by the agent's own speech."""
    image: np.ndarray | None = field(default=None, repr=False)
    """uint8[H, W, 3] RGB when a portrait is rendered, else None."""

    @classmethod
    def from_rig_latent(cls, index: int, latent: np.ndarray, speaking: float) -> Frame:
        """Build a frame whose latent is a rig vector (the default motion space)."""
        head, gaze, blendshapes = latent_to_rig(latent)
        return cls(
            index=int(index),
            t=frame_time(index),
            latent=np.asarray(latent, np.float32),
            blendshapes=blendshapes,
            head=head,
            gaze=gaze,
            speaking=float(speaking),
        )

    def blendshape(self, name: str) -> float:
        """The weight of one blendshape by (case-insensitive) name."""
        return float(self.blendshapes[blendshape_index(name)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (lists of floats), without the image."""
        return {
            "index": self.index,
            "t": round(self.t, 6),
            "speaking": round(self.speaking, 6),
            "head": [round(float(v), 6) for v in self.head],
            "gaze": [round(float(v), 6) for v in self.gaze],
            "blendshapes": [round(float(v), 6) for v in self.blendshapes],
            "latent": [round(float(v), 6) for v in self.latent],
        }


def frame_time(index: int) -> float:
    """Media time (s) of the centre of frame ``index``."""
    return (index + 0.5) / FPS
