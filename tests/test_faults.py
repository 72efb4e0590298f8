"""Fault injection: bad input gets a clear error naming the problem and the fix, and loses nothing.

Four doors are fuzzed with seeded generators, each against the real thing:

* ``Agent.push`` (the bundled default model, motion only): random dtypes, shapes, sample rates,
  NaN/Inf and huge chunks. A push is either accepted or raises :class:`AudioFormatError`; after a
  rejection the frames already produced are still pulled and later audio gives exactly
  ``floor(samples / 640)`` frames (25 fps at 16 kHz). NaN and Inf are **rejected**, never
  sanitised: the error names the first bad sample, and nothing of that chunk reaches the model.
* The control and audio input sockets (ZeroMQ, loopback): random bytes, truncated msgpack,
  oversized messages, wrong types in every field, unknown commands each get an error reply and
  the next valid request is served; junk sent up a publisher's socket is dropped with a log line.
* ``infp-sdk live --config``: malformed TOML/JSON configs exit 2 with one line naming the file.
* WAV files: valid variants (8/24-bit PCM, float, extensible) load; broken ones raise an error
  naming the file and the problem, and ``infp-sdk motion --own bad.wav`` exits 2 with it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

import infp_sdk
from infp_sdk.audio import AudioFormatError, load_audio, read_wav
from infp_sdk.audio.stream import DuplexInput
from infp_sdk.io import protocol
from infp_sdk.io.client import MotionSubscriber
from infp_sdk.io.control import ControlServer
from infp_sdk.io.protocol import (
    ERROR_CODES,
    MAX_AUDIO_BYTES,
    MAX_CONTROL_BYTES,
    Audio,
    Motion,
    Ping,
    Style,
    decode_reply,
    encode,
)
from infp_sdk.io.publisher import MotionPublisher

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
ANY = "tcp://127.0.0.1:*"
# Every error message says how to fix the problem; these are the verbs they use for it.
FIX_WORDS = ("pass", "convert", "call", "clean", "check", "send", "keep", "transpose", "wrap")


def frames_for(samples: int) -> int:
    return samples // SAMPLES_PER_FRAME


def assert_clear(message: str, *keywords: str) -> None:
    """The message names one of the problems and says what to do about it."""
    low = message.lower()
    assert any(k.lower() in low for k in keywords), f"no {keywords} in: {message}"
    assert any(w in low for w in FIX_WORDS), f"no fix in: {message}"
    assert "\n" not in message


# ----------------------------------------------------------------------------------------------
# 1. Agent.push
# ----------------------------------------------------------------------------------------------

GOOD_DTYPES = ("int16", "int32", "uint8", "float16", "float32", "float64")
BAD_DTYPES = ("int8", "int64", "uint16", "complex64", "complex128", "bool", "object")
GOOD_RATES = (16000, 16000.0, np.int32(16000), np.float64(16000))
BAD_RATES = (0, -16000, 16000.5, 10**9, 48000, 8000, math.nan, math.inf, "16000", None, True)


def _samples(rng: np.random.Generator, dtype: str, n: int) -> np.ndarray:
    if dtype == "object":
        return np.array([0.1] * n, dtype=object)
    if dtype == "bool":
        return rng.random(n) > 0.5
    kind = np.dtype(dtype).kind
    if kind == "f" or kind == "c":
        return (rng.standard_normal(n) * 0.1).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)


def _case(rng: np.random.Generator):
    """One push: (kwargs, problems it has (keywords of the expected error), 16 kHz samples)."""
    problems: list[str] = []
    dtype = str(rng.choice(GOOD_DTYPES + BAD_DTYPES)) if rng.random() < 0.6 else "float32"
    if dtype in BAD_DTYPES:
        problems.append("dtype")
    if rng.random() < 0.7:
        rate = GOOD_RATES[rng.integers(len(GOOD_RATES))]
    else:
        rate = BAD_RATES[rng.integers(len(BAD_RATES))]
        problems.append("changed sample rate" if rate in (48000, 8000) else "sample_rate")
    n = int(rng.choice([0, 1, 7, 63, 640, 1000, 1601, 3200]))
    shape_kind = str(rng.choice(["1d", "1d", "interleaved", "2d", "2d_t", "0d", "3d"]))
    channels = None
    c = int(rng.integers(1, 4))
    if shape_kind == "0d":
        audio = _samples(rng, dtype, 1).reshape(())
        problems.append("scalar")
        mono = 1
    elif shape_kind == "3d":
        audio = _samples(rng, dtype, 2 * c * max(n, 1)).reshape(2, max(n, 1), c)
        problems.append("dimensions")
        mono = 0
    elif shape_kind == "interleaved":
        channels = c
        extra = int(rng.integers(0, 2)) if c > 1 else 0  # sometimes a split frame
        audio = _samples(rng, dtype, n * c + extra)
        if extra:
            problems.append("multiple of")
        mono = n
    elif shape_kind == "2d":
        audio = _samples(rng, dtype, n * c).reshape(n, c)
        mono = n
    elif shape_kind == "2d_t":  # channels first: refused when it is clearly that layout
        audio = _samples(rng, dtype, n * c).reshape(c, n)
        if n > 64:
            problems.append("(channels, samples)")
        elif n == 0:
            problems.append("no channels")
        mono = c
    else:
        audio = _samples(rng, dtype, n)
        mono = n
    if audio.dtype.kind in "fc" and audio.size and rng.random() < 0.25:
        flat = audio.reshape(-1)
        flat[rng.integers(flat.size)] = rng.choice([np.nan, np.inf, -np.inf])
        problems.append("NaN or Inf")
    kwargs = {"sample_rate": rate}
    if channels is not None:
        kwargs["channels"] = channels
    kwargs["own" if rng.random() < 0.5 else "partner"] = audio
    return kwargs, problems, mono


@pytest.fixture(scope="module")
def agent():
    with infp_sdk.Agent() as agent:  # the bundled default model, motion only
        yield agent


def test_random_pushes_are_accepted_or_clearly_refused_and_lose_nothing(agent):
    rng = np.random.default_rng(20240611)
    agent.reset()
    accepted = rejected = 0
    samples = 0  # 16 kHz samples of the longer channel accepted so far
    pulled = []
    agent.push(own=np.zeros(320, np.float32), sample_rate=16000)  # fixes both channels' rate
    agent.push(partner=np.zeros(320, np.float32), sample_rate=16000)
    samples += 640
    for i in range(300):
        kwargs, problems, mono = _case(rng)
        if rng.random() < 0.1:
            agent.wait_idle(timeout=30)
        produced = agent.frames_generated
        try:
            agent.push(**kwargs)
        except AudioFormatError as e:
            assert problems, f"case {i} was refused for no reason: {e}"
            assert_clear(str(e), *problems)
            rejected += 1
            # what was produced before is still there, in order, and the agent is healthy
            assert agent.failure is None
            got = agent.pull()
            pulled += got
            assert len(pulled) >= produced
            continue
        assert not problems, f"case {i} with {problems} was accepted: {kwargs}"
        accepted += 1
        samples += mono
        pulled += agent.pull()
    assert accepted > 60 and rejected > 60
    good = np.sin(np.arange(3 * SAMPLES_PER_FRAME) / 10).astype(np.float32) * 0.1
    agent.push(own=good, partner=good)
    samples += len(good)
    agent.flush(timeout=60)
    pulled += agent.pull()
    assert [f.index for f in pulled] == list(range(frames_for(samples)))
    assert np.allclose([f.t for f in pulled], (np.arange(len(pulled)) + 0.5) / 25)
    assert all(np.isfinite(f.latent).all() for f in pulled)


def test_rate_changes_mid_stream_are_refused_until_reset(agent):
    agent.reset()
    tone = (np.sin(np.arange(48000) / 7) * 8000).astype(np.int16)
    agent.push(own=tone[:24000], sample_rate=48000)
    for rate in (44100, 16000, 47999):
        with pytest.raises(AudioFormatError) as e:
            agent.push(own=tone[:480], sample_rate=rate)
        assert_clear(str(e.value), "changed sample rate")
        assert "reset()" in str(e.value)
    agent.push(own=tone[24000:], sample_rate=48000)
    agent.flush(timeout=60)
    assert len(agent.pull()) == 25
    agent.reset()
    agent.push(own=tone[:16000], sample_rate=16000)
    agent.flush(timeout=60)
    assert len(agent.pull()) == 25


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_non_finite_samples_are_refused_and_never_reach_the_model(agent, bad, dtype):
    agent.reset()
    clean = np.full(2 * SAMPLES_PER_FRAME, 0.05, dtype)
    agent.push(own=clean, partner=clean)
    poisoned = clean.copy()
    poisoned[700] = bad
    with pytest.raises(AudioFormatError, match="sample 700") as e:
        agent.push(own=clean, partner=poisoned)
    assert_clear(str(e.value), "NaN or Inf")
    agent.flush(timeout=60)
    frames = agent.pull()
    assert len(frames) == 2 and all(np.isfinite(f.latent).all() for f in frames)


def test_a_huge_chunk_is_converted_in_bounded_time_and_memory():
    """Ten minutes of 48 kHz audio in one push: the seamless resampler works in blocks."""
    duplex = DuplexInput()
    ten_minutes = np.zeros(48000 * 600, np.int16)
    started = time.perf_counter()
    own, partner = duplex.push(own=ten_minutes, sample_rate=48000)
    elapsed = time.perf_counter() - started
    own2, partner2 = duplex.flush()
    assert len(own) + len(own2) == 16000 * 600 == len(partner) + len(partner2)
    assert elapsed < 30, f"{elapsed:.1f} s"


def test_a_long_chunk_at_once_gives_every_frame(agent):
    agent.reset()
    t = np.arange(44100 * 8) / 44100
    stereo = (np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.2).astype(np.float32)
    agent.push(own=stereo, sample_rate=44100)  # 8 s in one push
    agent.flush(timeout=120)
    assert len(agent.pull()) == 200


# ----------------------------------------------------------------------------------------------
# 2. Control and audio sockets
# ----------------------------------------------------------------------------------------------


class Handler:
    """The server's handler: audio goes into a real agent; the rest is recorded."""

    def __init__(self, agent):
        self.agent = agent
        self.calls: list[str] = []

    def reset(self):
        self.calls.append("reset")
        self.agent.reset()

    def interrupt(self):
        self.calls.append("interrupt")

    def set_style(self, reference):
        if reference is not None and reference.shape[1] != self.agent.latent_size:
            raise ValueError(f"style reference must have {self.agent.latent_size} values/frame")
        self.calls.append("style")

    def audio(self, channel, samples, sample_rate, channels):
        self.agent.push(**{channel: samples}, sample_rate=sample_rate, channels=channels)

    def send_hello(self):
        return protocol.hello_for("agent", self.agent.latent_size)

    def media_time(self):
        return None

    def counters(self):
        return {"frames_out": self.agent.frames_generated}


