"""Live audio sources and the mixer that turns two of them into one real-time stream for an Agent.

An :class:`~infp_sdk.Agent` takes both channels in one timeline: a ``push`` with only ``own``
means the partner was silent for that span. Two independent live sources (a microphone and a
loopback device, or audio arriving over a socket) deliver at their own pace, so they meet in an
:class:`AudioMixer`: each source writes into its channel's buffer, and the mixer's clock takes
the same number of samples from both every ``tick`` (silence where a channel has nothing) and
pushes them together. The mixer runs ``latency`` seconds behind the wall clock, which absorbs
the sources' jitter.

Sources: :class:`DeviceSource` (a sound card input through sounddevice: the microphone, or a
loopback/monitor device carrying a call's audio), :class:`WavFileSource` (a file played at
real-time pace), and the ZeroMQ audio input socket (:class:`infp_sdk.io.ControlServer`), which
writes into the mixer too.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..shutdown import stop_at_exit
from .convert import to_mono, to_mono_16k
from .mel import SAMPLE_RATE
from .stream import StreamResampler, take_samples
from .wav import read_wav

log = logging.getLogger(__name__)

CHANNELS = ("own", "partner")


class AudioDeviceError(RuntimeError):
    """No usable audio device (or no PortAudio); the message says what to do."""


# ----------------------------------------------------------------------------------------------
# Mixer
# ----------------------------------------------------------------------------------------------


class _Channel:
    """One channel's buffer on the mixer's timeline."""

    def __init__(self, max_buffered: float):
        self.max_buffered = int(max_buffered * SAMPLE_RATE)
        self.clear()
        self.underrun = self.overrun = self.late = 0  # samples

    def clear(self) -> None:
        self.chunks: collections.deque[np.ndarray] = collections.deque()
        self.level = 0
        self.debt = 0  # silence given out in place of audio that is still to come
        self.last_write = -1e9

    def write(self, x: np.ndarray, now: float, lead: int, idle_after: float) -> None:
        """``lead``: samples the clock will push before audio arriving now should be heard."""
        if now - self.last_write > idle_after:
            # A stream (re)starts: queue it `latency` behind, as steady-state audio would be.
            self.debt = 0
            if self.level < lead:
                self.chunks.append(np.zeros(lead - self.level, np.float32))
                self.level = lead
        elif self.debt:
            # This audio's time already went out as silence: drop it to stay in step.
            drop = min(self.debt, len(x))
            x, self.debt = x[drop:], self.debt - drop
            self.late += drop
        self.last_write = now
        if len(x):
            self.chunks.append(x)
            self.level += len(x)
        excess = self.level - self.max_buffered
        if excess > 0:
            self.take(excess)  # the oldest audio goes: it would only add delay
            self.overrun += excess

    def take(self, n: int, active: bool = False) -> np.ndarray:
        out, got = take_samples(self.chunks, n)
        self.level -= got
        if active and got < n:
            self.underrun += n - got
            self.debt += n - got
        return out


class AudioMixer:
    """Aligns the own and partner channels on one real-time clock and pushes them together.

    Args:
        push: called with (own, partner), equal-length float32 arrays at 16 kHz, every tick
            (usually ``lambda o, p: agent.push(own=o, partner=p)``).
        latency: seconds the mixer runs behind the wall clock (jitter buffer).
        tick: seconds between pushes.
        max_buffered: per channel, seconds of audio held before the oldest is dropped. Keep it
            small for sound cards (clock drift) and large for sources that send faster than
            real time (a TTS answer sent in one piece is played out at real-time pace).
        idle_after: a channel with no writes for this long is idle: its next write starts a new
            stream instead of catching up.
        on_push: called with (samples pushed so far, wall time) after each push.
    """

    def __init__(
        self,
        push: Callable[[np.ndarray, np.ndarray], None],
        *,
        latency: float = 0.06,
        tick: float = 0.02,
        max_buffered: dict[str, float] | None = None,
        idle_after: float = 0.25,
        on_push: Callable[[int, float], None] | None = None,
    ):
        self._push = push
        self.latency = float(latency)
        self.tick = float(tick)
        self.idle_after = float(idle_after)
        self.on_push = on_push
        limits = {"own": 60.0, "partner": 60.0, **(max_buffered or {})}
        self.channels = {c: _Channel(limits[c]) for c in CHANNELS}
        self._resamplers: dict[str, StreamResampler] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed = 0  # samples pushed since start or reset
        self.error: BaseException | None = None
        self._start = time.monotonic()

    def set_max_buffered(self, channel: str, seconds: float) -> None:
        self.channels[channel].max_buffered = int(seconds * SAMPLE_RATE)

    def write(self, channel: str, audio: Any, sample_rate: int = SAMPLE_RATE,
              channels: int | None = None, *, now: float | None = None) -> None:  # fmt: skip
        """Add audio to a channel (any format :func:`to_mono_16k` takes). Thread-safe.

        Blocks of one channel at one rate are resampled as one seamless stream.

        ``now``: the arrival time (``time.monotonic()``; default: now).
        """
        if channel not in self.channels:
            raise ValueError(f"channel must be 'own' or 'partner', got {channel!r}")
        x = to_mono(audio, sample_rate, channels=channels)
        now = time.monotonic() if now is None else now
        with self._lock:
            # one resampler per channel keeps blocks seamless (a new rate starts a new one)
            resampler = self._resamplers.get(channel)
            if resampler is None or resampler.orig_sr != int(sample_rate):
                resampler = self._resamplers[channel] = StreamResampler(sample_rate, SAMPLE_RATE)
            x = resampler.process(x)
            # A block arriving now ends at about now (it was captured over its length), so a
            # new stream starts `latency` after that, counted from the clock's position now.
            backlog = max(0, int((now - self._start) * SAMPLE_RATE) - self.pushed)
            lead = backlog + max(0, int(self.latency * SAMPLE_RATE) - len(x))
            self.channels[channel].write(x, now, lead, self.idle_after)

    def clear(self, channel: str) -> None:
        """Drop what is buffered for a channel (e.g. own speech after an interruption)."""
        with self._lock:
            self.channels[channel].clear()
            self._resamplers.pop(channel, None)

    def reset(self, then: Callable[[], None] | None = None) -> None:
        """Empty both channels and restart the clock at sample 0; ``then`` runs in between,
        while no push can happen (e.g. ``agent.reset``)."""
        with self._lock:
            for c in self.channels.values():
                c.clear()
            self._resamplers.clear()
            if then is not None:
                then()
            self.pushed = 0
            self._start = time.monotonic()

    def step(self, now: float | None = None) -> int:
        """Push what is due at ``now``; returns the number of samples pushed (the thread's body,
        public for tests)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = int((now - self._start) * SAMPLE_RATE) - self.pushed
            if due < SAMPLE_RATE // 100:  # less than 10 ms: wait for more
                return 0
            parts = []
            for ch in self.channels.values():
                active = now - ch.last_write <= self.idle_after
                parts.append(ch.take(due, active))
            self._push(parts[0], parts[1])
            self.pushed += due
            pushed = self.pushed
        if self.on_push is not None:
            self.on_push(pushed, now)
        return due

    @property
    def origin(self) -> float:
        """``time.monotonic()`` at which the audio of media time 0 arrived from its source: the
        clock's start minus ``latency`` (each stream is queued ``latency`` behind its arrival)."""
        return self._start - self.latency

    def stats(self) -> dict[str, float]:
        """Seconds of underrun (silence filled in), overrun and late audio dropped, buffered."""
        out: dict[str, float] = {}
        with self._lock:
            for name, ch in self.channels.items():
                out[f"{name}_underrun_s"] = ch.underrun / SAMPLE_RATE
                out[f"{name}_overrun_s"] = ch.overrun / SAMPLE_RATE
                out[f"{name}_late_s"] = ch.late / SAMPLE_RATE
                out[f"{name}_buffered_s"] = ch.level / SAMPLE_RATE
        return out

    def start(self) -> AudioMixer:
        """Start pushing on a background thread (the clock starts now)."""
        with self._lock:
            self._start = time.monotonic()
            self.pushed = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="infp-mixer", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, AudioMixer.stop)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as e:  # surfaced by the owner (e.g. the agent was closed)
                self.error = e
                return
            next_tick += self.tick
            wait = next_tick - time.monotonic()
            if wait < -self.tick:
                next_tick = time.monotonic()  # fell behind: step() catches up in one push
            else:
                self._stop.wait(max(0.0, wait))

    def stop(self) -> None:
        """Stop pushing (also done at interpreter exit if forgotten)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._cancel_stop_at_exit()


# ----------------------------------------------------------------------------------------------
# File source
# ----------------------------------------------------------------------------------------------


class WavFileSource:
    """Plays a WAV file into a mixer channel at real-time pace (optionally looping).

    The file is decoded and converted to 16 kHz once; a thread writes ``chunk`` seconds at a time
    on schedule. ``finished`` is set at the end of the file (never when looping).
    """

    def __init__(self, path: str | Path, mixer: AudioMixer, channel: str, *,
                 loop: bool = False, chunk: float = 0.02):  # fmt: skip
        audio, rate = read_wav(path)
        self.audio = to_mono_16k(audio, rate)
        if len(self.audio) == 0:
            raise ValueError(f"{path}: the file has no samples")
        self.path, self.mixer, self.channel = Path(path), mixer, channel
        self.loop, self.chunk = loop, int(chunk * SAMPLE_RATE)
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WavFileSource:
        self._thread = threading.Thread(target=self._run, name="infp-wav", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, WavFileSource.stop)
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        pos = 0  # samples written since start
        n = len(self.audio)
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * SAMPLE_RATE) + self.chunk
            while pos < due:
                offset = pos % n
                if not self.loop and pos >= n:
                    self.finished.set()
                    return
                k = min(due - pos, n - offset)
                self.mixer.write(self.channel, self.audio[offset : offset + k])
                pos += k
            self._stop.wait(self.chunk / SAMPLE_RATE)

    def stop(self) -> None:
        """Stop playing (also done at interpreter exit if forgotten)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._cancel_stop_at_exit()


