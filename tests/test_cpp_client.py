"""The header-only C++ client (bindings/cpp), built with g++ here, against the Python publisher."""

from __future__ import annotations

import json
import struct
import subprocess
import time

import msgpack
import numpy as np
import pytest
from conftest import ROOT
from cpp_toolchain import missing_cpp_toolchain

from infp_sdk.io import MotionPublisher
from infp_sdk.io.protocol import Motion, encode, hello_for
from infp_sdk.motion import ARKIT_BLENDSHAPES, RIG_DIM, Frame

CPP = ROOT / "bindings" / "cpp"
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{CPP / 'include'}"]


def _build(tmp, source, name, extra):
    exe = tmp / name
    cmd = ["g++", *FLAGS, *extra, str(source), "-o", str(exe), "-lzmq"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return exe


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    reason = missing_cpp_toolchain()
    if reason is not None:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("cpp")
    return {
        "subscriber": _build(tmp, CPP / "examples" / "subscriber.cpp", "subscriber", ["-O1"]),
        "decode_check": _build(
            tmp,
            CPP / "tools" / "decode_check.cpp",
            "decode_check",
            ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
        ),  # fmt: skip
    }


def a_frame(i: int) -> Frame:
    rng = np.random.default_rng(i)
    return Frame.from_rig_latent(i, rng.standard_normal(RIG_DIM).astype(np.float32), i / 100)


def test_cpp_subscriber_receives_hello_then_every_frame(built):
    with MotionPublisher("tcp://127.0.0.1:*", agent="ava") as pub:
        time.sleep(0.5)  # subscribe to a publisher that is already running
        proc = subprocess.Popen([str(built["subscriber"]), pub.endpoint, "50", "5", "ava"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            started = time.monotonic()
            hello = json.loads(proc.stdout.readline())
            assert time.monotonic() - started < 2.5
            assert hello == {"type": "hello", "v": 1, "agent": "ava", "fps": 25, "names": 52,
                             "first": ARKIT_BLENDSHAPES[0], "last": ARKIT_BLENDSHAPES[-1],
                             "latent_size": RIG_DIM, "head": 6, "gaze": 4}  # fmt: skip
            sent = [a_frame(i) for i in range(50)]
            for f in sent:
                pub.publish(f)
                time.sleep(0.002)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    motion = [m for m in map(json.loads, out.splitlines()) if m["type"] == "motion"]
    assert [m["seq"] for m in motion] == list(range(50))
    assert [m["index"] for m in motion] == list(range(50))
    for m, f in zip(motion, sent, strict=True):
        assert m["t"] == pytest.approx(f.t, abs=1e-12)
        assert m["jawOpen"] == pytest.approx(f.blendshape("jawOpen"), abs=1e-7)
        assert m["eyeBlinkLeft"] == pytest.approx(f.blendshape("eyeBlinkLeft"), abs=1e-7)
        assert m["tongueOut"] == pytest.approx(f.blendshape("tongueOut"), abs=1e-7)
        assert m["yaw"] == pytest.approx(float(f.head[0]), abs=1e-7)
        assert m["gaze0"] == pytest.approx(float(f.gaze[0]), abs=1e-7)
        assert m["latent0"] == pytest.approx(float(f.latent[0]), abs=1e-7)
        assert m["speaking"] == pytest.approx(f.speaking, abs=1e-7)
        assert m["latent_size"] == RIG_DIM and m["blendshapes"] == 52 and m["dropped"] == 0


def _vectors() -> list[tuple[bytes, bytes, bool]]:
    """(kind, payload, expect) records: valid, truncated, mutated and random. expect: True
    (decodes), False (rejected), an error code (rejected with it), None (either, no crash)."""
    rng = np.random.default_rng(0)
    hello = encode(hello_for("ava", RIG_DIM))
    motion = encode(Motion.from_frame(a_frame(3), "ava", 9))
    out = [(b"h", hello, True), (b"m", motion, True)]
    raw = msgpack.unpackb(motion, raw=False)
    out.append((b"m", msgpack.packb({**raw, "new_key": [1, {"x": b"y"}]}), True))  # unknown key
    out.append((b"m", msgpack.packb({**raw, "t": 1, "speaking": 0}), True))  # ints as numbers
    for n in range(len(hello)):
        out.append((b"h", hello[:n], False))
    for n in range(len(motion)):
        out.append((b"m", motion[:n], False))
    bad_values = [None, True, "x", b"\x00" * 3, [], [1] * 7, {"a": 1}, -1, 2**64 - 1, 1.5,
                  ["s"] * 52, [[1]] * 6]  # fmt: skip
    for key in raw:
        for value in bad_values:
            out.append((b"m", msgpack.packb({**raw, key: value}), None))
    hraw = msgpack.unpackb(hello, raw=False)
    for key in hraw:
        for value in bad_values:
            out.append((b"h", msgpack.packb({**hraw, key: value}), None))
    out += [
        (b"m", msgpack.packb({**raw, "v": 2}), "unsupported_version"),
        (b"m", msgpack.packb({**raw, "head": [0.0] * 5}), "invalid"),
        (b"m", msgpack.packb({k: v for k, v in raw.items() if k != "latent"}), False),
        (b"m", msgpack.packb({**raw, "latent": b"\x00" * 5}), False),
        (b"m", motion + b"\x00", False),  # trailing bytes
        (b"m", b"\xdd\xff\xff\xff\xff", False),  # an array claiming 4 billion items
        (b"m", b"\xdf\xff\xff\xff\xff", False),  # a map claiming 4 billion pairs
        (b"m", b"\xc6\xff\xff\xff\xff", False),  # a bin claiming 4 GiB
        (b"m", b"\x91" * 100000 + b"\xc0", False),  # nested 100000 deep
        (b"h", b"\x81\xa1v" + b"\xcf" + b"\xff" * 8, False),
        (b"m", b"", False),
    ]
    for _ in range(300):
        out.append((b"m" if rng.integers(2) else b"h", rng.bytes(int(rng.integers(1, 300))), None))
    for _ in range(300):  # flip bytes of a valid message
        data = bytearray(motion)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        out.append((b"m", bytes(data), None))
    return out


def test_cpp_decoder_under_asan_with_malformed_vectors(built, tmp_path):
    vectors = _vectors()
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"".join(k + struct.pack("<I", len(p)) + p for k, p, _ in vectors))
    res = subprocess.run([str(built["decode_check"]), str(path)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len(vectors)
    for (kind, payload, expect), line in zip(vectors, lines, strict=True):
        if expect is True:
            assert line.startswith("ok"), (payload[:40], line)
        elif expect is False:
            assert line.startswith("error:"), (payload[:40], line)
        elif isinstance(expect, str):
            assert line.startswith(f"error: {expect}:"), line
        if kind == b"m" and len(payload) < len(vectors[1][1]) and vectors[1][1].startswith(payload):
            assert line.startswith("error: malformed:"), line  # a truncated motion message
    assert lines[0] == "ok hello 52 62 25" and lines[1] == f"ok motion 9 3 52 {RIG_DIM}"
