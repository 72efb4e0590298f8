"""The articulation path: own-voice audio features -> the mouth channels that say the words.

A diffusion model samples each frame's mouth from a distribution, and with a few solver steps and
no guidance that distribution comes out blurred: the jaw follows who is talking but not the
syllables. Articulation is nearly a function of the sound, so it is regressed deterministically
from the agent's own audio features, beside the DiT; the DiT keeps everything where variety
matters (head, gaze, brows, smiles, listening lips). The head reads the own channel only, so the
lips cannot be driven by the partner's voice.

The channels are the ones the speech visemes move; lip press, lower-lip roll and chin shrug are
also listening gestures (pressed lips while thinking) and stay with the DiT.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MouthConfig


class MouthHead(nn.Module):
    """Per-frame MLP: own audio features (B, T, W) -> standardised mouth channels (B, T, M).

    A regression predicts the mean mouth for a sound, and a mean moves less than any one
    speaker: the mouth would mumble. After training, :func:`calibrate` measures that shrinkage
    inside speech on held-out sessions and stores a gain per channel around the mean spoken
    value (``centre``), the global-variance correction of parametric speech synthesis. Until
    then (and while training) gain 1 leaves the output as regressed.
    """

    def __init__(self, width: int, config: MouthConfig):
        super().__init__()
        self.config = config
        self.register_buffer("centre", torch.zeros(len(config.channels)))
        self.register_buffer("gain", torch.ones(len(config.channels)))
        self.net = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, config.hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.hidden, config.hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.hidden, len(config.channels)),
        )

    def forward(self, own: torch.Tensor) -> torch.Tensor:
        return self.regress(own) * self.gain + self.centre * (1 - self.gain)

    def regress(self, own: torch.Tensor) -> torch.Tensor:
        """The uncalibrated prediction (what the training loss sees)."""
        return self.net(own)


@torch.no_grad()
def calibrate(
    head: MouthHead, predictions: list[torch.Tensor], targets: list[torch.Tensor]
) -> dict[str, list[float]]:
    """Set ``head``'s gain so its spread inside speech matches the targets'.

    ``predictions`` are :meth:`MouthHead.regress` outputs (T, M) over frames inside speech of
    held-out sessions, ``targets`` the standardised true channels there. Per channel, the gain
    is the ratio of the pooled within-session standard deviations, kept within 1..2 (never
    damp, never more than double), and the centre is the mean prediction. Returns both.
    """

    def pooled_std(xs: list[torch.Tensor]) -> torch.Tensor:
        var = sum(((x - x.mean(0)) ** 2).sum(0) for x in xs)
        return (var / max(sum(len(x) for x in xs) - len(xs), 1)).sqrt()

    kept = [(p, t) for p, t in zip(predictions, targets, strict=True) if len(p) > 1]
    if not kept:
        raise ValueError("calibrating the mouth needs held-out frames inside speech; none given")
    pred = [p for p, _ in kept]
    true = [t for _, t in kept]
    gain = (pooled_std(true) / pooled_std(pred).clamp(min=1e-6)).clamp(1.0, 2.0)
    head.gain.copy_(gain)
    head.centre.copy_(torch.cat(pred).mean(0))
    return {"gain": gain.tolist(), "centre": head.centre.tolist()}
