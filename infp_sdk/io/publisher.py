"""ZeroMQ motion publisher: ``hello``, ``motion`` and optional ``frame`` messages on a PUB socket.

    with MotionPublisher("tcp://127.0.0.1:5555", agent="ava") as pub:
        for frame in agent.frames():
            pub.publish(frame)

The socket is an XPUB (a PUB that also sees subscriptions) so that a subscriber that joins gets a
``hello`` at once instead of waiting for the next 2-second one. ``publish`` never blocks: each
subscriber has a queue of ``sndhwm`` messages, and when a slow or dead subscriber's queue is full
its messages are dropped (it sees a gap in ``seq``) while everyone else carries on.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import zmq

from ..motion import FPS, Frame
from ..shutdown import stop_at_exit
from .protocol import FrameImage, Hello, Motion, encode, hello_for

log = logging.getLogger(__name__)

HELLO_INTERVAL = 2.0
"""Seconds between periodic hello messages."""

SUBSCRIPTION_BYTES = 4096
"""Inbound frame limit of the publisher's socket, plus the length of the agent's name: a
subscription is one byte and a topic prefix (``\\x01motion.<agent>``); libzmq disconnects a
subscriber that sends a larger frame."""
SUBSCRIPTION_HWM = 64
"""Messages queued from each subscriber (RCVHWM) before libzmq stops reading its connection."""


class NoImageError(RuntimeError):
    """A frame sink got a frame without an image (the agent has no portrait)."""


NO_IMAGE_HINT = (
    "frames carry no image: this sink needs rendered frames, which exist only when the agent "
    "has a portrait (infp_sdk.Agent(portrait=...), or `infp-sdk live --portrait PATH`)"
)


@dataclass
class CurveKeys:
    """CURVE encryption for a server socket, from ZeroMQ certificate files.

    ``secret_file``: the server's certificate with its secret key (``zmq.auth.create_certificates``
    writes ``NAME.key_secret``). ``authorized_dir``: a folder of client public certificates; when
    given, only those clients may connect, otherwise any client that knows the server's public key
    may (the traffic is encrypted either way).
    """

    secret_file: str | Path
    authorized_dir: str | Path | None = None


_authenticators: dict[int, object] = {}


def apply_curve_server(socket: zmq.Socket, curve: CurveKeys) -> None:
    """Make ``socket`` a CURVE server with the keys in ``curve`` (before bind)."""
    import zmq.auth

    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support; reinstall pyzmq")
    public, secret = zmq.auth.load_certificate(str(curve.secret_file))
    if not secret:
        raise ValueError(
            f"{curve.secret_file} has no secret key: pass the server's '.key_secret' file "
            "(zmq.auth.create_certificates writes one)"
        )
    if curve.authorized_dir is not None:
        from zmq.auth.thread import ThreadAuthenticator

        ctx = socket.context
        auth = _authenticators.get(id(ctx))
        if auth is None:
            auth = ThreadAuthenticator(ctx)
            auth.start()
            _authenticators[id(ctx)] = auth
        auth.configure_curve(domain="*", location=str(curve.authorized_dir))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True


def is_loopback(endpoint: str) -> bool:
    """True for ``ipc://``/``inproc://`` endpoints and TCP on a loopback address."""
    url = urlparse(endpoint)
    if url.scheme != "tcp":
        return True
    host = (url.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: reachable from outside


def bind(socket: zmq.Socket, endpoint: str, curve: CurveKeys | None) -> str:
    """Bind, warn when a non-loopback endpoint is unencrypted, return the bound endpoint."""
    if curve is not None:
        apply_curve_server(socket, curve)
    elif not is_loopback(endpoint):
        warnings.warn(
            f"{endpoint} is reachable from other machines and unencrypted: pass CURVE keys "
            "(curve=CurveKeys(...), --curve-secret) for use beyond localhost",
            stacklevel=3,
        )
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as e:
        raise OSError(f"cannot bind {endpoint}: {e}") from None
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)


def encode_image(image: np.ndarray, fmt: str, quality: int = 85) -> bytes:
    """uint8 RGB (H, W, 3) -> JPEG file bytes or raw RGB bytes."""
    if fmt == "rgb":
        return np.ascontiguousarray(image, np.uint8).tobytes()
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "JPEG frames need Pillow: pip install 'infp-sdk[face]' (portraits need it anyway) "
            "or pillow, or use frame format 'rgb'"
        ) from None
    import io

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8), "RGB").save(
        buf, format="JPEG", quality=quality
    )
    return buf.getvalue()


