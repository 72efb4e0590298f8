"""Control and audio input sockets: ZeroMQ ROUTER servers taking msgpack requests.

The control socket takes ``ping``, ``reset``, ``interrupt``, ``style``, ``hello`` and ``stats``;
the audio socket takes ``audio`` (PCM chunks for the own or the partner channel) and ``ping``.
Both answer every request with one ``Reply``. A ROUTER serves REQ clients (one request at a time)
and DEALER clients (pipelined, for audio) alike. Malformed, oversized or invalid requests get an
error reply and are counted in ``stats``; nothing a client sends can stop the server.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Protocol

import numpy as np
import zmq

from ..shutdown import stop_at_exit
from .protocol import (
    MAX_AUDIO_BYTES,
    MAX_CONTROL_BYTES,
    Audio,
    Hello,
    HelloRequest,
    Interrupt,
    Ping,
    ProtocolError,
    Reply,
    Reset,
    Stats,
    Style,
    decode_request,
    encode,
)
from .publisher import CurveKeys, bind

log = logging.getLogger(__name__)

CONTROL_COMMANDS = ("ping", "reset", "interrupt", "style", "hello", "stats")
AUDIO_COMMANDS = ("audio", "ping")

FRAME_LIMIT_FACTOR = 4
"""``ZMQ_MAXMSGSIZE`` of a socket is this times its request limit: 256 KiB for control, 4 MiB for
audio. libzmq disconnects a peer that sends a larger frame."""
MAX_REQUEST_FRAMES = 3
"""Frames a request can have as the ROUTER delivers it: the identity, an optional empty delimiter
and the payload. Frames past these are dropped unread (the request gets a ``malformed`` reply)."""
RCVHWM = 16
"""Messages queued per peer before libzmq stops reading its connection (TCP back-pressure: a
peer that sends faster than the server answers waits, nothing is dropped)."""
SNDHWM = 1000
"""Replies queued per peer that does not read them; more are dropped."""


class ControlHandler(Protocol):
    """What the server calls; :class:`infp_sdk.live.Pipeline` is one."""

    def reset(self) -> None: ...

    def interrupt(self) -> None: ...

    def set_style(self, reference: np.ndarray | None) -> None: ...

    def audio(self, channel: str, samples: np.ndarray, sample_rate: int, channels: int) -> None: ...

    def send_hello(self) -> Hello | None: ...

    def media_time(self) -> float | None: ...

    def counters(self) -> dict[str, int]: ...


def pcm_samples(request: Audio) -> np.ndarray:
    """The request's PCM as an int16 or float32 array; raises ProtocolError('bad_audio')."""
    dtype = np.dtype("<i2") if request.format == "s16" else np.dtype("<f4")
    frame_bytes = dtype.itemsize * request.channels
    if len(request.pcm) == 0 or len(request.pcm) % frame_bytes:
        raise ProtocolError(
            "bad_audio",
            f"pcm has {len(request.pcm)} bytes, not a positive multiple of {frame_bytes} "
            f"({request.format}, {request.channels} channel(s))",
            "audio",
            request.id,
        )
    samples = np.frombuffer(request.pcm, dtype)
    if dtype.kind == "f" and not np.isfinite(samples).all():
        raise ProtocolError("bad_audio", "pcm has NaN or infinite samples", "audio", request.id)
    return samples


def _receive(sock: zmq.Socket) -> tuple[list[zmq.Frame], int]:
    """The next message's first ``MAX_REQUEST_FRAMES`` frames and its number of frames.

    Frames are read one at a time without copying; those past the first ``MAX_REQUEST_FRAMES``
    are released as soon as they are read, so a message of many frames costs no Python memory.
    Raises ``zmq.Again`` when no message is waiting.
    """
    frame = sock.recv(zmq.NOBLOCK, copy=False)
    kept = [frame]
    count = 1
    while frame.more:  # libzmq delivers a message whole: the rest is already here
        frame = sock.recv(zmq.NOBLOCK, copy=False)
        count += 1
        if count <= MAX_REQUEST_FRAMES:
            kept.append(frame)
    return kept, count


