"""What every sink shares: the sink interface, frame-rate conversion, and paced delivery; and the
interface of the audio sources that feed a live pipeline.

A sink has ``send(frame)`` (deliver now) and ``close()``, and may have ``reopen()``. A source
has ``start()`` and ``stop()``. Both are declared for ``infp-sdk live`` in
:mod:`infp_sdk.live.registry`.
:class:`Output` puts a sink behind a thread with a bounded queue, converts 25 fps motion to the
sink's rate (30 or 60 fps for most engines) by interpolation, and, with a :class:`PlayoutClock`,
releases each frame at its media time plus a constant delay, so a sink sees one frame every
1/fps seconds even though the agent produces frames in bursts (one burst per hop).

A sink that fails never stops the others. A sink with ``reopen()`` (the virtual camera: a device
that was removed may come back) is retried with a growing pause, frames meanwhile counted as
dropped; one without it (an mp4 file on a full disk) is dropped. :attr:`Output.state` and
:meth:`Output.health` say which, for the live status line.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from ..motion import FPS, Frame
from ..shutdown import stop_at_exit

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Anything that takes frames: ``send`` delivers one frame now, ``close`` releases it.

    A sink whose failures can pass (a device that comes back) also has ``reopen()``, which
    :class:`Output` calls before it tries again; it raises while the sink cannot work yet.
    """

    def send(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


class Source(Protocol):
    """Anything that feeds audio into one channel of an
    :class:`~infp_sdk.audio.sources.AudioMixer` (given to it when it is made): ``start`` begins
    on a thread of its own and returns the source, ``stop`` ends it and releases what it holds.

    A source whose device can fail and come back also has ``state`` ("ok" while it works) and
    ``health()`` (one line for the status display), as
    :class:`~infp_sdk.audio.sources.DeviceSource` does.
    """

    def start(self) -> Source: ...

    def stop(self) -> None: ...


# Pauses between attempts to bring a failed sink back, in seconds (the last one repeats).
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 5.0)


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the pip extra to install."""


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional package or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{what} needs the '{module.split('.')[0]}' package: pip install 'infp-sdk[{extra}]' "
            f"({e})"
        ) from None


# ----------------------------------------------------------------------------------------------
# Frame-rate conversion
# ----------------------------------------------------------------------------------------------


def _lerp(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    return (np.asarray(a, np.float32) * (1.0 - w) + np.asarray(b, np.float32) * w).astype(
        np.float32
    )


class FrameResampler:
    """Converts frames at ``in_fps`` to ``fps`` by linear interpolation on the media clock.

    Output frame k is centred at ``(k + 0.5) / fps``; it is made from the two input frames around
    it (blendshapes, head, gaze, latent and speaking interpolated; the image of the nearer one).
    An output frame needs the input frame after it, so conversion adds one input frame (40 ms)
    of delay. A frame index that does not increase (after a reset) starts over at k = 0.
    """

    def __init__(self, fps: float, in_fps: float = FPS):
        if not 1 <= fps <= 240:
            raise ValueError(f"fps must be in 1..240, got {fps}")
        self.fps = float(fps)
        self.in_fps = float(in_fps)
        self.reset()

    def reset(self) -> None:
        self._prev: Frame | None = None
        self._k = 0

    def _time(self, k: int) -> float:
        return (k + 0.5) / self.fps

    def push(self, frame: Frame) -> list[Frame]:
        """The output frames that ``frame`` completes (possibly none)."""
        if self.fps == self.in_fps:
            return [frame]
        prev = self._prev
        if prev is not None and frame.index <= prev.index:
            self.reset()
            prev = None
        out = []
        while self._time(self._k) <= frame.t + 1e-9:
            t = self._time(self._k)
            if prev is None or frame.t <= prev.t:
                src, w, other = frame, 1.0, frame
            else:
                src, other = prev, frame
                w = min(max((t - prev.t) / (frame.t - prev.t), 0.0), 1.0)
            out.append(
                Frame(
                    index=self._k,
                    t=t,
                    latent=_lerp(src.latent, other.latent, w),
                    blendshapes=np.clip(_lerp(src.blendshapes, other.blendshapes, w), 0.0, 1.0),
                    head=_lerp(src.head, other.head, w),
                    gaze=_lerp(src.gaze, other.gaze, w),
                    speaking=float(src.speaking * (1.0 - w) + other.speaking * w),
                    image=other.image if w >= 0.5 else src.image,
                )
            )
            self._k += 1
        self._prev = frame
        return out


# ----------------------------------------------------------------------------------------------
# Pacing
# ----------------------------------------------------------------------------------------------


class PlayoutClock:
    """Maps media time to wall time: a frame is due at ``t + offset`` (``time.monotonic()``).

    ``offset`` covers the lateness of every frame seen in the last ``window`` seconds plus
    ``margin``: it rises at once when a frame comes later than ever, and comes down slowly
    (``decay`` seconds per second) once the late frames are out of the window, so a sink sees
    evenly spaced frames at a constant delay that adapts to the agent's hop and compute time.
    """

    def __init__(self, margin: float = 0.02, window: float = 10.0, decay: float = 0.02):
        self.margin, self.window, self.decay = margin, window, decay
        self.origin: float | None = None  # wall time of media t = 0, when known (for `delay`)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.offset: float | None = None
            self._recent: collections.deque[tuple[float, float]] = collections.deque()
            self._updated = 0.0

    def observe(self, t: float, arrival: float | None = None) -> None:
        """A frame with media time ``t`` arrived (now, or at ``arrival``)."""
        now = time.monotonic() if arrival is None else arrival
        late = now - t
        with self._lock:
            self._recent.append((now, late))
            while self._recent and self._recent[0][0] < now - self.window:
                self._recent.popleft()
            target = max(x for _, x in self._recent) + self.margin
            if self.offset is None or target > self.offset:
                self.offset = target
            else:
                self.offset = max(target, self.offset - self.decay * (now - self._updated))
            self._updated = now

    def due(self, t: float) -> float:
        """Wall time (monotonic) at which media time ``t`` should be shown."""
        with self._lock:
            return t + (self.offset if self.offset is not None else 0.0)

    @property
    def delay(self) -> float | None:
        """Playout delay (s): from the wall time of media time t (``origin + t``) to the frame
        being shown; None until a frame was seen and ``origin`` is set."""
        if self.offset is None or self.origin is None:
            return None
        return self.offset - self.origin


class Output:
    """A sink behind a thread and a bounded queue, with optional fps conversion and pacing.

    Args:
        sink: the sink.
        fps: output rate (None: as produced, 25 fps).
        clock: release frames at ``clock.due(t)`` (None: as soon as they arrive).
        max_queue: frames queued before the oldest are dropped (counted in ``dropped``).

    A failing sink is reported, not raised: :attr:`state` turns "retrying" (a sink with
    ``reopen()``, tried again after :data:`RETRY_PAUSES_S`) or "dropped" (no ``reopen()``: it
    gets no more frames), :attr:`error` holds the last failure and :attr:`failures` counts
    them. Frames that arrive meanwhile count as dropped.
    """

    def __init__(
        self,
        sink: Sink,
        fps: float | None = None,
        clock: PlayoutClock | None = None,
        max_queue: int = 120,
        name: str | None = None,
    ):
        self.sink = sink
        self.name = name or type(sink).__name__
        self.resampler = FrameResampler(fps) if fps and fps != FPS else None
        self.clock = clock
        # Interpolated frames lie up to one input frame before the newest input frame.
        self._extra_delay = 1.0 / FPS if self.resampler is not None else 0.0
        self.max_queue = max_queue
        self.sent = 0
        self.dropped = 0
        self.failures = 0  # sends (and reopens) that raised
        self.recoveries = 0  # times a failed sink was brought back
        self.state = "ok"  # "ok", "retrying" or "dropped"
        self.error: BaseException | None = None  # the last failure, while not "ok"
        self._queue: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"infp-{self.name}", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, Output.close)
        self._thread.start()

    def put(self, frame: Frame) -> None:
        """Queue a frame (never blocks, never raises: a failed sink's frames count as dropped)."""
        frames = self.resampler.push(frame) if self.resampler is not None else [frame]
        with self._cond:
            if self.state != "ok":
                self.dropped += len(frames)
                return
            self._queue.extend(frames)
            while len(self._queue) > self.max_queue:
                self._queue.popleft()
                self.dropped += 1
            self._cond.notify_all()

    def reset(self) -> None:
        """Drop queued frames and restart the rate conversion (after an agent reset)."""
        with self._cond:
            self._queue.clear()
            if self.resampler is not None:
                self.resampler.reset()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._queue:
                        if self.clock is None:
                            break
                        wait = self.clock.due(self._queue[0].t) + self._extra_delay
                        wait -= time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 0.1))
                    else:
                        self._cond.wait(0.1)
                if self._stop:
                    return
                frame = self._queue.popleft()
            try:
                self.sink.send(frame)
                self.sent += 1
            except Exception as e:
                if not self._recover(e):
                    return

    def health(self) -> str:
        """One line for a status display: "NAME ok", "NAME retrying (error)", ..."""
        line = f"{self.name} {self.state}"
        if self.state != "ok" and self.error is not None:
            line += f" ({type(self.error).__name__}: {self.error})"
        elif self.recoveries:
            line += f" (recovered {self.recoveries}x)"
        return line

    def _fail(self, error: BaseException, state: str) -> None:
        with self._cond:
            self.failures += 1
            self.error, self.state = error, state
            self.dropped += len(self._queue)
            self._queue.clear()

    def _recover(self, error: BaseException) -> bool:
        """After a failed send: retry until the sink reopens (True) or is dropped or the
        output closes (False)."""
        reopen = getattr(self.sink, "reopen", None)
        if reopen is None:
            log.error("%s failed and is dropped: %s", self.name, error)
            self._fail(error, "dropped")
            return False
        log.warning("%s failed (%s); retrying", self.name, error)
        self._fail(error, "retrying")
        for attempt in itertools.count():
            with self._cond:
                pause = RETRY_PAUSES_S[min(attempt, len(RETRY_PAUSES_S) - 1)]
                if self._cond.wait_for(lambda: self._stop, pause):
                    return False
            try:
                reopen()
            except Exception as e:
                with self._cond:
                    self.failures += 1
                    self.error = e
                continue
            with self._cond:
                self.error, self.state = None, "ok"
                self.recoveries += 1
            log.warning("%s is back after %d attempts", self.name, attempt + 1)
            return True
        return False  # unreachable: the loop above only ends by returning

    def close(self) -> None:
        """Stop the thread and close the sink (queued frames are dropped)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._cancel_stop_at_exit()
        self.sink.close()
