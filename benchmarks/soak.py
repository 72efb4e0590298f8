"""Soak: one shared Engine through an hour of agents joining, leaving and resetting.

    python benchmarks/soak.py [--media-seconds 3600] [--agents 4] [--seed 0] [--out DIR]
                              [--model small|default|PATH] [--device auto] [--backend auto]

"An hour" is ``--media-seconds`` (3600 by default) of audio pushed, summed over every agent of
the run: each accepted chunk counts its duration (samples / its sample rate) once, own and
partner being the two sides of the same stretch of time. With four agents at a time each agent
hears about a quarter of it. The soak is accelerated: audio is pushed as fast as the engine keeps
up (an agent whose audio runs more than ``--max-backlog`` seconds ahead of its frames waits with
``wait_idle``), not on a real-time schedule; the runtime's state depends on the audio, not on the
wall clock, so the hour takes minutes.

By default the engine serves a small randomly initialised model (the ``realtime`` preset shrunk
to the test suite's sizes): the soak checks the runtime's bookkeeping, not the quality of the
motion, and a small model lets the hour run in minutes on two cores. ``--model default`` runs the
bundled model instead (or pass a checkpoint path).

At random (seeded; the choices are reproducible, the worker's timing is not), the agents of the
one engine join (hop 1, 2, 4 or 10), leave (``close()``, after a ``flush()`` or without one),
``reset()`` (likewise, then a new sample rate), ``interrupt()``, ``set_style()`` (None or a random
reference of shape (frames, latent_size)) and receive audio: chunks of 5 to 200 ms (log-uniform),
int16 or float32, mono or stereo, at 16, 22.05, 44.1 or 48 kHz (fixed per stream until its
reset), noise of random loudness or digital silence, sometimes one side only, with pauses on the
wall clock and stretches in which an agent gets nothing while the others do. A push at another
rate without a reset must raise ``AudioFormatError`` and change nothing. One agent (the first)
never resets or leaves, so its stream lasts the whole run. Frames are pulled at random moments.

Checks (each one fails the run, exit status 1):

- ``frames_complete``: after each ``flush()``, the frames generated and the frames pulled since
  the last reset equal the frames its audio allows, ``ceil(samples * 16000 / rate) // 640`` (the
  16 kHz samples per channel, one frame per ``SAMPLES_PER_MOTION_FRAME``); a stream ended
  without a flush never has more.
- ``frame_sequence``: each stream's frames are pulled as 0, 1, 2, ... with no gap or repeat,
  including after a close.
- ``media_clock``: each frame's ``t`` is ``(index + 0.5) / FPS`` (to 1e-9 s) and no frame is
  ahead of its audio (``(index + 1) * 640`` samples had been pushed).
- ``finite_frames``: every latent is finite.
- ``rss_growth``: resident memory grows less than ``--rss-limit`` MB (20) from the warm-up point
  (10 % of the media time) to the end of the pushing.
- ``threads`` and ``fds``: after every agent and the engine are closed, no Python thread and no
  file descriptor is left that was not there before the engine was created (the counts are
  back to the baseline). The baseline is taken after a first engine has run and closed, so
  that what libraries set up once per process is not counted.
- ``agents_released``: the engine serves no agent at the end and every closed agent was freed.
- ``clean_errors``: a rate change without a reset raises ``AudioFormatError``, a push to a
  closed agent ``AgentClosedError``; nothing else raises.
- ``no_exceptions``: no exception in the driver or in any thread (``threading.excepthook``), no
  unraisable exception, no warning or error logged by ``infp_sdk``, no agent failure, no stall
  (``flush``/``wait_idle`` within ``--stall-timeout`` s).

Saves ``soak.json`` (machine, settings, every check, the resource time series) and ``soak.png``
(resident memory, threads and file descriptors over media time) under ``--out`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from infp_sdk import FPS, Engine
from infp_sdk._atomic import atomic_path, write_text
from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, AudioFormatError
from infp_sdk.bench import machine
from infp_sdk.model import INFPModel, count_parameters, preset
from infp_sdk.model.config import AudioEncoderConfig, DiTConfig, StyleEncoderConfig
from infp_sdk.runtime.agent import AgentClosedError

RESULTS = Path(__file__).resolve().parent / "results"
CHECKS = (
    "frames_complete",
    "frame_sequence",
    "media_clock",
    "finite_frames",
    "rss_growth",
    "threads",
    "fds",
    "agents_released",
    "clean_errors",
    "no_exceptions",
)
T_TOLERANCE_S = 1e-9
MAX_VIOLATIONS_KEPT = 20  # per check, in the JSON
# what a chunk holds: both sides, digital silence on both, one side only (the other is then
# silence), both sides in stereo, (samples, 2)
PUSH_KINDS = ("both", "silence", "own", "partner", "stereo")
PUSH_ODDS = (0.5, 0.1, 0.1, 0.1, 0.2)


@dataclass
class SoakSettings:
    """What a soak run does; the defaults are the benchmark's."""

    media_seconds: float = 3600.0
    agents: int = 4  # at most this many at a time (at least one)
    seed: int = 0
    model: str = "small"  # "small" (random weights), "default" or a checkpoint path
    device: str = "auto"
    backend: str = "auto"
    hops: tuple[int, ...] = (1, 2, 4, 10)
    rates: tuple[int, ...] = (16000, 22050, 44100, 48000)
    chunk_ms: tuple[float, float] = (5.0, 200.0)
    churn: float = 1.0  # scales the odds of join/leave/reset/interrupt/style/rate-change events
    max_backlog: float = 2.0  # seconds of audio an agent may run ahead of its frames
    stall_timeout: float = 120.0  # seconds flush()/wait_idle() may take before it is a stall
    rss_limit_mb: float = 20.0
    warmup_fraction: float = 0.1
    samples: int = 200  # resource samples over the run
    # odds per push (before ``churn``) of each event on the agent just pushed to
    odds: dict[str, float] = field(
        default_factory=lambda: {
            "pull": 0.3,
            "pause": 0.01,
            "interrupt": 0.004,
            "style": 0.003,
            "rate_change": 0.002,
            "reset": 0.002,
            "leave": 0.001,
            "join": 0.01,
        }
    )


