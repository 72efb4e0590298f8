"""INFP stage-2 networks: plain ``nn.Module``s with a pydantic config each."""

from .checkpoint import CheckpointError, load_model, save_model
from .dit import DiTConfig, MotionDiT
from .encoder import AudioEncoder, AudioEncoderConfig
from .guider import GuiderConfig, InteractiveMotionGuider
from .infp import INFPConfig, INFPModel, count_parameters, preset
from .style import StyleEncoder, StyleEncoderConfig

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
    "StyleEncoder",
    "StyleEncoderConfig",
    "count_parameters",
    "load_model",
    "preset",
    "save_model",
]
