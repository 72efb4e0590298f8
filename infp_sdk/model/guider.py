"""Interactive motion guider (INFP §3.2).

Two learned memory banks of motion embeddings: M_v (verbal) is queried by the agent's own audio,
M_nv (non-verbal) by the partner's audio. A style vector modulates both banks StyleGAN2-style
(per-channel scale from the style, then demodulation to unit RMS per embedding).

Both banks are read in one attention whose softmax runs over all 2K embeddings at once, so the
two retrievals compete: the result is the sum of what each bank gives (as in the paper), weighted
by how well each side's audio matched its bank. The share of attention that went to M_v is a
direct, learned measure of "how much of this frame is talking" — it becomes ``Frame.speaking``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GuiderConfig
from .layers import Mlp


class InteractiveMotionGuider(nn.Module):
    def __init__(self, width: int, style_dim: int, config: GuiderConfig):
        super().__init__()
        if width % config.heads:
            raise ValueError(f"guider width {width} is not divisible by {config.heads} heads")
        self.config = config
        self.width = width
        w, k = width, config.bank_size
        banks = config.memory_banks
        # (creation order kept stable: it fixes the initial weights for a given seed)
        if banks:
            self.bank_verbal = nn.Parameter(torch.randn(k, w))  # M_v
            self.bank_nonverbal = nn.Parameter(torch.randn(k, w))  # M_nv
            # style -> per-channel bank scales; zero-initialised so training starts unmodulated
            self.style_to_scale = nn.Linear(style_dim, 2 * w)
            nn.init.zeros_(self.style_to_scale.weight)
            nn.init.zeros_(self.style_to_scale.bias)
        self.norm_own = nn.LayerNorm(w)
        self.norm_partner = nn.LayerNorm(w)
        self.query_own = nn.Linear(w, w)
        self.query_partner = nn.Linear(w, w)
        if banks:
            self.kv_verbal = nn.Linear(w, 2 * w)
            self.kv_nonverbal = nn.Linear(w, 2 * w)
        self.out = nn.Linear(w, w)
        self.mlp_norm = nn.LayerNorm(w)
        self.mlp = Mlp(w, 4 * w)
        if not banks:
            self.speaking_head = nn.Linear(2 * w, 1)

    def modulated_banks(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """style (B, S) -> M_v', M_nv' (B, K, W), each embedding demodulated to unit RMS."""
        scale_v, scale_nv = (1 + self.style_to_scale(style)).chunk(2, dim=-1)  # (B, W) each

        def mod_demod(bank: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            m = bank.unsqueeze(0) * scale.unsqueeze(1)  # (B, K, W)
            return m * torch.rsqrt(m.pow(2).mean(dim=-1, keepdim=True) + 1e-8)

        return mod_demod(self.bank_verbal, scale_v), mod_demod(self.bank_nonverbal, scale_nv)

    def forward(
        self, own: torch.Tensor, partner: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """own, partner (B, T, W) audio features; style (B, S).

        Returns the interactive motion feature (B, T, W) and speaking (B, T) in 0..1, the share of
        attention mass that went to the verbal bank.
        """
        b, t, w = own.shape
        if not self.config.memory_banks:
            return self._forward_without_banks(own, partner)
        h = self.config.heads
        bank_v, bank_nv = self.modulated_banks(style)
        q_v = self.query_own(self.norm_own(own)).view(b, t, h, w // h).transpose(1, 2)
        q_nv = self.query_partner(self.norm_partner(partner)).view(b, t, h, w // h).transpose(1, 2)
        k_v, v_v = self.kv_verbal(bank_v).view(b, -1, 2, h, w // h).permute(2, 0, 3, 1, 4)
        k_nv, v_nv = self.kv_nonverbal(bank_nv).view(b, -1, 2, h, w // h).permute(2, 0, 3, 1, 4)
        scale = (w // h) ** -0.5
        logits = torch.cat([q_v @ k_v.transpose(-1, -2), q_nv @ k_nv.transpose(-1, -2)], dim=-1)
        attn = F.softmax(logits * scale, dim=-1)  # (B, H, T, 2K)
        k = self.config.bank_size
        attn_v, attn_nv = attn[..., :k], attn[..., k:]
        read = attn_v @ v_v + attn_nv @ v_nv  # (B, H, T, W/H): the two banks' outputs, summed
        feature = self.out(read.transpose(1, 2).reshape(b, t, w))
        feature = feature + self.mlp(self.mlp_norm(feature))
        speaking = attn_v.sum(dim=-1).mean(dim=1)  # (B, T)
        return feature, speaking

    def _forward_without_banks(
        self, own: torch.Tensor, partner: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        own_p = self.query_own(self.norm_own(own))  # (B, T, W)
        partner_p = self.query_partner(self.norm_partner(partner))
        feature = self.out(own_p + partner_p)
        feature = feature + self.mlp(self.mlp_norm(feature))
        speaking = torch.sigmoid(self.speaking_head(torch.cat([own_p, partner_p], -1))).squeeze(-1)
        return feature, speaking
