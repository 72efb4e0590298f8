"""The stage-2 optimisation step (AdamW as in the paper, with an EMA copy of the weights)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..data.windows import Session
from ..model.encoder import pad_lookahead
from ..model.infp import INFPModel
from ..model.mouth import calibrate


def make_optimizer(
    model: INFPModel, lr: float = 1e-4, weight_decay: float = 1e-2
) -> torch.optim.AdamW:
    """AdamW, lr 1e-4 and weight decay 1e-2 by default (the paper's settings)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def train_step(
    model: INFPModel | torch.nn.parallel.DistributedDataParallel,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    max_grad_norm: float = 1.0,
) -> dict[str, float]:
    """One optimisation step (``model`` may be wrapped in DDP); returns the losses as floats."""
    model.train()
    losses = model(batch)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return {k: float(v.detach()) for k, v in losses.items()}


class EMA:
    """Exponential moving average of a model's weights (what gets sampled from and shipped)."""

    def __init__(self, model: INFPModel, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: INFPModel) -> None:
        for ema, live in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema.dtype.is_floating_point:
                ema.lerp_(live, 1 - self.decay)
            else:
                ema.copy_(live)


@torch.no_grad()
def calibrated(model: INFPModel, sessions: list[Session]) -> INFPModel:
    """A copy of ``model`` whose articulation head's spread is calibrated on ``sessions``.

    The head runs over each held-out session as a stream would (causal, silence after the end);
    frames well inside the own voice's turns (:func:`infp_sdk.eval.metrics.inside_turns`) are
    compared with the standardised teacher channels (:func:`infp_sdk.model.mouth.calibrate`).
    A model without the head, or sessions without voice activity, come back unchanged.
    """
    from ..eval.metrics import inside_turns

    if model.mouth is None:
        return model
    out = copy.deepcopy(model).eval()
    predictions, targets = [], []
    for s in sessions:
        if s.speaking is None:
            continue
        mask = inside_turns(s.speaking.numpy(), np.zeros(s.frames))
        if mask.sum() < 2:
            continue
        mel = pad_lookahead(s.mel_own[None], out.config.encoder)
        own = out.encoder(mel)[0, : s.frames]
        keep = torch.from_numpy(mask)
        predictions.append(out.mouth.regress(own)[keep])
        targets.append(out.standardise(s.motion)[keep][:, out.mouth_channels])
    if predictions:
        calibrate(out.mouth, predictions, targets)
    return out
