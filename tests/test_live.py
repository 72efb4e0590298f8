"""infp-sdk live and devices: the audio mixer, the latency meter, the command as a subprocess."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, random_model

from infp_sdk.audio.sources import AudioMixer
from infp_sdk.io import AudioSender, ControlClient, MotionSubscriber
from infp_sdk.io.protocol import Hello, Motion
from infp_sdk.live import LatencyMeter
from infp_sdk.model import save_model

OWN = ROOT / "examples" / "conversation" / "own.wav"
PARTNER = ROOT / "examples" / "conversation" / "partner.wav"
SR = 16000


class Collect:
    def __init__(self):
        self.own, self.partner = [], []

    def __call__(self, own, partner):
        assert len(own) == len(partner)
        self.own.append(own)
        self.partner.append(partner)

    def joined(self):
        return np.concatenate(self.own), np.concatenate(self.partner)


def test_mixer_aligns_two_sources_on_one_clock():
    out = Collect()
    mixer = AudioMixer(out, latency=0.06)
    t0 = mixer._start
    ramp = np.arange(SR, dtype=np.float32) / SR  # 1 s, a different value every sample
    # own arrives in 20 ms blocks, partner in 50 ms blocks starting 80 ms in
    for step in range(1, 101):  # 10 ms steps of wall time
        now = t0 + step * 0.01
        if step % 2 == 0:
            i = (step // 2 - 1) * 320
            mixer.write("own", ramp[i : i + 320], now=now)
        if step % 5 == 0 and step >= 8:
            i = (step // 5 - 1) * 800
            mixer.write("partner", -ramp[i : i + 800], now=now)
        mixer.step(now)
    own, partner = out.joined()
    assert len(own) == len(partner) == SR  # one second pushed after one second
    # a block arriving at 20 ms (sample 320) was captured over the 20 ms before: it is heard
    # `latency` (960 samples) later, starting at 0 + 960
    first_own = np.flatnonzero(own)[0]  # the ramp's sample 1 (sample 0 is 0)
    assert abs(first_own - (960 + 1)) <= 2
    np.testing.assert_array_equal(own[first_own:], ramp[1 : SR - first_own + 1])
    p = np.flatnonzero(partner)
    assert len(p) and np.all(np.diff(partner[p[0] : p[0] + 2000]) < 0)  # continuous, in order
    assert mixer.stats()["own_underrun_s"] == 0


def test_mixer_resamples_48khz_blocks_without_seams():
    from infp_sdk.audio import resample

    out = Collect()
    mixer = AudioMixer(out, latency=0.04)
    t0 = mixer._start
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    for step in range(1, 101):  # a sound card delivering 10 ms blocks at 48 kHz
        mixer.write("own", tone[(step - 1) * 480 : step * 480], sample_rate=48000,
                    now=t0 + step * 0.01)  # fmt: skip
        mixer.step(t0 + step * 0.01)
    own, _ = out.joined()
    start = np.flatnonzero(own)[0]
    whole = resample(tone, 48000, 16000)
    got = own[start : start + 15000]
    np.testing.assert_allclose(got, whole[: len(got)], atol=1e-5)


def test_mixer_fills_a_silent_channel_and_plays_bursts_in_real_time():
    out = Collect()
    mixer = AudioMixer(out, latency=0.04)
    t0 = mixer._start
    speech = np.full(SR * 2, 0.5, np.float32)  # a 2 s TTS answer sent in one piece
    mixer.write("own", speech, now=t0)
    for step in range(1, 301):
        mixer.step(t0 + step * 0.01)  # 3 s of wall time
    own, partner = out.joined()
    assert len(own) == 3 * SR
    assert not partner.any()  # nobody wrote the partner channel: silence
    assert np.count_nonzero(own) == 2 * SR  # all of the answer, none dropped, at real time
    assert np.flatnonzero(own)[0] == 0  # a long block is not delayed: it starts at once


def test_mixer_drops_late_audio_to_stay_in_step_and_clears_on_interrupt():
    out = Collect()
    mixer = AudioMixer(out, latency=0.02)
    t0 = mixer._start
    block = np.ones(160, np.float32)
    for step in range(1, 21):  # 10 ms blocks on time
        mixer.write("own", block, now=t0 + step * 0.01)
        mixer.step(t0 + step * 0.01)
    for step in range(21, 31):  # a 100 ms hiccup: nothing arrives, the clock goes on
        mixer.step(t0 + step * 0.01)
    # the late 100 ms arrive in one go: their time has passed, they are dropped
    mixer.write("own", np.ones(1600, np.float32), now=t0 + 0.305)
    stats = mixer.stats()
    assert stats["own_underrun_s"] == pytest.approx(0.08, abs=0.011)
    assert stats["own_late_s"] == pytest.approx(stats["own_underrun_s"])
    mixer.write("own", np.ones(8000, np.float32), now=t0 + 0.31)
    mixer.clear("own")
    assert mixer.stats()["own_buffered_s"] == 0


def test_latency_meter_measures_from_the_push_of_a_frames_centre():
    meter = LatencyMeter()
    for k in range(1, 21):
        meter.on_push(k * 320, 100.0 + k * 0.02)  # 20 ms chunks: a frame's halves
    # frame 0's centre is sample 320, the first of the second chunk, pushed at 100.04
    assert meter.on_frame(0, 100.5) == pytest.approx(0.46)
    # frame 1's centre (sample 960) is the first of the fourth chunk, pushed at 100.08
    assert meter.on_frame(1, 100.5) == pytest.approx(0.42)
    assert meter.p95() == pytest.approx(0.458)
    assert meter.on_frame(30, 101.0) is None  # its centre was never pushed


# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------


def infp(*args, **kw):
    return subprocess.run([sys.executable, "-m", "infp_sdk", *args], capture_output=True,
                          text=True, timeout=120, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_model(random_model(), tmp_path_factory.mktemp("m") / "m.safetensors")


def start_live(*args: str, wanted=("motion", "control")):
    """Start `infp-sdk live` and read the endpoints it prints; returns (process, endpoints, log)."""
    proc = subprocess.Popen([sys.executable, "-m", "infp_sdk", "live", *args],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    endpoints: dict[str, str] = {}
    while len(endpoints) < len(wanted):
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            raise AssertionError("live exited early:\n" + "".join(lines))
        lines.append(line)
        m = re.match(r"live: (motion|control|audio input) on (\S+)", line)
        if m:
            endpoints[m.group(1)] = m.group(2)
    return proc, endpoints, lines


def stop_live(proc, lines) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    return "".join(lines) + err


def test_live_runs_for_20_s_and_stops_cleanly_on_sigterm(checkpoint, tmp_path):
    """WAV sources -> agent -> ZeroMQ for 20 s; every frame arrives, a reset restarts the
    clock, the status line reports fps, p95 latency and drops; SIGTERM stops it cleanly."""
    config = tmp_path / "live.toml"
    config.write_text(f'own = "{OWN}"\npartner = "{PARTNER}"\nloop = true\nthreads = 1\n'
                      'status_interval = 2\n')  # fmt: skip
    proc, endpoints, lines = start_live(
        "--config", str(config), "--model", str(checkpoint), "--agent", "ava",
        "--zmq", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", "--hop", "2",
    )  # fmt: skip
    try:
        sub = MotionSubscriber(endpoints["motion"], agent="ava")
        control = ControlClient(endpoints["control"], timeout=5)
        hello = sub.recv(timeout=2.5)
        assert isinstance(hello, Hello) and hello.control == endpoints["control"]
        motion: list[Motion] = []
        started = time.monotonic()
        reset_at = None
        while time.monotonic() - started < 20:
            msg = sub.recv(timeout=0.05)
            if isinstance(msg, Motion):
                motion.append(msg)
            if reset_at is None and time.monotonic() - started > 12:
                assert control.reset().ok
                reset_at = len(motion)
        ping = control.ping()
        stats = control.request("stats").stats
    finally:
        log = stop_live(proc, lines)
    assert proc.returncode == 0, log
    assert "stopped cleanly" in log and "Traceback" not in log
    assert ping.ok and ping.t is not None and stats.get("errors", 0) == 0
    # every frame, in order, at 25 fps
    seqs = [m.seq for m in motion]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and sub.dropped == 0
    assert 20 * 25 * 0.8 < len(motion) <= 20 * 25 + 5
    before = [m.index for m in motion[:reset_at]]
    assert before == list(range(before[0], before[0] + len(before)))
    after = [m.index for m in motion[reset_at:]]
    assert 0 in after[:30]  # the reset restarted the agent's clock
    # status lines: fps, p95 latency, dropped frames
    status = [ln for ln in log.splitlines() if re.search(r"fps .* p95 latency", ln)]
    assert len(status) >= 5, log
    last = status[-1]
    fps = float(re.search(r"([\d.]+) fps", last).group(1))
    assert 20 <= fps <= 30, last
    assert re.search(r"p95 latency \d+ ms", last) and "dropped 0" in last
    print(last)
    sub.close()
    control.close()


def test_live_takes_audio_over_zeromq(checkpoint):
    """An app sends its TTS over the audio socket (one 2 s piece) and the partner in 20 ms
    chunks; every chunk is accepted and frames keep coming at 25 fps."""
    proc, endpoints, lines = start_live(
        "--own", "zmq", "--partner", "zmq", "--model", str(checkpoint), "--threads", "1",
        "--zmq", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
        "--audio-in", "tcp://127.0.0.1:*", wanted=("motion", "control", "audio input"),
    )  # fmt: skip
    try:
        sub = MotionSubscriber(endpoints["motion"])
        control = ControlClient(endpoints["control"], timeout=5)
        sender = AudioSender(endpoints["audio input"])
        assert isinstance(sub.recv(timeout=2.5), Hello)
        t = np.arange(48000 * 2) / 48000
        sender.send("own", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
        chunk = (np.random.default_rng(0).standard_normal(320) * 1000).astype(np.int16)
        frames, started = 0, time.monotonic()
        while time.monotonic() - started < 4:
            sender.send("partner", chunk, 16000)
            while (msg := sub.recv(timeout=0)) is not None:
                frames += isinstance(msg, Motion)
            time.sleep(0.02)
        assert control.interrupt().ok  # barge-in: own audio still queued is dropped
        sender.drain(timeout=1.0)
        stats = control.request("stats").stats
    finally:
        log = stop_live(proc, lines)
    assert proc.returncode == 0 and "Traceback" not in log, log
    assert sender.errors == 0 and sender.replies == sender.sent
    assert 60 <= frames <= 110, frames
    assert "interrupt" in stats and stats.get("errors", 0) == 0
    sub.close()
    control.close()
    sender.close()


def test_devices_lists_or_explains():
    res = infp("devices")
    assert res.returncode in (0, 2), res.stderr
    assert "Traceback" not in res.stderr
    if res.returncode == 2:
        assert "PortAudio" in res.stderr or "infp-sdk[audio]" in res.stderr
    else:
        assert "no audio devices" in res.stdout or "name" in res.stdout


def test_live_without_a_microphone_is_a_clear_error(checkpoint):
    res = infp("live", "--own", "mic", "--model", str(checkpoint), "--duration", "1")
    try:
        import sounddevice

        has_input = any(d["max_input_channels"] > 0 for d in sounddevice.query_devices())
    except (ImportError, OSError):
        has_input = False
    if has_input:
        pytest.skip("this machine has a microphone")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert re.search(r"no audio input device|PortAudio|infp-sdk\[audio\]", res.stderr)


def test_live_setup_errors_are_one_line(checkpoint, tmp_path):
    res = infp("live", "--own", str(OWN), "--virtualcam", "--model", str(checkpoint))
    assert res.returncode == 2 and "portrait" in res.stderr and "Traceback" not in res.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('owm = "mic"\n')
    res = infp("live", "--config", str(bad))
    assert res.returncode == 2 and "unknown option(s) owm" in res.stderr
    res = infp("live", "--own", "nowhere.wav", "--model", str(checkpoint))
    assert res.returncode == 2 and "not a file" in res.stderr


def test_live_with_duration_exits_by_itself(checkpoint):
    res = infp("live", "--own", str(OWN), "--partner", str(PARTNER), "--model", str(checkpoint),
               "--duration", "2", "--threads", "1", "--livelink", "127.0.0.1:9",
               "--fps", "60")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "stopped cleanly" in res.stderr
