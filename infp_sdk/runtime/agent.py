"""The streaming Agent: push audio of both sides as it arrives, pull frames of motion.

    with infp_sdk.Agent() as agent:
        agent.push(own=tts_chunk, partner=mic_chunk, sample_rate=48000)
        for frame in agent.pull():
            ...

`push` only converts and queues audio, so it is safe to call from an audio callback thread; an
engine's worker thread runs the model and hands frames to `pull()`, the blocking iterator and the
async iterator. A standalone agent owns a private :class:`~infp_sdk.Engine`; many agents can
share one (``engine.agent()``) so their model calls run batched. Frames carry the media clock:
frame i is centred at (i + 0.5) / 25 s after the first pushed sample, whatever the wall clock did.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..audio.stream import DuplexInput
from ..model.infp import INFPModel
from ..motion import Frame
from .engine import Engine, _Work
from .generator import MotionStream


class AgentClosedError(RuntimeError):
    """The agent was closed; create a new one."""


class Agent:
    """A conversing face: two audio streams in, :class:`~infp_sdk.Frame` s out.

    Args:
        portrait: a photo (path, numpy array or PIL image), a prepared ``.avatar`` path, or a
            renderer from :func:`infp_sdk.face.load_portrait` (for another size or crop): every
            frame's ``image`` is then the portrait rendered with its motion (uint8 RGB, 512x512
            by default). None (the default) is motion only.
        model: "default" (the bundled model), a checkpoint path, an ``INFPModel``, or (for the
            onnxruntime backend) a folder written by ``infp-sdk export``.
        device: "auto", "cpu" or "cuda[:N]".
        backend: "torch", or "onnxruntime" (the exported networks in onnxruntime; a model that
            is not an export folder is exported to a temporary folder first).
        engine: serve this agent from a shared :class:`~infp_sdk.Engine` (its model, device
            and backend; ``model``, ``device`` and ``backend`` are then ignored). By default
            the agent has an engine of its own.
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
        engine: Engine | None = None,
        hop: int | None = None,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
    ):
        self.renderer = _renderer(portrait)
        self._owns_engine = engine is None
        self.engine = Engine(model, device, backend) if engine is None else engine
        self.model = self.engine.model
        self.device = self.engine.device
        self._stream = MotionStream(
            self.model, seed=seed, hop=hop, sampler=sampler, steps=steps, cfg_scale=cfg_scale
        )
        self._changed = self.engine._changed  # one lock per engine: its worker serves us all
        self._input = DuplexInput()
        self._input_lock = threading.Lock()  # keeps chunks in push order across threads
        self._pending: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()
        self._frames: collections.deque[Frame] = collections.deque()
        self._generation = 0  # bumped by reset(): frames of older generations are dropped
        self._busy = False
        self._flush = False
        self._closed = False
        self._error: BaseException | None = None
        # frames waiting for the portrait renderer, with the generation they belong to
        self._unrendered: collections.deque[tuple[int, Frame]] = collections.deque()
        self._rendering = False
        self._render_thread: threading.Thread | None = None
        if self.renderer is not None:
            self._render_thread = threading.Thread(
                target=self._render_loop, name="infp-render", daemon=True
            )
            self._render_thread.start()
        try:
            self.engine._attach(self)
        except BaseException:
            self._detach()
            raise

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
        shorter is padded with silence. Each channel keeps the rate of its first chunk (resampled
        as one seamless stream); another rate later raises :class:`AudioFormatError` until
        :meth:`reset`. Safe to call from any thread.
        """
        with self._input_lock:
            with self._changed:
                self._check_open()
            own_16k, partner_16k = self._input.push(own, partner, sample_rate, channels)
            self._enqueue(own_16k, partner_16k)

    def _enqueue(self, own_16k: np.ndarray, partner_16k: np.ndarray) -> None:
        with self._changed:
            self._check_open()
            if len(own_16k):
                self._pending.append((own_16k, partner_16k))
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """End of input: generate every frame that has audio (missing look-ahead = silence).

        Blocks until those frames are ready to pull.
        """
        with self._input_lock:
            self._enqueue(*self._input.flush())
        with self._changed:
            self._check_open()
            self._flush = True
            self._changed.notify_all()
            if not self._changed.wait_for(
                lambda: (
                    (not self._flush and self._rendered())
                    or self._error is not None
                    or self._closed
                ),
                timeout,
            ):
                raise TimeoutError("flush did not finish in time")
            self._raise_worker_error()

    # ------------------------------------------------------------------ control
    def reset(self) -> None:
        """Forget all audio, motion and queued frames; the next frame is frame 0 at t = 0."""
        with self._input_lock, self._changed:
            self._input.reset()
            self._generation += 1
            self._pending.clear()
            self._frames.clear()
            self._unrendered.clear()
            self._flush = False
            self._changed.wait_for(lambda: not self._busy)
            self._stream.reset()
            self._changed.notify_all()

    def interrupt(self) -> None:
        """The agent's own speech was cut off: go to listening at once.

        Own audio that is queued or buffered for look-ahead but not yet turned into frames
        becomes silence, so the next frames already have the mouth at rest.
        """
        with self._input_lock, self._changed:
            self._input.silence_own()
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

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every chunk pushed so far has been turned into the frames it allows.

        Frames waiting for more audio (the next hop, the look-ahead) are not forced out; use
        :meth:`flush` at the end of input for those. Returns False on timeout.
        """
        with self._changed:
            done = self._changed.wait_for(
                lambda: (
                    self._error is not None
                    or self._closed
                    or not (self._pending or self._busy or self._flush or not self._rendered())
                ),
                timeout,
            )
            self._raise_worker_error()
            return done

    @property
    def lookahead(self) -> int:
        """Frames of audio after a frame that it waits for (the encoder's look-ahead)."""
        return self.model.config.encoder.lookahead

    @property
    def latent_size(self) -> int:
        """Values in ``Frame.latent``."""
        return self.model.config.latent_dim

    @property
    def hop(self) -> int:
        """Frames generated per model call."""
        return self._stream.hop

    @property
    def frames_generated(self) -> int:
        """Frames generated since the start or the last ``reset()`` (pulled or not)."""
        with self._changed:
            return self._stream.frames_out

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop serving this agent; frames already produced can still be pulled."""
        if self._owns_engine:
            self.engine.close()  # detaches us too
        else:
            self._detach()

    def _detach(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.engine._remove(self)
        thread = self._render_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)  # it renders what was generated, then stops

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ the engine's side
    def _check_open(self) -> None:
        if self._closed:
            raise AgentClosedError("this Agent is closed; create a new one")
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the agent's generation failed: {self._error!r}") from (self._error)

    # Called by the engine's worker with the lock held, except where noted.
    def _has_work(self) -> bool:
        return not self._closed and self._error is None and bool(self._pending or self._flush)

    def _take_work(self) -> _Work:
        work = _Work(self, list(self._pending), self._flush, self._generation)
        self._pending.clear()
        self._busy = True
        return work

    def _deliver(self, rows: list[tuple[np.ndarray, float]], generation: int) -> None:
        if generation != self._generation:
            return
        start = self._stream.frames_out - len(rows)
        frames = [
            Frame.from_rig_latent(start + i, latent, speaking)
            for i, (latent, speaking) in enumerate(rows)
        ]
        if self.renderer is None:
            self._frames.extend(frames)
        else:
            self._unrendered.extend((generation, f) for f in frames)

    def _finish_work(self, work: _Work) -> None:
        self._busy = False
        if work.error is not None:
            self._error = work.error
        if work.flush and work.generation == self._generation:
            self._flush = False

    # ------------------------------------------------------------------ the portrait
    def _rendered(self) -> bool:
        return not (self._unrendered or self._rendering)

    def _render_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._unrendered or self._closed)
                if not self._unrendered:
                    return  # closed, and everything generated was rendered
                generation, frame = self._unrendered.popleft()
                self._rendering = True
            try:
                frame.image = self.renderer.render(frame)
            except BaseException as e:  # surfaced to the caller on its next call
                with self._changed:
                    self._error = e
                    self._rendering = False
                    self._changed.notify_all()
                return
            with self._changed:
                self._rendering = False
                if generation == self._generation:
                    self._frames.append(frame)
                self._changed.notify_all()


def _renderer(portrait):
    """The renderer for ``portrait``: None for none, a renderer as it is, else a loaded one."""
    if portrait is None or hasattr(portrait, "render"):
        return portrait
    from ..face import load_portrait

    return load_portrait(portrait)
