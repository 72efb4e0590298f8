"""One model, many agents: the worker that turns every agent's queued audio into frames.

    engine = infp_sdk.Engine()                 # loads the model once
    alice, bob = engine.agent(seed=1), engine.agent(seed=2)
    ...                                        # push/pull on each agent as usual
    engine.close()

Each round, the worker appends every agent's queued audio to its stream, then runs the hops
that became computable (:func:`~infp_sdk.runtime.generator.hop_batches`, the same loop a
:class:`~infp_sdk.runtime.generator.MotionStream` runs alone). Hops of the same length and
sampling settings from different agents run as one batch: one encoder call and one sampler call
(so one denoiser forward per solver step) for all of them. Frames are handed to each agent as
soon as its batch finishes. Agents join and leave at any time. The model is a
:class:`~infp_sdk.runtime.backend.HopModel`: onnxruntime (no torch) or torch, which replays
captured CUDA graphs on a GPU. A standalone ``Agent()`` owns a private engine with itself as the
only agent.

The engine and the agents it serves meet through a narrow protocol, and use nothing else of each
other. The engine offers :attr:`Engine.lock`, :meth:`Engine.wake`, :meth:`Engine.register` and
:meth:`Engine.unregister`; each client (an :class:`~infp_sdk.Agent`) implements
:class:`EngineClient`, handing its queued input over as a :class:`Work` and getting frames and
failures back on it. One lock guards the engine and every client, but each waits on its own
condition: a chunk pushed to one agent wakes the worker alone, and a batch's frames wake only the
agents in it. (With one shared condition, every push woke every agent's waiting threads: with
64 agents that was about 4000 wake-ups per 20 ms chunk, and the engine fell behind.)

Failures: an exception while one agent's work is done (appending its audio, preparing or
accepting its hop, delivering its frames) is recorded on that agent's :class:`Work` with the
stage it happened in, and the agent raises it to its caller; a failed model call fails every
agent in that batch. Either way the worker goes on serving the others and any new work.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..shutdown import EXIT_JOIN_TIMEOUT_S, stop_at_exit
from .backend import HopModel, load_hop_model
from .generator import MotionStream, generate_hops, hop_batches

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger(__name__)

# The stages of an agent's work on the worker thread, as failures name them.
APPENDING = "appending its audio"
GENERATING = "generating motion"
DELIVERING = "delivering frames"
RENDERING = "rendering the portrait"
SERVING = "being served by its engine"

# How long close() waits for the worker to finish the batch it is running.
CLOSE_JOIN_TIMEOUT_S = EXIT_JOIN_TIMEOUT_S


@dataclass
class Work:
    """One client's share of a worker round: its queued input, and what became of it.

    The client builds it in :meth:`EngineClient.take_work`. The engine appends ``chunks`` to
    ``stream``, runs the hops that became computable (and, with ``flush``, every remaining frame
    that has audio), hands the frames to :meth:`EngineClient.deliver` as each batch finishes, and
    gives the Work back through :meth:`EngineClient.finish_work` at the end of the round, with
    ``error`` and ``stage`` set if a stage failed.
    """

    client: EngineClient
    stream: MotionStream
    chunks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    """Equal-length 16 kHz float32 (own, partner) chunks, in the order they were pushed."""
    flush: bool = False
    """End of input: also generate the frames still waiting for look-ahead."""
    tag: object = None
    """The client's own marker, handed back untouched (an agent: its reset generation)."""
    error: BaseException | None = None
    """The first exception raised while this work was done, if any."""
    stage: str | None = None
    """The stage it was raised in: APPENDING, GENERATING or DELIVERING."""

    def fail(self, stage: str, error: BaseException) -> None:
        """Record a failure; the first one is kept, as later ones follow from it."""
        if self.error is None:
            self.error, self.stage = error, stage


