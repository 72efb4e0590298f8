"""The commands ``infp-sdk live`` and ``infp-sdk devices``: options, config files, setup and the
run loop around a :class:`~infp_sdk.live.Pipeline`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..audio.sources import AudioDeviceError, DeviceSource, WavFileSource
from ..motion import FPS
from .pipeline import Pipeline

# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "model": "default",
    "backend": "auto",
    "device": "auto",
    "hop": None,
    "seed": 0,
    "threads": None,
    "portrait": None,
    "own": "mic",
    "partner": "none",
    "loop": False,
    "agent": "agent",
    "zmq": None,
    "control": None,
    "audio_in": None,
    "frames": None,
    "curve_secret": None,
    "curve_clients": None,
    "virtualcam": False,
    "camera_size": "512x512",
    "camera_format": "rgb",
    "camera_device": None,
    "vmc": None,
    "livelink": None,
    "livelink_subject": "infp",
    "mp4": None,
    "fps": FPS,
    "no_pace": False,
    "latency": 0.06,
    "duration": None,
    "status_interval": None,
}
AUDIO_IN_DEFAULT = "tcp://127.0.0.1:5557"

# What a config file may give for each option (the CLI flags' types); a str option that is also a
# bare flag (--vmc, --livelink) takes true for its default target.
_INT_OPTIONS = ("hop", "seed", "threads")
_FLOAT_OPTIONS = ("fps", "latency", "duration", "status_interval")
_BOOL_OPTIONS = ("loop", "virtualcam", "no_pace")
_STR_OR_TRUE_OPTIONS = ("vmc", "livelink")


def _check_config_types(path: str, data: dict[str, Any]) -> None:
    """Raise LiveError naming the file, the option and the expected type for a mistyped value."""
    for key, value in data.items():
        if key in _INT_OPTIONS:
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif key in _FLOAT_OPTIONS:
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif key in _BOOL_OPTIONS:
            ok, want = isinstance(value, bool), "true or false"
        elif key in _STR_OR_TRUE_OPTIONS:
            ok, want = isinstance(value, str) or value is True, '"HOST:PORT" or true'
        else:
            ok, want = isinstance(value, str), "a string"
        if not ok and value is not None:
            raise LiveError(f"config {path}: {key} must be {want}, got {value!r}")


class LiveError(Exception):
    """A setup problem, printed as one line (no traceback)."""


def _load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LiveError(f"cannot read config {path}: {e}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except Exception as e:
        raise LiveError(f"config {path} is not valid {p.suffix or 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise LiveError(f"config {path} must be a table/object of options")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise LiveError(
            f"config {path}: unknown option(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(DEFAULTS))
        )
    _check_config_types(path, data)
    return data


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Flags given on the command line > the config file > defaults."""
    config = _load_config(args.config) if args.config else {}
    return {
        k: (getattr(args, k) if getattr(args, k, None) is not None else config.get(k, default))
        for k, default in DEFAULTS.items()
    }


