"""infp-sdk train: a real run on a small synthetic dataset, alone and under torchrun (DDP)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from infp_sdk.model import load_model

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ARGS = ["--steps", "3", "--one-sided-steps", "1", "--batch-size", "4", "--val-every", "3",
        "--checkpoint-every", "3", "--warmup-steps", "1", "--threads", "1"]  # fmt: skip


def test_train_and_resume(dataset, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "infp_sdk",
        "train",
        "--data",
        str(dataset),
        "--out",
        str(tmp_path),
    ]
    res = subprocess.run(cmd + ARGS, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "step 3/3" in res.stdout and (tmp_path / "metrics.csv").exists()
    assert load_model(tmp_path / "model.safetensors").config.preset == "realtime"
    more = ["--steps", "5", *ARGS[2:]]
    res = subprocess.run(cmd + more + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resumed from step 3" in res.stdout and "step 5/5" in res.stdout


def test_two_processes_end_with_identical_weights(dataset, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "infp_sdk", "train", "--data", str(dataset), "--out", str(tmp_path), *ARGS],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    digests = dict(re.findall(r"rank (\d+): weights sha256 (\w+)", res.stdout))
    assert set(digests) == {"0", "1"}, res.stdout
    assert digests["0"] == digests["1"]
    assert (tmp_path / "model.safetensors").exists()


def test_a_terminal_gets_a_progress_bar(dataset, tmp_path):
    import os
    import pty

    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "infp_sdk", "train", "--data", str(dataset), "--out",
         str(tmp_path), "--min-window", "4", "--no-memory-banks", *ARGS],
        stdin=child_fd, stdout=child_fd, stderr=child_fd, close_fds=True,
    )  # fmt: skip
    os.close(child_fd)
    seen = b""
    while True:
        try:
            data = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    assert proc.wait(timeout=300) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert re.search(r"\[#+\.*\] 3/3  loss \d\.\d{4}  \d+ windows/s  \d+:\d\d left", text), text
    model = load_model(tmp_path / "model.safetensors")
    assert model.config.guider.memory_banks is False  # the ablation was trained
