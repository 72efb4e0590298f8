"""Files are whole or absent: every output goes to a temporary name and is renamed when complete.

Real subprocesses killed with SIGKILL part-way (render, motion, train) and writers interrupted by
an exception (save_model, .avatar, ONNX export) leave no target file, or the previous one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_model

from infp_sdk import _atomic
from infp_sdk._atomic import atomic_path, stale_temporaries
from infp_sdk.audio import SAMPLE_RATE, load_audio, write_wav
from infp_sdk.model import CheckpointError, load_model, save_model

ROOT = Path(__file__).resolve().parent.parent
PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"
AVATAR = PORTRAIT.with_suffix(".avatar")
CONVERSATION = ROOT / "examples" / "conversation"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def temporaries(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.partial-*"))


def dead_pid() -> int:
    """The id of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def start(args: list[str], **kw) -> subprocess.Popen:
    """Start a command in its own process group (so ffmpeg children die with it)."""
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=ROOT,
        **kw,
    )


def kill_when(proc: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    """Poll ``ready()``; SIGKILL the process group as soon as it is true."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished before it could be killed ({proc.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("timed out waiting for the moment to kill")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------- the helper
def test_atomic_path_renames_on_success_and_removes_on_error(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".json")
        assert tmp.name.startswith(".out.json.partial-")
        tmp.write_text("one")
    assert target.read_text() == "one" and temporaries(target) == []
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "one" and temporaries(target) == []  # previous file kept
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.glob("*new.txt*")) == []


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.mp4"
    stale = tmp_path / f".out.mp4.partial-{dead_pid()}-deadbeef.mp4"
    live = tmp_path / f".out.mp4.partial-{os.getppid()}-cafe.mp4"  # a running process
    other = tmp_path / f".other.mp4.partial-{dead_pid()}-0.mp4"  # another target's
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    assert stale_temporaries(target) == [stale]
    _atomic.write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not stale.exists() and live.exists() and other.exists()


# --------------------------------------------------------------------- exceptions part-way
def test_save_model_interrupted_leaves_nothing_or_the_previous_file(tmp_path, monkeypatch):
    import infp_sdk.model.checkpoint as checkpoint

    model = random_model()
    target = tmp_path / "model.safetensors"

    def half_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, target)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    save_model(model, target)
    before = target.read_bytes()
    monkeypatch.setattr(checkpoint, "save_file", half_then_fail)
    with pytest.raises(OSError):
        save_model(model, target)
    assert target.read_bytes() == before and temporaries(target) == []
    monkeypatch.undo()
    load_model(target)


def test_avatar_save_interrupted_leaves_nothing(tmp_path, monkeypatch):
    from infp_sdk.face.avatar import load_avatar

    avatar = load_avatar(AVATAR)
    real_save = np.save
    calls = []

    def fail_on_third(file, arr, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("interrupted")
        real_save(file, arr, **kw)

    monkeypatch.setattr(np, "save", fail_on_third)
    target = tmp_path / "me.avatar"
    with pytest.raises(MemoryError):
        avatar.save(target)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    avatar.save(target)
    assert load_avatar(target).size == avatar.size and temporaries(target) == []


def test_onnx_export_interrupted_leaves_nothing_that_loads(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import infp_sdk.runtime.onnx as ox

    torch.set_num_threads(1)
    model = random_model()
    real = ox._export_graph
    done = []

    def fail_on_second(*args, **kw):
        if done:
            raise KeyboardInterrupt
        real(*args, **kw)
        done.append(args[2])
        # the graph goes to a temporary next to its final name
        assert Path(args[2]).name.startswith(".") and ".partial-" in Path(args[2]).name

    fresh = tmp_path / "fresh"
    monkeypatch.setattr(ox, "_export_graph", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        ox.export_onnx(model, fresh)
    assert not fresh.exists()  # the folder it made is gone with the graphs it wrote

    # over an earlier, complete export: the interrupted one leaves a folder that does not load
    monkeypatch.undo()
    old = tmp_path / "old"
    ox.export_onnx(model, old)
    ox.load_onnx_model(old, threads=1)
    done.clear()
    monkeypatch.setattr(ox, "_export_graph", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        ox.export_onnx(model, old)
    assert not (old / ox.CONFIG_FILE).exists()
    assert not [p for p in old.iterdir() if ".partial-" in p.name]
    with pytest.raises(CheckpointError, match="config.json does not exist"):
        ox.load_onnx_model(old, threads=1)


# ------------------------------------------------------------------- SIGKILL, real processes
@pytest.fixture(scope="module")
def short_wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wav")
    n = 4 * SAMPLE_RATE
    own, partner = d / "own.wav", d / "partner.wav"
    write_wav(own, load_audio(CONVERSATION / "own.wav")[:n], SAMPLE_RATE)
    write_wav(partner, load_audio(CONVERSATION / "partner.wav")[:n], SAMPLE_RATE)
    return own, partner


@needs_ffmpeg
def test_render_killed_leaves_no_mp4_and_the_next_run_cleans_up(short_wavs, tmp_path):
    own, partner = short_wavs
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "infp_sdk", "render", "--portrait", str(AVATAR),
           "--own", str(own), "--partner", str(partner), "-o", str(out),
           "--size", "128", "--threads", "1", "--quiet"]  # fmt: skip
    proc = start(cmd)
    kill_when(proc, lambda: any(p.stat().st_size > 0 for p in temporaries(out)))
    assert not out.exists()
    left = temporaries(out)
    assert len(left) == 1 and left[0].name.endswith(".mp4")  # SIGKILL skips all cleanup
    # the next run to the same target removes the dead run's temporary and finishes
    res = subprocess.run(cmd[:-5] + ["--size", "64", "--threads", "1", "--quiet"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0 and temporaries(out) == []


SLOW_MOTION_WRITE = """
import json, sys, time
import infp_sdk.cli as cli
dumps = json.dumps
json.dumps = lambda *a, **k: (time.sleep(0.05), dumps(*a, **k))[1]
sys.exit(cli.main(sys.argv[1:]))
"""


def test_motion_killed_while_writing_leaves_no_jsonl(short_wavs, tmp_path):
    own, partner = short_wavs
    out = tmp_path / "x.jsonl"
    args = ["motion", "--own", str(own), "--partner", str(partner), "-o", str(out),
            "--threads", "1"]  # fmt: skip
    # writing each line is slowed down, so the kill lands while the file is being written
    proc = start([sys.executable, "-c", SLOW_MOTION_WRITE, *args])
    kill_when(proc, lambda: any(p.stat().st_size > 0 for p in temporaries(out)))
    assert not out.exists() and len(temporaries(out)) == 1
    res = subprocess.run([sys.executable, "-m", "infp_sdk", *args], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert len(lines) >= 99 and all(json.loads(line) for line in lines)
    assert temporaries(out) == []


@needs_espeak
def test_train_killed_then_resume_finishes(dataset, tmp_path):
    cmd = [sys.executable, "-m", "infp_sdk", "train", "--data", str(dataset),
           "--out", str(tmp_path), "--steps", "12", "--one-sided-steps", "1",
           "--batch-size", "2", "--val-every", "12", "--checkpoint-every", "2",
           "--warmup-steps", "1", "--threads", "1"]  # fmt: skip
    state = tmp_path / "train_state.safetensors"
    proc = start(cmd)
    kill_when(proc, lambda: (tmp_path / "model.safetensors").exists())
    # whatever the kill interrupted, the files that are there are whole
    assert state.exists()
    assert load_model(tmp_path / "model.safetensors").config.preset == "realtime"
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    resumed = int(res.stdout.split("resumed from step ")[1].split()[0])
    assert 2 <= resumed < 12 and resumed % 2 == 0
    assert "step 12/12" in res.stdout
    assert json.loads((tmp_path / "train_summary.json").read_text())["steps"] == 12
    assert load_model(tmp_path / "model.safetensors").config.preset == "realtime"
    assert [p for p in tmp_path.iterdir() if ".partial-" in p.name] == []
