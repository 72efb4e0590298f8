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

A failure on a background thread (appending audio, generating, delivering or rendering frames)
fails this agent only: its next ``pull()``, ``flush()``, ``wait_idle()``, ``push()`` or iteration
raises :class:`AgentFailedError` (after the frames finished before the failure were handed out),
chained to the original exception, until ``reset()``. The Agent implements the engine's
:class:`~infp_sdk.runtime.engine.EngineClient` protocol and uses nothing else of the engine.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..audio.stream import DuplexInput
from ..motion import Frame
from ..shutdown import EXIT_JOIN_TIMEOUT_S
from .engine import RENDERING, SERVING, Engine, Work
from .generator import MotionStream

_agent_numbers = itertools.count(1)

# How long `async for` waits for a frame in its executor thread before it looks again.
_ASYNC_WAIT_S = 0.1


class AgentClosedError(RuntimeError):
    """The agent was closed; create a new one."""


class AgentFailedError(RuntimeError):
    """A stage of the agent's work failed on a background thread.

    The original exception is the ``__cause__`` (its traceback is printed with this one);
    ``stage`` names the stage ("appending its audio", "generating motion", "delivering frames",
    "rendering the portrait", or "being served by its engine" when the engine itself broke) and
    ``agent`` the agent's name. The agent stays failed: every ``push``, ``pull``, ``flush``,
    ``wait_idle`` and iteration raises this (``pull`` and iteration first hand out the frames
    finished before the failure), until :meth:`Agent.reset` starts a new stream on it. Other
    agents on the same engine are not affected.
    """

    def __init__(self, agent: str, stage: str, error: BaseException, recoverable: bool = True):
        self.agent, self.stage, self.recoverable = agent, stage, recoverable
        if recoverable:
            fix = (
                "call reset() to start a new stream on this agent (frame 0 at t = 0), or close() "
                "it and create a new one"
            )
        else:
            fix = "its engine has stopped: create a new Engine (or a standalone Agent)"
        super().__init__(
            f"{agent} failed while {stage}: {type(error).__name__}: {error}. Frames finished "
            f"before the failure were handed out; no more will come. To go on, {fix}."
        )