def _host_port(value: str | bool, default_port: int, what: str) -> tuple[str, int]:
    if value is True or value == "":
        return "127.0.0.1", default_port
    text = str(value)
    host, _, port = text.rpartition(":")
    if not host:
        host, port = (text, str(default_port)) if not port.isdigit() else ("127.0.0.1", port)
    if not port.isdigit():
        raise LiveError(f"{what}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _make_agent(opts: dict[str, Any]):
    from .. import Agent

    portrait = None
    if opts["portrait"]:
        try:
            from ..face import load_portrait
        except ImportError as e:
            raise LiveError(f"--portrait: portrait rendering is not available ({e})") from None
        portrait = load_portrait(opts["portrait"])
    try:
        return Agent(
            portrait=portrait,
            model=opts["model"],
            device=opts["device"],
            backend=opts["backend"],
            hop=opts["hop"],
            seed=opts["seed"],
            threads=opts["threads"],
        )
    except NotImplementedError as e:
        raise LiveError(f"--portrait: {e}") from None


def _add_source(spec: str, channel: str, pipeline: Pipeline, opts) -> bool:
    """Start the source named by ``spec``; returns True when the channel comes over ZeroMQ."""
    spec = str(spec)
    if spec in ("none", "silence", ""):
        return False
    if spec == "zmq":
        pipeline.mixer.set_max_buffered(channel, 60.0)
        return True
    if spec == "mic" or spec.startswith("device:"):
        device = None if spec == "mic" else spec.split(":", 1)[1]
        src = DeviceSource(device, pipeline.mixer, channel)
        pipeline.mixer.set_max_buffered(channel, 0.5)  # sound card clock drift: keep it short
        pipeline.sources.append(src.start())
        return False
    path = spec.split(":", 1)[1] if spec.startswith("file:") else spec
    if not Path(path).exists():
        raise LiveError(
            f"--{channel} {spec!r}: not a file, and not one of mic, device:NAME, zmq, none"
        )
    source = WavFileSource(path, pipeline.mixer, channel, loop=opts["loop"])
    pipeline.sources.append(source.start())
    return False


def _curve(opts):
    if not opts["curve_secret"]:
        return None
    from ..io import CurveKeys

    return CurveKeys(opts["curve_secret"], opts["curve_clients"])


def _build_outputs(opts, agent, clock) -> tuple[list, Any]:
    """Sinks wrapped in Outputs; returns (outputs, publisher or None)."""
    from ..io.sinks import Output

    fps = float(opts["fps"])
    outputs, publisher = [], None
    needs_image = [
        name
        for name, on in (
            ("--virtualcam", opts["virtualcam"]),
            ("--mp4", opts["mp4"]),
            ("--frames", opts["frames"]),
        )  # fmt: skip
        if on
    ]
    if needs_image and not opts["portrait"]:
        from ..io.publisher import NO_IMAGE_HINT

        raise LiveError(f"{', '.join(needs_image)}: {NO_IMAGE_HINT}")
    try:
        if opts["zmq"]:
            from ..io import MotionPublisher

            publisher = MotionPublisher(
                opts["zmq"],
                agent=opts["agent"],
                latent_size=agent.latent_size,
                fps=fps,
                frame_format=opts["frames"],
                curve=_curve(opts),
            )
            outputs.append(Output(publisher, fps, clock, name="zmq"))
        if opts["vmc"]:
            from ..io.vmc import VMC_PORT, VMCSink

            host, port = _host_port(opts["vmc"], VMC_PORT, "--vmc")
            outputs.append(Output(VMCSink(host, port), fps, clock, name="vmc"))
        if opts["livelink"]:
            from ..io.livelink import LIVE_LINK_PORT, LiveLinkFaceSink

            host, port = _host_port(opts["livelink"], LIVE_LINK_PORT, "--livelink")
            sink = LiveLinkFaceSink(host, port, subject=opts["livelink_subject"], fps=fps)
            outputs.append(Output(sink, fps, clock, name="livelink"))
        if opts["virtualcam"]:
            from ..io.camera import VirtualCameraSink

            try:
                w, h = (int(v) for v in str(opts["camera_size"]).lower().split("x"))
            except ValueError:
                raise LiveError(
                    f"--camera-size: expected WxH, got {opts['camera_size']!r}"
                ) from None
            cam = VirtualCameraSink(
                w, h, fps, fmt=opts["camera_format"], device=opts["camera_device"]
            )
            outputs.append(Output(cam, fps, clock, name="virtualcam"))
        if opts["mp4"]:
            from ..io.file import VideoFileSink

            outputs.append(Output(VideoFileSink(opts["mp4"], fps), fps, clock, name="mp4"))
    except BaseException:
        for out in outputs:
            out.close()
        raise
    return outputs, publisher


class SetupInterrupted(BaseException):
    """Raised by ``infp-sdk live``'s signal handler while the pipeline is still being set up
    (loading or exporting the model can take seconds), so a signal stops it at once; what was
    already made is closed on the way out."""


def run_live(
    opts: dict[str, Any],
    stop: threading.Event | None = None,
    log=None,
    running: threading.Event | None = None,
) -> int:
    """Run the live pipeline until ``stop`` is set (or ``duration`` passes); returns 0.

    ``running`` is set once setup is over and frames start to flow."""
    from ..io import ControlServer
    from ..io.sinks import PlayoutClock

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    stop = stop or threading.Event()
    log(f"live: loading {opts['model']} model" + (" and portrait" if opts["portrait"] else ""))
    agent = _make_agent(opts)
    clock = None if opts["no_pace"] else PlayoutClock()
    outputs: list = []
    server = None
    pipeline = None
    try:
        outputs, publisher = _build_outputs(opts, agent, clock)
        if not outputs:
            log("live: no sinks given (--zmq, --vmc, --livelink, --virtualcam, --mp4): "
                "frames are generated and dropped")  # fmt: skip
        pipeline = Pipeline(agent, outputs, clock=clock, publisher=publisher,
                            latency=float(opts["latency"]))  # fmt: skip
        zmq_channels = [
            ch for ch in ("own", "partner") if _add_source(opts[ch], ch, pipeline, opts)
        ]
        audio_in = opts["audio_in"] or (AUDIO_IN_DEFAULT if zmq_channels else None)
        if opts["control"] or audio_in:
            server = ControlServer(pipeline, opts["control"], audio_in, curve=_curve(opts))
        if publisher is not None:
            # announce the sockets in hello (they were bound after the publisher)
            if server is not None:
                publisher.announce(control=server.control_endpoint, audio=server.audio_endpoint)
            log(f"live: motion on {publisher.endpoint} (topics hello.{opts['agent']}, "
                f"motion.{opts['agent']})")  # fmt: skip
        if server is not None and server.control_endpoint:
            log(f"live: control on {server.control_endpoint}")
        if server is not None and server.audio_endpoint:
            log(f"live: audio input on {server.audio_endpoint}")
        for out in outputs:
            if out.name in ("vmc", "livelink"):
                log(f"live: {out.name} to {out.sink.address[0]}:{out.sink.address[1]}")
        pipeline.start()
        if running is not None:
            running.set()
        started = time.monotonic()
        interval = opts["status_interval"] or (1.0 if sys.stderr.isatty() else 5.0)
        next_status = started + interval
        states = {id(part): part.state for part in pipeline.watched()}
        while not stop.is_set():
            pipeline.step(timeout=0.05)
            for part in pipeline.watched():  # a failing sink or device is reported, not fatal
                if part.state != states[id(part)]:
                    states[id(part)] = part.state
                    log(f"live: {part.health()}")
            now = time.monotonic()
            if now >= next_status:
                line = pipeline.status(now - started)
                if sys.stderr.isatty():
                    print("\r" + line, end="", file=sys.stderr, flush=True)
                else:
                    log(line)
                next_status += interval
            if opts["duration"] is not None and now - started >= float(opts["duration"]):
                break
        if sys.stderr.isatty():
            print(file=sys.stderr)
        log("live: stopping; " + pipeline.status(time.monotonic() - started))
        return 0
    finally:
        if pipeline is not None:
            for src in pipeline.sources:
                src.stop()
            pipeline.mixer.stop()
        if server is not None:
            server.close()
        for out in outputs:
            out.close()
        agent.close()


def _cmd_live(args: argparse.Namespace) -> int:
    from ..audio import AudioFormatError
    from ..io.sinks import MissingExtraError

    stop, running = threading.Event(), threading.Event()

    def _on_signal(signum, _frame):
        stop.set()
        if not running.is_set():
            raise SetupInterrupted  # still loading: leave now rather than after the setup

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            code = run_live(_options(args), stop, running=running)
        except SetupInterrupted:
            code = 0
        print("live: stopped cleanly", file=sys.stderr, flush=True)
        return code
    except (LiveError, AudioDeviceError, MissingExtraError, AudioFormatError, OSError) as e:
        print(f"infp-sdk live: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from ..io.camera import VirtualCameraError

        if isinstance(e, VirtualCameraError):
            print(f"infp-sdk live: error: {e}", file=sys.stderr)
            return 2
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _cmd_devices(args: argparse.Namespace) -> int:
    from ..audio.sources import list_devices

    try:
        devices = list_devices()
    except AudioDeviceError as e:
        print(f"infp-sdk devices: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no audio devices found (PortAudio sees none: check that a sound card, a USB "
              "microphone or a virtual/loopback device is present)")  # fmt: skip
        return 0
    print(f"{'#':>3}  {'in':>3} {'out':>3}  {'rate':>6}  {'api':<12} name")
    for d in devices:
        mark = (" <default in" if d["default_input"] else "") + (
            " <default out" if d["default_output"] else ""
        )
        rate = f"{d['default_samplerate']:>6.0f}"
        print(f"{d['index']:>3}  {d['inputs']:>3} {d['outputs']:>3}  {rate}  "
              f"{d['hostapi'][:12]:<12} {d['name']}{mark}")  # fmt: skip
    print("\nuse an input with --own/--partner device:NAME (any part of the name) or device:INDEX")
    return 0


def register_cli(sub) -> None:
    """Add the ``live`` and ``devices`` commands to the ``infp-sdk`` parser."""
    p = sub.add_parser(
        "live",
        help="real time: audio sources -> agent -> ZeroMQ / VMC / Live Link / virtual camera",
        description="Run an agent on live audio and stream its motion. Sources (--own, "
        "--partner): mic, device:NAME or device:INDEX, a WAV file (played at real-time pace), "
        "zmq (the audio input socket), none. Every option can also come from --config (TOML or "
        'JSON, keys named like the options: own = "mic"); flags win. Stop with Ctrl-C or '
        "SIGTERM. See docs/live.md.",
    )
    add = p.add_argument
    add("--config", help="TOML or JSON file of options")
    add("--own", help="the agent's own voice: mic | device:NAME | FILE.wav | zmq | none "
        "(default mic)")  # fmt: skip
    add("--partner", help="the partner's voice, same choices (default none)")
    add("--loop", action="store_true", default=None, help="loop WAV sources")
    add("--portrait", help="portrait image, for frame sinks (virtual camera, mp4, --frames)")
    add("--model", help="checkpoint path or bundled name (default: default)")
    add("--backend", choices=["auto", "torch", "onnxruntime"])
    add("--device", help="auto | cpu | cuda[:N]")
    add("--hop", type=int, help="frames per model call (lower = less latency, more CPU)")
    add("--seed", type=int)
    add("--threads", type=int, help="CPU threads of the model (default: the cores available)")
    add("--agent", help="agent name, the topic suffix (default: agent)")
    add("--zmq", metavar="ENDPOINT", help="publish motion here, e.g. tcp://127.0.0.1:5555")
    add("--control", metavar="ENDPOINT", help="control socket, e.g. tcp://127.0.0.1:5556")
    add("--audio-in", metavar="ENDPOINT", help=f"audio input socket (default {AUDIO_IN_DEFAULT} "
        "when a source is zmq)")  # fmt: skip
    add("--frames", choices=["jpeg", "rgb"], help="also publish rendered frames (frame.<agent>)")
    add("--curve-secret", metavar="FILE", help="server certificate (CURVE encryption)")
    add("--curve-clients", metavar="DIR", help="only these clients' public certificates")
    add("--virtualcam", action="store_true", default=None, help="show frames on a virtual camera")
    add("--camera-size", metavar="WxH", help="virtual camera size (default 512x512)")
    add("--camera-format", help="rgb | bgr | i420 | nv12 | yuyv | uyvy | ... (default rgb)")
    add("--camera-device", help="e.g. /dev/video10")
    add("--vmc", metavar="HOST:PORT", nargs="?", const=True, help="VMC/OSC receiver "
        "(default 127.0.0.1:39539)")  # fmt: skip
    add("--livelink", metavar="HOST:PORT", nargs="?", const=True, help="Live Link Face target "
        "(default 127.0.0.1:11111)")  # fmt: skip
    add("--livelink-subject", help="Live Link subject name (default infp)")
    add("--mp4", metavar="PATH", help="record rendered frames to an mp4 file")
    add("--fps", type=float, help="output frame rate for every sink (25, or 30/60 interpolated)")
    add("--no-pace", action="store_true", default=None, help="send frames as soon as they are "
        "made instead of evenly at their media time")  # fmt: skip
    add("--latency", type=float, help="audio jitter buffer in seconds (default 0.06)")
    add("--duration", type=float, help="stop after this many seconds")
    add("--status-interval", type=float, help="seconds between status lines")
    p.set_defaults(func=_cmd_live)

    d = sub.add_parser("devices", help="list audio devices (for --own/--partner device:NAME)")
    d.add_argument("--json", action="store_true", help="as JSON")
    d.set_defaults(func=_cmd_devices)
