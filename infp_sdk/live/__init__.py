"""``infp-sdk live``: audio sources -> Agent -> sinks, in real time (and ``infp-sdk devices``).

    infp-sdk live --own mic --partner device:monitor --zmq tcp://127.0.0.1:5555 \\
        --vmc 127.0.0.1:39539

The pieces, each usable on its own from Python: sources write into an
:class:`~infp_sdk.audio.sources.AudioMixer`, which pushes both channels into the
:class:`~infp_sdk.Agent` on one real-time clock; :class:`Pipeline` takes the agent's frames and
hands them to each sink through an :class:`~infp_sdk.io.sinks.Output` (its own thread, optional
fps conversion, paced by a shared :class:`~infp_sdk.io.sinks.PlayoutClock`), serves the control
and audio sockets, and measures latency for the status line.

Sources and sinks are declared once, in :mod:`~infp_sdk.live.registry` (name, options, factory,
whether a sink needs rendered frames, the pip extra it needs); the built-in ones are in
:mod:`~infp_sdk.live.sources` and :mod:`~infp_sdk.live.sinks`. Adding one is one class and one
:func:`register_sink` / :func:`register_source` call (docs/live.md).
"""

from typing import Any

from . import sinks as _builtin_sinks  # noqa: F401  (registers the built-in sinks)
from . import sources as _builtin_sources  # noqa: F401  (registers the built-in sources)
from .command import DEFAULTS, SetupInterrupted, add_live_arguments, register_cli, run_live
from .options import AUDIO_IN_DEFAULT, PIPELINE_OPTIONS, LiveError, Option
from .pipeline import LatencyMeter, Pipeline
from .registry import (
    REGISTRY,
    Registry,
    SinkContext,
    SinkEntry,
    SourceContext,
    SourceEntry,
    register_sink,
    register_source,
    unregister,
)


def __getattr__(name: str) -> Any:
    # Sink and Source are defined in infp_sdk.io.sinks; importing infp_sdk.io loads pyzmq,
    # which `infp-sdk --help` and the other commands need not pay for.
    if name in ("Sink", "Source"):
        from ..io import sinks

        return getattr(sinks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUDIO_IN_DEFAULT",
    "DEFAULTS",
    "PIPELINE_OPTIONS",
    "REGISTRY",
    "LatencyMeter",
    "LiveError",
    "Option",
    "Pipeline",
    "Registry",
    "SetupInterrupted",
    "Sink",
    "SinkContext",
    "SinkEntry",
    "Source",
    "SourceContext",
    "SourceEntry",
    "add_live_arguments",
    "register_cli",
    "register_sink",
    "register_source",
    "run_live",
    "unregister",
]