class Agent:
    """A conversing face: two audio streams in, :class:`~infp_sdk.Frame` s out.

    Args:
        portrait: a photo (path, numpy array or PIL image), a prepared ``.avatar`` path, or a
            renderer from :func:`infp_sdk.face.load_portrait` (for another size or crop): every
            frame's ``image`` is then the portrait rendered with its motion (uint8 RGB, 512x512
            by default). None (the default) is motion only.
        model: "default" (the bundled model), a checkpoint path, a folder written by
            ``infp-sdk export``, or an ``INFPModel``.
        device: "auto", "cpu" or "cuda[:N]".
        backend: "auto" (the default: onnxruntime on the CPU, from the graphs shipped with the
            bundled model, or a checkpoint exported once and cached; torch for an ``INFPModel``
            and on a GPU when torch has CUDA), "torch" or "onnxruntime". The torch backend needs
            the ``torch`` extra; the default needs neither torch nor an export.
        engine: serve this agent from a shared :class:`~infp_sdk.Engine` (its model, device
            and backend; ``model``, ``device`` and ``backend`` are then ignored). By default
            the agent has an engine of its own.
        hop: frames generated per model call (default: the model's ``hop``). Smaller hops mean
            lower latency and more calls per second.
        seed: noise seed; the same audio and seed give the same frames.
        sampler, steps, cfg_scale: override the model's sampling defaults.
        name: what errors and logs call this agent (default "agent-N", numbered in order).
        threads: CPU threads of the model when the agent has its own engine (default 1).

    An agent left open when the interpreter exits is stopped with its engine, so forgetting
    :meth:`close` never crashes the process.
    """

    def __init__(
        self,
        portrait=None,
        model: str | Path | Any = "default",
        device: str = "auto",
        backend: str = "auto",
        *,
        engine: Engine | None = None,
        hop: int | None = None,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        name: str | None = None,
        threads: int | None = None,
    ):
        self.name = name or f"agent-{next(_agent_numbers)}"
        self.renderer = _renderer(portrait)
        self._owns_engine = engine is None
        self.engine = Engine(model, device, backend, threads=threads) if engine is None else engine
        self.model = self.engine.model
        self.device = self.engine.device
        try:
            self._stream = MotionStream(
                self.model, seed=seed, hop=hop, sampler=sampler, steps=steps, cfg_scale=cfg_scale
            )
        except BaseException:
            if self._owns_engine:
                self.engine.close()  # its worker would otherwise run until exit
            raise
        # the engine's lock (its worker serves us all), but a condition of our own to wait on
        self._condition = threading.Condition(self.engine.lock)
        self._input = DuplexInput()
        self._input_lock = threading.Lock()  # keeps chunks in push order across threads
        self._pending: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()
        self._frames: collections.deque[Frame] = collections.deque()
        self._generation = 0  # bumped by reset(): frames of older generations are dropped
        self._busy = False
        self._flush = False
        self._closed = False
        self._error: BaseException | None = None  # the failure that stopped this agent, if any
        self._failed_stage = ""
        self._recoverable = True  # False when the engine itself broke: reset() cannot help
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
            self.engine.register(self)
        except BaseException:
            self._shut(discard_pending=True)
            if self._owns_engine:
                self.engine.close()
            raise

    def __repr__(self) -> str:
        return f"<Agent {self.name}>"

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
            with self._condition:
                self._check_open()
            own_16k, partner_16k = self._input.push(own, partner, sample_rate, channels)
            self._enqueue(own_16k, partner_16k)

    def _enqueue(self, own_16k: np.ndarray, partner_16k: np.ndarray) -> None:
        with self._condition:
            self._check_open()
            if len(own_16k):
                self._pending.append((own_16k, partner_16k))
                self.engine.wake()

    def flush(self, timeout: float | None = None) -> None:
        """End of input: generate every frame that has audio (missing look-ahead = silence).

        Blocks until those frames are ready to pull. Raises :class:`AgentFailedError` if the
        agent failed (before or while waiting), TimeoutError after ``timeout`` seconds.
        """
        with self._input_lock:
            self._enqueue(*self._input.flush())
        with self._condition:
            self._check_open()
            self._flush = True
            self.engine.wake()
            if not self._condition.wait_for(
                lambda: (
                    (not self._flush and self._rendered())
                    or self._error is not None
                    or self._closed
                ),
                timeout,
            ):
                raise TimeoutError("flush did not finish in time")
            self._raise_if_failed()

    # ------------------------------------------------------------------ control
    def reset(self) -> None:
        """Forget all audio, motion and queued frames; the next frame is frame 0 at t = 0.

        Also clears a failure (:class:`AgentFailedError`): the agent serves a new stream.
        """
        with self._input_lock, self._condition:
            self._input.reset()
            self._generation += 1
            self._pending.clear()
            self._frames.clear()
            self._unrendered.clear()
            self._flush = False
            self._condition.wait_for(lambda: not self._busy)
            self._stream.reset()
            if self._recoverable:
                self._error, self._failed_stage = None, ""
            self._condition.notify_all()

    def interrupt(self) -> None:
        """The agent's own speech was cut off: go to listening at once.

        Own audio that is queued or buffered for look-ahead but not yet turned into frames
        becomes silence, so the next frames already have the mouth at rest.
        """
        with self._input_lock, self._condition:
            self._input.silence_own()
            self._pending = collections.deque(
                (np.zeros_like(own), partner) for own, partner in self._pending
            )
            self._condition.wait_for(lambda: not self._busy)
            self._stream.silence_own()

    def set_style(self, reference: np.ndarray | None = None) -> None:
        """Speak and listen in the manner of ``reference`` motion latents (T, D); None = default."""
        if reference is not None:
            reference = np.asarray(reference, np.float32)
            if reference.ndim != 2 or reference.shape[1] != self.model.config.latent_dim:
                raise ValueError(
                    f"style reference must be motion latents of shape (frames, "
                    f"{self.model.config.latent_dim}), got {tuple(reference.shape)}"
                )
        style = self.model.style_vector(reference)
        with self._condition:
            self._condition.wait_for(lambda: not self._busy)
            self._stream.style = style

    # ------------------------------------------------------------------ output
    def pull(self) -> list[Frame]:
        """Every frame ready now (possibly none); never blocks.

        Raises :class:`AgentFailedError` once the agent has failed and the frames finished
        before the failure have all been handed out.
        """
        with self._condition:
            frames = list(self._frames)
            self._frames.clear()
            if not frames:
                self._raise_if_failure_due()
            return frames

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Blocking iterator over frames; ends when the agent is closed (or after ``timeout``
        seconds without a frame). Raises :class:`AgentFailedError` after the last frame
        finished before a failure."""
        while True:
            frame = self._next_frame(timeout)
            if not isinstance(frame, Frame):
                return  # closed, or quiet for ``timeout`` seconds
            yield frame

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    async def __aiter__(self) -> AsyncIterator[Frame]:
        while True:
            # Short waits in the executor thread: a cancelled iteration (Ctrl-C in asyncio.run)
            # frees that thread within one wait, and asyncio.run waits for it before exiting.
            frame = await asyncio.to_thread(self._next_frame, _ASYNC_WAIT_S)
            if frame is None:
                return
            if isinstance(frame, Frame):
                yield frame

    def _next_frame(self, timeout: float | None) -> Frame | None | bool:
        """The next frame; None once the agent is closed and everything was handed out; False
        if no frame came within ``timeout`` seconds."""
        with self._condition:
            got = self._condition.wait_for(
                lambda: self._frames or (self._closed and self._rendered()) or self._failure_due(),
                timeout,
            )
            if self._frames:
                return self._frames.popleft()
            self._raise_if_failure_due()
            return None if got else False

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every chunk pushed so far has been turned into the frames it allows.

        Frames waiting for more audio (the next hop, the look-ahead) are not forced out; use
        :meth:`flush` at the end of input for those. Returns False on timeout; raises
        :class:`AgentFailedError` if the agent failed.
        """
        with self._condition:
            done = self._condition.wait_for(
                lambda: (
                    self._error is not None
                    or self._closed
                    or not (self._pending or self._busy or self._flush or not self._rendered())
                ),
                timeout,
            )
            self._raise_if_failed()
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
    def failure(self) -> AgentFailedError | None:
        """What the agent's calls raise since a stage of its work failed; None while healthy."""
        with self._condition:
            if self._error is None:
                return None
            failure = AgentFailedError(
                self.name, self._failed_stage, self._error, self._recoverable
            )
            failure.__cause__ = self._error
            return failure

    @property
    def frames_generated(self) -> int:
        """Frames generated since the start or the last ``reset()`` (pulled or not)."""
        with self._condition:
            return self._stream.frames_out

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop serving this agent; frames already produced can still be pulled."""
        if self._owns_engine:
            self.engine.close()  # which closes us through engine_closed()
        else:
            self.engine.unregister(self)
            self._shut(discard_pending=False)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _shut(self, discard_pending: bool) -> None:
        with self._condition:
            self._closed = True
            if discard_pending:
                self._unrendered.clear()
            self._condition.notify_all()
        thread = self._render_thread
        if thread is not None and thread is not threading.current_thread():
            # it renders what was generated (unless discarded), then stops
            thread.join(timeout=EXIT_JOIN_TIMEOUT_S)

    # ------------------------------------------------------------------ failures
    def _check_open(self) -> None:
        self._raise_if_failed()  # first: a failure may be why the agent is closed
        if self._closed:
            raise AgentClosedError(f"{self.name} is closed; create a new agent")

    def _fail(self, stage: str, error: BaseException, recoverable: bool = True) -> None:
        """Record a failure (lock held); the first one is kept, as later ones follow from it."""
        if self._error is None:
            self._error, self._failed_stage, self._recoverable = error, stage, recoverable
            self._condition.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AgentFailedError(
                self.name, self._failed_stage, self._error, self._recoverable
            ) from self._error

    def _failure_due(self) -> bool:
        """Failed, and every frame finished before the failure has been handed out."""
        return self._error is not None and not self._frames and self._rendered()

    def _raise_if_failure_due(self) -> None:
        if self._failure_due():
            self._raise_if_failed()

    # ------------------------------------------------------------------ EngineClient protocol
    # Called by the engine's worker with engine.lock held (engine_closed: without it).
    def take_work(self) -> Work | None:
        """EngineClient: the audio queued since the last round (and a pending flush)."""
        if self._closed or self._error is not None or not (self._pending or self._flush):
            return None
        work = Work(self, self._stream, list(self._pending), self._flush, tag=self._generation)
        self._pending.clear()
        self._busy = True
        return work

    def deliver(self, work: Work, rows: list[tuple[np.ndarray, float]]) -> None:
        """EngineClient: frames of a finished batch, queued for pull() (or the renderer)."""
        if work.tag != self._generation or self._error is not None:
            return  # made before a reset(), or after a failure: not part of the stream
        frames = self._frames_from_rows(work.stream.frames_out - len(rows), rows)
        if self.renderer is None:
            self._frames.extend(frames)
        else:
            self._unrendered.extend((work.tag, f) for f in frames)
        self._condition.notify_all()

    def finish_work(self, work: Work) -> None:
        """EngineClient: the round is over for ``work``; a failure in it fails this agent."""
        self._busy = False
        self._condition.notify_all()
        if work.tag != self._generation:
            return  # a reset() is waiting for this round; what it did is forgotten
        if work.error is not None:
            self._fail(work.stage or "generating motion", work.error)
        if work.flush:
            self._flush = False

    def engine_closed(self, *, discard_pending: bool, error: BaseException | None = None) -> None:
        """EngineClient: the engine stopped serving this agent (closed, exiting or broken)."""
        if error is not None:
            with self._condition:
                self._fail(SERVING, error, recoverable=False)
        self._shut(discard_pending)

    @staticmethod
    def _frames_from_rows(start: int, rows: list[tuple[np.ndarray, float]]) -> list[Frame]:
        return [
            Frame.from_rig_latent(start + i, latent, speaking)
            for i, (latent, speaking) in enumerate(rows)
        ]

    # ------------------------------------------------------------------ the portrait
    def _rendered(self) -> bool:
        return not (self._unrendered or self._rendering)

    def _render_loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._unrendered or self._closed)
                if not self._unrendered:
                    return  # closed, and everything generated was rendered (or discarded)
                generation, frame = self._unrendered.popleft()
                self._rendering = True
            error = None
            try:
                frame.image = self.renderer.render(frame)
            except Exception as e:  # surfaced to the caller by its next call
                error = e
            with self._condition:
                self._rendering = False
                if generation == self._generation:
                    if error is None:
                        self._frames.append(frame)
                    else:
                        self._fail(RENDERING, error)
                        self._unrendered.clear()  # frames after a failure are not handed out
                self._condition.notify_all()


def _renderer(portrait):
    """The renderer for ``portrait``: None for none, a renderer as it is, else a loaded one."""
    if portrait is None or hasattr(portrait, "render"):
        return portrait
    from ..face import load_portrait

    return load_portrait(portrait)
