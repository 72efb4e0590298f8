"""The C++ client's decoders (bindings/cpp) against the conformance vectors, under ASan and UBSan.

The live part (the client against a running Python publisher) is tests/test_cpp_client.py.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT
from cpp_toolchain import missing_cpp_toolchain
from vectors.conformance import compare, stdin_lines

CPP = ROOT / "bindings" / "cpp"

# What the C++ client does not do yet (bindings/cpp/test/NEEDS.md). Each entry must still be a
# problem: when the client gains it, this test fails until the entry is removed.
KNOWN: set[str] = set()


@pytest.fixture(scope="module")
def conformance(tmp_path_factory):
    reason = missing_cpp_toolchain()
    if reason is not None:
        pytest.skip(reason)
    exe = tmp_path_factory.mktemp("cpp_vectors") / "conformance"
    cmd = [
        "g++", "-std=c++17", "-O0", "-g", "-Wall", "-Wextra", "-Werror", "-DMSGPACK_NO_BOOST",
        "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
        f"-I{CPP / 'include'}", str(CPP / "test" / "conformance.cpp"), "-o", str(exe), "-lzmq",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr[-4000:]}"
    return exe


def test_cpp_decoders_match_the_vectors_under_sanitizers(conformance):
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    res = subprocess.run(
        [str(conformance)], input=stdin_lines(), capture_output=True, text=True, timeout=60,
        env=env,
    )  # fmt: skip
    # A sanitizer report (an out-of-bounds read, a leak, undefined behaviour) fails the run.
    assert res.returncode == 0 and "Sanitizer" not in res.stderr, res.stderr[-4000:]
    checks, problems = compare(res.stdout)
    unexpected = [p for p in problems if p not in KNOWN]
    fixed = sorted(KNOWN - set(problems))
    assert not unexpected, "\n".join(unexpected)
    assert not fixed, f"the C++ client now handles these; remove them from KNOWN: {fixed}"
    assert checks > 200


def test_missing_headers_are_a_skip_reason_that_names_them():
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    reason = missing_cpp_toolchain(headers=("infp_absent_one.hpp", "infp_absent_two.hpp"))
    assert reason is not None and "headers not found" in reason
    assert "infp_absent_one.hpp" in reason and "infp_absent_two.hpp" in reason
