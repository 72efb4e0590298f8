"""The core install in a virtualenv of its own: no torch, and the runtime works.

``pip install infp-sdk`` with no extras must bring no torch, and with it the Agent (on the
bundled model's shipped ONNX graphs), the protocol clients and ``infp-sdk motion`` must work. The
virtualenv is built from a wheel of this checkout, with the dependencies from the package index.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "core_install_benchmark", ROOT / "benchmarks" / "core_install.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def core_venv(bench, tmp_path_factory):
    target = tmp_path_factory.mktemp("core") / "venv"
    try:
        bench.build_venv(target)
    except subprocess.CalledProcessError as e:  # pragma: no cover - depends on the network
        pytest.skip(f"the core dependencies could not be installed (no package index?): {e}")
    return target


@pytest.mark.slow
def test_the_core_install_has_no_torch_and_runs_the_agent(bench, core_venv):
    python = core_venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", bench.CHECKS], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["onnxruntime", "50"]
    blocked = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert blocked.returncode != 0 and "No module named 'torch'" in blocked.stderr


@pytest.mark.slow
def test_the_core_install_runs_the_motion_command(core_venv, tmp_path):
    folder = ROOT / "examples" / "conversation"
    out = tmp_path / "motion.jsonl"
    done = subprocess.run(
        [
            str(core_venv / "bin" / "infp-sdk"),
            "motion",
            "--own",
            str(folder / "own.wav"),
            "--partner",
            str(folder / "partner.wav"),
            "-o",
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) > 300


@pytest.mark.slow
def test_the_core_install_explains_what_needs_torch(core_venv, tmp_path):
    """A checkpoint file needs torch to be exported; the error says what to install."""
    checkpoint = ROOT / "infp_sdk" / "weights" / "default" / "model.safetensors"
    code = f"import infp_sdk; infp_sdk.Agent(model={str(checkpoint)!r})"
    done = subprocess.run(
        [str(core_venv / "bin" / "python"), "-c", code], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "infp-sdk[torch]" in done.stderr and "infp-sdk export" in done.stderr


def test_import_loads_neither_torch_nor_onnxruntime():
    """In the development install too: both load only when a model is needed."""
    code = (
        "import sys, infp_sdk, infp_sdk.io; "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_the_core_install_renders_the_portrait(core_venv, tmp_path):
    """The main job without torch: the portrait renderer is NumPy, the model onnxruntime."""
    from infp_sdk.audio import load_audio, write_wav

    folder = ROOT / "examples" / "conversation"
    own = tmp_path / "own.wav"
    write_wav(own, load_audio(folder / "own.wav")[: 16000 * 2], 16000)
    out = tmp_path / "face.mp4"
    done = subprocess.run(
        [
            str(core_venv / "bin" / "infp-sdk"),
            "render",
            "--portrait",
            str(ROOT / "examples" / "portrait" / "astronaut.avatar"),
            "--own",
            str(own),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "50 frames" in done.stdout
    assert out.stat().st_size > 10_000
