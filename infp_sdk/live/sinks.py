"""The built-in sinks of ``infp-sdk live``, one registry entry each: the ZeroMQ publisher, VMC,
Live Link Face, the virtual camera and the mp4 file.

The sinks themselves live in :mod:`infp_sdk.io`; an entry only says how the command reaches
one (its flags, defaults, factory). Factories import their sink's module when they run, so an
optional package (python-osc, pyvirtualcam) is needed only by a run that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .options import LiveError, Option
from .registry import SinkContext, SinkEntry, register_sink

__all__ = ["curve_keys", "host_port"]


def curve_keys(options: Mapping[str, Any]) -> Any:
    """The CURVE keys for every socket of the run (publisher, control, audio input), or None."""
    if not options.get("curve_secret"):
        return None
    from ..io import CurveKeys

    return CurveKeys(options["curve_secret"], options.get("curve_clients"))


def host_port(value: str | bool, default_port: int, what: str) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``PORT`` or True (a bare flag) -> (host, port)."""
    if value is True or value == "":
        return "127.0.0.1", default_port
    text = str(value)
    host, _, port = text.rpartition(":")
    if not host:
        host, port = (text, str(default_port)) if not port.isdigit() else ("127.0.0.1", port)
    if not port.isdigit():
        raise LiveError(f"{what}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _udp_target(sink: Any, _options: Mapping[str, Any]) -> str:
    host, port = sink.address
    return f"{host}:{port}"


# ----------------------------------------------------------------------------------------------
# ZeroMQ: hello / motion / frame topics (docs/protocol.md)
# ----------------------------------------------------------------------------------------------


def _open_zmq(ctx: SinkContext) -> Any:
    from ..io import MotionPublisher

    return MotionPublisher(
        ctx["zmq"],
        agent=ctx["agent"],
        latent_size=ctx.latent_size,
        fps=ctx.fps,
        frame_format=ctx["frames"],
        curve=curve_keys(ctx.options),
    )


register_sink(
    SinkEntry(
        name="zmq",
        title="motion over ZeroMQ (docs/protocol.md)",
        options=(
            Option(
                "--zmq", metavar="ENDPOINT", help="publish motion here, e.g. tcp://127.0.0.1:5555"
            ),
            Option(
                "--frames",
                choices=("jpeg", "rgb"),
                needs_image=True,
                help="also publish rendered frames (frame.<agent>)",
            ),
        ),
        factory=_open_zmq,
        describe=lambda sink, opts: (
            f"motion on {sink.endpoint} (topics hello.{opts['agent']}, motion.{opts['agent']})"
        ),
    )
)

# ----------------------------------------------------------------------------------------------
# VMC over OSC/UDP (VSeeFace, VNyan, Warudo, ...)
# ----------------------------------------------------------------------------------------------


def _open_vmc(ctx: SinkContext) -> Any:
    from ..io.vmc import VMC_PORT, VMCSink

    host, port = host_port(ctx["vmc"], VMC_PORT, "--vmc")
    return VMCSink(host, port)


register_sink(
    SinkEntry(
        name="vmc",
        title="VMC/OSC to VSeeFace, VNyan, Warudo, ...",
        options=(
            Option(
                "--vmc",
                metavar="HOST:PORT",
                bare=True,
                help="VMC/OSC receiver (default 127.0.0.1:39539)",
            ),
        ),
        factory=_open_vmc,
        extra="vmc",
        describe=lambda sink, opts: f"vmc to {_udp_target(sink, opts)}",
    )
)

# ----------------------------------------------------------------------------------------------
# Live Link Face over UDP (Unreal, no plugin)
# ----------------------------------------------------------------------------------------------


def _open_livelink(ctx: SinkContext) -> Any:
    from ..io.livelink import LIVE_LINK_PORT, LiveLinkFaceSink

    host, port = host_port(ctx["livelink"], LIVE_LINK_PORT, "--livelink")
    return LiveLinkFaceSink(host, port, subject=ctx["livelink_subject"], fps=ctx.fps)


register_sink(
    SinkEntry(
        name="livelink",
        title="Live Link Face packets to Unreal",
        options=(
            Option(
                "--livelink",
                metavar="HOST:PORT",
                bare=True,
                help="Live Link Face target (default 127.0.0.1:11111)",
            ),
            Option(
                "--livelink-subject", default="infp", help="Live Link subject name (default infp)"
            ),
        ),
        factory=_open_livelink,
        describe=lambda sink, opts: f"livelink to {_udp_target(sink, opts)}",
    )
)

# ----------------------------------------------------------------------------------------------
# Virtual camera (Zoom, Meet, Teams, OBS)
# ----------------------------------------------------------------------------------------------


def _open_virtualcam(ctx: SinkContext) -> Any:
    from ..io.camera import VirtualCameraError, VirtualCameraSink

    try:
        w, h = (int(v) for v in str(ctx["camera_size"]).lower().split("x"))
    except ValueError:
        raise LiveError(f"--camera-size: expected WxH, got {ctx['camera_size']!r}") from None
    try:
        return VirtualCameraSink(
            w, h, ctx.fps, fmt=ctx["camera_format"], device=ctx["camera_device"]
        )
    except VirtualCameraError as e:
        # no backend: a setup problem like any other, one line naming what to install
        raise LiveError(str(e)) from None


register_sink(
    SinkEntry(
        name="virtualcam",
        title="rendered frames as a webcam",
        options=(
            Option(
                "--virtualcam", default=False, type=bool, help="show frames on a virtual camera"
            ),
            Option(
                "--camera-size",
                default="512x512",
                metavar="WxH",
                help="virtual camera size (default 512x512)",
            ),
            Option(
                "--camera-format",
                default="rgb",
                help="rgb | bgr | i420 | nv12 | yuyv | uyvy | ... (default rgb)",
            ),
            Option("--camera-device", help="e.g. /dev/video10"),
        ),
        factory=_open_virtualcam,
        needs_image=True,
        extra="camera",
    )
)

# ----------------------------------------------------------------------------------------------
# mp4 file
# ----------------------------------------------------------------------------------------------


def _open_mp4(ctx: SinkContext) -> Any:
    from ..io.file import VideoFileSink

    return VideoFileSink(ctx["mp4"], ctx.fps)


register_sink(
    SinkEntry(
        name="mp4",
        title="rendered frames to a video file (ffmpeg on PATH, or the extra)",
        options=(Option("--mp4", metavar="PATH", help="record rendered frames to an mp4 file"),),
        factory=_open_mp4,
        needs_image=True,
        extra="video",
    )
)
