"""``infp-sdk live``: audio sources -> Agent -> sinks, in real time (and ``infp-sdk devices``).

    infp-sdk live --own mic --partner device:monitor --zmq tcp://127.0.0.1:5555 \\
        --vmc 127.0.0.1:39539

The pieces, each usable on its own from Python: sources write into an
:class:`~infp_sdk.audio.sources.AudioMixer`, which pushes both channels into the
:class:`~infp_sdk.Agent` on one real-time clock; :class:`Pipeline` takes the agent's frames and
hands them to each sink through an :class:`~infp_sdk.io.sinks.Output` (its own thread, optional
fps conversion, paced by a shared :class:`~infp_sdk.io.sinks.PlayoutClock`), serves the control
and audio sockets, and measures latency for the status line.
"""

from .command import (
    AUDIO_IN_DEFAULT,
    DEFAULTS,
    LiveError,
    SetupInterrupted,
    register_cli,
    run_live,
)
from .pipeline import LatencyMeter, Pipeline

__all__ = [
    "AUDIO_IN_DEFAULT",
    "DEFAULTS",
    "LatencyMeter",
    "LiveError",
    "Pipeline",
    "SetupInterrupted",
    "register_cli",
    "run_live",
]
