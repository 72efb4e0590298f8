"""The bundled example conversation: real two-voice audio, and its generator still works."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, read_wav

CONVERSATION = ROOT / "examples" / "conversation"


def activity(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // SAMPLES_PER_MOTION_FRAME * SAMPLES_PER_MOTION_FRAME]
    rms = np.sqrt((frames.reshape(-1, SAMPLES_PER_MOTION_FRAME) ** 2).mean(axis=1))
    return rms > 0.01


def check_conversation(folder):
    own, rate_own = read_wav(folder / "own.wav")
    partner, rate_partner = read_wav(folder / "partner.wav")
    assert rate_own == rate_partner == SAMPLE_RATE and len(own) == len(partner)
    a, b = activity(own[:, 0]), activity(partner[:, 0])
    assert 0.2 < a.mean() < 0.6 and 0.2 < b.mean() < 0.6  # both talk, neither all the time
    assert (a & b).mean() < 0.1  # they take turns (backchannels overlap a little)
    turns = np.flatnonzero(np.diff(a.astype(int) - b.astype(int)) != 0)
    assert len(turns) >= 5


def test_bundled_conversation_takes_turns():
    check_conversation(CONVERSATION)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_generator_script_regenerates_it(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_conversation.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    check_conversation(tmp_path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_contact_sheet_of_a_video(tmp_path):
    from PIL import Image

    from infp_sdk.io.video import VideoWriter

    with VideoWriter(tmp_path / "v.mp4", fps=25, size=(64, 48)) as video:
        for i in range(50):  # frame i is a flat grey of level 5 * i
            video.write(np.full((48, 64, 3), 5 * i, np.uint8))
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "contact_sheet.py"), str(tmp_path / "v.mp4"),
         "-o", str(tmp_path / "sheet.png"), "--columns", "2", "--rows", "1", "--tile", "64"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB")).astype(int)
    assert sheet.shape == (48 + 18, 128, 3)
    # frames 12 and 37 of 50, in order: darker on the left
    left, right = sheet[10:40, 10:50].mean(), sheet[10:40, 74:114].mean()
    assert abs(left - 60) < 8 and abs(right - 185) < 8


def test_plot_motion_example(tmp_path):
    import json

    from infp_sdk.motion import Frame

    own, _ = read_wav(CONVERSATION / "own.wav")
    n = len(own) // SAMPLES_PER_MOTION_FRAME
    with open(tmp_path / "m.jsonl", "w") as f:
        for i in range(n):
            frame = Frame.from_rig_latent(i, np.zeros(62, np.float32), float(i % 2))
            f.write(json.dumps(frame.to_dict()) + "\n")
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "plot_motion.py"), str(tmp_path / "m.jsonl"),
         "--own", str(CONVERSATION / "own.wav"), "--partner", str(CONVERSATION / "partner.wav"),
         "-o", str(tmp_path / "p.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "p.png").stat().st_size > 10_000
