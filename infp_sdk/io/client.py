"""Python clients of the wire protocol: a motion subscriber, a control client, an audio sender.

They are small on purpose: they double as the reference for clients in other languages.

    with MotionSubscriber("tcp://127.0.0.1:5555") as sub:
        while True:
            msg = sub.recv(timeout=1.0)
            if isinstance(msg, Motion):
                print(msg.index, msg.blendshapes[sub.index("jawOpen")])
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import zmq

from ..motion import blendshape_index
from .protocol import (
    Audio,
    FrameImage,
    Hello,
    Motion,
    ProtocolError,
    Reply,
    decode_message,
    decode_reply,
    encode,
)


def apply_curve_client(socket: zmq.Socket, server_public_file: str | Path,
                       client_secret_file: str | Path | None = None) -> None:  # fmt: skip
    """Make ``socket`` a CURVE client of the server whose public certificate is given.

    Without a client certificate an ephemeral key pair is made (fine unless the server restricts
    clients to an authorised folder).
    """
    import zmq.auth

    server_public, _ = zmq.auth.load_certificate(str(server_public_file))
    if client_secret_file is not None:
        public, secret = zmq.auth.load_certificate(str(client_secret_file))
        if not secret:
            raise ValueError(f"{client_secret_file} has no secret key")
    else:
        public, secret = zmq.curve_keypair()
    socket.curve_serverkey = server_public
    socket.curve_publickey = public
    socket.curve_secretkey = secret


class MotionSubscriber:
    """Subscribes to ``hello`` and ``motion`` (and optionally ``frame``) of one or all agents.

    ``recv`` returns decoded messages; bad messages are counted in ``errors``, not raised.
    ``dropped`` counts motion messages lost in transit (gaps in ``seq``).
    """

    def __init__(
        self,
        endpoint: str,
        agent: str = "",
        *,
        frames: bool = False,
        curve_server_public: str | Path | None = None,
        curve_client_secret: str | Path | None = None,
        rcvhwm: int = 1000,
        context: zmq.Context | None = None,
    ):
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        if curve_server_public is not None:
            apply_curve_client(self._socket, curve_server_public, curve_client_secret)
        suffix = f".{agent}" if agent else ""
        for kind in ("hello", "motion") + (("frame",) if frames else ()):
            self._socket.setsockopt(zmq.SUBSCRIBE, f"{kind}{suffix}".encode())
        self._socket.connect(endpoint)
        self.hello: Hello | None = None
        self.errors = 0
        self.dropped = 0
        self._last_seq: dict[str, int] = {}

    def recv(self, timeout: float | None = None) -> Hello | Motion | FrameImage | None:
        """The next message, or None after ``timeout`` seconds (None = wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._socket.poll(None if wait is None else int(wait * 1000)):
                return None
            parts = self._socket.recv_multipart()
            try:
                if len(parts) != 2:
                    raise ProtocolError("malformed", f"expected [topic, payload], got {len(parts)}")
                msg = decode_message(parts[0], parts[1])
            except ProtocolError:
                self.errors += 1
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if isinstance(msg, Hello):
                self.hello = msg
            elif isinstance(msg, Motion):
                last = self._last_seq.get(msg.agent)
                if last is not None and msg.seq > last + 1:
                    self.dropped += msg.seq - last - 1
                self._last_seq[msg.agent] = msg.seq
            return msg

    def index(self, name: str) -> int:
        """Position of a blendshape in ``motion.blendshapes`` (from hello's names if known)."""
        if self.hello is not None:
            key = name.lower()
            for i, n in enumerate(self.hello.blendshapes):
                if n.lower() == key:
                    return i
        return blendshape_index(name)

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> MotionSubscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ControlClient:
    """Sends control requests and waits for the reply (REQ, rebuilt after a timeout)."""

    def __init__(
        self,
        endpoint: str,
        timeout: float = 5.0,
        *,
        curve_server_public: str | Path | None = None,
        context: zmq.Context | None = None,
    ):
        self.endpoint = endpoint
        self.timeout = timeout
        self._curve = curve_server_public
        self._ctx = context or zmq.Context.instance()
        self._ids = itertools.count(1)
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            apply_curve_client(sock, self._curve)
        sock.connect(self.endpoint)
        return sock

    def request_raw(self, payload: bytes) -> Reply:
        """Send raw bytes as a request (for tests of malformed input); returns the reply."""
        self._socket.send(payload)
        if not self._socket.poll(int(self.timeout * 1000)):
            # A REQ socket that missed its reply is stuck; start a new one.
            self._socket.close(linger=0)
            self._socket = self._connect()
            raise TimeoutError(f"no reply from {self.endpoint} within {self.timeout} s")
        return decode_reply(self._socket.recv())

    def request(self, cmd: str, **fields) -> Reply:
        """Send ``{"v": 1, "cmd": cmd, "id": n, **fields}`` and return the reply."""
        import msgpack

        msg = {"v": 1, "cmd": cmd, "id": next(self._ids), **fields}
        return self.request_raw(msgpack.packb(msg, use_bin_type=True))

    def ping(self) -> Reply:
        return self.request("ping")

    def reset(self) -> Reply:
        return self.request("reset")

    def interrupt(self) -> Reply:
        return self.request("interrupt")

    def style(self, reference: np.ndarray | None) -> Reply:
        if reference is None:
            return self.request("style")
        ref = np.asarray(reference, "<f4")
        return self.request("style", reference=ref.tobytes(), frames=int(ref.shape[0]))

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AudioSender:
    """Streams PCM chunks to an audio input socket without waiting for replies (DEALER).

    Replies are read when available; ``errors`` counts error replies, ``last_error`` keeps the
    latest one.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        curve_server_public: str | Path | None = None,
        context: zmq.Context | None = None,
    ):
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if curve_server_public is not None:
            apply_curve_client(self._socket, curve_server_public)
        self._socket.connect(endpoint)
        self.sent = self.replies = self.errors = 0
        self.last_error: Reply | None = None

    def send(self, channel: str, pcm: np.ndarray, sample_rate: int, channels: int = 1) -> None:
        """Send int16 or float32 samples (interleaved when ``channels`` > 1)."""
        arr = np.asarray(pcm)
        fmt = "s16" if arr.dtype == np.int16 else "f32"
        data = arr.astype("<i2" if fmt == "s16" else "<f4", copy=False).tobytes()
        msg = Audio(channel=channel, rate=sample_rate, format=fmt, channels=channels, pcm=data)
        self._socket.send_multipart([b"", encode(msg)], flags=zmq.NOBLOCK)
        self.sent += 1
        self.drain()

    def drain(self, timeout: float = 0.0) -> None:
        """Read the replies that have arrived (waiting up to ``timeout`` for the first)."""
        wait = int(timeout * 1000)
        while self._socket.poll(wait):
            wait = 0
            parts = self._socket.recv_multipart()
            self.replies += 1
            try:
                reply = decode_reply(parts[-1])
            except ProtocolError:
                self.errors += 1
                continue
            if not reply.ok:
                self.errors += 1
                self.last_error = reply

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> AudioSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