class EngineClient(Protocol):
    """What an :class:`Engine` needs from each client it serves; :class:`~infp_sdk.Agent` is one.

    ``take_work``, ``deliver`` and ``finish_work`` are called on the engine's worker thread with
    :attr:`Engine.lock` held, so they must be quick (they only move queued data) and wake the
    client's own waiting threads themselves. ``engine_closed`` is called without the lock. A
    client calls :meth:`Engine.wake` when it has queued work.
    """

    def take_work(self) -> Work | None:
        """Hand over the input queued since the last call, or None when there is nothing to do
        (nothing queued, or the client is closed or failed)."""
        ...

    def deliver(self, work: Work, rows: list[tuple[np.ndarray, float]]) -> None:
        """Frames generated for ``work``, in order: (rig latent, speaking) per frame. The stream
        already counts them in ``frames_out``."""
        ...

    def finish_work(self, work: Work) -> None:
        """The round is over for ``work``; ``work.error`` and ``work.stage`` say if it failed."""
        ...

    def engine_closed(self, *, discard_pending: bool, error: BaseException | None = None) -> None:
        """The engine no longer serves this client. ``discard_pending``: nothing will read more
        frames (the interpreter is exiting), so drop work not yet done; ``error``: the engine
        itself broke, so the client can never be served again."""
        ...


