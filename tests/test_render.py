"""The render job and the mp4 writer: frame count, audio stream, the face in every frame."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_face_checker import PORTRAIT, ROOT, measure

from infp_sdk.audio import SAMPLE_RATE, load_audio, write_wav
from infp_sdk.io.video import VideoWriter
from infp_sdk.render import audio_track, render_video

CONVERSATION = ROOT / "examples" / "conversation"
AVATAR = PORTRAIT.with_suffix(".avatar")

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="needs ffmpeg and ffprobe (apt-get install ffmpeg)",
)


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def decode(path: Path, size: int) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path, float]:
    """The first 3.2 s of the bundled conversation (both sides)."""
    d = tmp_path_factory.mktemp("clip")
    n = int(3.2 * SAMPLE_RATE)
    own, partner = d / "own.wav", d / "partner.wav"
    write_wav(own, load_audio(CONVERSATION / "own.wav")[:n], SAMPLE_RATE)
    write_wav(partner, load_audio(CONVERSATION / "partner.wav")[: n - 4000], SAMPLE_RATE)
    return own, partner, n / SAMPLE_RATE


def test_video_writer_with_audio(tmp_path):
    path = tmp_path / "v.mp4"
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    with VideoWriter(path, fps=25, size=(64, 48), audio=tone, audio_rate=SAMPLE_RATE) as video:
        for i in range(25):
            video.write(np.full((48, 64, 3), i * 10, np.uint8))
    info = probe(path)
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["pix_fmt"] == "yuv420p"
    assert int(kinds["video"]["nb_read_frames"]) == 25
    assert kinds["audio"]["codec_name"] == "aac"
    with pytest.raises(ValueError, match="frame must be"):
        with VideoWriter(tmp_path / "w.mp4", size=(64, 48)) as video:
            video.write(np.zeros((10, 10, 3), np.uint8))


def test_render_video_frames_audio_and_face(clip, tmp_path):
    own, partner, seconds = clip
    out = tmp_path / "talk.mp4"
    result = render_video(AVATAR, own, out, partner, progress=False)
    info = probe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    frames = int(video["nb_read_frames"])
    assert abs(frames - 25 * seconds) <= 1 and result.frames == frames
    assert video["avg_frame_rate"] == "25/1"
    assert len(audio) == 1 and abs(float(audio[0]["duration"]) - seconds) < 0.1
    pictures = decode(out, 512)
    found = [measure(p) is not None for p in pictures]
    assert np.mean(found) >= 0.95, f"face found in {np.mean(found):.0%} of frames"
    # the portrait moves: frames are not all the rest image
    assert np.abs(pictures.astype(np.int16) - pictures[:1]).max() > 30


def test_render_command_options_and_errors(clip, tmp_path, capsys):
    from infp_sdk.cli import main

    own = tmp_path / "short.wav"
    write_wav(own, load_audio(clip[0])[: int(1.2 * SAMPLE_RATE)], SAMPLE_RATE)
    out = tmp_path / "own_only.mp4"
    code = main(["render", "--portrait", str(PORTRAIT), "--own", str(own), "-o", str(out),
                 "--audio", "none", "--size", "96", "--quiet"])  # fmt: skip
    assert code == 0
    info = probe(out)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    assert info["streams"][0]["width"] == 96
    assert "wrote" in capsys.readouterr().out
    # a non-image portrait: one line saying what is wrong, exit status 2
    bad = tmp_path / "portrait.png"
    bad.write_bytes(b"not an image")
    code = main(["render", "--portrait", str(bad), "--own", str(own), "-o", str(out)])
    assert code == 2
    assert "not a readable image" in capsys.readouterr().err


def test_audio_track_choices():
    own = np.full(10, 0.8, np.float32)
    partner = np.full(6, 0.6, np.float32)
    mix = audio_track(own, partner, "mix")
    assert len(mix) == 10 and np.abs(mix).max() <= 1.0 and mix[0] > mix[-1]
    assert audio_track(own, partner, "partner")[-1] == 0
    assert audio_track(own, None, "none") is None
    with pytest.raises(ValueError, match="audio must be"):
        audio_track(own, None, "left")
