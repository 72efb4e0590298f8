"""The stage-2 model: audio encoder -> interactive motion guider -> motion DiT.

`INFPModel` holds the networks and exposes three pure functions of tensors: `encode` (two log-mel
streams -> interactive motion feature and speaking), `loss` (one training batch) and
`sample_window` (noise -> a window of motion latents). Streaming, clocks and I/O live elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import sampling
from .config import INFPConfig, rig_indices
from .dit import MotionDiT
from .encoder import AudioEncoder
from .guider import InteractiveMotionGuider
from .mouth import MouthHead
from .style import StyleEncoder


class INFPModel(nn.Module):
    def __init__(self, config: INFPConfig):
        super().__init__()
        self.config = config
        width = config.encoder.width
        self.encoder = AudioEncoder(config.encoder)
        self.guider = InteractiveMotionGuider(width, config.style_dim, config.guider)
        self.style_encoder = StyleEncoder(config.latent_dim, config.style_dim, config.style)
        self.dit = MotionDiT(config.latent_dim, width, config.style_dim, config.dit)
        self.mouth = MouthHead(width, config.mouth) if config.mouth is not None else None
        self.mouth_channels = rig_indices(config.mouth) if config.mouth is not None else []
        # The same indices on the model's device: indexing with a Python list copies it to the
        # device on every call, which a CUDA graph cannot capture.
        self.register_buffer(
            "mouth_index", torch.tensor(self.mouth_channels, dtype=torch.long), persistent=False
        )
        # Per-dimension statistics of the training motion. The networks work on standardised
        # latents so that every dimension weighs the same in the loss, however small its range.
        self.register_buffer("motion_mean", torch.zeros(config.latent_dim))
        self.register_buffer("motion_std", torch.ones(config.latent_dim))

    def set_motion_stats(self, motion: torch.Tensor, min_std: float = 0.05) -> None:
        """Fit the standardisation to training motion (…, D); call before training."""
        flat = motion.reshape(-1, motion.shape[-1]).float()
        self.motion_mean.copy_(flat.mean(dim=0))
        self.motion_std.copy_(flat.std(dim=0).clamp(min=min_std))

    def standardise(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents - self.motion_mean) / self.motion_std

    def destandardise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.motion_std + self.motion_mean

    # ------------------------------------------------------------------ conditioning
    def encode(
        self, mel_own: torch.Tensor, mel_partner: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mel_* (B, (T + lookahead) * 4, 80) -> feature (B, T, W), speaking (B, T) and mouth
        (B, T, M): the articulation head's standardised channels (M = 0 without a head).

        Both channels go through the same encoder weights (stacked on the batch axis).
        """
        b = mel_own.shape[0]
        audio = self.encoder(torch.cat([mel_own, mel_partner], dim=0))
        feature, speaking = self.guider(audio[:b], audio[b:], style)
        if self.mouth is None:
            mouth = audio.new_zeros(b, audio.shape[1], 0)
        else:
            mouth = self.mouth(audio[:b])
        return feature, speaking, mouth

    def with_mouth(self, z: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        """Standardised latents (B, N, D) with the articulation channels set from ``mouth``."""
        if not self.mouth_channels:
            return z
        return z.index_copy(-1, self.mouth_index, mouth.to(z.dtype))

    def style_vector(self, reference: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Style from reference motion latents (B, T, D); without one, the learned null style."""
        if reference is None:
            return self.dit.null_style.expand(batch, -1)
        return self.style_encoder(self.standardise(reference))

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The training losses (what DistributedDataParallel calls); see :meth:`loss`."""
        return self.loss(batch)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One training step's losses.

        batch: ``mel_own``/``mel_partner`` (B, (C + N + L) * 4, 80) with C = audio_context frames
        of past and L = lookahead frames of future audio; ``motion`` (B, N, D) target latents;
        ``prev`` (B, P, D) the latents before the window; optional ``reference`` (B, T, D) motion
        of the same person elsewhere (for style); optional ``speaking`` (B, N) 0..1 own-voice
        activity (supervises the guider's speaking output) with ``has_prev`` (B,) 0 where the
        window starts a recording.
        """
        cfg = self.config
        x0 = self.standardise(batch["motion"])
        b, n, _ = x0.shape
        device = x0.device
        reference = batch.get("reference")
        has_style = (
            torch.ones(b, device=device) if reference is not None else torch.zeros(b, device=device)
        )
        style = self.style_vector(reference, b)
        feature, speaking, mouth = self.encode(batch["mel_own"], batch["mel_partner"], style)
        feature, speaking, mouth = feature[:, -n:], speaking[:, -n:], mouth[:, -n:]

        def keep(p: float) -> torch.Tensor:
            return (torch.rand(b, device=device) >= p).float()

        keep_style = keep(cfg.p_drop_style) * has_style
        keep_feature = keep(cfg.p_drop_feature)
        keep_prev = keep(cfg.p_drop_prev) * batch.get("has_prev", torch.ones(b, device=device))
        t = torch.rand(b, device=device) * sampling.T_MAX
        noise = torch.randn_like(x0)
        x_t = sampling.add_noise(x0, noise, t)
        prev = self.standardise(batch["prev"])
        v = self.dit(x_t, t, feature, prev, style, keep_feature, keep_prev, keep_style)
        diffusion = F.mse_loss(v, sampling.v_target(x0, noise, t))
        out = {"diffusion": diffusion, "loss": diffusion}
        if "speaking" in batch and cfg.speaking_loss_weight > 0:
            target = batch["speaking"][:, -n:]
            bce = F.binary_cross_entropy(speaking.clamp(1e-4, 1 - 1e-4), target)
            out["speaking"] = bce
            out["loss"] = out["loss"] + cfg.speaking_loss_weight * bce
        if self.mouth is not None:
            articulation = F.mse_loss(mouth, x0.index_select(-1, self.mouth_index))
            out["mouth"] = articulation
            out["loss"] = out["loss"] + cfg.mouth.loss_weight * articulation
        return out

    # ------------------------------------------------------------------ sampling
    def denoiser(
        self,
        feature: torch.Tensor,
        prev: torch.Tensor,
        style: torch.Tensor,
        has_prev: torch.Tensor,
        cfg_scale: float,
    ) -> sampling.Denoiser:
        """x0-predicting closure for the samplers; CFG runs cond and uncond as one batch of 2B.

        What does not change across solver steps (the DiT's condition) is computed once here.

        The unconditional branch drops the audio feature and the style but keeps the previous
        latents, so guidance strengthens the audio's effect without breaking continuity.
        """
        b = feature.shape[0]
        ones = torch.ones(b, device=feature.device)
        keep_prev = has_prev.to(feature.dtype)

        if cfg_scale == 1.0:
            condition = self.dit.condition(feature, prev, style, ones, keep_prev, ones)

            def denoise(x: torch.Tensor, t: float) -> torch.Tensor:
                v = self.dit.velocity(x, x.new_full((b,), t), condition)
                return sampling.x0_from_v(x, v, t)

            return denoise

        zeros = torch.zeros_like(ones)
        both = self.dit.condition(
            torch.cat([feature, feature]),
            torch.cat([prev, prev]),
            torch.cat([style, style]),
            torch.cat([ones, zeros]),
            torch.cat([keep_prev, keep_prev]),
            torch.cat([ones, zeros]),
        )

        def denoise_guided(x: torch.Tensor, t: float) -> torch.Tensor:
            v = self.dit.velocity(torch.cat([x, x]), x.new_full((2 * b,), t), both)
            v = sampling.guided(v[:b], v[b:], cfg_scale)
            return sampling.x0_from_v(x, v, t)

        return denoise_guided

    @torch.no_grad()
    def sample_window(
        self,
        feature: torch.Tensor,
        prev: torch.Tensor,
        style: torch.Tensor,
        noise: torch.Tensor,
        has_prev: torch.Tensor | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        mouth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoise one window: feature (B, N, W), prev (B, P, D), style (B, S), noise (B, N, D).

        ``prev`` and the result are motion latents; ``has_prev`` (B,) is 0 for a window with no
        history (the start of a stream): the null continuity embedding is used, as trained by
        the condition dropout. ``mouth`` (B, N, M), the articulation head's output from
        :meth:`encode`, replaces the sampled mouth channels. Returns (B, N, D).
        """
        cfg = self.config
        name = sampler or cfg.sampler
        if name not in sampling.SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}: choose one of {sorted(sampling.SAMPLERS)}")
        if has_prev is None:
            has_prev = torch.ones(feature.shape[0], device=feature.device)
        denoise = self.denoiser(
            feature,
            self.standardise(prev),
            style,
            has_prev,
            cfg.cfg_scale if cfg_scale is None else cfg_scale,
        )
        z = sampling.SAMPLERS[name](denoise, noise, steps or cfg.steps)
        if mouth is not None:
            z = self.with_mouth(z, mouth)
        return self.destandardise(z)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
