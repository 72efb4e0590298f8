"""The live pipeline's running parts: :class:`Pipeline` (agent + mixer + outputs, the control
socket's handler, the status line) and :class:`LatencyMeter`."""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME
from ..audio.sources import AudioMixer
from ..motion import Frame

if TYPE_CHECKING:
    from ..io.sinks import Output, PlayoutClock, Source

# ----------------------------------------------------------------------------------------------
# Latency
# ----------------------------------------------------------------------------------------------


class LatencyMeter:
    """Mouth-to-face latency of each frame inside the process = when it was pulled from the
    agent - when the audio at its centre was pushed into the agent.

    Frame i is centred on sample ``(i + 0.5) * 640``; the push that carried that sample gives
    the second time. It covers the rest of the frame, the hop, the encoder's look-ahead and
    compute, as ``infp-sdk bench`` does; the mixer's jitter buffer and the sinks' playout delay
    come on top and are reported separately.
    """

    def __init__(self, window: int = 250):
        self._pushes: collections.deque[tuple[int, float]] = collections.deque()
        self.samples: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    def on_push(self, pushed: int, wall: float) -> None:
        with self._lock:
            self._pushes.append((pushed, wall))

    def on_frame(self, index: int, wall: float) -> float | None:
        need = int((index + 0.5) * SAMPLES_PER_MOTION_FRAME) + 1  # samples up to the centre
        with self._lock:
            # pushes that end before `need` can never matter again (frames come in order)
            while len(self._pushes) > 1 and self._pushes[1][0] <= need:
                self._pushes.popleft()
            for end, pushed_at in self._pushes:
                if end >= need:
                    self.samples.append(wall - pushed_at)
                    return wall - pushed_at
        return None  # no push carried that sample (yet): nothing to measure from

    def reset(self) -> None:
        with self._lock:
            self._pushes.clear()
            self.samples.clear()

    def p95(self) -> float | None:
        with self._lock:
            return float(np.percentile(list(self.samples), 95)) if self.samples else None


# ----------------------------------------------------------------------------------------------
# Pipeline
# ----------------------------------------------------------------------------------------------


class Pipeline:
    """Agent + mixer + outputs (+ publisher, control server): everything ``live`` runs.

    Also the control socket's handler (reset, interrupt, style, audio, hello, ping, stats).
    """

    def __init__(
        self,
        agent: Any,
        outputs: list[Output],
        *,
        clock: PlayoutClock | None = None,
        publisher: Any = None,
        latency: float = 0.06,
    ):
        self.agent = agent
        self.outputs = outputs
        self.clock = clock
        self.publisher = publisher
        self.meter = LatencyMeter()
        self.mixer = AudioMixer(self._push, latency=latency, on_push=self.meter.on_push)
        self.sources: list[Source] = []  # started sources; a sound card reports its health
        self.frames_out = 0
        self.last_t: float | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=200)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the mixer's clock (sources may already be writing)."""
        self.mixer.start()
        self._set_origin()

    def add_source(self, source: Source) -> Source:
        """Start a source (made for this pipeline's mixer) and keep it: its health shows in the
        status line and :meth:`stop_sources` stops it."""
        self.sources.append(source.start())
        return source

    def stop_sources(self) -> None:
        """Stop every source, then the mixer's clock."""
        for source in self.sources:
            source.stop()
        self.mixer.stop()

    def _push(self, own: np.ndarray, partner: np.ndarray) -> None:
        self.agent.push(own=own, partner=partner, sample_rate=SAMPLE_RATE)

    # ------------------------------------------------------------------ frames
    def step(self, timeout: float = 0.1) -> int:
        """Hand every frame ready within ``timeout`` to the outputs; returns how many."""
        first = next(self.agent.frames(timeout=timeout), None)
        frames = ([] if first is None else [first]) + self.agent.pull()
        for frame in frames:
            self._deliver(frame)
        if self.mixer.error is not None:
            raise RuntimeError(f"audio mixer failed: {self.mixer.error}") from self.mixer.error
        return len(frames)

    def _deliver(self, frame: Frame) -> None:
        now = time.monotonic()
        self.meter.on_frame(frame.index, now)
        if self.clock is not None:
            self.clock.observe(frame.t, now)
        with self._lock:
            self.frames_out += 1
            self.last_t = frame.t
            self._recent.append(now)
        for out in self.outputs:
            out.put(frame)

    def fps(self, span: float = 2.0) -> float:
        """Frames per second out of the agent over the last ``span`` seconds."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._recent if t >= now - span]
        return len(recent) / span

    def dropped(self) -> int:
        return sum(o.dropped for o in self.outputs)

    # ------------------------------------------------------------------ control handler
    def reset(self) -> None:
        def _reset():
            self.agent.reset()
            self.meter.reset()
            if self.clock is not None:
                self.clock.reset()
            for out in self.outputs:
                out.reset()

        self.mixer.reset(_reset)
        self._set_origin()

    def _set_origin(self) -> None:
        if self.clock is not None:
            self.clock.origin = self.mixer.origin

    def interrupt(self) -> None:
        self.mixer.clear("own")  # own speech queued in the mixer is cut off too
        self.agent.interrupt()

    def set_style(self, reference: np.ndarray | None) -> None:
        self.agent.set_style(reference)

    def audio(self, channel: str, samples: np.ndarray, sample_rate: int, channels: int) -> None:
        self.mixer.write(channel, samples, sample_rate, channels=channels)

    def send_hello(self):
        return self.publisher.send_hello() if self.publisher is not None else None

    def media_time(self) -> float | None:
        return self.last_t

    def watched(self) -> list:
        """Sinks and sources whose health the status line shows (``state``, ``health()``)."""
        return [*self.outputs, *(src for src in self.sources if hasattr(src, "health"))]

    def counters(self) -> dict[str, int]:
        return {"frames_out": self.frames_out, "dropped": self.dropped()}

    def status(self, elapsed: float) -> str:
        p95 = self.meter.p95()
        lat = "-" if p95 is None else f"{p95 * 1000:.0f} ms"
        delay = None if self.clock is None else self.clock.delay
        play = "" if delay is None else f"  playout delay {delay * 1000:.0f} ms"
        audio = self.mixer.stats()
        under = audio["own_underrun_s"] + audio["partner_underrun_s"]
        over = audio["own_overrun_s"] + audio["partner_overrun_s"]
        failing = [part.health() for part in self.watched() if part.state != "ok"]
        return (
            f"live {elapsed:6.1f} s  {self.fps():4.1f} fps  p95 latency {lat}{play}  "
            f"dropped {self.dropped()}  frames {self.frames_out}  "
            f"audio underrun {under:.2f} s overrun {over:.2f} s"
            + "".join(f"  [{line}]" for line in failing)
        )
