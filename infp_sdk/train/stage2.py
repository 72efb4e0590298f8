"""The stage-2 optimisation step (AdamW as in the paper, with an EMA copy of the weights)."""

from __future__ import annotations

import copy

import torch

from ..model.infp import INFPModel


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
