"""infp-sdk: a portrait that converses.

Two audio streams in (the agent's own voice and its partner's), conversational head motion out:
it talks while the agent speaks and listens while the partner speaks, with no role flag.
"""

from .model import load_model
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
from .runtime.agent import Agent
from .runtime.engine import Engine

__version__ = "0.1.0"

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
