"""The model's configuration: plain pydantic, no torch, so the runtime can read it alone.

Each network's config sits here beside :class:`INFPConfig`, which holds them all and is saved
next to the weights; :func:`preset` names the shipped recipes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..motion import RIG_BLENDSHAPES, RIG_DIM, blendshape_index

# Log-mel values are natural logs of power; speech sits around -8..+4, digital silence at the
# floor. Clamping the floor keeps exact zeros (synthetic audio) and quiet rooms alike.
LOG_MEL_FLOOR = -16.0
LOG_MEL_CENTER = -6.0
LOG_MEL_SPREAD = 6.0


class AudioEncoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_mels: int = 80
    mel_per_frame: int = 4
    width: int = Field(128, ge=8)
    layers: int = Field(4, ge=1)
    kernel: int = Field(5, ge=1)
    lookahead: int = Field(2, ge=0, description="motion frames of future audio each frame sees")

    @property
    def receptive_field(self) -> int:
        """Motion frames of past audio that reach one output frame."""
        return self.layers * (self.kernel - 1)


class GuiderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_size: int = Field(64, ge=1, description="K, embeddings per bank")
    heads: int = Field(4, ge=1)
    memory_banks: bool = Field(
        True,
        description="False: no M_v/M_nv (the paper's ablation): the two audio features are "
        "projected and summed directly, and speaking comes from a linear read-out. On our "
        "synthetic conversations this measured better (see the default model's card)",
    )


class StyleEncoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(128, ge=8)


class DiTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(192, ge=8)
    depth: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    prev_frames: int = Field(
        10, ge=0, description="previous latents used as the continuity condition"
    )
    temporal_radius: int = Field(4, ge=1, description="frames each side seen by temporal attention")


ARTICULATION_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "jawForward",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollUpper",
    "mouthShrugUpper",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "tongueOut",
)


class MouthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: tuple[str, ...] = ARTICULATION_CHANNELS
    hidden: int = Field(256, ge=8)
    loss_weight: float = Field(1.0, ge=0.0, description="weight of the regression loss")

    @field_validator("channels")
    @classmethod
    def _known(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        for name in channels:
            blendshape_index(name)  # raises with the valid names on a typo
        return channels


def rig_indices(config: MouthConfig) -> list[int]:
    """Positions of the head's channels in the rig latent."""
    return [RIG_BLENDSHAPES.start + blendshape_index(name) for name in config.channels]


CONFIG_VERSION = 1


class INFPConfig(BaseModel):
    """Everything needed to rebuild the stage-2 networks; saved next to the weights."""

    model_config = ConfigDict(extra="forbid")

    version: int = CONFIG_VERSION
    preset: str = "realtime"
    latent_dim: int = Field(RIG_DIM, ge=1, description="D, the size of one motion latent")
    style_dim: int = Field(64, ge=1)
    encoder: AudioEncoderConfig = AudioEncoderConfig()
    guider: GuiderConfig = GuiderConfig()
    style: StyleEncoderConfig = StyleEncoderConfig()
    dit: DiTConfig = DiTConfig()
    mouth: MouthConfig | None = Field(
        None,
        description="a deterministic articulation head on the own audio beside the DiT "
        "(model/mouth.py); None: the DiT samples the mouth too",
    )
    window: int = Field(10, ge=1, description="frames per training window")
    audio_context: int = Field(
        16, ge=0, description="frames of past audio fed to the encoder before each window"
    )
    # streaming and sampling defaults
    hop: int | None = Field(
        None,
        ge=1,
        description="frames per model call when streaming (Agent, Engine, live); smaller is "
        "lower latency for more calls per second; None: the window",
    )
    sampler: Literal["ddim", "dpmpp_2m"] = "dpmpp_2m"
    steps: int = Field(6, ge=1)
    cfg_scale: float = Field(1.0, ge=0.0)
    # condition dropout for classifier-free guidance (the paper's scheme)
    p_drop_style: float = Field(0.3, ge=0.0, le=1.0)
    p_drop_feature: float = Field(0.5, ge=0.0, le=1.0)
    p_drop_prev: float = Field(0.5, ge=0.0, le=1.0)
    speaking_loss_weight: float = Field(0.1, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _drop_motion_space(cls, data: Any) -> Any:
        # Configs saved before 0.2 name their motion space; only the rig one ever existed.
        if isinstance(data, dict) and "motion_space" in data:
            data = dict(data)
            if data.pop("motion_space") != "rig":
                raise ValueError(
                    "this checkpoint uses a learned motion space, which this infp-sdk cannot "
                    "render or stream: use a rig-space model (the default)"
                )
        return data

    @model_validator(mode="after")
    def _check(self) -> INFPConfig:
        if self.version > CONFIG_VERSION:
            raise ValueError(
                f"config version {self.version} is newer than this infp-sdk understands "
                f"({CONFIG_VERSION}): upgrade infp-sdk"
            )
        if self.mouth is not None and self.latent_dim != RIG_DIM:
            raise ValueError(
                f"the mouth head writes rig channels, but latent_dim is {self.latent_dim}, not the "
                f"rig's {RIG_DIM}: set mouth=None for another motion space"
            )
        return self


def preset(name: str, **overrides) -> INFPConfig:
    """A named configuration: ``paper`` (width 512, DDIM 20 steps) or ``realtime`` (live use on
    a CPU: 1 frame of look-ahead, hop 1, DPM-Solver++ 3 steps)."""
    if name == "paper":
        cfg = INFPConfig(
            preset="paper",
            encoder=AudioEncoderConfig(width=512, layers=4, kernel=5, lookahead=2),
            guider=GuiderConfig(bank_size=64, heads=8),
            style=StyleEncoderConfig(width=256),
            style_dim=128,
            dit=DiTConfig(width=512, depth=4, heads=8),
            window=25,
            sampler="ddim",
            steps=20,
            cfg_scale=1.5,
        )
    elif name == "realtime":
        # Live use on a CPU: one frame of look-ahead and one frame per model call keep a
        # viewer's mouth-to-face latency under 100 ms; the articulation head carries the mouth,
        # so the sampler needs only a few steps for the rest of the face (docs/runtime.md#latency).
        cfg = INFPConfig(
            preset="realtime",
            encoder=AudioEncoderConfig(lookahead=1),
            guider=GuiderConfig(memory_banks=False),
            mouth=MouthConfig(),
            hop=1,
            steps=3,
        )
    else:
        raise ValueError(f"unknown preset {name!r}: choose 'paper' or 'realtime'")
    return cfg.model_copy(update=overrides) if overrides else cfg