class ControlServer:
    """Serves control and audio requests for ``handler`` on a background thread.

    Args:
        handler: what the requests act on (see :class:`ControlHandler`).
        control: endpoint of the control socket (None: no control socket).
        audio: endpoint of the audio input socket (None: no audio socket).
        curve: CURVE keys, for encrypted use beyond localhost.
    """

    def __init__(
        self,
        handler: ControlHandler,
        control: str | None = "tcp://127.0.0.1:5556",
        audio: str | None = None,
        *,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,
    ):
        self.handler = handler
        self._ctx = context or zmq.Context.instance()
        self.counts: collections.Counter[str] = collections.Counter()
        self._sockets: dict[zmq.Socket, tuple[tuple[str, ...], int]] = {}
        self.control_endpoint = self.audio_endpoint = None
        try:
            if control is not None:
                self.control_endpoint = self._open(
                    control, CONTROL_COMMANDS, MAX_CONTROL_BYTES, curve
                )
            if audio is not None:
                self.audio_endpoint = self._open(audio, AUDIO_COMMANDS, MAX_AUDIO_BYTES, curve)
        except BaseException:
            self._close_sockets()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="infp-control", daemon=True)
        self._cancel_stop_at_exit = stop_at_exit(self, ControlServer.close)
        self._thread.start()

    def _open(self, endpoint: str, commands: tuple[str, ...], limit: int, curve) -> str:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # A hard cap per frame far above the soft limit: a peer sending a larger frame is
        # disconnected by libzmq before the bytes are buffered; a payload between the two gets a
        # too_large reply. It bounds each frame, not how many a message has (see _receive).
        sock.setsockopt(zmq.MAXMSGSIZE, FRAME_LIMIT_FACTOR * limit)
        sock.setsockopt(zmq.RCVHWM, RCVHWM)
        sock.setsockopt(zmq.SNDHWM, SNDHWM)
        self._sockets[sock] = (commands, limit)
        return bind(sock, endpoint, curve)

    # ------------------------------------------------------------------ serving
    def _run(self) -> None:
        poller = zmq.Poller()
        for sock in self._sockets:
            poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                ready = dict(poller.poll(100))
            except zmq.ZMQError:
                return
            for sock in ready:
                # Bounded batch per socket so a flood on one cannot starve the other.
                for _ in range(64):
                    try:
                        frames, count = _receive(sock)
                    except zmq.Again:
                        break
                    except zmq.ZMQError:
                        return
                    self._serve(sock, frames, count)

    def _serve(self, sock: zmq.Socket, frames: list[zmq.Frame], count: int) -> None:
        """Answer one message: its first ``MAX_REQUEST_FRAMES`` frames, ``count`` frames in all."""
        commands, limit = self._sockets[sock]
        envelope = [frames[0].bytes]  # the identity the ROUTER put in front
        rest = frames[1:]
        if rest and len(rest[0]) == 0:  # a REQ client's delimiter; DEALER clients may send it too
            envelope.append(b"")
            rest = rest[1:]
        payloads = count - len(envelope)
        self.counts["requests"] += 1
        request = None
        try:
            if payloads != 1:
                raise ProtocolError(
                    "malformed", f"expected one payload frame after the envelope, got {payloads}"
                )
            # Decoded from the frame's own memory: a payload over the limit is never copied.
            request = decode_request(rest[0].buffer, limit)
            if request.cmd not in commands:
                raise ProtocolError(
                    "unknown_cmd",
                    f"this socket takes {', '.join(commands)}; {request.cmd!r} goes to the "
                    + ("audio socket" if request.cmd == "audio" else "control socket"),
                    request.cmd,
                    request.id,
                )
            reply = self._dispatch(request)
        except ProtocolError as e:
            reply = self._error(e.code, str(e), e.cmd, e.id)
        except Exception as e:
            cmd, id = (request.cmd, request.id) if request is not None else (None, None)
            if isinstance(e, ValueError):  # e.g. a style reference of the wrong latent size
                reply = self._error("invalid", str(e), cmd, id)
            else:  # a valid request the handler could not carry out
                log.warning("control request failed: %r", e)
                reply = self._error("failed", f"{type(e).__name__}: {e}", cmd, id)
        try:
            sock.send_multipart([*envelope, encode(reply)], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            self.counts["unsent_replies"] += 1  # the client is gone or not reading: fine

    def _error(self, code: str, message: str, cmd: str | None, id) -> Reply:
        self.counts["errors"] += 1
        self.counts[f"error_{code}"] += 1
        return Reply(ok=False, cmd=cmd, id=id, error=code, message=message[:500])

    def _dispatch(self, request) -> Reply:
        h = self.handler
        ok = Reply(ok=True, cmd=request.cmd, id=request.id)
        if isinstance(request, Audio):
            samples = pcm_samples(request)
            from ..audio import AudioFormatError

            try:
                h.audio(request.channel, samples, request.rate, request.channels)
            except AudioFormatError as e:
                raise ProtocolError("bad_audio", str(e), "audio", request.id) from None
        elif isinstance(request, Ping):
            ok.time = time.time()
            ok.t = h.media_time()
        elif isinstance(request, Reset):
            h.reset()
        elif isinstance(request, Interrupt):
            h.interrupt()
        elif isinstance(request, Style):
            h.set_style(self._style_reference(request))
        elif isinstance(request, HelloRequest):
            ok.hello = h.send_hello()
        elif isinstance(request, Stats):
            ok.stats = {**dict(self.counts), **h.counters()}
        self.counts[request.cmd] += 1
        return ok

    @staticmethod
    def _style_reference(request: Style) -> np.ndarray | None:
        if request.reference is None:
            return None
        if request.frames is None:
            raise ProtocolError("invalid", "style: 'frames' is required with 'reference'", "style")
        values = len(request.reference) // 4
        if len(request.reference) % 4 or values % request.frames or values == 0:
            raise ProtocolError(
                "invalid",
                f"style: reference has {len(request.reference)} bytes, not frames "
                f"({request.frames}) * latent_size float32 values",
                "style",
                request.id,
            )
        ref = np.frombuffer(request.reference, "<f4").reshape(request.frames, -1)
        if not np.isfinite(ref).all():
            raise ProtocolError("invalid", "style: reference has NaN or inf", "style", request.id)
        return ref.astype(np.float32)

    # ------------------------------------------------------------------ lifecycle
    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)

    def close(self) -> None:
        """Stop serving and close the sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._cancel_stop_at_exit()
        self._close_sockets()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
