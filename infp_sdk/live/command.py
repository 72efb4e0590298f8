"""The commands ``infp-sdk live`` and ``infp-sdk devices``: options, config files, setup and the
run loop around a :class:`~infp_sdk.live.Pipeline`.

Nothing here names a source or a sink: flags, config keys, defaults, the outputs and their log
lines all come from the registry (:mod:`infp_sdk.live.registry`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..audio.sources import CHANNELS, AudioDeviceError
from .options import AUDIO_IN_DEFAULT, LiveError
from .pipeline import Pipeline
from .registry import REGISTRY, Registry, SinkContext
from .sinks import curve_keys

# ----------------------------------------------------------------------------------------------
# Options: flags given on the command line > the config file > the declared defaults
# ----------------------------------------------------------------------------------------------


class _Defaults(Mapping[str, Any]):
    """Every option's default, read from the registry when asked (so that a source or sink
    registered after import is in it too)."""

    def __init__(self, registry: Registry):
        self._registry = registry

    def __getitem__(self, key: str) -> Any:
        return self._registry.defaults()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.defaults())

    def __len__(self) -> int:
        return len(self._registry.defaults())

    def __repr__(self) -> str:
        return repr(self._registry.defaults())


DEFAULTS: Mapping[str, Any] = _Defaults(REGISTRY)
"""Every option of ``infp-sdk live`` and its default (the config file's keys)."""


def _load_config(path: str, registry: Registry = REGISTRY) -> dict[str, Any]:
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
    known = registry.defaults()
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise LiveError(
            f"config {path}: unknown option(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(known))
        )
    registry.check_config(path, data)
    return data


def _options(args: argparse.Namespace, registry: Registry = REGISTRY) -> dict[str, Any]:
    """Flags given on the command line > the config file > defaults."""
    config = _load_config(args.config, registry) if args.config else {}
    given = {k: getattr(args, k) for k in registry.defaults() if getattr(args, k, None) is not None}
    return registry.resolve({**config, **given})


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


def _open_sources(pipeline: Pipeline, opts: Mapping[str, Any], registry: Registry) -> bool:
    """Start the sources that ``--own`` and ``--partner`` name; returns True when one of them
    comes over the audio input socket."""
    audio_socket = False
    for channel in CHANNELS:
        entry, source = registry.open_source(str(opts[channel]), channel, pipeline.mixer, opts)
        if entry.max_buffered is not None:
            pipeline.mixer.set_max_buffered(channel, entry.max_buffered)
        if source is not None:
            pipeline.add_source(source)
        audio_socket = audio_socket or entry.audio_socket
    return audio_socket


def _open_outputs(opts: Mapping[str, Any], agent: Any, clock: Any, registry: Registry) -> list:
    """The sinks that ``opts`` switch on, each behind an Output (named as its entry)."""
    from ..io.sinks import Output

    needs_image = registry.image_flags(opts)
    if needs_image and not opts["portrait"]:
        from ..io.publisher import NO_IMAGE_HINT

        raise LiveError(f"{', '.join(needs_image)}: {NO_IMAGE_HINT}")
    ctx = SinkContext(opts, float(opts["fps"]), agent.latent_size)
    outputs: list = []
    try:
        # one at a time, each into its Output at once, so that a signal during setup leaves
        # nothing unclosed (Registry.open_sinks is the same for callers without Outputs)
        for entry in registry.sinks():
            if entry.wanted(opts):
                outputs.append(Output(entry.open(ctx), ctx.fps, clock, name=entry.name))
    except BaseException:
        for out in outputs:
            out.close()
        raise
    return outputs


def _sinks_with(outputs: list, method: str) -> list:
    """The sinks behind ``outputs`` that have ``method`` (optional sink methods, docs/live.md)."""
    return [out.sink for out in outputs if callable(getattr(out.sink, method, None))]


class SetupInterrupted(BaseException):
    """Raised by ``infp-sdk live``'s signal handler while the pipeline is still being set up
    (loading or exporting the model can take seconds), so a signal stops it at once; what was
    already made is closed on the way out."""


def run_live(
    opts: Mapping[str, Any],
    stop: threading.Event | None = None,
    log=None,
    running: threading.Event | None = None,
    *,
    registry: Registry = REGISTRY,
) -> int:
    """Run the live pipeline until ``stop`` is set (or ``duration`` passes); returns 0.

    ``opts`` has a value for every option of ``registry`` (see :data:`DEFAULTS`); ``running``
    is set once setup is over and frames start to flow."""
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
        outputs = _open_outputs(opts, agent, clock, registry)
        if not outputs:
            flags = ", ".join(entry.switch.flag for entry in registry.sinks())
            log(f"live: no sinks given ({flags}): frames are generated and dropped")
        # the control socket's `hello` request asks the sink that publishes hello (ZeroMQ)
        publisher = next(iter(_sinks_with(outputs, "send_hello")), None)
        pipeline = Pipeline(agent, outputs, clock=clock, publisher=publisher,
                            latency=float(opts["latency"]))  # fmt: skip
        audio_socket = _open_sources(pipeline, opts, registry)
        audio_in = opts["audio_in"] or (AUDIO_IN_DEFAULT if audio_socket else None)
        if opts["control"] or audio_in:
            server = ControlServer(pipeline, opts["control"], audio_in, curve=curve_keys(opts))
            # sinks that announce the sockets (ZeroMQ's hello) learn them now: they were bound
            # after the sinks were made
            for sink in _sinks_with(outputs, "announce"):
                sink.announce(control=server.control_endpoint, audio=server.audio_endpoint)
        for out in outputs:
            describe = registry.sink(out.name).describe
            if describe is not None:
                log(f"live: {describe(out.sink, opts)}")
        if server is not None and server.control_endpoint:
            log(f"live: control on {server.control_endpoint}")
        if server is not None and server.audio_endpoint:
            log(f"live: audio input on {server.audio_endpoint}")
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
            pipeline.stop_sources()
        if server is not None:
            server.close()
        for out in outputs:
            out.close()
        agent.close()


def _cmd_live(args: argparse.Namespace, registry: Registry = REGISTRY) -> int:
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
            code = run_live(_options(args, registry), stop, running=running, registry=registry)
        except SetupInterrupted:
            code = 0
        print("live: stopped cleanly", file=sys.stderr, flush=True)
        return code
    except (LiveError, AudioDeviceError, MissingExtraError, AudioFormatError, OSError) as e:
        print(f"infp-sdk live: error: {e}", file=sys.stderr)
        return 2
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


def add_live_arguments(parser: argparse.ArgumentParser, registry: Registry = REGISTRY) -> None:
    """Add every option of ``registry`` to ``parser``: the pipeline's, then a group per source
    and sink that has options."""
    forms = " | ".join(f for entry in registry.sources() for f in entry.forms)
    for option in registry.core:
        if option.key == "own":  # its choices are the registered sources
            help = f"the agent's own voice: {forms} (default {option.default})"
            option = dataclasses.replace(option, help=help)
        option.add_to(parser)
    registry.add_arguments(parser)


def register_cli(sub, registry: Registry = REGISTRY) -> None:
    """Add the ``live`` and ``devices`` commands to the ``infp-sdk`` parser."""
    sources = ", ".join(entry.help or entry.name for entry in registry.sources())
    p = sub.add_parser(
        "live",
        help="real time: audio sources -> agent -> ZeroMQ / VMC / Live Link / virtual camera",
        description="Run an agent on live audio and stream its motion. Sources (--own, "
        f"--partner): {sources}. Every option can also come from --config (TOML or "
        'JSON, keys named like the options: own = "mic"); flags win. Stop with Ctrl-C or '
        "SIGTERM. See docs/live.md.",
    )
    p.add_argument("--config", help="TOML or JSON file of options")
    add_live_arguments(p, registry)
    p.set_defaults(func=lambda args: _cmd_live(args, registry))

    d = sub.add_parser("devices", help="list audio devices (for --own/--partner device:NAME)")
    d.add_argument("--json", action="store_true", help="as JSON")
    d.set_defaults(func=_cmd_devices)
