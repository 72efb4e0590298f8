"""benchmarks/live_latency.py: `infp-sdk live` timed end to end through its ZeroMQ sockets."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
from conftest import ROOT, random_model

from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME
from infp_sdk.bench import CHUNK
from infp_sdk.model import save_model
from infp_sdk.motion import FPS


def _load_benchmark():
    path = ROOT / "benchmarks" / "live_latency.py"
    spec = importlib.util.spec_from_file_location("live_latency", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


@pytest.mark.parametrize("mixer_latency", [0.0, 0.02, 0.06, 0.1])
def test_the_first_chunk_is_timed_so_every_frame_centre_lies_mid_chunk(mixer_latency):
    delay = bench.lead_in(mixer_latency, 0.05)
    assert 0.05 <= delay < 0.05 + CHUNK / SAMPLE_RATE + 1e-9
    offset = round(delay * SAMPLE_RATE) + bench.first_chunk_lead(mixer_latency)
    n = 100 * CHUNK
    frames = bench.expected_frames(offset, n)
    assert len(frames) == pytest.approx(n / SAMPLES_PER_MOTION_FRAME, abs=1)
    for i in frames:
        centre = i * SAMPLES_PER_MOTION_FRAME + SAMPLES_PER_MOTION_FRAME // 2 - offset
        assert 0 <= centre < n
        assert centre % CHUNK == CHUNK // 2
    # the frames just outside have their centre outside the sent audio
    for i in (frames.start - 1, frames.stop):
        centre = i * SAMPLES_PER_MOTION_FRAME + SAMPLES_PER_MOTION_FRAME // 2 - offset
        assert not 0 <= centre < n


def test_only_frames_of_the_clock_the_reset_started_count():
    # (index, t, seq, decoded): frames of before the reset still arrive just after it
    records = [(40, 0, 0, 1.0), (41, 0, 1, 2.0), (42, 0, 2, 3.1), (0, 0, 3, 3.5), (1, 0, 4, 3.6)]
    assert [r[0] for r in bench.epoch_after(records, since=3.0)] == [0, 1]
    assert bench.epoch_after(records[:3], since=3.0) == []  # nothing after the reset
    sent_at = [10.0 + k * CHUNK / SAMPLE_RATE for k in range(50)]
    result = bench.analyse([], np.array(sent_at), offset=0)
    assert result["received"] == 0 and result["missing"] == result["expected"] > 0


def test_parse_status_line():
    line = ("live   30.0 s  25.0 fps  p95 latency 513 ms  playout delay 756 ms  dropped 0  "
            "frames 740  audio underrun 0.00 s overrun 0.00 s")  # fmt: skip
    assert bench.parse_status(line) == {
        "fps": 25.0,
        "p95_latency_ms": 513.0,
        "playout_delay_ms": 756.0,
        "dropped": 0,
        "frames": 740,
        "audio_underrun_s": 0.0,
        "audio_overrun_s": 0.0,
    }
    early = "live    1.0 s   0.0 fps  p95 latency -  dropped 0  frames 0  audio underrun 0.00 s overrun 0.00 s"  # noqa: E501
    assert bench.parse_status(early)["p95_latency_ms"] is None


def test_benchmark_times_live_through_its_sockets(tmp_path):
    """5 s of the conversation through a real `infp-sdk live` with a small random model: every
    frame of the sent audio arrives, no sooner than the audio it reads was sent."""
    checkpoint = save_model(random_model(), tmp_path / "m.safetensors")
    out = tmp_path / "out"
    bench.main(["--seconds", "5", "--model", str(checkpoint), "--threads", "1", "--out", str(out)])
    saved = json.loads((out / "live_latency.json").read_text())
    assert saved["benchmark"] == "live_latency" and len(saved["runs"]) == 1
    run = saved["runs"][0]
    assert run["command"].startswith("python -m infp_sdk live --own zmq --partner zmq")
    assert "--no-pace" not in run["command"] and "--hop" not in run["command"]
    assert run["machine"]["cpu"] and run["machine"]["cores"] >= 1
    assert run["settings"]["pace"] is True and run["settings"]["seconds"] == 5

    frames = run["frames"]
    assert frames["expected"] == pytest.approx(5 * FPS, abs=1)
    assert frames["expected"] - 2 <= frames["received"] <= frames["expected"]
    assert frames["duplicates"] == 0 and frames["seq_gaps"] == 0 and frames["decode_errors"] == 0

    latency = run["series"]["latency_ms"]
    assert len(latency) == frames["received"]
    assert all(math.isfinite(x) and x > 0 for x in latency)
    # causality: a frame reads audio up to (0.5 + look-ahead) frames after its centre, which
    # reaches the agent the mixer's jitter buffer after it was sent (less a chunk of rounding)
    settings = run["settings"]
    reads_ms = (0.5 + settings["lookahead_frames"]) * 1000 / FPS
    floor_ms = settings["mixer_latency_s"] * 1000 + reads_ms - 1000 * CHUNK / SAMPLE_RATE
    assert min(latency) >= floor_ms, (min(latency), floor_ms)
    p = run["latency_ms"]
    assert floor_ms <= p["p50"] <= p["p95"] <= p["p99"] < 5000

    status = run["status_line"]
    assert status is not None and 0 < status["p95_latency_ms"] < p["p95"]
    assert run["split_p95"]["in_process_p95_ms"] == status["p95_latency_ms"]
    assert run["cpu_s_per_audio_s"] > 0
    assert (out / "live_latency.png").stat().st_size > 0
