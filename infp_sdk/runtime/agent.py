"""The streaming Agent: push audio of both sides as it arrives, pull frames of motion.

    with infp_sdk.Agent() as agent:
        agent.push(own=tts_chunk, partner=mic_chunk, sample_rate=48000)
        for frame in agent.pull():
            ...

`push` only converts and queues audio, so it is safe to call from an audio callback thread; a
worker thread runs the model and hands frames to `pull()`, the blocking iterator and the async
iterator. Frames carry the media clock: frame i is centred at (i + 0.5) / 25 s after the first
pushed sample, whatever the wall clock did.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE, to_mono_16k
from ..model.checkpoint import load_model
from ..model.infp import INFPModel
from ..motion import Frame
from .generator import MotionStream


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} was asked for but torch sees no CUDA GPU (torch "
            f"{torch.__version__}); use device='cpu' or 'auto', or install a CUDA build of torch"
        )
    return torch.device(device)


def _onnx_model(model: str | Path | INFPModel, device: str) -> INFPModel:
    import tempfile

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


class AgentClosedError(RuntimeError):
    """The agent was closed; create a new one."""


class Agent:
    """A conversing face: two audio streams in, :class:`~infp_sdk.Frame` s out.

    Args:
        portrait: reserved for the portrait renderer; motion-only agents pass None.
        model: "default" (the bundled model), a checkpoint path, an ``INFPModel``, or (for the
            onnxruntime backend) a folder written by ``infp-sdk export``.
        device: "auto", "cpu" or "cuda[:N]".
        backend: "torch", or "onnxruntime" (the exported networks in onnxruntime; a model that
            is not an export folder is exported to a temporary folder first).
        hop: frames generated per model call (default: the model's window). Smaller hops mean
            lower latency and more calls per second.
        seed: noise seed; the same audio and seed give the same frames.
        sampler, steps, cfg_scale: override the model's sampling defaults.
    """

    def __init__(
        self,
        portrait=None,
        model: str | Path | INFPModel = "default",
        device: str = "auto",
        backend: str = "torch",
        *,
        hop: int | None = None,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
    ):
        if portrait is not None:
            raise NotImplementedError(
                "portrait rendering is not part of this version; create Agent() without a "
                "portrait for motion only"
            )
        if backend == "torch":
            self.device = _pick_device(device)
            self.model = model if isinstance(model, INFPModel) else load_model(model)
        elif backend == "onnxruntime":
            self.device = torch.device("cpu")  # onnxruntime picks its own device via providers
            self.model = _onnx_model(model, device)
        else:
            raise ValueError(f"unknown backend {backend!r}: choose 'torch' or 'onnxruntime'")
        self.model = self.model.to(self.device).eval()
        self._stream = MotionStream(
            self.model, seed=seed, hop=hop, sampler=sampler, steps=steps, cfg_scale=cfg_scale
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()
        self._frames: collections.deque[Frame] = collections.deque()
        self._generation = 0  # bumped by reset(): the worker drops work of older generations
        self._busy = False
        self._flush = False
        self._closed = False
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="infp-agent", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ input
    def push(
        self,
        own=None,
        partner=None,
        sample_rate: int = SAMPLE_RATE,
        channels: int | None = None,
    ) -> None:
        """Queue a chunk of either or both channels (any length, int16 or float, any rate).

        A channel left out is silence for the chunk's duration; when both are given, the
        shorter is padded with silence. Safe to call from any thread.
        """
        converted = [
            None if x is None else to_mono_16k(x, sample_rate, channels=channels)
            for x in (own, partner)
        ]
        n = max((len(x) for x in converted if x is not None), default=0)
        if n == 0:
            return
        own_16k, partner_16k = (
            np.zeros(n, np.float32) if x is None else np.pad(x, (0, n - len(x))) for x in converted
        )
        with self._changed:
            self._check_open()
            self._pending.append((own_16k, partner_16k))
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """End of input: generate every frame that has audio (missing look-ahead = silence).

        Blocks until those frames are ready to pull.
        """
        with self._changed:
            self._check_open()
            self._flush = True
            self._changed.notify_all()
            if not self._changed.wait_for(
                lambda: (not self._flush) or self._error is not None or self._closed, timeout
            ):
                raise TimeoutError("flush did not finish in time")
            self._raise_worker_error()

    # ------------------------------------------------------------------ control
    def reset(self) -> None:
        """Forget all audio, motion and queued frames; the next frame is frame 0 at t = 0."""
        with self._changed:
            self._generation += 1
            self._pending.clear()
            self._frames.clear()
            self._flush = False
            self._changed.wait_for(lambda: not self._busy)
            self._stream.reset()
            self._changed.notify_all()

    def interrupt(self) -> None:
        """The agent's own speech was cut off: go to listening at once.

        Own audio that is queued or buffered for look-ahead but not yet turned into frames
        becomes silence, so the next frames already have the mouth at rest.
        """
        with self._changed:
            self._pending = collections.deque(
                (np.zeros_like(own), partner) for own, partner in self._pending
            )
            self._changed.wait_for(lambda: not self._busy)
            self._stream.silence_own()

    def set_style(self, reference: np.ndarray | None = None) -> None:
        """Speak and listen in the manner of ``reference`` motion latents (T, D); None = default."""
        if reference is not None:
            ref = torch.as_tensor(np.asarray(reference, np.float32))
            if ref.ndim != 2 or ref.shape[1] != self.model.config.latent_dim:
                raise ValueError(
                    f"style reference must be motion latents of shape (frames, "
                    f"{self.model.config.latent_dim}), got {tuple(ref.shape)}"
                )
            ref = ref.unsqueeze(0).to(self.device)
        with torch.no_grad():
            style = self.model.style_vector(ref if reference is not None else None, 1)
        with self._changed:
            self._changed.wait_for(lambda: not self._busy)
            self._stream.style = style

    # ------------------------------------------------------------------ output
    def pull(self) -> list[Frame]:
        """Every frame ready now (possibly none); never blocks."""
        with self._changed:
            self._raise_worker_error()
            frames = list(self._frames)
            self._frames.clear()
            return frames

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Blocking iterator over frames; ends when the agent is closed (or after ``timeout``
        seconds without a frame)."""
        while True:
            with self._changed:
                got = self._changed.wait_for(
                    lambda: self._frames or self._closed or self._error is not None, timeout
                )
                self._raise_worker_error()
                if not self._frames:
                    if self._closed or not got:
                        return
                    continue
                frame = self._frames.popleft()
            yield frame

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    async def __aiter__(self) -> AsyncIterator[Frame]:
        while True:
            frame = await asyncio.to_thread(self._next_frame)
            if frame is None:
                return
            yield frame

    def _next_frame(self) -> Frame | None:
        return next(self.frames(), None)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the worker; frames already produced can still be pulled."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._worker.join(timeout=5)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ worker
    def _check_open(self) -> None:
        if self._closed:
            raise AgentClosedError("this Agent is closed; create a new one")
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the agent's generation thread failed: {self._error!r}") from (
                self._error
            )

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._flush or self._closed)
                if self._closed:
                    return
                chunks = list(self._pending)
                self._pending.clear()
                flush, generation = self._flush, self._generation
                self._busy = True
            try:
                rows = []
                if chunks:
                    own = np.concatenate([c[0] for c in chunks])
                    partner = np.concatenate([c[1] for c in chunks])
                    rows = self._stream.feed(own, partner)
                start = self._stream.frames_out - len(rows)
                if flush:
                    rows += self._stream.flush()
                frames = [
                    Frame.from_rig_latent(start + i, latent, speaking)
                    for i, (latent, speaking) in enumerate(rows)
                ]
            except BaseException as e:  # surfaced to the caller on its next call
                with self._changed:
                    self._error = e
                    self._busy = False
                    self._changed.notify_all()
                return
            with self._changed:
                self._busy = False
                if generation == self._generation:
                    self._frames.extend(frames)
                    if flush:
                        self._flush = False
                self._changed.notify_all()
