"""Style encoder: a clip of reference motion -> a style vector for the guider and the DiT.

A person's manner (how much they move their head, how wide they open their mouth, how often they
nod) is read from a few seconds of their motion; the guider's bank modulation and the DiT's adaLN
both take the resulting vector. Mean and spread over time make it independent of clip length.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import StyleEncoderConfig
from .layers import Mlp


class StyleEncoder(nn.Module):
    def __init__(self, latent_dim: int, style_dim: int, config: StyleEncoderConfig):
        super().__init__()
        self.config = config
        self.frame = Mlp(latent_dim, config.width, config.width)
        self.head = Mlp(2 * config.width, config.width, style_dim)

    def forward(self, reference: torch.Tensor) -> torch.Tensor:
        """reference (B, T, D) motion latents -> (B, style_dim)."""
        h = self.frame(reference)  # (B, T, W)
        stats = torch.cat([h.mean(dim=1), h.std(dim=1, unbiased=False)], dim=-1)
        return self.head(stats)