@contextlib.contextmanager
def dealer(endpoint: str):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close(linger=0)


def ask(sock, *payloads: bytes, timeout: float = 5.0):
    """Send one request (its frames after the delimiter); return the decoded reply."""
    sock.send_multipart([b"", *payloads])
    assert sock.poll(int(timeout * 1000)), "no reply: the server stopped serving"
    parts = sock.recv_multipart()
    assert parts[0] == b"" and len(parts) == 2
    return decode_reply(parts[1])


def assert_error(reply, *codes: str) -> None:
    assert reply.ok is False, reply
    assert reply.error in ERROR_CODES and reply.error in codes, reply
    assert reply.message and len(reply.message) < 600


PING = encode(Ping(id=7))


@pytest.fixture(scope="module")
def server(agent):
    handler = Handler(agent)
    with ControlServer(handler, ANY, ANY) as srv:
        yield srv, handler


def test_random_bytes_and_truncated_msgpack_get_error_replies(server):
    srv, _ = server
    rng = np.random.default_rng(7)
    valid = [
        PING,
        encode(Style(reference=np.zeros((2, 62), "<f4").tobytes(), frames=2, id="s")),
        encode(Audio(channel="own", rate=16000, pcm=b"\0\0" * 50, id=3)),
    ]
    for endpoint in (srv.control_endpoint, srv.audio_endpoint):
        with dealer(endpoint) as sock:
            for _ in range(60):
                junk = rng.bytes(int(rng.integers(0, 300)))
                reply = ask(sock, junk)
                if not reply.ok:
                    assert_error(reply, *ERROR_CODES)
                assert ask(sock, PING).ok
            for message in valid:
                for cut in sorted(set(rng.integers(0, len(message), 12).tolist())):
                    assert_error(ask(sock, message[:cut]), "malformed")
                    assert ask(sock, PING).ok
            # the wrong number of frames, and bytes after the map
            assert_error(ask(sock, PING, PING), "malformed")
            assert_error(ask(sock, PING + b"\xc0"), "malformed")
            assert ask(sock, PING).id == 7


