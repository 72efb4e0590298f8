"""The soak benchmark (benchmarks/soak.py), short: one Engine's agents join, leave, reset,
interrupt, change style and get irregular audio at four sample rates; every frame count, index,
media time, the memory, threads, file descriptors and errors are checked."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from infp_sdk import FPS
from infp_sdk.audio import LogMel
from infp_sdk.runtime.agent import Agent
from infp_sdk.runtime.generator import MotionStream

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("soak_benchmark", ROOT / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.slow
def test_a_short_soak_passes_every_check(soak, tmp_path):
    # about a minute on two cores: 6 minutes of media over up to 4 agents, with three times the
    # benchmark's churn so that every kind of event happens several times
    settings = soak.SoakSettings(media_seconds=360.0, agents=4, seed=1, churn=3.0)
    result = soak.run_soak(settings, progress=lambda line: None)
    json_path, png_path = soak.save(result, tmp_path)

    failed = {k: v["first_violations"] for k, v in result["checks"].items() if not v["passed"]}
    assert not failed, soak.summary(result)
    assert result["passed"]
    assert set(result["checks"]) == set(soak.CHECKS)
    assert result["media_seconds"] >= settings.media_seconds
    events = result["events"]
    for event in ("joins", "leaves", "resets", "interrupts", "styles", "rate_changes_refused"):
        assert events[event] >= 2, (event, events)
    assert set(events["pushes_by_kind"]) == set(soak.PUSH_KINDS)
    assert result["checks"]["frames_complete"]["streams_flushed"] >= 5
    # FPS frames per second of media, less the tails of streams closed or reset unflushed
    assert result["frames_checked"] > 0.8 * FPS * settings.media_seconds
    saved = json.loads(json_path.read_text())
    assert saved["passed"] and saved["machine"]["cores"]
    assert len(saved["series"]["rss_mb"]) >= settings.samples
    assert png_path is not None and png_path.stat().st_size > 0


@pytest.mark.parametrize("fault", ["drop", "repeat", "clock"])
def test_the_soak_fails_on_a_dropped_repeated_or_mistimed_frame(soak, monkeypatch, fault):
    """The checks are not vacuous: one frame dropped, handed out twice or stamped 1 ms late,
    out of thousands, fails the run."""
    pull, seen = Agent.pull, []

    def faulty_pull(self):
        frames = []
        for frame in pull(self):
            seen.append(frame)
            if len(seen) == 200:
                if fault == "drop":
                    continue
                if fault == "repeat":
                    frames.append(frame)
                if fault == "clock":
                    frame.t += 0.001
            frames.append(frame)
        return frames

    monkeypatch.setattr(Agent, "pull", faulty_pull)
    settings = soak.SoakSettings(media_seconds=30.0, agents=2, seed=2)
    result = soak.run_soak(settings, progress=lambda line: None)
    assert len(seen) > 200
    assert not result["passed"]
    failed = {k for k, v in result["checks"].items() if not v["passed"]}
    expected = {"drop": "frame_sequence", "repeat": "frame_sequence", "clock": "media_clock"}
    assert expected[fault] in failed, soak.summary(result)
    assert failed <= {expected[fault], "frames_complete", "rss_growth"}, soak.summary(result)


def test_a_stream_computes_the_same_log_mel_whatever_the_chunks(soak):
    """Appends of ever-new lengths (irregular chunks, a worker catching up) give the features of
    the whole recording. (What the soak once found: the torch front-end kept a compiled kernel
    per input length, so such a stream grew memory without end; the NumPy one keeps nothing.)"""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((2, 16000 * 30)) * 0.1).astype(np.float32)
    stream = MotionStream(soak.small_model())
    start = 0
    while start < audio.shape[1]:
        n = int(rng.integers(1, 16000)) if start else 16000 * 12  # one long append first
        stream.append(audio[0, start : start + n], audio[1, start : start + n])
        start += n
    whole = LogMel()(audio)
    assert stream.mel_frames == whole.shape[1]
    np.testing.assert_allclose(stream._mel, whole, rtol=0, atol=1e-5)
