"""The infp-sdk command, run as a real subprocess on real audio files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, random_model

from infp_sdk.audio import SAMPLE_RATE, write_wav
from infp_sdk.model import save_model

OWN = ROOT / "examples" / "conversation" / "own.wav"
PARTNER = ROOT / "examples" / "conversation" / "partner.wav"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infp_sdk", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_model(random_model(), tmp_path_factory.mktemp("m") / "m.safetensors")


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in (
        "render",
        "prepare",
        "motion",
        "live",
        "devices",
        "train",
        "synth",
        "eval",
        "export",
        "bench",
        "info",
    ):
        assert command in out.stdout


def test_motion_writes_one_json_object_per_frame(checkpoint, tmp_path):
    out = tmp_path / "motion.jsonl"
    res = run("motion", "--own", str(OWN), "--partner", str(PARTNER), "-o", str(out),
              "--model", str(checkpoint))  # fmt: skip
    assert res.returncode == 0, res.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    seconds = OWN.stat().st_size / 2 / SAMPLE_RATE  # 16-bit mono, header ignored
    assert abs(len(frames) - 25 * seconds) <= 1
    first = frames[0]
    assert set(first) == {"index", "t", "speaking", "head", "gaze", "blendshapes", "latent"}
    assert len(first["blendshapes"]) == 52 and len(first["head"]) == 6
    assert [f["index"] for f in frames] == list(range(len(frames)))
    assert all(0 <= v <= 1 for f in frames for v in f["blendshapes"])


def test_motion_accepts_other_rates_and_no_partner(checkpoint, tmp_path):
    wav = tmp_path / "stereo44k.wav"
    t = np.arange(44100) / 44100
    write_wav(wav, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3, 44100)
    out = tmp_path / "m.jsonl"
    res = run("motion", "--own", str(wav), "-o", str(out), "--model", str(checkpoint))
    assert res.returncode == 0, res.stderr
    assert len(out.read_text().splitlines()) == 25


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("not audio"), "not a WAV"),
        (lambda p: None, "No such file|does not exist|not found"),
    ],
)
def test_bad_audio_is_a_clear_error(checkpoint, tmp_path, make, message):
    bad = tmp_path / "bad.wav"
    make(bad)
    res = run("motion", "--own", str(bad), "-o", str(tmp_path / "x.jsonl"), "--model",
              str(checkpoint))  # fmt: skip
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert re.search(message, res.stderr, re.IGNORECASE), res.stderr


def test_pickle_model_is_refused(tmp_path):
    bad = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, bad)
    res = run("motion", "--own", str(OWN), "-o", str(tmp_path / "x.jsonl"), "--model", str(bad))
    assert res.returncode == 2 and "pickle" in res.stderr and "Traceback" not in res.stderr


def test_bench_times_every_frame_of_several_agents(checkpoint, tmp_path):
    out = run("bench", "--model", str(checkpoint), "--seconds", "3", "--agents", "1", "3",
              "--hop", "2", "--steps", "3", "--cfg-scale", "1.5",
              "--json", str(tmp_path / "bench.json"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "sustained" in out.stdout
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["machine"]["cores"] >= 1
    one, three = result["results"]
    assert (one["agents"], three["agents"]) == (1, 3)
    assert one["solver_steps"] == three["solver_steps"] == 3
    assert one["cfg_scale"] == three["cfg_scale"] == 1.5
    for r in (one, three):
        assert r["frames"] == r["frames_expected"] > 0
        lat, alg = r["latency_ms"], r["algorithmic_ms"]
        assert lat["p50"] <= lat["p95"] <= lat["p99"]
        assert alg["p95"] <= lat["p95"]  # waiting for the hop's audio is part of the latency
        # counted from the frame's centre, not from the last sample it reads: never shorter
        assert r["dependency_latency_ms"]["p50"] < lat["p50"]
    assert three["mean_batch"] > 1.0  # three agents' hops shared model calls


def test_bench_without_the_example_audio_says_what_to_pass(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "infp_sdk", "bench", "--seconds", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--own" in proc.stderr and "examples/conversation" in proc.stderr
