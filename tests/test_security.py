"""Hostile peers and files cost bounded memory (docs/reliability.md, "Security").

The socket tests run the server in a child process and read its memory from /proc, so that what
the test itself allocates is not counted; the hostile peer speaks ZMTP over a plain TCP socket,
so it can send what a libzmq client never would (a message that is never finished, a frame larger
than the server takes) without holding the message in memory itself.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import msgpack
import pytest
import torch
from conftest import tiny_config

from infp_sdk.io import ControlClient, MotionSubscriber
from infp_sdk.io.protocol import MAX_AUDIO_BYTES, Audio, Hello, encode
from infp_sdk.model import CheckpointError, INFPModel, load_model, save_model
from infp_sdk.model.checkpoint import MAX_HEADER_BYTES

MiB = 1 << 20
PROC = Path("/proc/self/status").exists()
needs_proc = pytest.mark.skipif(not PROC, reason="reads the server's memory from /proc")

SERVER = """
import sys, time
from infp_sdk.io import ControlServer, MotionPublisher

slow = float(sys.argv[1])

class Handler:
    def reset(self): pass
    def interrupt(self): pass
    def set_style(self, reference): pass
    def audio(self, channel, samples, rate, channels): time.sleep(slow)
    def send_hello(self): return None
    def media_time(self): return None
    def counters(self): return {}

