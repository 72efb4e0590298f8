"""infp-sdk: a portrait that converses.

Two audio streams in (the agent's own voice and its partner's), conversational head motion out:
it talks while the agent speaks and listens while the partner speaks, with no role flag.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .motion import (
    ARKIT_BLENDSHAPES,
    FPS,
    MEDIAPIPE_BLENDSHAPES,
    UNITY_BLENDSHAPES,
    Frame,
    blendshape_index,
    from_arkit_order,
    to_arkit_order,
)

if TYPE_CHECKING:
    from .model import load_model
    from .runtime.agent import Agent
    from .runtime.engine import Engine

try:
    __version__ = version("infp-sdk")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# Imported on first use: ``import infp_sdk`` stays quick, and loads neither torch nor
# onnxruntime until a model is needed.
_LAZY = {
    "Agent": "runtime.agent",
    "Engine": "runtime.engine",
    "load_model": "model.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARKIT_BLENDSHAPES",
    "Agent",
    "Engine",
    "FPS",
    "MEDIAPIPE_BLENDSHAPES",
    "UNITY_BLENDSHAPES",
    "Frame",
    "__version__",
    "blendshape_index",
    "from_arkit_order",
    "load_model",
    "to_arkit_order",
]