def test_oversized_messages_get_too_large_and_the_server_goes_on(server):
    srv, _ = server
    for endpoint, limit in ((srv.control_endpoint, MAX_CONTROL_BYTES),
                            (srv.audio_endpoint, MAX_AUDIO_BYTES)):  # fmt: skip
        with dealer(endpoint) as sock:
            big = encode(Audio(channel="own", rate=16000, pcm=b"\0" * limit))
            reply = ask(sock, big)
            assert_error(reply, "too_large")
            assert str(limit) in reply.message
            assert ask(sock, PING).ok
        # far over the limit: libzmq drops the peer before buffering it; others are still served
        with dealer(endpoint) as sock:
            sock.send_multipart([b"", b"\0" * (4 * limit + 1)])
            assert not sock.poll(300)
        with dealer(endpoint) as sock:
            assert ask(sock, PING).ok


# Wrong values for each field of each request; every one must get this error code.
WRONG = {
    "v": (["1", 1.5, True, [1], None], "invalid"),
    "id": ([1.5, [1], {"a": 1}, b"x", True], "invalid"),
    "frames": (["2", True, 0, -1, 2.5, [2], b"\x02"], "invalid"),
    "reference": (["abcd", 5, [0.0, 1.0], {"a": 1}, True], "invalid"),
    "channel": ([5, b"own", ["own"], "left", None, ""], "invalid"),
    "rate": (["16000", True, 16000.5, 0, -1, 10**9, None, [16000], b"\x10"], "invalid"),
    "format": (["s24", 16, b"s16", None, ["f32"]], "invalid"),
    "channels": (["2", True, 0, 9, 1.5, None, [2]], "invalid"),
    "pcm": (["abcd", 5, [0, 0], None, True, {"a": b""}], "invalid"),
}


