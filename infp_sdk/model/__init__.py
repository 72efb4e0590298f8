"""INFP stage-2 networks: plain ``nn.Module``s with a pydantic config each.

The configs (:mod:`.config`) need no torch; the networks, checkpoints and everything else here
load torch on first use, so the runtime can read a model's config without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import (
    AudioEncoderConfig,
    DiTConfig,
    GuiderConfig,
    INFPConfig,
    MouthConfig,
    StyleEncoderConfig,
    preset,
)
from .errors import CheckpointError

# name -> submodule, imported on first access (they import torch)
_LAZY = {
    "AudioEncoder": "encoder",
    "INFPModel": "infp",
    "InteractiveMotionGuider": "guider",
    "MotionDiT": "dit",
    "StyleEncoder": "style",
    "count_parameters": "infp",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AudioEncoder",
    "AudioEncoderConfig",
    "CheckpointError",
    "DiTConfig",
    "GuiderConfig",
    "INFPConfig",
    "INFPModel",
    "InteractiveMotionGuider",
    "MotionDiT",
    "MouthConfig",
    "StyleEncoder",
    "StyleEncoderConfig",
    "count_parameters",
    "load_model",
    "preset",
    "save_model",
]
