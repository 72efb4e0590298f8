"""infp-sdk: a portrait that converses.

Two audio streams in (the agent's own voice and its partner's), conversational head motion out:
it talks while the agent speaks and listens while the partner speaks, with no role flag.
"""

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

__version__ = "0.1.0"

# The model and the runtime load on first use, so that ``import infp_sdk.face`` (the portrait
# renderer) or ``infp_sdk.motion`` does not import the model's dependencies.
_LAZY = {
    "load_model": ("model", "load_model"),
    "Agent": ("runtime.agent", "Agent"),
    "Engine": ("runtime.engine", "Engine"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
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