def test_wrong_types_in_every_field_are_invalid(server):
    srv, handler = server
    handler.agent.reset()
    style = {"cmd": "style", "reference": np.zeros((1, 62), "<f4").tobytes(), "frames": 1}
    audio = {"cmd": "audio", "channel": "own", "rate": 16000, "format": "s16", "channels": 1,
             "pcm": b"\0\0" * 64}  # fmt: skip
    with dealer(srv.control_endpoint) as control, dealer(srv.audio_endpoint) as audio_sock:
        for field, (values, code) in WRONG.items():
            base, sock = (audio, audio_sock) if field in audio else (style, control)
            for value in values:
                msg = {**base, field: value}
                reply = ask(sock, msgpack.packb(msg, use_bin_type=True))
                assert_error(reply, code)
                if code == "invalid" and field not in ("v", "id"):
                    assert field in reply.message, reply.message
                assert ask(sock, PING).ok
        assert_error(ask(control, msgpack.packb({"cmd": "ping", "v": 99})), "unsupported_version")
        assert ask(control, msgpack.packb(style, use_bin_type=True)).ok
        assert ask(audio_sock, msgpack.packb(audio, use_bin_type=True)).ok


def test_unknown_commands_and_commands_on_the_wrong_socket(server):
    srv, handler = server
    with dealer(srv.control_endpoint) as control, dealer(srv.audio_endpoint) as audio_sock:
        for cmd in ("dance", "", "PING", 5, None, [1], b"ping"):
            assert_error(ask(control, msgpack.packb({"cmd": cmd, "id": 1})), "unknown_cmd")
            assert_error(ask(audio_sock, msgpack.packb({"cmd": cmd})), "unknown_cmd")
        assert_error(ask(control, msgpack.packb({"id": 1})), "unknown_cmd")
        assert_error(ask(control, msgpack.packb([1, 2])), "malformed")
        assert_error(ask(control, msgpack.packb({1: "ping"}), timeout=5), "malformed")
        reply = ask(audio_sock, msgpack.packb({"cmd": "reset"}))
        assert_error(reply, "unknown_cmd")
        assert "control socket" in reply.message
        reply = ask(control, encode(Audio(channel="own", rate=16000, pcm=b"\0\0")))
        assert_error(reply, "unknown_cmd")
        assert "audio socket" in reply.message
        assert "reset" not in handler.calls
        assert ask(control, PING).ok and ask(audio_sock, PING).ok
        # a valid command the handler refuses (wrong latent size) is invalid, not a crash
        wrong = encode(Style(reference=np.zeros((2, 5), "<f4").tobytes(), frames=2))
        assert_error(ask(control, wrong), "invalid")
        assert ask(control, msgpack.packb({"cmd": "stats"})).stats["errors"] > 0