class Engine:
    """Serves any number of :class:`~infp_sdk.Agent` s from one model and one worker thread.

    Args:
        model: "default" (the bundled model), a checkpoint path, a folder written by
            ``infp-sdk export``, an ``INFPModel`` or a
            :class:`~infp_sdk.runtime.backend.HopModel`. It must generate rig vectors
            (``latent_dim`` 62); another motion space raises ValueError here.
        device: "auto", "cpu" or "cuda[:N]".
        backend: "auto" (the default; see :func:`~infp_sdk.runtime.backend.pick_backend`:
            onnxruntime on the CPU, from the graphs shipped with a bundled model or a checkpoint
            exported once and cached; torch for an ``INFPModel`` and on a GPU when torch has
            CUDA), "torch" or "onnxruntime".
        threads: CPU threads of the onnxruntime sessions (default 1, the cheapest for a few
            agents; see :data:`~infp_sdk.runtime.onnx.DEFAULT_THREADS`). With the torch backend
            it sets torch's (process-wide) threads.

    An engine left open when the interpreter exits is stopped at exit (after the batch it is
    running), so forgetting :meth:`close` never crashes the process.
    """

    def __init__(
        self,
        model: str | Path | Any = "default",
        device: str = "auto",
        backend: str = "auto",
        *,
        threads: int | None = None,
    ):
        self.model: HopModel = load_hop_model(model, device, backend, threads=threads)
        self.backend = self.model.backend
        self.device = self.model.device
        self._lock = threading.RLock()  # reentrant: a caller may hold it around push()
        self._condition = threading.Condition(self._lock)  # the worker's: work was queued
        self._clients: list[EngineClient] = []
        self._closed = False
        self.batches = 0  # batched model calls so far
        self.hops = 0  # agent hops generated so far (hops / batches = mean batch size)
        self._worker = threading.Thread(target=self._run, name="infp-engine", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, Engine._stop_at_exit)
        self._worker.start()

    def agent(self, portrait=None, **options) -> Agent:
        """A new agent served by this engine (options as for :class:`~infp_sdk.Agent`)."""
        from .agent import Agent

        return Agent(portrait, engine=self, **options)

    @property
    def agents(self) -> list[Agent]:
        """The agents currently served."""
        with self._condition:
            return list(self._clients)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the worker after the batch it is running and close every agent.

        Frames already produced can still be pulled (an agent with a portrait renders the frames
        that were generated before it stops).
        """
        self._shut_down(discard_pending=False)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the clients' side
    @property
    def lock(self) -> threading.RLock:
        """The lock that guards the engine and every client's queues.

        Clients hold it to queue input or take output, and build their own
        ``threading.Condition(engine.lock)`` to wait on; the worker holds it to take each
        round's work and hand frames over.
        """
        return self._lock

    def wake(self) -> None:
        """Tell the worker that a client queued work; call with :attr:`lock` held."""
        self._condition.notify()

    def register(self, client: EngineClient) -> None:
        """Start serving ``client`` (an Agent registers itself when it is made)."""
        with self._condition:
            if self._closed:
                raise RuntimeError("this Engine is closed; create a new one")
            self._clients.append(client)

    def unregister(self, client: EngineClient) -> None:
        """Stop serving ``client``; work of it already in a round still finishes."""
        with self._condition:
            if client in self._clients:
                self._clients.remove(client)

    # ------------------------------------------------------------------ stopping
    def _stop_at_exit(self) -> None:
        # The interpreter is exiting: nothing will pull frames any more, so stop at once.
        self._shut_down(discard_pending=True)

    def _shut_down(self, discard_pending: bool, error: BaseException | None = None) -> None:
        with self._condition:
            self._closed = True
            clients, self._clients = self._clients, []
            self._condition.notify_all()
        self._cancel_stop_at_exit()
        if threading.current_thread() is not self._worker:
            # the worker checks for closing between batches, so this waits for one batch at most
            self._worker.join(timeout=CLOSE_JOIN_TIMEOUT_S)
            if self._worker.is_alive():
                log.warning(
                    "the engine's worker is still in a model call after %.0f s; not waiting",
                    CLOSE_JOIN_TIMEOUT_S,
                )
        for client in clients:
            try:
                client.engine_closed(discard_pending=discard_pending, error=error)
            except Exception:  # every client must hear of it, whatever one of them does
                log.exception("closing %r failed", client)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            while True:
                work, broken = self._take_round()
                self._drop_broken(broken)
                if work is None:
                    return
                try:
                    self._round(work)
                finally:
                    self._drop_broken(self._finish_round(work))
        except BaseException as error:
            # Only a bug in the engine itself gets here (each stage's failures are caught where
            # they happen). Rather than leave the agents waiting for frames that will never
            # come, close with the error, which each of them raises to its caller.
            log.exception("the engine's worker failed; closing the engine")
            self._shut_down(discard_pending=True, error=error)

    def _take_round(self) -> tuple[list[Work] | None, list[tuple[EngineClient, Exception]]]:
        """Wait until some client has work and take all of it: (work, clients that raised
        instead); work is None once the engine is closed."""
        with self._condition:
            while not self._closed:
                work, broken = [], []
                for client in self._clients:
                    try:
                        taken = client.take_work()
                    except Exception as error:
                        broken.append((client, error))
                        continue
                    if taken is not None:
                        work.append(taken)
                if work or broken:
                    return work, broken
                self._condition.wait()
            return None, []

    def _round(self, work: list[Work]) -> None:
        for w in work:
            if w.chunks:
                try:
                    own = np.concatenate([c[0] for c in w.chunks])
                    partner = np.concatenate([c[1] for c in w.chunks])
                    w.stream.append(own, partner)
                except Exception as error:
                    w.fail(APPENDING, error)
        healthy = [w for w in work if w.error is None]
        by_stream = {id(w.stream): w for w in healthy}
        batches = hop_batches(
            [w.stream for w in healthy],
            flushing=[w.stream for w in healthy if w.flush],
            keep=lambda stream: by_stream[id(stream)].error is None,
        )
        for streams, end in batches:
            if self._closed:  # close() or interpreter exit: stop between batches
                break
            self._run_batch([by_stream[id(s)] for s in streams], end)

    def _run_batch(self, group: list[Work], end: int | None) -> None:
        """One model call for the next hop of each stream in ``group`` (``end``: on flush)."""
        prepared, hops = [], []
        for w in group:
            try:
                hops.append(w.stream.next_hop(end))
                prepared.append(w)
            except Exception as error:
                w.fail(GENERATING, error)
        if not prepared:
            return
        try:
            results = generate_hops(self.model, hops)
        except Exception as error:  # the batch's model call: every agent in it is affected
            for w in prepared:
                w.fail(GENERATING, error)
            return
        accepted = []
        for w, (latents, speaking) in zip(prepared, results, strict=True):
            try:
                accepted.append((w, w.stream.accept(latents, speaking)))
            except Exception as error:
                w.fail(GENERATING, error)
        with self._condition:
            self.batches += 1
            self.hops += len(prepared)
            for w, rows in accepted:
                try:
                    w.client.deliver(w, rows)
                except Exception as error:
                    w.fail(DELIVERING, error)

    def _finish_round(self, work: list[Work]) -> list[tuple[EngineClient, Exception]]:
        """Give each Work back to its client; returns the clients that raised instead."""
        broken = []
        with self._condition:
            for w in work:
                try:
                    w.client.finish_work(w)
                except Exception as error:
                    broken.append((w.client, error))
        return broken

    def _drop_broken(self, broken: list[tuple[EngineClient, Exception]]) -> None:
        """Stop serving clients whose own bookkeeping raised, and tell them why."""
        for client, error in broken:
            log.error("dropping %r: it failed taking or finishing work", client, exc_info=error)
            self.unregister(client)
            try:
                client.engine_closed(discard_pending=True, error=error)
            except Exception:
                log.exception("closing %r failed", client)