server = ControlServer(Handler(), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
publisher = MotionPublisher("tcp://127.0.0.1:*", agent="ava", hello_interval=0.2)
print(server.control_endpoint, server.audio_endpoint, publisher.endpoint, flush=True)
sys.stdin.read()
"""


@contextmanager
def server_process(slow_audio: float = 0.0):
    """A ControlServer and a MotionPublisher in a child process: (pid, endpoints by name)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(slow_audio)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        control, audio, motion = proc.stdout.readline().split()
        yield proc.pid, {"control": control, "audio": audio, "motion": motion}
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak so far (VmHWM), in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


# ---------------------------------------------------------------------------------- raw ZMTP peer
def frame_header(size: int, more: bool = False, command: bool = False) -> bytes:
    flags = (1 if more else 0) | (4 if command else 0)
    if size > 255:
        return bytes([flags | 2]) + size.to_bytes(8, "big")
    return bytes([flags, size])


def zmtp_connect(endpoint: str, socket_type: bytes) -> socket.socket:
    """A TCP connection that has done the ZMTP 3.0 NULL handshake as ``socket_type``."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32
    ready = b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    sock.sendall(greeting + frame_header(len(ready), command=True) + ready)
    read_exactly(sock, 64)  # the server's greeting
    return sock


def send_frames(sock: socket.socket, frames: list[bytes], finish: bool = True) -> None:
    """One message; ``finish=False`` leaves it open (the last frame says more follow)."""
    for i, frame in enumerate(frames):
        more = i < len(frames) - 1 or not finish
        sock.sendall(frame_header(len(frame), more) + frame)


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def read_message(sock: socket.socket) -> list[bytes]:
    """The next message the server sends; commands (READY, PING) are skipped."""
    parts: list[bytes] = []
    while True:
        flags = read_exactly(sock, 1)[0]
        size = int.from_bytes(read_exactly(sock, 8 if flags & 2 else 1), "big")
        body = read_exactly(sock, size)
        if flags & 4:
            continue
        parts.append(body)
        if not flags & 1:
            return parts


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True once the server has closed the connection (whatever it sent before is skipped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionError:
        pass
    except TimeoutError:
        return False
    return True


# ---------------------------------------------------------------------------------- control, audio
@needs_proc
@pytest.mark.parametrize(
    "name, frame_bytes, frames",
    [("control", 200_000, 500), ("audio", 4_000_000, 25)],  # about 95 MiB each
)
def test_a_message_of_many_frames_is_answered_without_being_copied(name, frame_bytes, frames):
    """Frames past the three a request can have are released unread, not copied into Python.

    libzmq itself holds the whole message until its last frame arrives (ZMQ_MAXMSGSIZE bounds
    each frame, not the message): that much is the size of the message, no more.
    """
    size_mib = frame_bytes * frames / MiB
    with server_process() as (pid, endpoints):
        time.sleep(0.3)
        before = memory_mib(pid)["VmHWM"]
        peer = zmtp_connect(endpoints[name], b"DEALER")
        send_frames(peer, [b""] + [b"x" * frame_bytes] * frames)
        reply = msgpack.unpackb(read_message(peer)[-1])
        peer.close()
        grown = memory_mib(pid)["VmHWM"] - before
        with ControlClient(endpoints["control"], timeout=5) as client:
            assert client.ping().ok  # the server goes on
    assert reply["error"] == "malformed" and f"got {frames}" in reply["message"]
    assert grown < 1.4 * size_mib, f"{grown:.0f} MiB for a {size_mib:.0f} MiB message"


@needs_proc
def test_a_peer_faster_than_the_server_waits_instead_of_queueing():
    """Valid 1 MiB audio requests sent faster than they are served queue 16 per peer at most."""
    request = encode(Audio(channel="own", rate=16000, format="s16", pcm=b"\0" * 1_000_000))
    assert len(request) <= MAX_AUDIO_BYTES
    total = 200  # about 190 MiB
    with server_process(slow_audio=0.2) as (pid, endpoints):
        time.sleep(0.3)
        before = memory_mib(pid)["VmRSS"]
        peer = zmtp_connect(endpoints["audio"], b"DEALER")

        def flood():
            try:
                for _ in range(total):
                    send_frames(peer, [b"", request])
            except OSError:
                pass  # closed below, while blocked by back-pressure

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        time.sleep(3)
        grown = memory_mib(pid)["VmRSS"] - before
        peer.shutdown(socket.SHUT_RDWR)
        peer.close()
        sender.join(timeout=10)
    assert not sender.is_alive()
    assert grown < 64, f"{grown:.0f} MiB queued from one peer"


# ---------------------------------------------------------------------------------- publisher
@needs_proc
def test_publisher_disconnects_a_subscriber_that_sends_a_large_message():
    with server_process() as (pid, endpoints):
        time.sleep(0.3)
        before = memory_mib(pid)["VmHWM"]
        peer = zmtp_connect(endpoints["motion"], b"SUB")
        try:
            send_frames(peer, [b"\x01" + b"x" * (64 * MiB)])
        except OSError:
            pass  # reset by the server before the whole frame was sent: what we want
        assert closed_by_server(peer)
        peer.close()
        grown = memory_mib(pid)["VmHWM"] - before
        with MotionSubscriber(endpoints["motion"], "ava") as subscriber:  # others are served
            deadline = time.monotonic() + 5
            message = None
            while not isinstance(message, Hello) and time.monotonic() < deadline:
                message = subscriber.recv(timeout=1)
        assert isinstance(message, Hello) and message.agent == "ava"
    assert grown < 16, f"{grown:.0f} MiB held for a rejected 64 MiB subscription"


# ---------------------------------------------------------------------------------- checkpoints
def write_safetensors(path: Path, header: bytes, data: bytes = b"") -> Path:
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


def hostile_checkpoint(path: Path, update) -> Path:
    """About 1 KB: a valid header with one tiny tensor and a config changed by ``update``."""
    config = json.loads(tiny_config().model_dump_json())
    update(config)
    header = {
        "__metadata__": {"infp.format": "1", "infp.config": json.dumps(config)},
        "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    }
    return write_safetensors(path, json.dumps(header).encode(), b"\0" * 8)


@pytest.mark.parametrize(
    "update",
    [
        lambda c: c["dit"].update(width=1_000_000),  # a 48 TB request on the old code
        lambda c: c["encoder"].update(width=4_000_000, layers=8),
        lambda c: c["dit"].update(depth=10**9),  # a billion blocks to build
        lambda c: c["encoder"].update(n_mels=-5),  # builds nothing at all
    ],
    ids=["wide", "wide-encoder", "deep", "negative"],
)
def test_a_small_checkpoint_cannot_request_unbounded_memory(tmp_path, update):
    path = hostile_checkpoint(tmp_path / "hostile.safetensors", update)
    assert path.stat().st_size < 4096
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=str(path)) as caught:
        load_model(path)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "different models" in message or "cannot be built" in message
    assert "save_model" in message or "config" in message


def test_a_wide_config_over_real_tensor_names_is_refused_before_it_is_built(tmp_path):
    torch.manual_seed(0)
    path = save_model(INFPModel(tiny_config()), tmp_path / "model.safetensors")
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    config = json.loads(header["__metadata__"]["infp.config"])
    config["dit"]["width"] = 1_000_000  # every tensor is there, each of the wrong shape
    header["__metadata__"]["infp.config"] = json.dumps(config)
    write_safetensors(path, json.dumps(header).encode(), raw[8 + n :])
    with pytest.raises(CheckpointError, match=r"tensor 'dit\.[\w.]+' has shape"):
        load_model(path)


@pytest.mark.parametrize(
    "header, problem",
    [
        (b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
        (b'{"__metadata__": ["infp.format", "1"]}', "__metadata__ must be a JSON object"),
        (b'{"__metadata__": {"infp.format": 1}}', "__metadata__ must be a JSON object"),
        (b'{"w": {"dtype": "F32", "shape": "big", "data_offsets": [0, 0]}}', "no valid shape"),
    ],
    ids=["deep-json", "metadata-list", "metadata-number", "bad-shape"],
)
def test_a_corrupt_header_is_a_checkpoint_error(tmp_path, header, problem):
    path = write_safetensors(tmp_path / "corrupt.safetensors", header)
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "save_model" in str(caught.value)


def test_the_header_size_is_bounded(tmp_path):
    torch.manual_seed(0)
    model = INFPModel(tiny_config())
    padded = save_model(
        model, tmp_path / "padded.safetensors", extra={"pad": "x" * (MAX_HEADER_BYTES + 1)}
    )
    with pytest.raises(CheckpointError, match=f"up to {MAX_HEADER_BYTES} bytes"):
        load_model(padded)
    # a checkpoint as save_model writes it loads as before, and so does the shipped one
    loaded = load_model(save_model(model, tmp_path / "plain.safetensors"))
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert load_model("default").config.dit.depth >= 1
