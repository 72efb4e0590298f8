"""Two audio streams in, voice and face out in step: the clock of the voice-agent adapters and
of ``infp-sdk serve``.

A voice-agent framework hands an avatar its own voice in bursts (a TTS answer arrives faster than
it plays) and, in the adapters here, the user's voice in real time. An :class:`~infp_sdk.Agent`
wants both on one media clock. :class:`Pacer` is that clock:

* own audio is queued as it arrives and *played out* at real-time pace, ``tick`` seconds at a
  time, together with the same span of partner audio (which waits in a small jitter buffer), into
  ``agent.push`` — so the agent hears the conversation as it happens;
* every span of own audio taken off the queue goes into a delay line, and comes back out of
  :meth:`Pacer.step` ``delay`` seconds after its media time, at the moment the video frames that
  show it come out too: the sample at media time ``s`` and the output frame showing the agent
  frame that covers ``s`` leave together, whatever the framework does with them afterwards;
* anything else the framework wants kept in order with the voice (a pipecat text or control
  frame, a LiveKit end-of-segment marker) is a *marker*: it leaves right after the audio queued
  before it.

``delay`` is the price: it has to cover the agent's mouth-to-face latency (the frame, the
encoder's look-ahead, a hop and its compute), or frames come out late (the newest one available
is shown again, and ``stats["late_frames"]`` counts it). The pacer never blocks: ``step`` only
queues audio into the agent and takes what is ready, so it can run on an asyncio loop. It is not
thread-safe; drive it from one thread (the adapters use their event loop).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio.convert import to_mono
from ..audio.stream import StreamResampler, take_samples
from ..motion import FPS, Frame

log = logging.getLogger(__name__)

# A face this far behind its voice (s) is worth a warning: the machine cannot keep up.
_BEHIND_WARNING_S = 1.0

# A partner stream with no audio for this long is idle: its next chunk starts a new stream
# (queued `partner_jitter` behind) instead of catching up on the silence given out meanwhile.
_PARTNER_IDLE_S = 0.25


@dataclass
class VideoOut:
    """An output video frame.

    ``index`` counts output frames (at the pacer's ``fps``); ``t`` is the media time (s) of its
    centre; ``source`` the agent frame it shows (centred at ``(source + 0.5) / 25`` s);
    ``late`` is True when that frame was not ready in time and an older one is shown instead.
    """

    image: np.ndarray
    index: int
    t: float
    source: int
    late: bool
    frame: Frame


@dataclass
class AudioOut:
    """A span of own audio, leaving the delay line: int16 ``(samples, channels)`` at
    ``sample_rate``, starting at media time ``t`` (s); ``tag`` as given to ``push_own``."""

    samples: np.ndarray
    sample_rate: int
    t: float
    tag: Any = None


@dataclass
class MarkerOut:
    """A marker leaving the delay line, after the own audio queued before it."""

    item: Any
    t: float


Output = VideoOut | AudioOut | MarkerOut


@dataclass
class _Entry:
    """One item of the delay line: audio or a marker at media sample ``pos``."""

    pos: int
    audio: np.ndarray | None = None
    item: Any = None  # a marker's item, or the tag of audio
    interruptible: bool = True

    @property
    def end(self) -> int:
        return self.pos + (0 if self.audio is None else len(self.audio))


@dataclass
class _Audio:
    pcm: np.ndarray  # int16 (samples, channels)
    tag: Any = None


@dataclass
class _Marker:
    item: Any
    interruptible: bool = True


@dataclass
class _PartnerBuffer:
    """The partner's audio at the pacer's rate, ``jitter`` behind its arrival."""

    jitter: int
    limit: int
    chunks: collections.deque = field(default_factory=collections.deque)
    level: int = 0
    debt: int = 0  # silence given out for audio that is still to come: drop that much of it
    last_write: float = -1e9

    def write(self, x: np.ndarray, now: float) -> None:
        if now - self.last_write > _PARTNER_IDLE_S:
            self.debt = 0
            if self.level < self.jitter:  # a stream (re)starts: queue it jitter behind
                self.chunks.append(np.zeros(self.jitter - self.level, np.float32))
                self.level = self.jitter
        elif self.debt:
            drop = min(self.debt, len(x))
            x, self.debt = x[drop:], self.debt - drop
        self.last_write = now
        if len(x):
            self.chunks.append(x)
            self.level += len(x)
        if self.level > self.limit:  # the oldest goes: it would only add delay
            self.take(self.level - self.limit, now, count_debt=False)

    def take(self, n: int, now: float, count_debt: bool = True) -> np.ndarray:
        out, got = take_samples(self.chunks, n)
        self.level -= got
        if count_debt and got < n and now - self.last_write <= _PARTNER_IDLE_S:
            self.debt += n - got
        return out

    def clear(self) -> None:
        self.chunks.clear()
        self.level = self.debt = 0


class Pacer:
    """Plays own and partner audio into an agent in real time and hands back voice and face in
    step, ``delay`` seconds later.

    Args:
        agent: an :class:`~infp_sdk.Agent` with a portrait (its frames carry images). The pacer
            pushes to it and pulls from it; it does not close it.
        sample_rate: the rate of the timeline and of the own audio handed back (the framework's
            output rate). Audio at other rates is resampled to it on arrival.
        channels: channels of the own audio handed back.
        size: ``(width, height)`` of the images handed back; frames of another size are
            scaled to fit (black bars), so render at this size to avoid that.
        fps: output video frames per second.
        delay: seconds from an instant of audio on the timeline to the moment it and its
            frame are handed back; it must cover the agent's mouth-to-face latency.
        tick: seconds of audio pushed to the agent at a time.
        partner_jitter: seconds of partner audio buffered to absorb its arrival jitter.
        clock: the wall clock (seconds, monotonic).
    """

    def __init__(
        self,
        agent: Any,
        *,
        sample_rate: int,
        channels: int = 1,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        delay: float = 0.2,
        tick: float = 0.01,
        partner_jitter: float = 0.04,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate must be 8000..192000 Hz, got {sample_rate}")
        if not 1 <= int(channels) <= 8:
            raise ValueError(f"channels must be 1..8, got {channels}")
        if not 1 <= float(fps) <= 120:
            raise ValueError(f"fps must be 1..120, got {fps}")
        if not 0 < float(delay) <= 10:
            raise ValueError(f"delay must be more than 0 and at most 10 s, got {delay}")
        if not 0.001 <= float(tick) <= 0.1:
            raise ValueError(f"tick must be 0.001..0.1 s, got {tick}")
        self.agent = agent
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.fps, self.delay, self.tick = float(fps), float(delay), float(tick)
        self.clock = clock
        self._partner = _PartnerBuffer(
            jitter=int(partner_jitter * self.sample_rate), limit=int(0.5 * self.sample_rate)
        )
        self._tick_samples = max(1, int(self.tick * self.sample_rate))
        self._own: collections.deque[_Audio | _Marker] = collections.deque()
        self._line: collections.deque[_Entry] = collections.deque()
        self._resamplers: dict[tuple[str, int], StreamResampler] = {}
        self._frames: dict[int, Frame] = {}
        self.t0: float | None = None
        self.pushed = 0  # samples of the timeline pushed to the agent
        self._video = 0  # next output frame
        self.stats = {"frames_out": 0, "late_frames": 0, "missing_frames": 0}
        self._warned_at = -1e9

    # ------------------------------------------------------------------ input
    def start(self, now: float | None = None) -> None:
        """Start the clock: media time 0 is now."""
        self.t0 = self.clock() if now is None else now

    @property
    def started(self) -> bool:
        return self.t0 is not None

    def push_own(self, audio: Any, sample_rate: int, channels: int = 1, tag: Any = None) -> None:
        """Queue own voice (int16 PCM bytes or an array, interleaved when ``channels`` > 1);
        ``tag`` comes back with it (e.g. the TTS context it belongs to)."""
        pcm = _int16(audio, channels)
        if int(sample_rate) != self.sample_rate or pcm.shape[1] != self.channels:
            mono = self._resample("own", to_mono(pcm, int(sample_rate)), int(sample_rate))
            pcm = np.repeat(_float_to_int16(mono)[:, None], self.channels, axis=1)
        if len(pcm):
            self._own.append(_Audio(pcm, tag))

    def end_own(self) -> None:
        """The own voice paused (the end of an utterance): what a resampler still holds of it
        is queued now rather than with the next utterance."""
        for key in [k for k in self._resamplers if k[0] == "own"]:
            tail = self._resamplers.pop(key).flush()
            if len(tail):
                pcm = np.repeat(_float_to_int16(tail)[:, None], self.channels, axis=1)
                tag = next((a.tag for a in reversed(self._own) if isinstance(a, _Audio)), None)
                self._own.append(_Audio(pcm, tag))

    def mark(self, item: Any, interruptible: bool = True) -> bool:
        """Keep ``item`` in order with the own voice: it leaves :meth:`step` right after the own
        audio queued before it. Returns False (and keeps nothing) when no own audio is waiting,
        so the caller can pass it on at once. ``interruptible``: whether :meth:`interrupt`
        drops it (otherwise it is handed back at once then)."""
        if not self._own and not self._line:
            return False
        if self._own:
            self._own.append(_Marker(item, interruptible))
        else:
            self._line.append(_Entry(self._line[-1].end, item=item, interruptible=interruptible))
        return True

    def push_partner(
        self, audio: Any, sample_rate: int, channels: int = 1, now: float | None = None
    ) -> None:
        """Add the partner's voice as it arrives (int16 PCM bytes or an array)."""
        mono = to_mono(_int16(audio, channels), int(sample_rate))
        x = self._resample("partner", mono, int(sample_rate))
        self._partner.write(x, self.clock() if now is None else now)

    def interrupt(self) -> list[Any]:
        """Drop the own voice not yet handed back (and the markers that allow it); returns the
        markers that must still go out, in order. The caller also calls ``agent.interrupt()``
        (it can block for a model call, so an event loop runs it in a thread)."""
        kept = [m.item for m in self._own if isinstance(m, _Marker) and not m.interruptible]
        kept = [e.item for e in self._line if e.audio is None and not e.interruptible] + kept
        self._own.clear()
        self._line.clear()
        for key in [k for k in self._resamplers if k[0] == "own"]:
            del self._resamplers[key]
        return kept

    def drain(self) -> list[AudioOut | MarkerOut]:
        """Everything not yet handed back (own audio and markers, in order), at once: for when
        the face cannot go on but the voice should (the agent failed)."""
        out: list[AudioOut | MarkerOut] = []
        rate = self.sample_rate
        for e in self._line:
            t = e.pos / rate
            out.append(
                MarkerOut(e.item, t) if e.audio is None else AudioOut(e.audio, rate, t, e.item)
            )
        pos = self._line[-1].end if self._line else self.pushed
        for a in self._own:
            if isinstance(a, _Marker):
                out.append(MarkerOut(a.item, pos / rate))
            else:
                out.append(AudioOut(a.pcm, rate, pos / rate, a.tag))
                pos += len(a.pcm)
        self._line.clear()
        self._own.clear()
        return out

    # ------------------------------------------------------------------ output
    @property
    def pending(self) -> bool:
        """Own audio or markers still waiting to be handed back."""
        return bool(self._own or self._line)

    @property
    def media_time(self) -> float:
        """Seconds of the timeline pushed to the agent."""
        return self.pushed / self.sample_rate

    def step(self, now: float | None = None) -> list[Output]:
        """Push the audio that is due, take the frames that are ready, and return what is due
        to leave now, in time order. Raises the agent's failure, if any."""
        if self.t0 is None:
            raise RuntimeError("call start() first")
        now = self.clock() if now is None else now
        due = int((now - self.t0) * self.sample_rate) - self.pushed
        if due >= self._tick_samples:
            own = self._take_own(due)
            partner = self._partner.take(due, now)
            self.agent.push(own=own, partner=partner, sample_rate=self.sample_rate)
            self.pushed += due
        for frame in self.agent.pull():
            self._frames[frame.index] = frame
        return self._due(now - self.t0 - self.delay)

    def wait(self, now: float | None = None) -> float:
        """Seconds until :meth:`step` has something to do."""
        if self.t0 is None:
            return self.tick
        now = self.clock() if now is None else now
        events = [(self.pushed + self._tick_samples) / self.sample_rate]
        events.append(self._video / self.fps + self.delay)
        if self._line:
            events.append(self._line[0].pos / self.sample_rate + self.delay)
        return max(0.0, self.t0 + min(events) - now)

    # ------------------------------------------------------------------ internals
    def _resample(self, channel: str, x: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.sample_rate:
            return x
        key = (channel, rate)
        if key not in self._resamplers:
            self._resamplers[key] = StreamResampler(rate, self.sample_rate)
        return self._resamplers[key].process(x)

    def _take_own(self, n: int) -> np.ndarray:
        """``n`` samples of own voice (silence where none is queued), mono float32; what was
        taken goes into the delay line at its media position."""
        own = np.zeros(n, np.float32)
        got = 0
        while self._own:
            head = self._own[0]
            if isinstance(head, _Marker):
                self._own.popleft()
                self._line.append(_Entry(self.pushed + got, item=head.item,
                                         interruptible=head.interruptible))  # fmt: skip
                continue
            if got == n:
                break
            k = min(n - got, len(head.pcm))
            piece = head.pcm[:k]
            own[got : got + k] = piece.mean(axis=1, dtype=np.float32) / 32768.0
            self._line.append(_Entry(self.pushed + got, audio=piece, item=head.tag))
            if k == len(head.pcm):
                self._own.popleft()
            else:
                head.pcm = head.pcm[k:]
            got += k
        return own

    def _due(self, horizon: float) -> list[Output]:
        """Everything whose media time is at or before ``horizon``, in time order."""
        out: list[Output] = []
        while True:
            t_video = self._video / self.fps
            t_line = self._line[0].pos / self.sample_rate if self._line else None
            if t_line is not None and t_line <= horizon and t_line <= t_video:
                entry = self._line.popleft()
                if entry.audio is None:
                    out.append(MarkerOut(entry.item, t_line))
                else:
                    out.append(AudioOut(entry.audio, self.sample_rate, t_line, entry.item))
            elif t_video <= horizon:
                video = self._next_video()
                if video is not None:
                    out.append(video)
            else:
                return out

    def _next_video(self) -> VideoOut | None:
        k = self._video
        self._video += 1
        centre = (k + 0.5) / self.fps
        wanted = int(centre * FPS)
        source = wanted if wanted in self._frames else None
        if source is None:
            older = [i for i in self._frames if i < wanted]
            source = max(older) if older else None
        if source is None:
            self.stats["missing_frames"] += 1
            return None
        for i in [i for i in self._frames if i < source]:
            del self._frames[i]  # never shown again
        frame = self._frames[source]
        late = source != wanted
        behind = (wanted - source) / FPS
        if behind > _BEHIND_WARNING_S and centre - self._warned_at > 30:
            self._warned_at = centre
            log.warning(
                "the face is %.1f s behind its voice: this machine does not make frames in real "
                "time (a smaller size, fewer solver steps, a GPU, or a quieter machine helps)",
                behind,
            )
        self.stats["frames_out"] += 1
        self.stats["late_frames"] += late
        return VideoOut(self._image(frame), k, centre, source, late, frame)

    def _image(self, frame: Frame) -> np.ndarray:
        if frame.image is None:
            raise ValueError(
                "the agent's frames carry no image: give it a portrait (Agent(portrait))"
            )
        image = frame.image
        if self.size is not None and image.shape[:2] != (self.size[1], self.size[0]):
            from ..io.camera import fit

            image = fit(image, *self.size)
        return image


def warm_up(agent: Any, seconds: float = 0.4) -> None:
    """Run the agent once over a little silence, then reset it: the first model calls and
    renders of a fresh process are slow (sessions, caches), and they should not make the
    first frames of a conversation late. Blocks; call it before the conversation starts."""
    agent.push(own=np.zeros(int(seconds * 16000), np.float32), sample_rate=16000)
    agent.flush()
    agent.pull()
    agent.reset()


def _int16(audio: Any, channels: int) -> np.ndarray:
    """PCM bytes or an array -> int16 (samples, channels)."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        pcm = np.frombuffer(audio, np.int16)
    else:
        pcm = np.asarray(audio)
        if pcm.dtype.kind == "f":
            pcm = _float_to_int16(pcm)
        elif pcm.dtype != np.int16:
            raise ValueError(f"expected int16 PCM or float samples, got {pcm.dtype}")
    if pcm.ndim == 1:
        if len(pcm) % channels:
            raise ValueError(f"{len(pcm)} samples are not whole {channels}-channel frames")
        pcm = pcm.reshape(-1, channels)
    return pcm


def _float_to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
