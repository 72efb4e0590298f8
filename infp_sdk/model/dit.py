"""Conditional diffusion transformer over windows of motion latents (INFP §3.3).

Tokens are the previous window's last `prev_frames` latents (the continuity condition) followed by
the `N` noisy latents being denoised. Each block runs, in order:

1. self-attention over all tokens;
2. motion attention: the tokens query the guider's interactive motion feature of the window;
3. temporal attention: each token attends to its neighbours within `temporal_radius` frames;
4. an MLP;

each modulated by adaLN-Zero from (diffusion step + style). Positions enter as sinusoids of the
frame offset from the window start plus per-head distance penalties in every attention, so the
network runs on windows of any length (the streaming runtime picks its own hop).

Condition dropout (for classifier-free guidance) is a per-example keep flag for each condition;
a dropped condition is replaced by a learned null embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import DiTConfig
from .layers import Attention, Mlp, distance_bias, init_slopes, modulate, sinusoidal_embedding


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, feature_dim: int):
        super().__init__()
        self.norm_self = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.self_attn = Attention(width, heads)
        self.norm_motion = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.motion_attn = Attention(width, heads, kv_dim=feature_dim)
        self.norm_temporal = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.temporal_attn = Attention(width, heads)
        self.norm_mlp = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 12 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        motion_kv: tuple[torch.Tensor, torch.Tensor],
        self_bias: torch.Tensor,
        motion_bias: torch.Tensor,
        temporal_bias: torch.Tensor,
    ) -> torch.Tensor:
        # x (B, P+N, W); cond (B, W); motion_kv: the feature's keys and values (B, H, N, W/H)
        mods = self.ada(cond).chunk(12, dim=-1)
        s_sh, s_sc, s_g, m_sh, m_sc, m_g, t_sh, t_sc, t_g, f_sh, f_sc, f_g = mods
        h = modulate(self.norm_self(x), s_sh, s_sc)
        x = x + s_g.unsqueeze(1) * self.self_attn(h, h, self_bias)
        h = modulate(self.norm_motion(x), m_sh, m_sc)
        x = x + m_g.unsqueeze(1) * self.motion_attn.attend(h, *motion_kv, motion_bias)
        h = modulate(self.norm_temporal(x), t_sh, t_sc)
        x = x + t_g.unsqueeze(1) * self.temporal_attn(h, h, temporal_bias)
        h = modulate(self.norm_mlp(x), f_sh, f_sc)
        return x + f_g.unsqueeze(1) * self.mlp(h)


@dataclass
class DiTCondition:
    """The part of a denoiser call that stays fixed across a window's solver steps.

    Made once per window by :meth:`MotionDiT.condition`; each step then runs only what depends
    on the noisy latents and the diffusion time (:meth:`MotionDiT.velocity`).
    """

    prev_tokens: torch.Tensor  # (B, P, W) continuity tokens, positions included
    feature_tokens: torch.Tensor  # (B, N, W) each frame's feature added to its token, + positions
    motion_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per block: keys, values (B, H, N, W/H)
    style: torch.Tensor  # (B, W) the style's share of the adaLN condition
    self_bias: torch.Tensor  # (H, P+N, P+N)
    motion_bias: torch.Tensor  # (H, P+N, N)
    temporal_bias: torch.Tensor  # (H, P+N, P+N)


class MotionDiT(nn.Module):
    def __init__(self, latent_dim: int, feature_dim: int, style_dim: int, config: DiTConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.latent_in = nn.Linear(latent_dim, w)
        self.null_prev = nn.Parameter(torch.zeros(w))
        self.null_feature = nn.Parameter(torch.zeros(feature_dim))
        self.null_style = nn.Parameter(torch.zeros(style_dim))
        self.prev_type = nn.Parameter(torch.zeros(w))
        # the guider's output is a small convex mix of bank values: normalise before use
        self.feature_in = nn.Sequential(
            nn.LayerNorm(feature_dim), nn.Linear(feature_dim, feature_dim)
        )
        self.feature_to_token = nn.Linear(feature_dim, w)
        self.time_mlp = Mlp(w, 4 * w, w)
        self.style_mlp = Mlp(style_dim, 4 * w, w)
        self.blocks = nn.ModuleList(
            [DiTBlock(w, config.heads, config.mlp_ratio, feature_dim) for _ in range(config.depth)]
        )
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        self.final = nn.Linear(w, latent_dim)
        for layer in (self.final_ada[1], self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # one set of slopes per attention kind, shared by the blocks
        self.self_slopes = nn.Parameter(init_slopes(config.heads, 0.1))
        self.motion_slopes = nn.Parameter(init_slopes(config.heads, 1.0))
        self.temporal_slopes = nn.Parameter(init_slopes(config.heads, 0.5))

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        feature: torch.Tensor,
        prev: torch.Tensor,
        style: torch.Tensor,
        keep_feature: torch.Tensor,
        keep_prev: torch.Tensor,
        keep_style: torch.Tensor,
    ) -> torch.Tensor:
        """Predict v for a window.

        x_t (B, N, D) noisy latents; t (B,) diffusion time in [0, 1]; feature (B, N, C) guider
        output for the same frames; prev (B, P, D) the latents before the window; style (B, S);
        keep_* (B,) float 1 = use the condition, 0 = replace it by its null embedding.
        Returns (B, N, D).
        """
        condition = self.condition(feature, prev, style, keep_feature, keep_prev, keep_style)
        return self.velocity(x_t, t, condition)

    def condition(
        self,
        feature: torch.Tensor,
        prev: torch.Tensor,
        style: torch.Tensor,
        keep_feature: torch.Tensor,
        keep_prev: torch.Tensor,
        keep_style: torch.Tensor,
    ) -> DiTCondition:
        """Everything of :meth:`forward` that does not depend on x_t or t (same arguments)."""
        b, n, _ = feature.shape
        p = prev.shape[1]
        w = self.config.width
        kf = keep_feature.view(b, 1, 1).to(feature.dtype)
        kp = keep_prev.view(b, 1, 1).to(prev.dtype)
        ks = keep_style.view(b, 1).to(style.dtype)
        feature = self.feature_in(kf * feature + (1 - kf) * self.null_feature)
        style = ks * style + (1 - ks) * self.null_style

        positions = torch.arange(-p, n, device=feature.device, dtype=torch.float32)
        pos = sinusoidal_embedding(positions, w)  # (P+N, W)
        # previous latents share the input projection with the noisy ones: the network compares
        # like with like when it continues the motion across the window boundary
        prev_tok = kp * self.latent_in(prev) + (1 - kp) * self.null_prev + self.prev_type
        # each frame's own feature is also added to its token: alignment for free, while the
        # motion attention gathers context
        feature_tok = self.feature_to_token(feature) + pos[p:]

        band = distance_bias(p + n, p + n, torch.ones(1, device=feature.device))[0]
        outside = (-band > self.config.temporal_radius).to(torch.float32) * -1e4
        return DiTCondition(
            prev_tokens=prev_tok + pos[:p],
            feature_tokens=feature_tok,
            motion_kv=[block.motion_attn.project_kv(feature) for block in self.blocks],
            style=self.style_mlp(style),
            self_bias=distance_bias(p + n, p + n, self.self_slopes),
            motion_bias=distance_bias(p + n, n, self.motion_slopes, offset=-p),
            temporal_bias=distance_bias(p + n, p + n, self.temporal_slopes) + outside,
        )

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, c: DiTCondition) -> torch.Tensor:
        """One solver step's prediction: x_t (B, N, D), t (B,) -> v (B, N, D)."""
        p = c.prev_tokens.shape[1]
        tokens = torch.cat([c.prev_tokens, self.latent_in(x_t) + c.feature_tokens], dim=1)
        cond = self.time_mlp(sinusoidal_embedding(t * 1000.0, self.config.width)) + c.style
        for block, motion_kv in zip(self.blocks, c.motion_kv, strict=True):
            tokens = block(tokens, cond, motion_kv, c.self_bias, c.motion_bias, c.temporal_bias)
        sh, sc = self.final_ada(cond).chunk(2, dim=-1)
        out = self.final(modulate(self.final_norm(tokens), sh, sc))
        return out[:, p:]
