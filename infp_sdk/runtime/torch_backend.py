"""The torch backend: an ``INFPModel`` in memory behind the runtime's :class:`HopModel` interface.

Used for a model being trained or evaluated (its frames match the offline tools exactly), and on a
GPU, where full hops replay captured CUDA graphs (:mod:`.graphs`). Needs the ``torch`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model.checkpoint import load_model
from ..model.infp import INFPModel
from .backend import Sampling


def torch_device(device: str) -> torch.device:
    """ "cpu" or "cuda[:N]" -> a torch device, with a clear error when torch sees no GPU."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} was asked for but torch sees no CUDA GPU (torch "
            f"{torch.__version__}); use device='cpu' or 'auto', or install a CUDA build of torch"
        )
    return torch.device(device)


@torch.no_grad()
def run_hop_batch(
    model: INFPModel,
    mel: torch.Tensor,
    prev: torch.Tensor,
    style: torch.Tensor,
    noise: torch.Tensor,
    has_prev: torch.Tensor,
    sampling: Sampling,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's work for a batch of hops, on the model's device: latents (B, count, D) and
    speaking (B, count). Reads no tensor back to the host, so it can be captured as a CUDA graph.
    """
    count = noise.shape[1]
    feature, speaking, mouth = model.encode(mel[:, 0], mel[:, 1], style)
    sampler, steps, cfg_scale = sampling
    x = model.sample_window(
        feature[:, -count:],
        prev,
        style,
        noise,
        has_prev=has_prev,
        sampler=sampler,
        steps=steps,
        cfg_scale=cfg_scale,
        mouth=mouth[:, -count:],
    )
    return x, speaking[:, -count:]


class TorchHopModel:
    """An ``INFPModel`` as a :class:`~infp_sdk.runtime.backend.HopModel`.

    ``device`` defaults to the device of the model's weights; the model is moved there and put
    in eval mode. On a CUDA device hop batches replay captured CUDA graphs.
    """

    backend = "torch"

    def __init__(self, model: INFPModel, device: str | None = None):
        if device is None:
            device = str(next(model.parameters()).device)
        self.torch_device = torch_device(device)
        self.device = str(self.torch_device)
        self.model = model.to(self.torch_device).eval()
        self.config = model.config
        self.graphs = None
        if self.torch_device.type == "cuda":
            from .graphs import HopGraphs

            self.graphs = HopGraphs(self.model, self.torch_device)

    @classmethod
    def load(
        cls, model: str | Path | INFPModel, device: str, *, threads: int | None = None
    ) -> TorchHopModel:
        """A bundled name, a checkpoint path or an ``INFPModel`` on ``device``; ``threads``
        sets torch's CPU threads (a process-wide setting)."""
        if threads:
            torch.set_num_threads(threads)
        net = model if isinstance(model, INFPModel) else load_model(model)
        return cls(net, device)

    def __repr__(self) -> str:
        return f"<TorchHopModel on {self.device}>"

    def style_vector(self, reference: np.ndarray | None) -> np.ndarray:
        """The style (1, S) of reference motion latents (T, D); None: the null style."""
        with torch.no_grad():
            if reference is None:
                style = self.model.style_vector(None, 1)
            else:
                ref = torch.as_tensor(np.asarray(reference, np.float32)).to(self.torch_device)
                style = self.model.style_vector(ref[None] if ref.ndim == 2 else ref, 1)
        return style.detach().cpu().float().numpy()

    def run_hops(self, batch: Any, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
        """Latents (B, count, D) and speaking (B, count) for a
        :class:`~infp_sdk.runtime.generator.HopBatch`."""
        if self.graphs is not None:
            return self.graphs.run(batch, sampling)
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in batch.arrays()]
        x, speaking = run_hop_batch(self.model, *tensors, sampling)
        return x.numpy(), speaking.numpy()
