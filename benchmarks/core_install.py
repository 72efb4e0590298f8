"""The core install, as someone embedding the SDK gets it: size, import time, cold start.

    python benchmarks/core_install.py [--venv DIR] [--keep]

Builds a wheel of this checkout, installs it with ``pip install`` and no extras into a fresh
virtualenv made without pip (so the size counts what infp-sdk brings, not pip itself), and then,
in that virtualenv:

* checks that torch is neither installed nor imported;
* times ``import infp_sdk`` (best of 5 fresh interpreters) and the import of the protocol client;
* times the cold start: a fresh interpreter that imports infp_sdk, makes ``Agent()`` and pushes
  audio until the first frame comes out, measured from before the interpreter starts;
* runs ``infp-sdk motion`` on the bundled conversation.

Prints the numbers and saves benchmarks/results/core_install.json. Needs the package index
(PyPI or a mirror) to install the dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

COLD_START = """
import time, numpy as np
import infp_sdk
agent = infp_sdk.Agent()
chunk = (0.2 * np.sin(np.arange(320) * 0.2)).astype(np.float32)
while not (frames := agent.pull()):
    agent.push(own=chunk, partner=np.zeros_like(chunk), sample_rate=16000)
    time.sleep(0.001)
agent.close()
print(frames[0].index)
"""

CHECKS = """
import importlib.util, sys
import infp_sdk
assert importlib.util.find_spec("torch") is None, "torch is installed"
import numpy as np
from infp_sdk.io import MotionSubscriber, ControlClient, AudioSender  # noqa: F401
with infp_sdk.Agent() as agent:
    t = np.arange(32000) / 16000
    agent.push(own=(0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), sample_rate=16000)
    agent.flush(timeout=60)
    frames = agent.pull()
assert len(frames) == 50, len(frames)
assert "torch" not in sys.modules, "torch was imported"
print(agent.engine.backend, len(frames))
"""


def build_venv(target: Path, extras: str = "", packages: tuple[str, ...] = ()) -> dict:
    """A virtualenv at ``target`` with this checkout installed with its core dependencies
    (and ``extras``, say "pipecat,livekit", and more ``packages``)."""
    wheels = Path(tempfile.mkdtemp(prefix="infp-wheel-"))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
            check=True,
        )
        (wheel,) = wheels.glob("infp_sdk-*.whl")
        venv.EnvBuilder(with_pip=False, clear=True).create(target)
        python = target / "bin" / "python"
        started = time.perf_counter()
        requirement = f"{wheel}[{extras}]" if extras else str(wheel)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "-q",
                requirement,
                *packages,
            ],  # fmt: skip
            check=True,
        )
        return {"wheel_mb": wheel.stat().st_size / 1e6, "install_s": time.perf_counter() - started}
    finally:
        shutil.rmtree(wheels, ignore_errors=True)


def folder_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total / 1e6


def best_of(python: Path, code: str, runs: int = 5) -> float:
    """Seconds for a fresh interpreter to run ``code``, minus a bare interpreter's start."""

    def once(source: str) -> float:
        started = time.perf_counter()
        subprocess.run([str(python), "-c", source], check=True, capture_output=True)
        return time.perf_counter() - started

    bare = min(once("pass") for _ in range(runs))
    return min(once(code) for _ in range(runs)) - bare


def measure(target: Path) -> dict:
    python = target / "bin" / "python"
    site = next((target / "lib").glob("python*/site-packages"))
    packages = sorted(
        ((p.name, folder_mb(p)) for p in site.iterdir() if p.is_dir()), key=lambda x: -x[1]
    )
    checks = subprocess.run(
        [str(python), "-c", CHECKS], check=True, capture_output=True, text=True
    ).stdout.split()
    cold = min(_timed(python, COLD_START) for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        conversation = ROOT / "examples" / "conversation"
        motion_s = _timed(
            target / "bin" / "infp-sdk",
            None,
            [
                "motion",
                "--own",
                str(conversation / "own.wav"),
                "--partner",
                str(conversation / "partner.wav"),
                "-o",
                str(Path(tmp) / "motion.jsonl"),
            ],
        )
        motion_frames = sum(1 for _ in open(Path(tmp) / "motion.jsonl"))
    return {
        "venv_mb": folder_mb(target),
        "largest_packages_mb": {name: round(mb, 1) for name, mb in packages[:8]},
        "backend": checks[0],
        "import_s": best_of(python, "import infp_sdk"),
        "import_io_s": best_of(python, "import infp_sdk.io"),
        "cold_start_to_first_frame_s": cold,
        "motion_cli_s": motion_s,
        "motion_cli_frames": motion_frames,
    }


def _timed(program: Path, code: str | None, args: list[str] | None = None) -> float:
    command = [str(program), "-c", code] if code is not None else [str(program), *(args or [])]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", help="where to build the virtualenv (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the virtualenv")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    target = Path(args.venv or tempfile.mkdtemp(prefix="infp-core-"))
    try:
        result = {"benchmark": "core_install", **build_venv(target), **measure(target)}
    finally:
        if not args.keep:
            shutil.rmtree(target, ignore_errors=True)
    from infp_sdk.bench import machine

    result["machine"] = machine()
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    out = Path(args.out) / "core_install.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