class MotionPublisher:
    """Publishes frames of one agent on a ZeroMQ XPUB socket (see docs/protocol.md).

    Args:
        endpoint: where to bind; ``tcp://127.0.0.1:*`` picks a free port (see ``.endpoint``).
        agent: the agent's name, the topic suffix (``motion.<agent>``); no dots or spaces.
        latent_size: values per latent (62 for the rig space).
        fps: the rate of the frames you will publish (for ``hello``).
        frame_format: None (no ``frame`` topic), ``"jpeg"`` or ``"rgb"``.
        sndhwm: messages queued per subscriber before its messages are dropped (default 256,
            or 32 with frames: a stalled subscriber holds at most that many in memory).
        curve: CURVE keys for encrypted use beyond localhost.
        control, audio: endpoints of the control and audio sockets, announced in ``hello``.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5555",
        agent: str = "agent",
        latent_size: int = 62,
        fps: float = FPS,
        *,
        frame_format: str | None = None,
        jpeg_quality: int = 85,
        sndhwm: int | None = None,
        hello_interval: float = HELLO_INTERVAL,
        curve: CurveKeys | None = None,
        control: str | None = None,
        audio: str | None = None,
        context: zmq.Context | None = None,
    ):
        if not agent or any(c in agent for c in ". \t\n") or not agent.isprintable():
            raise ValueError(f"agent name {agent!r} must be non-empty, printable, no dots/spaces")
        if frame_format not in (None, "jpeg", "rgb"):
            raise ValueError(f"frame_format must be None, 'jpeg' or 'rgb', got {frame_format!r}")
        self.agent = agent
        self.frame_format = frame_format
        self.jpeg_quality = jpeg_quality
        self.hello_interval = hello_interval
        self._ctx = context or zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscribe, to answer with hello
        if sndhwm is None:
            sndhwm = 256 if frame_format is None else 32
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        # Subscribers send only (un)subscriptions: a few bytes each, and rarely.
        self._socket.setsockopt(zmq.MAXMSGSIZE, SUBSCRIPTION_BYTES + len(agent.encode()))
        self._socket.setsockopt(zmq.RCVHWM, SUBSCRIPTION_HWM)
        self.endpoint = bind(self._socket, endpoint, curve)
        self._topics = {k: f"{k}.{agent}".encode() for k in ("hello", "motion", "frame")}
        self._hello = hello_for(
            agent, latent_size, fps, control=control, audio=audio, frame_format=frame_format
        )
        self._hello_bytes = encode(self._hello)
        self._lock = threading.Lock()
        self._seq = 0
        self._frame_seq = 0
        self._last_hello = 0.0
        self._warned_no_image = False
        self.stats = {
            "motion": 0,
            "hello": 0,
            "frames": 0,
            "dropped": 0,
            "no_image": 0,
            "subscriptions": 0,
            "ignored": 0,
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="infp-publisher", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, MotionPublisher.close)
        self._thread.start()

    @property
    def hello(self) -> Hello:
        return self._hello

    def announce(self, control: str | None = None, audio: str | None = None) -> None:
        """Set the control and audio endpoints that ``hello`` announces."""
        with self._lock:
            self._hello = self._hello.model_copy(update={"control": control, "audio": audio})
            self._hello_bytes = encode(self._hello)

    # ------------------------------------------------------------------ sending
    def _send(self, topic: bytes, payload: bytes) -> bool:
        try:
            self._socket.send_multipart([topic, payload], flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            self.stats["dropped"] += 1
            return False

    def send_hello(self) -> Hello:
        """Publish ``hello`` now."""
        with self._lock:
            self._send_hello_locked()
        return self._hello

    def _send_hello_locked(self) -> None:
        if self._socket.closed:
            return
        self._send(self._topics["hello"], self._hello_bytes)
        self._last_hello = time.monotonic()
        self.stats["hello"] += 1

    def publish(self, frame: Frame) -> None:
        """Publish one frame (``motion``, plus ``frame`` if a frame format is set); never blocks."""
        image = None
        if self.frame_format is not None:
            if frame.image is None:
                self.stats["no_image"] += 1
                if not self._warned_no_image:
                    self._warned_no_image = True
                    log.warning("frame topic: %s", NO_IMAGE_HINT)
            else:
                h, w = frame.image.shape[:2]
                image = FrameImage(
                    agent=self.agent,
                    seq=0,  # set when sent
                    index=frame.index,
                    t=float(frame.t),
                    format=self.frame_format,
                    width=w,
                    height=h,
                    data=encode_image(frame.image, self.frame_format, self.jpeg_quality),
                )
        with self._lock:
            if self._socket.closed:
                return
            payload = encode(Motion.from_frame(frame, self.agent, self._seq))
            self._seq += 1
            self._send(self._topics["motion"], payload)
            self.stats["motion"] += 1
            if image is not None:
                image.seq = self._frame_seq
                self._frame_seq += 1
                self._send(self._topics["frame"], encode(image))
                self.stats["frames"] += 1

    def send(self, frame: Frame) -> None:
        """The sink interface: same as :meth:`publish`."""
        self.publish(frame)

    # ------------------------------------------------------------------ background
    def _run(self) -> None:
        """Periodic hello, and hello for each new subscription that covers the hello topic."""
        self._stop.wait(0.05)  # let a just-started subscriber finish connecting
        with self._lock:
            self._send_hello_locked()
        while not self._stop.wait(0.02):
            with self._lock:
                if self._socket.closed:
                    return
                wants_hello = False
                while True:
                    try:
                        msg = self._socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    except zmq.ZMQError:
                        return
                    if msg and msg[0] == 1:
                        self.stats["subscriptions"] += 1
                        if self._topics["hello"].startswith(msg[1:]):
                            wants_hello = True
                    elif msg and msg[0] == 0:
                        self.stats["subscriptions"] -= 1
                    else:
                        # A peer sent something other than (un)subscribe: drop it, say so once.
                        self.stats["ignored"] += 1
                        level = logging.WARNING if self.stats["ignored"] == 1 else logging.DEBUG
                        log.log(
                            level,
                            "publisher %s: dropped a %d-byte message that is not a "
                            "(un)subscription (%d so far)",
                            self.endpoint,
                            len(msg),
                            self.stats["ignored"],
                        )
                if wants_hello or time.monotonic() - self._last_hello >= self.hello_interval:
                    self._send_hello_locked()

    def close(self) -> None:
        """Stop the hello thread and close the socket (unsent messages are dropped)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        with self._lock:
            if not self._socket.closed:
                self._socket.close(linger=0)
        self._cancel_stop_at_exit()

    def __enter__(self) -> MotionPublisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