# ----------------------------------------------------------------------------------------------
# Sound card sources (sounddevice / PortAudio)
# ----------------------------------------------------------------------------------------------


def _sounddevice():
    """Import sounddevice with errors that say what to install."""
    try:
        import sounddevice
    except ImportError:
        raise AudioDeviceError(
            "audio devices need the 'sounddevice' package: pip install 'infp-sdk[audio]'"
        ) from None
    except OSError as e:  # sounddevice is there but the PortAudio library is not
        raise AudioDeviceError(
            f"the PortAudio library was not found ({e}): install it with "
            "'sudo apt install libportaudio2' (Debian/Ubuntu), 'sudo dnf install portaudio' "
            "(Fedora) or 'brew install portaudio' (macOS)"
        ) from None
    return sounddevice


def list_devices() -> list[dict[str, Any]]:
    """Audio devices as dicts: index, name, hostapi, inputs, outputs, default_samplerate,
    default_input, default_output. Raises AudioDeviceError without PortAudio."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except Exception as e:
        raise AudioDeviceError(f"PortAudio could not list devices: {e}") from None
    out = []
    for d in devices:
        out.append(
            {
                "index": d["index"],
                "name": d["name"],
                "hostapi": hostapis[d["hostapi"]]["name"],
                "inputs": d["max_input_channels"],
                "outputs": d["max_output_channels"],
                "default_samplerate": d["default_samplerate"],
                "default_input": d["index"] == default_in,
                "default_output": d["index"] == default_out,
            }
        )
    return out


def find_input_device(spec: str | int | None) -> dict[str, Any]:
    """The input device for ``spec``: None = the default input, an index, or a (case-insensitive)
    part of the name, e.g. "monitor" for a PulseAudio/PipeWire monitor of the speakers."""
    devices = list_devices()
    inputs = [d for d in devices if d["inputs"] > 0]
    if not inputs:
        raise AudioDeviceError(
            "no audio input device found: connect a microphone (or, for a call's audio, enable a "
            "loopback/monitor device) and check `infp-sdk devices`"
        )
    if spec is None:
        for d in inputs:
            if d["default_input"]:
                return d
        return inputs[0]
    if isinstance(spec, int) or str(spec).isdigit():
        for d in inputs:
            if d["index"] == int(spec):
                return d
        raise AudioDeviceError(f"no input device with index {spec}; see `infp-sdk devices`")
    matches = [d for d in inputs if str(spec).lower() in d["name"].lower()]
    if not matches:
        names = ", ".join(repr(d["name"]) for d in inputs)
        raise AudioDeviceError(f"no input device matches {spec!r}; inputs are: {names}")
    return matches[0]


# A sound card that delivers no block for this long is taken for gone (unplugged, or its sound
# server restarted); it is then reopened every DEVICE_RETRY_S until it is back.
DEVICE_STALL_S = 1.0
DEVICE_RETRY_S = 1.0

_open_device_sources: set[DeviceSource] = set()
_open_device_sources_lock = threading.Lock()


class DeviceSource:
    """Captures a sound card input into a mixer channel.

    Args:
        device: None (the default input), an index, or part of a device name.
        mixer, channel: where the audio goes.
        blocksize: seconds per capture block.
        sample_rate: capture rate; None tries 16 kHz and falls back to the device's default.

    A device that disappears while capturing (no block for :data:`DEVICE_STALL_S`) is closed
    and reopened when it returns: :attr:`state` is "ok", "lost" or "stopped", :attr:`reopens`
    counts the returns. Meanwhile the mixer plays silence on the channel.
    """

    def __init__(self, device: str | int | None, mixer: AudioMixer, channel: str, *,
                 blocksize: float = 0.02, sample_rate: int | None = None):  # fmt: skip
        self.sd = _sounddevice()
        self.info = find_input_device(device)
        # reopen by name: an index can belong to another device once the list changes
        self._reopen_spec = self.info["name"] if device is not None else None
        self.mixer, self.channel = mixer, channel
        self.blocksize = blocksize
        self.sample_rate = sample_rate
        self.overflows = 0
        self.reopens = 0
        self.state = "stopped"
        self.error: Exception | None = None  # why the device is lost, while it is
        self._stream = None
        self._last_block = 0.0
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> DeviceSource:
        self._open()
        self.state = "ok"
        # PortAudio calls back into Python from its own thread: stop it before exit
        self._cancel_stop_at_exit = stop_at_exit(self, DeviceSource.stop)
        self._watch = threading.Thread(
            target=self._watch_device, name=f"infp-device-{self.channel}", daemon=True
        )
        self._watch.start()
        return self

    def health(self) -> str:
        """One line for a status display: "own device ok", "own device lost (error)"."""
        line = f"{self.channel} device {self.state}"
        if self.state == "lost" and self.error is not None:
            line += f" ({self.error})"
        return line

    def _open(self) -> None:
        rates = [self.sample_rate] if self.sample_rate else [
            SAMPLE_RATE, int(self.info["default_samplerate"])
        ]  # fmt: skip
        error: Exception | None = None
        for rate in rates:
            try:
                stream = self.sd.InputStream(
                    device=self.info["index"],
                    channels=1,
                    samplerate=rate,
                    dtype="float32",
                    blocksize=int(rate * self.blocksize),
                    callback=self._callback,
                )
                self._rate, self._last_block = rate, time.monotonic()
                stream.start()
            except Exception as e:  # PortAudioError: rate not supported, device busy, ...
                error = e
                continue
            self._stream = stream
            with _open_device_sources_lock:
                _open_device_sources.add(self)
            return
        raise AudioDeviceError(f"cannot open input device {self.info['name']!r}: {error}")

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        with _open_device_sources_lock:
            _open_device_sources.discard(self)
        if stream is not None:
            for release in (stream.stop, stream.close):
                try:
                    release()
                except Exception:  # a device that is gone can fail to stop: close it anyway
                    pass

    def _callback(self, indata, frames, time_info, status) -> None:
        self._last_block = time.monotonic()
        if status and status.input_overflow:
            self.overflows += 1
        self.mixer.write(self.channel, indata[:, 0].copy(), self._rate)

    def _capturing(self) -> bool:
        stream = self._stream
        stalled = time.monotonic() - self._last_block > DEVICE_STALL_S
        return stream is not None and bool(stream.active) and not stalled

    def _watch_device(self) -> None:
        while not self._stop.wait(DEVICE_STALL_S / 4):
            if self._capturing():
                continue
            self.error = AudioDeviceError(f"input device {self.info['name']!r} stopped")
            self.state = "lost"
            log.warning("%s: %s; reopening it when it returns", self.channel, self.error)
            self._close_stream()
            while not self._stop.wait(DEVICE_RETRY_S):
                try:
                    self._rescan_devices()
                    self.info = find_input_device(self._reopen_spec)
                    self._open()
                except Exception as e:  # still gone: try again
                    self.error = e
                    continue
                self.state, self.error = "ok", None
                self.reopens += 1
                log.warning("%s: input device %r is back", self.channel, self.info["name"])
                break

    def _rescan_devices(self) -> None:
        """Make PortAudio list devices again (it reads the list once, at initialisation).

        Re-initialising closes every open stream, so it is done only while no other device
        source is capturing; otherwise the device must come back under the list already read.
        """
        with _open_device_sources_lock:
            if _open_device_sources:
                return
            self.sd._terminate()
            self.sd._initialize()

    def stop(self) -> None:
        """Stop capturing (also done at interpreter exit if forgotten)."""
        if self.state == "stopped":
            return
        self._stop.set()
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join(timeout=2)
        self._close_stream()
        self.state = "stopped"
        self._cancel_stop_at_exit()
