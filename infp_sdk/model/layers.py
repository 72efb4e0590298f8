"""Small building blocks shared by the stage-2 networks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation: x (B, T, W), shift/scale (B, W)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0):
    """positions (...,) float -> (..., dim) sin/cos features."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=positions.device)
        / half
    )
    args = positions.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def distance_bias(n_q: int, n_k: int, slopes: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Per-head linear distance penalty (ALiBi-like) -> (H, n_q, n_k).

    Query i sits at position i + offset on the key axis; the penalty is slope_h * |pos_q - pos_k|.
    Distance-only biases let the networks run on windows of any length.
    """
    q = torch.arange(n_q, device=slopes.device, dtype=torch.float32) + offset
    k = torch.arange(n_k, device=slopes.device, dtype=torch.float32)
    dist = (q[:, None] - k[None, :]).abs()
    return -slopes.view(-1, 1, 1) * dist


class Attention(nn.Module):
    """Multi-head attention with an optional additive bias (H, Tq, Tk)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``context`` (B, Tk, Wc) -> two (B, H, Tk, W/H).

        Separate from :meth:`attend` so that a context fixed across solver steps is projected once.
        """
        b, tk, _ = context.shape
        h = self.heads
        k, v = self.kv(context).view(b, tk, 2, h, -1).permute(2, 0, 3, 1, 4)
        return k, v

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        # x (B, Tq, W), k/v (B, H, Tk, W/H) -> (B, Tq, W)
        b, tq, w = x.shape
        q = self.q(x).view(b, tq, self.heads, -1).transpose(1, 2)
        mask = None if bias is None else bias.unsqueeze(0).to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, Tq, W/H)
        return self.out(y.transpose(1, 2).reshape(b, tq, w))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        # x (B, Tq, W), context (B, Tk, Wc) -> (B, Tq, W)
        return self.attend(x, *self.project_kv(context), bias)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def init_slopes(heads: int, strongest: float = 0.5) -> torch.Tensor:
    """Geometric slopes from `strongest` down, one per head, as in ALiBi."""
    return strongest * torch.pow(0.5, torch.arange(heads, dtype=torch.float32))