def test_bad_audio_over_the_socket_is_refused_and_good_audio_gives_its_frames(server):
    srv, handler = server
    handler.agent.reset()
    chunk = (np.sin(np.arange(1600) / 9) * 3000).astype("<i2")
    good = encode(Audio(channel="own", rate=16000, pcm=chunk.tobytes()))
    nan = np.full(160, np.nan, "<f4").tobytes()
    bad = [
        Audio(channel="own", rate=16000, pcm=b"\0" * 3),  # half a sample
        Audio(channel="own", rate=16000, pcm=b""),
        Audio(channel="own", rate=16000, format="f32", pcm=nan),
        Audio(channel="own", rate=16000, channels=2, pcm=b"\0" * 6),  # half a frame
        Audio(channel="own", rate=48000, pcm=chunk.tobytes()),  # rate change mid-stream
    ]
    with dealer(srv.audio_endpoint) as sock:
        sent = 0
        for request in bad:
            assert ask(sock, good).ok
            sent += len(chunk)
            reply = ask(sock, encode(request))
            assert_error(reply, "bad_audio")
        for _ in range(3):
            assert ask(sock, good).ok
            sent += len(chunk)
    handler.agent.flush(timeout=60)
    frames = handler.agent.pull()
    assert [f.index for f in frames] == list(range(frames_for(sent)))


def test_junk_on_publish_subscribe_sockets_is_dropped_with_a_log_line(caplog):
    ctx = zmq.Context.instance()
    with MotionPublisher(ANY, agent="ava", hello_interval=60) as pub:
        sub = MotionSubscriber(pub.endpoint, "ava")
        rogue = ctx.socket(zmq.XSUB)
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.connect(pub.endpoint)
        try:
            with caplog.at_level(logging.WARNING, logger="infp_sdk.io.publisher"):
                rogue.send(b"\x07junk that is not a subscription")
                rogue.send(b"")
                deadline = time.monotonic() + 5
                while pub.stats["ignored"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
            assert pub.stats["ignored"] == 2
            assert "not a (un)subscription" in caplog.text
            frame = infp_sdk.Frame.from_rig_latent(0, np.zeros(62, np.float32), 0.0)
            deadline = time.monotonic() + 5
            got = None
            while not isinstance(got, Motion) and time.monotonic() < deadline:
                pub.publish(frame)
                got = sub.recv(timeout=0.2)
            assert isinstance(got, Motion)
        finally:
            rogue.close(linger=0)
            sub.close()


def test_a_subscriber_drops_junk_from_a_publisher_and_reads_on():
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(ANY)
    sub = MotionSubscriber(pub.getsockopt_string(zmq.LAST_ENDPOINT), "ava")
    rng = np.random.default_rng(3)
    frame = infp_sdk.Frame.from_rig_latent(0, np.zeros(62, np.float32), 0.0)
    motion = encode(Motion.from_frame(frame, "ava", 0))
    try:
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            for _ in range(20):
                pub.send_multipart([b"motion.ava", rng.bytes(40)])
                pub.send_multipart([b"motion.ava", motion[: int(rng.integers(len(motion)))]])
                pub.send_multipart([b"motion.ava"])
                pub.send_multipart([b"hello.ava", b"x", b"y"])
            pub.send_multipart([b"motion.ava", motion])
            got = sub.recv(timeout=0.2)
            while got is not None and not isinstance(got, Motion):
                got = sub.recv(timeout=0.2)
        assert isinstance(got, Motion) and got.agent == "ava"
        assert sub.errors > 0
    finally:
        sub.close()
        pub.close(linger=0)


# ----------------------------------------------------------------------------------------------
# 3. live configs and 4. WAV files, through the CLI
# ----------------------------------------------------------------------------------------------


def cli(*args: str) -> tuple[int, str]:
    """Run ``infp-sdk`` in this process the way the console script does: (exit code, stderr).

    An exception escaping ``main`` is what prints a traceback; it fails the test here.
    """
    from infp_sdk.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse
            code = e.code
    return code, err.getvalue()


def assert_one_line_error(code: int, stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])


