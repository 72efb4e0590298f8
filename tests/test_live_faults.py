"""`live` under faults: a sound card that disappears and comes back, a sink that fails while the
others carry on, SIGTERM and SIGINT at any moment.

The sound card is the one part replaced by a stand-in (this machine has none): a fake
``sounddevice`` module whose input stream calls back from its own thread, as PortAudio does,
and can be unplugged and plugged back in. Everything above it, the source, its watchdog and the
mixer, runs for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import random_model

from infp_sdk.audio import sources
from infp_sdk.audio.sources import AudioMixer, DeviceSource
from infp_sdk.model.checkpoint import save_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "conversation"


class FakeSoundDevice:
    """The parts of the sounddevice module that DeviceSource uses, with a plug to pull."""

    def __init__(self):
        self.plugged = True
        self.streams: list[FakeSoundDevice.InputStream] = []
        self.rescans = 0
        self.default = type("Default", (), {"device": (0, -1)})()
        fake = self

        class InputStream:
            def __init__(self, *, device, channels, samplerate, dtype, blocksize, callback):
                if not fake.plugged:
                    raise RuntimeError("Error opening InputStream: Device unavailable")
                self.samplerate, self.blocksize, self.callback = samplerate, blocksize, callback
                self.active = False
                self.closed = False
                fake.streams.append(self)

            def start(self):
                self.active = True
                threading.Thread(target=self._run, daemon=True).start()

            def _run(self):
                block = np.full((self.blocksize, 1), 0.25, np.float32)
                while self.active and fake.plugged:
                    self.callback(block, self.blocksize, None, None)
                    time.sleep(self.blocksize / self.samplerate)
                # unplugged: PortAudio stops calling back; the stream stays "active"

            def stop(self):
                if not fake.plugged:
                    raise RuntimeError("Error stopping stream: Device unavailable")
                self.active = False

            def close(self):
                self.active, self.closed = False, True

        self.InputStream = InputStream

    def query_devices(self):
        mic = {"index": 0, "name": "USB mic", "hostapi": 0, "max_input_channels": 1,
               "max_output_channels": 0, "default_samplerate": 48000.0}  # fmt: skip
        return [mic] if self.plugged else []

    def query_hostapis(self):
        return [{"name": "ALSA"}]

    def _terminate(self):
        self.rescans += 1

    def _initialize(self):
        pass


class Recorder:
    """Stands in for the mixer: keeps the time of every block written."""

    def __init__(self):
        self.blocks: list[float] = []

    def write(self, channel, samples, rate):
        self.blocks.append(time.monotonic())


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_an_unplugged_sound_card_is_reopened_when_it_returns(monkeypatch):
    fake = FakeSoundDevice()
    monkeypatch.setattr(sources, "_sounddevice", lambda: fake)
    monkeypatch.setattr(sources, "DEVICE_STALL_S", 0.2)
    monkeypatch.setattr(sources, "DEVICE_RETRY_S", 0.1)
    mixer = Recorder()
    source = DeviceSource("usb", mixer, "own").start()
    try:
        assert wait_until(lambda: len(mixer.blocks) > 5) and source.health() == "own device ok"
        fake.plugged = False
        assert wait_until(lambda: source.state == "lost")
        assert "own device lost" in source.health()
        time.sleep(0.5)  # it keeps trying while the device is gone
        assert source.state == "lost" and len(fake.streams) == 1
        assert fake.rescans >= 2  # PortAudio is asked to list devices again
        unplugged_at = time.monotonic()
        fake.plugged = True
        assert wait_until(lambda: source.state == "ok")
        assert wait_until(lambda: mixer.blocks[-1] > unplugged_at)  # audio flows again
        assert source.reopens == 1 and len(fake.streams) == 2 and fake.streams[0].closed
    finally:
        source.stop()
    assert source.state == "stopped" and fake.streams[1].closed
    watchers = [t for t in threading.enumerate() if t.name.startswith("infp-device")]
    assert not watchers


def test_a_real_mixer_plays_silence_while_the_device_is_gone(monkeypatch):
    fake = FakeSoundDevice()
    monkeypatch.setattr(sources, "_sounddevice", lambda: fake)
    monkeypatch.setattr(sources, "DEVICE_STALL_S", 0.2)
    monkeypatch.setattr(sources, "DEVICE_RETRY_S", 0.1)
    pushed: list[np.ndarray] = []
    mixer = AudioMixer(lambda own, partner: pushed.append(own), latency=0.06)
    mixer.start()
    source = DeviceSource(None, mixer, "own").start()
    try:
        time.sleep(0.6)
        fake.plugged = False
        assert wait_until(lambda: source.state == "lost")
        gone_from = sum(len(p) for p in pushed)
        time.sleep(0.6)
        gone_to = sum(len(p) for p in pushed)
        fake.plugged = True
        assert wait_until(lambda: source.state == "ok")
        time.sleep(0.6)
    finally:
        source.stop()
        mixer.stop()
    audio = np.concatenate(pushed)
    # the mixer's clock went on (about 0.6 s pushed while the device was gone), in silence
    assert gone_to - gone_from > 0.4 * 16000
    assert np.abs(audio[gone_from + 3200 : gone_to]).max() == 0.0
    assert np.abs(audio[-3200:]).max() > 0.2  # the device's audio after it came back


# ----------------------------------------------------------------------------------------------
# The command: a failing sink, signals
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_model(random_model(), tmp_path_factory.mktemp("m") / "m.safetensors")


def live(checkpoint, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "infp_sdk", "live", "--model", str(checkpoint),
         "--own", str(EXAMPLES / "own.wav"), "--partner", str(EXAMPLES / "partner.wav"),
         "--loop", "--threads", "1", "--status-interval", "0.5", *args],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def read_until(proc: subprocess.Popen, pattern: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if pattern in line:
            return lines
    proc.kill()
    raise AssertionError(f"no {pattern!r} in:\n" + "".join(lines))


def test_a_sink_that_fails_is_reported_and_live_carries_on(checkpoint, tmp_path):
    """The mp4 goes to a folder that cannot be written (a full disk fails the same way): the
    sink is dropped and shown so in the status line, and the VMC sink keeps receiving."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the mp4's folder should be")
    portrait = Path(__file__).resolve().parent.parent / "examples" / "portrait" / "astronaut.avatar"
    proc = live(checkpoint, "--portrait", str(portrait), "--mp4", str(blocked / "out.mp4"),
                "--vmc", f"127.0.0.1:{listener.getsockname()[1]}")  # fmt: skip
    try:
        lines = read_until(proc, "[mp4 dropped")
        received = [listener.recv(65536) for _ in range(20)]  # the other sink carries on
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        listener.close()
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "live: mp4 dropped" in log and "stopped cleanly" in log
    assert len(received) == 20 and all(packet.startswith(b"#bundle") for packet in received)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("moment", ["starting", "running"])
def test_a_signal_at_any_moment_stops_live_within_2_s_and_keeps_the_mp4(
    checkpoint, tmp_path, signum, moment
):
    portrait = Path(__file__).resolve().parent.parent / "examples" / "portrait" / "astronaut.avatar"
    out = tmp_path / "out.mp4"
    # starting: an empty export cache, so the signal comes while the model is being exported
    env = {**os.environ, "INFP_SDK_CACHE": str(tmp_path / "cache")}
    proc = live(checkpoint, "--portrait", str(portrait), "--mp4", str(out), env=env)
    if moment == "starting":
        read_until(proc, "live: loading")  # setting up: the model, the portrait, the sinks
    else:
        read_until(proc, " fps ")
        time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    print(f"{signum.name} while {moment}: stopped in {took:.2f} s")
    assert proc.returncode == 0, rest
    assert took < 2.0, f"stopped {took:.2f} s after the signal"
    assert "Traceback" not in rest
    partial = [p for p in tmp_path.iterdir() if p.name not in ("out.mp4", "cache")]
    assert not partial  # no temporary left behind
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.iterdir() if ".partial-" in p.name]
    if moment == "running":
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(probe.stdout.strip()) > 10  # what was produced is kept, as a whole file
