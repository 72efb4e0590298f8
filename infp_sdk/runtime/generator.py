"""Window-by-window motion generation: the loop the streaming Agent and offline jobs share.

Each hop of ``n`` frames needs the log-mel of both channels from ``audio_context`` frames before
the hop to ``lookahead`` frames after it, and the last ``prev_frames`` latents already generated.
The noise of each hop is drawn from a generator seeded by (seed, first frame index), so the result
does not depend on how the audio was chunked on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..audio import MEL_FRAMES_PER_MOTION_FRAME, LogMel, motion_frames
from ..model.encoder import LOG_MEL_FLOOR
from ..model.infp import INFPModel
from ..motion import Frame


@dataclass
class Motion:
    """Generated motion for a recording: latents (T, D) and speaking (T,)."""

    latents: np.ndarray
    speaking: np.ndarray

    def frames(self) -> list[Frame]:
        """One :class:`Frame` per latent (the rig motion space)."""
        return [
            Frame.from_rig_latent(i, self.latents[i], float(self.speaking[i]))
            for i in range(len(self.latents))
        ]


def hop_noise(seed: int, start: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The initial noise for the hop that starts at frame ``start``."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + start) % (2**63))
    return torch.randn(shape, generator=g)


def prev_context(latents: torch.Tensor, prev_frames: int, dim: int) -> tuple[torch.Tensor, float]:
    """The continuity condition from the latents so far (T, D) -> ((1, P, D), has_prev).

    Fewer than P latents are padded by repeating the first; none at all is the null condition.
    """
    if latents.shape[0] == 0:
        return torch.zeros(1, prev_frames, dim), 0.0
    tail = latents[-prev_frames:]
    if tail.shape[0] < prev_frames:
        pad = tail[:1].expand(prev_frames - tail.shape[0], -1)
        tail = torch.cat([pad, tail])
    return tail.unsqueeze(0), 1.0


@torch.no_grad()
def generate_motion(
    model: INFPModel,
    own: np.ndarray,
    partner: np.ndarray | None = None,
    *,
    seed: int = 0,
    hop: int | None = None,
    style: torch.Tensor | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
) -> Motion:
    """Motion for a whole recording: own/partner are 16 kHz mono float32 (see ``to_mono_16k``).

    A missing partner is silence; the shorter track is padded with silence. One frame per 40 ms.
    """
    cfg = model.config
    if partner is None:
        partner = np.zeros_like(own)
    n = max(len(own), len(partner))
    own = np.pad(own, (0, n - len(own)))
    partner = np.pad(partner, (0, n - len(partner)))
    total = motion_frames(n)
    hop = hop or cfg.window
    if hop < 1:
        raise ValueError(f"hop must be at least 1 frame, got {hop}")
    k = MEL_FRAMES_PER_MOTION_FRAME
    context, lookahead = cfg.audio_context, cfg.encoder.lookahead
    mel = LogMel()(torch.from_numpy(np.stack([own, partner]).astype(np.float32)))  # (2, M, 80)
    mel = torch.nn.functional.pad(
        mel[:, : total * k], (0, 0, context * k, lookahead * k), value=LOG_MEL_FLOOR
    )
    if style is None:
        style = model.style_vector(None, 1)
    dim = cfg.latent_dim
    latents = torch.zeros(0, dim)
    speaking = []
    for start in range(0, total, hop):
        count = min(hop, total - start)
        window = mel[:, start * k : (start + context + count + lookahead) * k]
        feature, speak = model.encode(window[:1], window[1:], style)
        prev, has_prev = prev_context(latents, cfg.dit.prev_frames, dim)
        x = model.sample_window(
            feature[:, -count:],
            prev,
            style,
            hop_noise(seed, start, (1, count, dim)),
            has_prev=torch.tensor([has_prev]),
            sampler=sampler,
            steps=steps,
            cfg_scale=cfg_scale,
        )
        latents = torch.cat([latents, x[0]])
        speaking.append(speak[0, -count:])
    speak_all = torch.cat(speaking) if speaking else torch.zeros(0)
    return Motion(latents=latents.numpy(), speaking=speak_all.numpy())