CONFIGS = [
    pytest.param("syntax.toml", b'own = "none"\nfps = \n', "not valid", id="syntax.toml"),
    pytest.param("unclosed.toml", b'own = "none\n', "not valid", id="unclosed.toml"),
    pytest.param("syntax.json", b'{"own": "none",}', "not valid", id="syntax.json"),
    pytest.param("truncated.json", b'{"own": ', "not valid", id="truncated.json"),
    pytest.param("array.json", b'["own", "none"]', "table/object", id="array.json"),
    pytest.param("string.json", b'"own"', "table/object", id="string.json"),
    pytest.param("binary.toml", b"\xff\xfe\x00own = 1", "", id="binary.toml"),
    pytest.param("empty.json", b"", "not valid", id="empty.json"),
    pytest.param("unknown.toml", b'own = "none"\nspeed = 2\n', "speed", id="unknown.toml"),
]


@pytest.mark.parametrize("name, content, needle", CONFIGS)
def test_malformed_live_configs_are_one_line_errors(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    code, stderr = cli("live", "--config", str(path), "--duration", "0")
    assert_one_line_error(code, stderr, str(path), needle)


def test_missing_and_directory_configs_are_one_line_errors(tmp_path):
    for path in (tmp_path / "missing.toml", tmp_path):
        code, stderr = cli("live", "--config", str(path), "--duration", "0")
        assert_one_line_error(code, stderr, str(path))


WRONG_TYPES = {
    "fps": '"fast"',
    "latency": '"low"',
    "seed": '"x"',
    "hop": "[1]",
}


@pytest.mark.parametrize("key", sorted(WRONG_TYPES))
def test_wrong_option_types_in_a_live_config_name_the_file_and_option(tmp_path, key):
    path = tmp_path / "types.toml"
    path.write_text(f'own = "none"\npartner = "none"\nno_pace = true\n{key} = {WRONG_TYPES[key]}\n')
    code, stderr = cli("live", "--config", str(path), "--duration", "0")
    assert_one_line_error(code, stderr, str(path), key)


def _wav(fmt_tag=1, channels=1, rate=16000, bits=16, data=b"\0\0" * 1600, *, data_size=None,
         block_align=None, extensible_tag=None, riff=b"RIFF"):  # fmt: skip
    block_align = channels * bits // 8 if block_align is None else block_align
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align, bits)
    if extensible_tag is not None:
        guid = struct.pack("<H", extensible_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa"
        fmt += struct.pack("<HHI", 22, bits, 0) + guid + b"\x00\x38\x9b\x71"
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return riff + struct.pack("<I", len(body)) + body


def _pcm24(x: np.ndarray) -> bytes:
    v = np.round(x * 8388607).astype("<i4")
    return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


TONE = (np.sin(np.arange(1600) / 5) * 0.5).astype(np.float32)
VALID_WAVS = {
    "pcm8.wav": _wav(bits=8, data=np.round(TONE * 127 + 128).astype(np.uint8).tobytes()),
    "pcm24.wav": _wav(bits=24, data=_pcm24(TONE)),
    "float32.wav": _wav(fmt_tag=3, bits=32, data=TONE.astype("<f4").tobytes()),
    "float64.wav": _wav(fmt_tag=3, bits=64, data=TONE.astype("<f8").tobytes()),
    "extensible.wav": _wav(
        fmt_tag=0xFFFE,
        bits=16,
        extensible_tag=1,
        data=np.round(TONE * 32767).astype("<i2").tobytes(),
    ),  # fmt: skip
    "extensible_float.wav": _wav(
        fmt_tag=0xFFFE, bits=32, extensible_tag=3, data=TONE.astype("<f4").tobytes()
    ),  # fmt: skip
    "streamed_size.wav": _wav(
        data=np.round(TONE * 32767).astype("<i2").tobytes(), data_size=0xFFFFFFFF
    ),  # fmt: skip
}
BAD_WAVS = {
    "truncated_data.wav": (_wav()[:-1000], "truncated"),
    "lying_size.wav": (_wav(data_size=10**6), "truncated"),
    "zero_channels.wav": (_wav(channels=0, block_align=0), "0 channels"),
    "zero_rate.wav": (_wav(rate=0), "0 Hz"),
    "low_rate.wav": (_wav(rate=1000), "1000 Hz"),
    "bad_block_align.wav": (_wav(block_align=3), "block_align"),
    "12bit.wav": (_wav(bits=12), "12-bit"),
    "mulaw.wav": (_wav(fmt_tag=7, bits=8), "mu-law"),
    "extensible_short.wav": (_wav(fmt_tag=0xFFFE), "EXTENSIBLE"),
    "not_riff.wav": (b"ID3\x03\x00" + b"\0" * 100, "MP3"),
    "text.wav": (b"hello, this is not audio at all", "not a RIFF/WAVE"),
    "empty.wav": (b"", "empty"),
    "header_only.wav": (_wav()[:20], "fmt"),
    "no_data.wav": (_wav()[:36], "no data chunk"),
}


@pytest.mark.parametrize("name", sorted(VALID_WAVS))
def test_valid_wav_variants_load(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(VALID_WAVS[name])
    audio, rate = read_wav(path)
    assert rate == 16000 and audio.shape == (1600, 1)
    tolerance = 0.01 if "8" in name else 1e-4
    np.testing.assert_allclose(audio[:, 0], TONE, atol=tolerance)
    assert load_audio(path).shape == (1600,)


def test_a_wav_without_samples_is_valid_and_loads_empty(tmp_path):
    path = tmp_path / "empty_data.wav"
    path.write_bytes(_wav(data=b""))
    assert read_wav(path)[0].shape == (0, 1) and load_audio(path).shape == (0,)


@pytest.mark.parametrize("name", sorted(BAD_WAVS))
def test_broken_wavs_name_the_file_and_the_problem(tmp_path, name):
    content, needle = BAD_WAVS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioFormatError) as e:
        load_audio(path)
    message = str(e.value)
    assert str(path) in message and needle.lower() in message.lower(), message
    code, stderr = cli("motion", "--own", str(path), "-o", str(tmp_path / "m.jsonl"))
    assert_one_line_error(code, stderr, str(path), needle)


def test_the_real_cli_process_exits_2_with_one_line(tmp_path):
    """The same errors through real ``infp-sdk`` processes (started together to save time)."""
    wav = tmp_path / "bad.wav"
    wav.write_bytes(BAD_WAVS["truncated_data.wav"][0])
    config = tmp_path / "bad.json"
    config.write_text('{"own": "none", ')
    runs = {
        "wav": (["motion", "--own", str(wav), "-o", str(tmp_path / "m.jsonl")], str(wav)),
        "config": (["live", "--config", str(config), "--duration", "0"], str(config)),
    }
    procs = {
        k: subprocess.Popen([sys.executable, "-m", "infp_sdk", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
        for k, (args, _) in runs.items()
    }  # fmt: skip
    for k, proc in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert_one_line_error(proc.returncode, stderr, runs[k][1])
