"""ZeroMQ publisher, control and audio sockets on loopback, with real subscribers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest
import zmq
from conftest import random_model

from infp_sdk import Agent
from infp_sdk.io import (
    AudioSender,
    ControlClient,
    ControlServer,
    CurveKeys,
    MotionPublisher,
    MotionSubscriber,
)
from infp_sdk.io.protocol import Hello, Motion, encode
from infp_sdk.motion import ARKIT_BLENDSHAPES, RIG_DIM, Frame

ANY = "tcp://127.0.0.1:*"


def frames(n, start=0, image=None):
    rng = np.random.default_rng(start)
    return [
        Frame.from_rig_latent(i, rng.standard_normal(RIG_DIM).astype(np.float32), 0.5)
        if image is None
        else Frame(
            **{**vars(Frame.from_rig_latent(i, np.zeros(RIG_DIM, np.float32), 0.5)), "image": image}
        )  # fmt: skip
        for i in range(start, start + n)
    ]


def test_late_subscriber_gets_hello_then_every_frame_in_order():
    with MotionPublisher(ANY, agent="ava") as pub:
        time.sleep(0.5)  # the publisher has been running a while before anyone subscribes
        with MotionSubscriber(pub.endpoint) as sub:
            started = time.monotonic()
            first = sub.recv(timeout=2.5)
            waited = time.monotonic() - started
            assert isinstance(first, Hello), first
            assert waited < 2.5
            assert first.blendshapes == list(ARKIT_BLENDSHAPES) and len(first.blendshapes) == 52
            sent = frames(100)
            for f in sent:
                pub.publish(f)
                time.sleep(0.001)
            got = []
            while len(got) < len(sent):
                msg = sub.recv(timeout=2.0)
                assert msg is not None, f"only {len(got)} of {len(sent)} motion messages"
                if isinstance(msg, Motion):
                    got.append(msg)
            assert [m.index for m in got] == list(range(100))
            assert [m.seq for m in got] == list(range(got[0].seq, got[0].seq + 100))
            assert sub.dropped == 0
            for m, f in zip(got, sent, strict=True):
                np.testing.assert_array_equal(np.float32(m.blendshapes), f.blendshapes)
                assert m.blendshapes[sub.index("jawOpen")] == pytest.approx(f.blendshape("jawOpen"))


def test_periodic_hello_and_agent_filter():
    with MotionPublisher(ANY, agent="bob", hello_interval=0.3) as pub:
        with MotionSubscriber(pub.endpoint, agent="bob") as sub, \
                MotionSubscriber(pub.endpoint, agent="someone_else") as other:  # fmt: skip
            hellos = 0
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                if isinstance(sub.recv(timeout=0.2), Hello):
                    hellos += 1
            assert hellos >= 3
            assert other.recv(timeout=0.1) is None


_STALLED_SUBSCRIBER = r"""
import json, sys, time, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.RCVHWM, 4)
s.setsockopt(zmq.RCVBUF, 65536)
s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(sys.argv[1])
while True:
    topic, _ = s.recv_multipart()
    if topic.startswith(b"hello"):
        break
print("ready", flush=True)
seqs = []
last = time.monotonic()
while time.monotonic() - last < 1.5:  # until motion stops (hello keeps coming)
    if not s.poll(100):
        continue
    topic, payload = s.recv_multipart()
    if topic.startswith(b"motion"):
        seqs.append(msgpack.unpackb(payload)["seq"])
        last = time.monotonic()
