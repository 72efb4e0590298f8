"""Fixed-shape hop batches, captured as CUDA graphs on a GPU.

A hop of the realtime model is a few hundred small kernels (an encoder call and six solver steps
of a four-block transformer on a dozen tokens); on a GPU their launch cost, not their arithmetic,
sets the time. :class:`HopGraphs` gives every batch shape a set of static buffers, captures the
model's work on them once as a CUDA graph and then replays it: one launch per hop batch.

To keep the number of shapes small, a batch is padded to the next power of two by repeating its
first hop (the padded rows are computed and dropped). Inputs travel through pinned host buffers
and the work runs on the runner's own CUDA stream; the host waits on an event recorded after the
results are copied back, not on the whole device. Capture needs a hop that never reads a tensor
back to the host, which :func:`~infp_sdk.runtime.torch_backend.run_hop_batch` guarantees (the test
suite runs it on the meta device, where any such read fails).

On the CPU the same runner works without capture (``capture=False``), which is how its padding
and buffer reuse are tested on machines without a GPU.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..model.infp import INFPModel
from .backend import Sampling
from .generator import HopBatch
from .torch_backend import run_hop_batch


def bucket(size: int, largest: int = 64) -> int:
    """The padded batch size for ``size`` hops: the next power of two, up to ``largest``."""
    if size < 1:
        raise ValueError(f"a batch needs at least one hop, got {size}")
    if size > largest:
        return size
    return 1 << (size - 1).bit_length()


@dataclass
class _Shape:
    device_in: tuple[torch.Tensor, ...]  # static inputs the graph reads (mel, prev, style, ...)
    host_in: tuple[torch.Tensor, ...]  # pinned staging buffers (the same tensors on the CPU)
    device_out: tuple[torch.Tensor, torch.Tensor]  # static outputs: latents, speaking
    host_out: tuple[torch.Tensor, torch.Tensor]
    graph: torch.cuda.CUDAGraph | None


class HopGraphs:
    """Runs batches of hops on fixed shapes; on CUDA each shape is replayed as a CUDA graph.

    Args:
        model: the torch model, already on ``device`` and in eval mode.
        device: where it runs.
        capture: capture CUDA graphs (default: on a CUDA device). A shape whose capture fails
            is run eagerly on its static buffers, with a warning, so frames never stop.
        largest_bucket: batches above this size are not padded (one shape per size).
    """

    def __init__(
        self,
        model: INFPModel,
        device: torch.device,
        capture: bool | None = None,
        largest_bucket: int = 64,
    ):
        self.model = model
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.capture = cuda if capture is None else capture
        if self.capture and not cuda:
            raise ValueError(
                f"CUDA graphs need a CUDA device, not {self.device}; pass capture=False"
            )
        self.largest_bucket = largest_bucket
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self._shapes: dict[tuple, _Shape] = {}
        self.replays = 0  # batches served by a captured graph
        self.eager = 0  # batches run eagerly on static buffers

    @property
    def shapes(self) -> int:
        """How many batch shapes have buffers (and, on CUDA, a graph)."""
        return len(self._shapes)

    @torch.no_grad()
    def run(self, batch: HopBatch, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
        """Like ``TorchHopModel.run_hops``: latents (B, count, D) and speaking (B, count)."""
        arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in batch.arrays()]
        n = arrays[0].shape[0]
        size = bucket(n, self.largest_bucket)
        key = (size, *batch.mel.shape[2:], batch.noise.shape[1], sampling)
        shape = self._shapes.get(key) or self._build(key, arrays, size, sampling)
        for buffer, value in zip(shape.host_in, arrays, strict=True):
            buffer[:n].copy_(value)
            buffer[n:].copy_(value[:1].expand_as(buffer[n:]))
        if self.stream is None:
            self._compute(shape, sampling)
        else:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                for dst, src in zip(shape.device_in, shape.host_in, strict=True):
                    dst.copy_(src, non_blocking=True)
                self._compute(shape, sampling)
                for dst, src in zip(shape.host_out, shape.device_out, strict=True):
                    dst.copy_(src, non_blocking=True)
                done = torch.cuda.Event()
                done.record(self.stream)
            done.synchronize()
        x, speaking = shape.host_out
        return x[:n].numpy().copy(), speaking[:n].numpy().copy()

    def _compute(self, shape: _Shape, sampling: Sampling) -> None:
        if shape.graph is not None:
            shape.graph.replay()
            self.replays += 1
            return
        x, speaking = run_hop_batch(self.model, *shape.device_in, sampling)
        shape.device_out[0].copy_(x)
        shape.device_out[1].copy_(speaking)
        self.eager += 1

    def _build(
        self, key: tuple, arrays: list[torch.Tensor], size: int, sampling: Sampling
    ) -> _Shape:
        padded = [t[:1].expand(size, *t.shape[1:]).contiguous() for t in arrays]
        cuda = self.stream is not None
        if cuda:
            host_in = tuple(t.pin_memory() for t in padded)
            device_in = tuple(t.to(self.device) for t in padded)
        else:
            host_in = device_in = tuple(padded)
        count, dim = arrays[3].shape[1:]  # the noise
        device_out = (
            torch.zeros(size, count, dim, device=self.device),
            torch.zeros(size, count, device=self.device),
        )
        host_out = tuple(t.cpu().pin_memory() for t in device_out) if cuda else device_out
        shape = _Shape(device_in, host_in, device_out, host_out, graph=None)
        if self.capture:
            shape.graph = self._capture(shape, sampling)
        self._shapes[key] = shape
        return shape

    def _capture(self, shape: _Shape, sampling: Sampling) -> torch.cuda.CUDAGraph | None:
        try:
            # warm up on the side stream first (allocator, kernels' lazy init), then capture
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                for _ in range(2):
                    run_hop_batch(self.model, *shape.device_in, sampling)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                x, speaking = run_hop_batch(self.model, *shape.device_in, sampling)
                shape.device_out[0].copy_(x)
                shape.device_out[1].copy_(speaking)
            return graph
        except Exception as e:  # a capture failure must not stop the frames
            warnings.warn(
                f"CUDA graph capture failed ({type(e).__name__}: {e}); this batch shape runs "
                "without a graph",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
