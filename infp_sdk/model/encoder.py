"""Audio encoder: log-mel frames -> per-motion-frame audio features.

One set of weights serves both channels (own voice and partner voice). It is causal with a bounded
look-ahead: the feature of motion frame t depends on audio up to the end of frame t + lookahead and
on `receptive_field` frames of the past, so a streaming runtime can compute it from a short buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import LOG_MEL_CENTER, LOG_MEL_FLOOR, LOG_MEL_SPREAD, AudioEncoderConfig


class CausalConvBlock(nn.Module):
    """Depthwise causal conv + pointwise MLP, residual, pre-norm."""

    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.norm = nn.LayerNorm(width)
        self.depthwise = nn.Conv1d(width, width, kernel, groups=width)
        self.pointwise = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(approximate="tanh"), nn.Linear(2 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, T, W)
        h = self.norm(x).transpose(1, 2)  # (B, W, T)
        h = self.depthwise(F.pad(h, (self.kernel - 1, 0))).transpose(1, 2)
        return x + self.pointwise(h)


class AudioEncoder(nn.Module):
    def __init__(self, config: AudioEncoderConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.n_mels * config.mel_per_frame, config.width)
        self.blocks = nn.ModuleList(
            [CausalConvBlock(config.width, config.kernel) for _ in range(config.layers)]
        )
        self.norm = nn.LayerNorm(config.width)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, T * mel_per_frame + lookahead * mel_per_frame, n_mels) -> (B, T, width).

        The input carries `lookahead` motion frames of future audio after the T frames wanted;
        :func:`pad_lookahead` appends silence for offline use at the end of a recording.
        """
        c = self.config
        b, n_mel, _ = mel.shape
        frames = n_mel // c.mel_per_frame
        x = mel[:, : frames * c.mel_per_frame].reshape(b, frames, c.mel_per_frame * c.n_mels)
        x = (x.clamp(min=LOG_MEL_FLOOR) - LOG_MEL_CENTER) / LOG_MEL_SPREAD
        h = self.proj(x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return h[:, c.lookahead :]  # frame t is read at causal position t + lookahead


def pad_lookahead(mel: torch.Tensor, config: AudioEncoderConfig) -> torch.Tensor:
    """Append `lookahead` frames of silence so an offline recording yields one feature per frame."""
    pad = config.lookahead * config.mel_per_frame
    return F.pad(mel, (0, 0, 0, pad), value=LOG_MEL_FLOOR)