print(json.dumps(seqs), flush=True)
"""


def test_stalled_subscriber_does_not_slow_the_agent():
    """A subscriber that stops reading (SIGSTOP) while an agent streams 512x512 frames: the
    agent's per-frame publish cost stays far inside its 40 ms budget, a healthy subscriber gets
    every frame, and the stalled one sees its losses as gaps in seq."""
    image = np.full((512, 512, 3), 127, np.uint8)
    with MotionPublisher(ANY, agent="ava", frame_format="rgb", sndhwm=8) as pub:
        stalled = subprocess.Popen(
            [sys.executable, "-c", _STALLED_SUBSCRIBER, pub.endpoint],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert stalled.stdout.readline().strip() == "ready"
            os.kill(stalled.pid, signal.SIGSTOP)
            healthy = MotionSubscriber(pub.endpoint)
            assert isinstance(healthy.recv(timeout=2.5), Hello)
            agent = Agent(model=random_model(), hop=2)
            chunk = 320  # 20 ms at 16 kHz, pushed at real-time pace
            audio = np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32) * 0.1
            costs, received, start = [], [], time.monotonic()
            for i in range(0, len(audio), chunk):
                agent.push(own=audio[i : i + chunk], partner=audio[i : i + chunk])
                for frame in agent.pull():
                    frame.image = image
                    t0 = time.perf_counter()
                    pub.publish(frame)
                    costs.append(time.perf_counter() - t0)
                while (msg := healthy.recv(timeout=0)) is not None:
                    received.append(msg)
                time.sleep(max(0.0, start + (i + chunk) / 16000 - time.monotonic()))
            agent.flush()
            for frame in agent.pull():
                frame.image = image
                pub.publish(frame)
            agent.close()
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                msg = healthy.recv(timeout=0.2)
                if msg is None:
                    break
                received.append(msg)
            healthy.close()
            os.kill(stalled.pid, signal.SIGCONT)
            seqs = json.loads(stalled.communicate(timeout=20)[0].strip().splitlines()[-1])
        finally:
            if stalled.poll() is None:
                os.kill(stalled.pid, signal.SIGCONT)
                stalled.kill()
    n = pub.stats["motion"]
    assert n >= 95  # 4 s at 25 fps, less the hop and look-ahead
    costs_ms = np.array(costs) * 1000
    print(f"publish cost with a stalled subscriber: p50 {np.median(costs_ms):.2f} ms, "
          f"p99 {np.percentile(costs_ms, 99):.2f} ms, max {costs_ms.max():.2f} ms "
          f"({len(costs)} frames of 786 kB)")  # fmt: skip
    assert np.percentile(costs_ms, 99) < 20 and costs_ms.max() < 40
    motion = [m.seq for m in received if isinstance(m, Motion)]
    assert motion == list(range(n))  # the healthy subscriber lost nothing
    assert len(seqs) < n and seqs == sorted(seqs)  # the stalled one lost some, knows by seq


def test_control_server_survives_random_and_truncated_messages():
    calls = []

    class Handler:
        def reset(self):
            calls.append("reset")

        def interrupt(self):
            calls.append("interrupt")

        def set_style(self, ref):
            if ref is not None and ref.shape[1] != RIG_DIM:
                raise ValueError(f"style reference must be (frames, {RIG_DIM})")
            calls.append(("style", None if ref is None else ref.shape))

        def audio(self, channel, samples, rate, channels):
            calls.append(("audio", channel, len(samples), rate))

        def send_hello(self):
            return None

        def media_time(self):
            return 1.5

        def counters(self):
            return {"frames_out": 0}

    rng = np.random.default_rng(0)
    valid = [
        msgpack.packb({"v": 1, "cmd": "ping"}),
        msgpack.packb(
            {
                "v": 1,
                "cmd": "style",
                "reference": np.zeros((3, RIG_DIM), "<f4").tobytes(),
                "frames": 3,
            }
        ),  # fmt: skip
        encode_audio(np.zeros(320, np.int16)),
    ]
    with ControlServer(Handler(), ANY, ANY) as server:
        control = ControlClient(server.control_endpoint, timeout=2)
        audio_client = ControlClient(server.audio_endpoint, timeout=2)
        assert control.ping().t == 1.5
        bad = 0
        for i in range(300):
            kind = i % 4
            if kind == 0:
                payload = rng.bytes(int(rng.integers(0, 200)))
            elif kind == 1:
                src = valid[int(rng.integers(len(valid)))]
                payload = src[: int(rng.integers(0, len(src)))]
            elif kind == 2:
                obj = {"cmd": ["ping", "style", "audio", "reset", 7, None][i % 6],
                       "v": [1, 2, "x", None][i % 4], "frames": int(rng.integers(-2, 5)),
                       "reference": rng.bytes(int(rng.integers(0, 50))),
                       "rate": int(rng.integers(-10, 200000)), "pcm": rng.bytes(7),
                       "channel": ["own", "partner", 3][i % 3]}  # fmt: skip
                payload = msgpack.packb(obj)
            else:
                payload = bytes(
                    rng.integers(0x80, 0xFF, size=int(rng.integers(1, 40)), dtype=np.uint8)
                )
            client = audio_client if i % 2 else control
            reply = client.request_raw(payload)
            bad += not reply.ok
            if not reply.ok:
                assert reply.error in ("malformed", "too_large", "unsupported_version",
                                       "unknown_cmd", "invalid", "bad_audio")  # fmt: skip
        # oversized and multi-frame messages, straight on a raw socket
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.connect(server.audio_endpoint)
        raw.send_multipart([b"", encode_audio(np.zeros(600_000, np.int16))])
        raw.send_multipart([b"", b"\x80", b"extra frame"])
        replies = [raw.recv_multipart() for _ in range(2)] if raw.poll(3000) else []
        raw.close(linger=0)
        codes = [msgpack.unpackb(r[-1])["error"] for r in replies]
        assert codes == ["too_large", "malformed"]
        # the server still works, and counted every error
        assert control.ping().ok
        assert control.reset().ok and control.interrupt().ok
        assert control.style(np.ones((4, RIG_DIM), np.float32)).ok
        wrong = control.style(np.ones((4, 5), np.float32))
        assert not wrong.ok and wrong.error == "invalid"
        stats = control.request("stats").stats
        assert stats["errors"] == bad + 3 and bad > 250
        assert audio_client.request_raw(encode_audio(np.ones(640, np.int16))).ok
        control.close()
        audio_client.close()
    assert "reset" in calls and "interrupt" in calls and ("style", (4, RIG_DIM)) in calls
    assert ("audio", "own", 640, 16000) in calls


def encode_audio(pcm: np.ndarray, channel="own", rate=16000) -> bytes:
    from infp_sdk.io.protocol import Audio

    return encode(Audio(channel=channel, rate=rate, format="s16", pcm=pcm.tobytes()))


def test_audio_sender_streams_to_the_audio_socket():
    got = []

    class Handler:
        def audio(self, channel, samples, rate, channels):
            got.append((channel, samples.dtype, len(samples), rate, channels))

    with ControlServer(Handler(), None, ANY) as server:
        with AudioSender(server.audio_endpoint) as sender:
            sender.send("own", np.zeros(480, np.int16), 48000)
            sender.send("partner", np.zeros(640, np.float32), 16000)
            sender.send("partner", np.zeros((100, 2), np.float32).ravel(), 16000, channels=2)
            sender._socket.send_multipart([b"", b"garbage"])
            deadline = time.monotonic() + 3
            while sender.replies < 4 and time.monotonic() < deadline:
                sender.drain(timeout=0.2)
            assert sender.replies == 4 and sender.errors == 1
            assert sender.last_error.error == "malformed"
    assert got == [("own", np.int16, 480, 48000, 1), ("partner", np.float32, 640, 16000, 1),
                   ("partner", np.float32, 200, 16000, 2)]  # fmt: skip


def test_curve_encryption(tmp_path):
    zmq_auth = pytest.importorskip("zmq.auth")
    if not zmq.has("curve"):
        pytest.skip("libzmq without CURVE")
    server_pub, server_secret = zmq_auth.create_certificates(str(tmp_path), "server")
    with MotionPublisher(ANY, agent="ava", curve=CurveKeys(server_secret)) as pub:
        with MotionSubscriber(pub.endpoint, curve_server_public=server_pub) as sub:
            assert isinstance(sub.recv(timeout=2.5), Hello)
            pub.publish(frames(1)[0])
            assert isinstance(sub.recv(timeout=2.0), Motion)
        with MotionSubscriber(pub.endpoint) as plain:  # no keys: nothing gets through
            assert plain.recv(timeout=0.5) is None
