"""The Pipecat and LiveKit adapters' tests, in an environment that has the frameworks.

Both frameworks need protobuf 5 or later, which the ``dev`` extra's MediaPipe rules out, so their
tests skip in the development environment. This test builds the environment a user of the
adapters has (the core install with the ``pipecat`` and ``livekit`` extras, no torch) and runs
them there.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTER_TESTS = ["tests/test_integrations_pipecat.py", "tests/test_integrations_livekit.py"]


@pytest.mark.slow
def test_the_adapters_pass_with_the_frameworks_installed(tmp_path):
    if all(importlib.util.find_spec(name) for name in ("pipecat", "livekit")):
        pytest.skip("the frameworks are installed here: their tests ran in this session")
    spec = importlib.util.spec_from_file_location(
        "core_install_benchmark", ROOT / "benchmarks" / "core_install.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    target = tmp_path / "venv"
    try:
        bench.build_venv(target, extras="pipecat,livekit", packages=("pytest",))
    except subprocess.CalledProcessError as e:  # pragma: no cover - depends on the network
        pytest.skip(f"the frameworks could not be installed (no package index?): {e}")
    done = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            *ADAPTER_TESTS,
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