def small_model(seed: int = 0) -> INFPModel:
    """The ``realtime`` preset at the test suite's sizes, with random weights everywhere."""
    cfg = preset(
        "realtime",
        encoder=AudioEncoderConfig(width=64, layers=4, kernel=5, lookahead=2),
        style=StyleEncoderConfig(width=64),
        style_dim=32,
        dit=DiTConfig(width=96, depth=2, heads=4),
        window=10,
        audio_context=16,
        steps=6,  # the sampling this model's sizes were chosen with (hops are set per agent)
    )
    torch.manual_seed(seed)
    model = INFPModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # zero-initialised output layers would ignore input
    return model.eval()


# ---------------------------------------------------------------------- process resources
def rss_mb() -> float:
    """Resident memory now (MB); the peak where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_fds() -> set[int]:
    """The open file descriptors of this process (the listing's own among them)."""
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    return {int(fd) for fd in os.listdir(folder)}


def _describe_fd(fd: int) -> str:
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return str(fd)


def os_threads() -> int:
    """Threads of this process, native ones (torch's pools) included; -1 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


# ---------------------------------------------------------------------- the soak
class _Tracked:
    """An agent of the run and what its audio since the last reset allows."""

    def __init__(self, agent, steady: bool):
        self.agent = agent
        self.name = agent.name
        self.hop = agent.hop
        self.steady = steady  # never resets or leaves
        self.segment = 0
        self.rate = 0  # this stream's rate (chosen at its start)
        self.samples = 0  # accepted samples per channel since the last reset, at ``rate``
        self.next_index = 0

    def samples_16k(self) -> int:
        """16 kHz samples per channel once flushed: the resampler's ``ceil(n * 16000 / rate)``."""
        return -(-self.samples * SAMPLE_RATE // self.rate) if self.samples else 0

    def frames_allowed(self) -> int:
        return self.samples_16k() // SAMPLES_PER_MOTION_FRAME


class _ErrorWatch(logging.Handler):
    """Collects exceptions from threads, unraisable ones and infp_sdk's warnings and errors."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(f"logged by {record.name}: {record.getMessage()}")

    @contextmanager
    def watching(self):
        old_thread_hook, old_unraisable_hook = threading.excepthook, sys.unraisablehook

        def thread_hook(args):
            name = args.thread.name if args.thread is not None else "?"
            text = "".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            )
            self.errors.append(f"in thread {name}: {text}")
            old_thread_hook(args)

        def unraisable_hook(args):
            self.errors.append(f"unraisable in {args.object!r}: {args.exc_value!r}")
            old_unraisable_hook(args)

        logger = logging.getLogger("infp_sdk")
        threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            threading.excepthook, sys.unraisablehook = old_thread_hook, old_unraisable_hook


class Soak:
    """One run: drive an engine's agents at random and check what they hand out."""

    def __init__(self, settings: SoakSettings, progress=print):
        self.s = settings
        self.progress = progress
        self.rng = np.random.default_rng(settings.seed)
        self.violations: dict[str, list[str]] = {name: [] for name in CHECKS}
        self.counts: Counter[str] = Counter()  # events and checked items
        self.media = 0.0
        self.max_t_error = 0.0
        self.live: list[_Tracked] = []
        self.released: list[weakref.ref] = []
        self.series: dict[str, list[float]] = {
            k: [] for k in ("media_s", "wall_s", "rss_mb", "threads", "os_threads", "fds", "agents")
        }
        self._agents_made = 0

    # ------------------------------------------------------------------ bookkeeping
    def fail(self, check: str, message: str) -> None:
        self.counts[f"violations_{check}"] += 1
        if len(self.violations[check]) < MAX_VIOLATIONS_KEPT:
            self.violations[check].append(message)

    def sample(self) -> None:
        for key, value in (
            ("media_s", self.media),
            ("wall_s", time.perf_counter() - self.started),
            ("rss_mb", rss_mb()),
            ("threads", threading.active_count()),
            ("os_threads", os_threads()),
            ("fds", len(open_fds())),
            ("agents", len(self.live)),
        ):
            self.series[key].append(round(float(value), 3))

    def where(self, t: _Tracked) -> str:
        return f"{t.name} (stream {t.segment}, {t.rate} Hz, hop {t.hop})"

    # ------------------------------------------------------------------ frames
    def take(self, t: _Tracked) -> None:
        """Pull what is ready and check each frame."""
        for frame in t.agent.pull():
            self.counts["frames_checked"] += 1
            if frame.index != t.next_index:
                self.fail(
                    "frame_sequence",
                    f"{self.where(t)}: pulled frame {frame.index}, expected {t.next_index}",
                )
            t.next_index = frame.index + 1
            error = abs(frame.t - (frame.index + 0.5) / FPS)
            self.max_t_error = max(self.max_t_error, error)
            if error > T_TOLERANCE_S:
                self.fail(
                    "media_clock",
                    f"{self.where(t)}: frame {frame.index} has t = {frame.t!r}, expected "
                    f"{(frame.index + 0.5) / FPS!r}",
                )
            if (frame.index + 1) * SAMPLES_PER_MOTION_FRAME > t.samples_16k():
                self.fail(
                    "media_clock",
                    f"{self.where(t)}: frame {frame.index} came before its audio "
                    f"({t.samples_16k()} samples at 16 kHz pushed)",
                )
            if not np.isfinite(frame.latent).all():
                self.fail("finite_frames", f"{self.where(t)}: frame {frame.index} is not finite")

    def end_stream(self, t: _Tracked, flush: bool) -> None:
        """Before a reset or close: flush (or not), pull the rest and compare with the audio."""
        if flush:
            try:
                t.agent.flush(timeout=self.s.stall_timeout)
            except TimeoutError:
                self.fail("no_exceptions", f"{self.where(t)}: flush() stalled")
        self.take(t)
        allowed, generated = t.frames_allowed(), t.agent.frames_generated
        if flush:
            self.counts["streams_flushed"] += 1
            if not generated == t.next_index == allowed:
                self.fail(
                    "frames_complete",
                    f"{self.where(t)}: after flush, {generated} frames generated and "
                    f"{t.next_index} pulled, but its {t.samples} samples allow {allowed}",
                )
        else:
            self.counts["streams_abandoned"] += 1
            if generated > allowed or t.next_index > allowed:
                self.fail(
                    "frames_complete",
                    f"{self.where(t)}: {generated} frames generated and {t.next_index} pulled, "
                    f"more than its {t.samples} samples allow ({allowed})",
                )

    # ------------------------------------------------------------------ events
    def join(self, steady: bool = False) -> None:
        self._agents_made += 1
        agent = self.engine.agent(
            seed=int(self.rng.integers(1 << 30)),
            hop=int(self.rng.choice(self.s.hops)),
            name=f"soak-{self._agents_made}",
        )
        t = _Tracked(agent, steady)
        self.new_stream(t)
        self.live.append(t)
        self.counts["joins"] += 1

    def new_stream(self, t: _Tracked) -> None:
        t.rate = int(self.rng.choice(self.s.rates))
        t.samples = t.next_index = 0

    def leave(self, t: _Tracked) -> None:
        self.end_stream(t, flush=self.rng.random() < 0.75)
        t.agent.close()
        self.take(t)  # frames already produced can still be pulled
        try:
            t.agent.push(own=np.zeros(160, np.float32))
            self.fail("clean_errors", f"{self.where(t)}: push after close() did not raise")
        except AgentClosedError:
            self.counts["closed_push_refused"] += 1
        self.live.remove(t)
        self.released.append(weakref.ref(t.agent))
        t.agent = None
        self.counts["leaves"] += 1

    def reset(self, t: _Tracked) -> None:
        self.end_stream(t, flush=self.rng.random() < 0.75)
        t.agent.reset()
        t.segment += 1
        self.new_stream(t)
        if t.agent.frames_generated != 0:
            self.fail("frames_complete", f"{self.where(t)}: frames_generated not 0 after reset")
        self.take(t)  # a frame of the old stream here breaks the sequence check
        self.counts["resets"] += 1

    def rate_change(self, t: _Tracked) -> None:
        """A chunk at another rate without a reset: refused, and nothing changes."""
        if not t.samples:
            return  # the stream's rate is not fixed yet
        rate = int(self.rng.choice([r for r in self.s.rates if r != t.rate]))
        chunk = self.signal(rate // 50, loud=True)
        try:
            t.agent.push(own=chunk, partner=chunk, sample_rate=rate)
            self.fail("clean_errors", f"{self.where(t)}: a push at {rate} Hz was accepted")
        except AudioFormatError:
            self.counts["rate_changes_refused"] += 1

    def style(self, t: _Tracked) -> None:
        if self.rng.random() < 0.3:
            t.agent.set_style(None)
        else:
            frames = int(self.rng.integers(2, 101))
            reference = self.rng.standard_normal((frames, t.agent.latent_size)) * 0.5
            t.agent.set_style(reference.astype(np.float32))
        self.counts["styles"] += 1

    def signal(self, n: int, loud: bool) -> np.ndarray:
        if not loud:
            return np.zeros(n, np.float32)
        x = self.rng.standard_normal(n).astype(np.float32) * float(self.rng.uniform(0.01, 0.4))
        return np.clip(x, -1.0, 1.0)

    def push(self, t: _Tracked) -> None:
        lo, hi = self.s.chunk_ms
        ms = math.exp(self.rng.uniform(math.log(lo), math.log(hi)))
        n = max(1, round(ms * t.rate / 1000))
        # the first chunk of a stream gives both sides, which fixes both channels' rate
        kind = str(self.rng.choice(PUSH_KINDS, p=PUSH_ODDS))
        if t.samples == 0 and kind in ("own", "partner"):
            kind = "both"
        stereo = kind == "stereo"
        sides = []
        for side in ("own", "partner"):
            if kind == "silence":
                given = self.signal(n, loud=False)
            elif kind in ("own", "partner") and kind != side:
                given = None  # left out: silence for the chunk's duration
            else:
                given = self.signal(2 * n if stereo else n, loud=self.rng.random() < 0.8)
                if stereo:
                    given = given.reshape(n, 2)
            if given is not None and self.rng.random() < 0.5:
                given = (given * 32767).astype(np.int16)
            sides.append(given)
        t.agent.push(
            own=sides[0], partner=sides[1], sample_rate=t.rate, channels=2 if stereo else None
        )
        t.samples += n
        self.media += n / t.rate
        self.counts["pushes"] += 1
        self.counts[f"pushes_{kind}"] += 1
        # as fast as the engine keeps up: wait when the audio runs too far ahead of the frames
        backlog = t.samples_16k() - t.agent.frames_generated * SAMPLES_PER_MOTION_FRAME
        if backlog > self.s.max_backlog * SAMPLE_RATE:
            self.counts["waits"] += 1
            if not t.agent.wait_idle(timeout=self.s.stall_timeout):
                self.fail("no_exceptions", f"{self.where(t)}: wait_idle() stalled")

    # ------------------------------------------------------------------ the run
    def run(self) -> dict:
        s = self.s
        # a checkpoint goes to the engine by name, so that backend "auto" chooses as for users
        model = small_model(s.seed) if s.model == "small" else s.model
        # A first engine runs a second of audio and closes before the baseline: libraries set
        # themselves up once per process (onnxruntime opens its usage database, for one), which
        # is no leak; what the soak's own engine leaves behind is.
        with Engine(model=model, device=s.device, backend=s.backend) as engine:
            with engine.agent() as agent:
                agent.push(own=np.zeros(SAMPLE_RATE, np.float32))
                agent.flush(timeout=s.stall_timeout)
        del engine, agent
        gc.collect()
        threads_before, fds_before = set(threading.enumerate()), open_fds()
        watch = _ErrorWatch()
        self.started = time.perf_counter()
        every = s.media_seconds / s.samples
        next_sample, next_report = 0.0, 0.1
        warmup_rss = None
        end_rss = None
        odds = {k: (v if k == "pull" else v * s.churn) for k, v in s.odds.items()}
        with watch.watching():
            self.engine = Engine(model=model, device=s.device, backend=s.backend)
            engine_info = {
                "name": s.model,
                "backend": self.engine.backend,
                "device": str(self.engine.device),
                "parameters": count_parameters(model) if isinstance(model, INFPModel) else None,
            }
            try:
                self.join(steady=True)
                while self.media < s.media_seconds:
                    if self.media >= next_sample:
                        self.sample()
                        next_sample += every
                        if warmup_rss is None and self.media >= s.warmup_fraction * s.media_seconds:
                            warmup_rss = self.series["rss_mb"][-1]
                    if self.media >= next_report * s.media_seconds:
                        self.report(next_report)
                        next_report += 0.1
                    self.step(odds)
                self.sample()
                end_rss = self.series["rss_mb"][-1]
                for t in list(self.live):
                    self.leave(t)
            except Exception:
                self.fail("no_exceptions", f"in the driver: {traceback.format_exc()}")
            finally:
                for t in list(self.live):  # after a failure: close what is left
                    try:
                        t.agent.close()
                    except Exception:
                        self.fail("no_exceptions", f"closing {t.name}: {traceback.format_exc()}")
                self.live.clear()
                self.engine.close()
            engine_agents = len(self.engine.agents)
            del self.engine
            gc.collect()
        wall = time.perf_counter() - self.started
        threads_after, fds_after = set(threading.enumerate()), open_fds()
        new_threads = sorted(t.name for t in threads_after - threads_before)
        new_fds = [_describe_fd(fd) for fd in sorted(fds_after - fds_before)]
        for message in watch.errors:
            self.fail("no_exceptions", message)
        unreleased = sum(ref() is not None for ref in self.released)

        growth = None if warmup_rss is None or end_rss is None else end_rss - warmup_rss
        c = self.counts
        checks = {
            "frames_complete": {
                "streams_flushed": c["streams_flushed"],
                "streams_abandoned": c["streams_abandoned"],
            },
            "frame_sequence": {"frames_checked": c["frames_checked"]},
            "media_clock": {"max_t_error_s": self.max_t_error, "tolerance_s": T_TOLERANCE_S},
            "finite_frames": {"frames_checked": c["frames_checked"]},
            "rss_growth": {
                "warmup_media_s": s.warmup_fraction * s.media_seconds,
                "rss_mb_warmup": warmup_rss,
                "rss_mb_end": end_rss,
                "growth_mb": growth,
                "rss_mb_max": max(self.series["rss_mb"], default=None),
                "limit_mb": s.rss_limit_mb,
            },
            "threads": {
                "before": len(threads_before),
                "after": len(threads_after),
                "new": new_threads,
            },
            "fds": {"before": len(fds_before), "after": len(fds_after), "new": new_fds},
            "agents_released": {
                "agents": self._agents_made,
                "still_served": engine_agents,
                "not_freed": unreleased,
            },
            "clean_errors": {
                "rate_changes_refused": c["rate_changes_refused"],
                "closed_pushes_refused": c["closed_push_refused"],
            },
            "no_exceptions": {},
        }
        if growth is None or growth >= s.rss_limit_mb:
            self.fail("rss_growth", f"RSS grew {growth} MB (limit {s.rss_limit_mb} MB)")
        if new_threads:
            self.fail("threads", f"threads left running: {', '.join(new_threads)}")
        if new_fds:
            self.fail("fds", f"file descriptors left open: {', '.join(new_fds)}")
        if engine_agents or unreleased:
            self.fail(
                "agents_released",
                f"{engine_agents} agents still served, {unreleased} closed agents not freed",
            )
        if not c["frames_checked"] or not c["streams_flushed"]:
            self.fail("frames_complete", "no frames or no flushed stream were checked")
        for name, check in checks.items():
            check["violations"] = c[f"violations_{name}"]
            check["passed"] = not check["violations"]
            check["first_violations"] = self.violations[name]
        events = {
            k: c[k]
            for k in (
                "joins",
                "leaves",
                "resets",
                "interrupts",
                "styles",
                "rate_changes_refused",
                "pauses",
                "pulls",
                "pushes",
                "waits",
            )
        }
        events["pushes_by_kind"] = {
            k.removeprefix("pushes_"): v for k, v in sorted(c.items()) if k.startswith("pushes_")
        }
        return {
            "benchmark": "soak",
            "machine": machine(),
            "settings": asdict(s),
            "model": engine_info,
            "media_seconds": self.media,
            "wall_seconds": wall,
            "media_per_wall": self.media / wall if wall else None,
            "frames_checked": c["frames_checked"],
            "events": events,
            "checks": checks,
            "passed": all(check["passed"] for check in checks.values()),
            "series": self.series,
        }

    def step(self, odds: dict[str, float]) -> None:
        """Push a chunk to a random agent, then maybe one event on it and maybe a join."""
        t = self.live[int(self.rng.integers(len(self.live)))]
        self.push(t)
        roll = self.rng.random(len(odds))
        event = dict(zip(odds, roll < np.array(list(odds.values())), strict=True))
        if event["pull"]:
            self.counts["pulls"] += 1
            self.take(t)
        if event["pause"]:
            self.counts["pauses"] += 1
            time.sleep(float(self.rng.uniform(0.001, 0.02)))
        if event["interrupt"]:
            self.counts["interrupts"] += 1
            t.agent.interrupt()
        if event["style"]:
            self.style(t)
        if event["rate_change"]:
            self.rate_change(t)
        if not t.steady and event["reset"]:
            self.reset(t)
        elif not t.steady and event["leave"]:
            self.leave(t)
        if event["join"] and len(self.live) < self.s.agents:
            self.join()

    def report(self, fraction: float) -> None:
        wall = time.perf_counter() - self.started
        frames = self.counts["frames_checked"]
        self.progress(
            f"{fraction:4.0%}  {self.media:7.0f} s of media in {wall:6.1f} s, {len(self.live)} "
            f"agents, {frames} frames checked, RSS {rss_mb():.0f} MB"
        )


def run_soak(settings: SoakSettings, progress=print) -> dict:
    """Run a soak and return its result (what ``soak.json`` holds)."""
    return Soak(settings, progress).run()


# ---------------------------------------------------------------------- output
def save(result: dict, out: Path) -> tuple[Path, Path | None]:
    """Write ``soak.json`` and (with matplotlib) ``soak.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = write_text(out / "soak.json", json.dumps(result, indent=1) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return json_path, None
    series = result["series"]
    minutes = np.array(series["media_s"]) / 60
    fig, axes = plt.subplots(3, 1, figsize=(7, 6), sharex=True)
    rss = result["checks"]["rss_growth"]
    axes[0].plot(minutes, series["rss_mb"])
    axes[0].axvline(rss["warmup_media_s"] / 60, color="grey", ls=":", label="warm-up point")
    axes[0].set_ylabel("resident memory (MB)")
    growth = rss["growth_mb"]
    axes[0].set_title(
        f"Soak: {result['media_seconds'] / 60:.0f} min of media through one Engine "
        f"(RSS growth {growth:+.1f} MB)"
        if growth is not None
        else "Soak"
    )
    axes[0].legend(loc="lower right")
    axes[1].plot(minutes, series["os_threads"], label="threads (native ones included)")
    axes[1].plot(minutes, series["threads"], label="Python threads")
    axes[1].plot(minutes, series["agents"], label="agents", alpha=0.6)
    axes[1].set_ylabel("count")
    axes[1].set_ylim(bottom=0)
    axes[1].legend(loc="lower right", fontsize="small")
    axes[2].plot(minutes, series["fds"])
    axes[2].set_ylabel("open file descriptors")
    axes[2].set_ylim(0, max(series["fds"], default=0) + 4)
    axes[2].set_xlabel("media time pushed, summed over agents (min)")
    fig.tight_layout()
    with atomic_path(out / "soak.png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return json_path, out / "soak.png"


def summary(result: dict) -> str:
    c = result["checks"]
    lines = [
        f"{result['media_seconds']:.0f} s of media (summed over agents) in "
        f"{result['wall_seconds']:.0f} s of wall time ({result['media_per_wall']:.0f}x), "
        f"{result['frames_checked']} frames checked; events: "
        + ", ".join(f"{k} {v}" for k, v in result["events"].items() if k != "pushes_by_kind"),
        f"RSS {c['rss_growth']['rss_mb_warmup']:.1f} MB at the warm-up point -> "
        f"{c['rss_growth']['rss_mb_end']:.1f} MB at the end "
        f"(growth {c['rss_growth']['growth_mb']:+.1f} MB, limit {c['rss_growth']['limit_mb']})"
        if c["rss_growth"]["growth_mb"] is not None
        else "RSS: no warm-up sample",
        f"Python threads {c['threads']['before']} -> {c['threads']['after']}, "
        f"file descriptors {c['fds']['before']} -> {c['fds']['after']}",
    ]
    for name, check in c.items():
        lines.append(f"  {'pass' if check['passed'] else 'FAIL'}  {name}")
        lines += [f"        {v}" for v in check["first_violations"][:5]]
    lines.append("all checks passed" if result["passed"] else "SOAK FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SoakSettings()
    parser.add_argument("--media-seconds", type=float, default=defaults.media_seconds)
    parser.add_argument("--agents", type=int, default=defaults.agents)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--model", default=defaults.model, help="small, default or a checkpoint")
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--backend", default=defaults.backend, help="auto, torch or onnxruntime")
    parser.add_argument("--churn", type=float, default=defaults.churn)
    parser.add_argument("--max-backlog", type=float, default=defaults.max_backlog)
    parser.add_argument("--stall-timeout", type=float, default=defaults.stall_timeout)
    parser.add_argument("--rss-limit", type=float, default=defaults.rss_limit_mb)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.agents < 1:
        parser.error("--agents must be at least 1")
    settings = SoakSettings(
        media_seconds=args.media_seconds,
        agents=args.agents,
        seed=args.seed,
        model=args.model,
        device=args.device,
        backend=args.backend,
        churn=args.churn,
        max_backlog=args.max_backlog,
        stall_timeout=args.stall_timeout,
        rss_limit_mb=args.rss_limit,
    )
    result = run_soak(settings)
    json_path, png_path = save(result, Path(args.out))
    print(summary(result))
    print(f"saved {json_path}" + (f" and {png_path}" if png_path else ""))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
