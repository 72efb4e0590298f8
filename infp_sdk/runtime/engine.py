"""One model, many agents: the worker that turns every agent's queued audio into frames.

    engine = infp_sdk.Engine()                 # loads the model once
    alice, bob = engine.agent(seed=1), engine.agent(seed=2)
    ...                                        # push/pull on each agent as usual
    engine.close()

Each round, the worker appends every agent's queued audio to its stream, then runs the hops
that became computable. Hops of the same length and sampling settings from different agents run
as one batch: one encoder call and one sampler call (so one denoiser forward per solver step)
for all of them. Frames are handed to each agent as soon as its batch finishes. Agents join and
leave at any time. On a CUDA device the batches run as captured CUDA graphs (:mod:`.graphs`).
A standalone ``Agent()`` owns a private engine with itself as the only agent.
"""

from __future__ import annotations

import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..model.checkpoint import load_model
from ..model.infp import INFPModel
from .generator import generate_hops
from .graphs import HopGraphs

if TYPE_CHECKING:
    from .agent import Agent


def pick_device(device: str) -> torch.device:
    """``"auto"``, ``"cpu"`` or ``"cuda[:N]"`` -> a torch device, with a clear error for CUDA."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} was asked for but torch sees no CUDA GPU (torch "
            f"{torch.__version__}); use device='cpu' or 'auto', or install a CUDA build of torch"
        )
    return torch.device(device)


def _onnx_model(model: str | Path | INFPModel, device: str) -> INFPModel:
    from .onnx import export_onnx, load_onnx_model

    providers = {
        "auto": None,
        "cpu": ["CPUExecutionProvider"],
    }.get(device, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    folder = Path(model) if isinstance(model, (str, Path)) else None
    if folder is None or not (folder.is_dir() and (folder / "config.json").exists()):
        source = model if isinstance(model, INFPModel) else load_model(model)
        folder = Path(tempfile.mkdtemp(prefix="infp-onnx-"))
        export_onnx(source, folder)
    return load_onnx_model(folder, providers=providers)


class _Work:
    """One agent's share of a worker round."""

    def __init__(self, agent: Agent, chunks: list, flush: bool, generation: int):
        self.agent = agent
        self.stream = agent._stream
        self.chunks = chunks
        self.flush = flush
        self.generation = generation
        self.error: BaseException | None = None


class Engine:
    """Serves any number of :class:`~infp_sdk.Agent` s from one model and one worker thread.

    Args:
        model: "default" (the bundled model), a checkpoint path, an ``INFPModel``, or (for the
            onnxruntime backend) a folder written by ``infp-sdk export``.
        device: "auto", "cpu" or "cuda[:N]".
        backend: "torch" or "onnxruntime".
    """

    def __init__(
        self,
        model: str | Path | INFPModel = "default",
        device: str = "auto",
        backend: str = "torch",
    ):
        if backend == "torch":
            self.device = pick_device(device)
            net = model if isinstance(model, INFPModel) else load_model(model)
        elif backend == "onnxruntime":
            self.device = torch.device("cpu")  # onnxruntime picks its own device via providers
            net = _onnx_model(model, device)
        else:
            raise ValueError(f"unknown backend {backend!r}: choose 'torch' or 'onnxruntime'")
        self.backend = backend
        self.model = net.to(self.device).eval()
        # on a GPU, full hops replay captured CUDA graphs (launch cost dominates at these sizes)
        cuda = backend == "torch" and self.device.type == "cuda"
        self._graphs = HopGraphs(self.model, self.device) if cuda else None
        self._changed = threading.Condition()
        self._agents: list[Agent] = []
        self._closed = False
        self.batches = 0  # batched model calls so far
        self.hops = 0  # agent hops generated so far (hops / batches = mean batch size)
        self._worker = threading.Thread(target=self._run, name="infp-engine", daemon=True)
        self._worker.start()

    def agent(self, portrait=None, **options) -> Agent:
        """A new agent served by this engine (options as for :class:`~infp_sdk.Agent`)."""
        from .agent import Agent

        return Agent(portrait, engine=self, **options)

    @property
    def agents(self) -> list[Agent]:
        """The agents currently served."""
        with self._changed:
            return list(self._agents)

    def close(self) -> None:
        """Close every agent and stop the worker; frames already produced can still be pulled."""
        with self._changed:
            agents = list(self._agents)
        for agent in agents:
            agent._detach()
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=5)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ agents' side
    def _attach(self, agent: Agent) -> None:
        with self._changed:
            if self._closed:
                raise RuntimeError("this Engine is closed; create a new one")
            self._agents.append(agent)

    def _remove(self, agent: Agent) -> None:
        with self._changed:
            if agent in self._agents:
                self._agents.remove(agent)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._closed or any(a._has_work() for a in self._agents)
                )
                if self._closed:
                    return
                work = [a._take_work() for a in self._agents if a._has_work()]
            self._round(work)
            with self._changed:
                for w in work:
                    w.agent._finish_work(w)
                self._changed.notify_all()

    def _round(self, work: list[_Work]) -> None:
        for w in work:
            try:
                if w.chunks:
                    own = np.concatenate([c[0] for c in w.chunks])
                    partner = np.concatenate([c[1] for c in w.chunks])
                    w.stream.append(own, partner)
            except BaseException as e:
                w.error = e
        while True:
            ready = [w for w in work if w.error is None and w.stream.hop_ready()]
            if not ready:
                break
            groups: dict[tuple, list[_Work]] = defaultdict(list)
            for w in ready:
                groups[(w.stream.hop, *w.stream.sampling)].append(w)
            for group in groups.values():
                self._run_batch(group, end=None)
        for w in work:
            if w.flush and w.error is None:
                total = w.stream.frames_available
                while w.stream.frames_out < total and w.error is None:
                    self._run_batch([w], end=total)

    def _run_batch(self, group: list[_Work], end: int | None) -> None:
        try:
            hops = [w.stream.next_hop(end) for w in group]
            if self._graphs is not None and end is None:
                results = self._graphs.run(hops)
            else:
                results = generate_hops(self.model, hops)
            rows = [w.stream.accept(x, s) for w, (x, s) in zip(group, results, strict=True)]
        except BaseException as e:
            for w in group:
                w.error = e
            return
        with self._changed:
            self.batches += 1
            self.hops += len(group)
            for w, r in zip(group, rows, strict=True):
                w.agent._deliver(r, w.generation)
            self._changed.notify_all()
