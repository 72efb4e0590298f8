"""The built-in audio sources of ``infp-sdk live``, one registry entry each: a sound card (``mic``,
``device:NAME``), a WAV file, the ZeroMQ audio input socket (``zmq``) and none.

The sources themselves live in :mod:`infp_sdk.audio.sources`; sounddevice is imported only when
a sound card is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .options import LiveError, Option
from .registry import SourceContext, SourceEntry, register_source


def _open_device(ctx: SourceContext) -> Any:
    from ..audio.sources import DeviceSource

    device = None if ctx.spec == "mic" else ctx.spec.split(":", 1)[1]
    return DeviceSource(device, ctx.mixer, ctx.channel)


register_source(
    SourceEntry(
        name="device",
        title="a sound card input (sounddevice)",
        forms=("mic", "device:NAME"),
        help="mic, device:NAME or device:INDEX",
        accepts=lambda spec: spec == "mic" or spec.startswith("device:"),
        factory=_open_device,
        extra="audio",
        max_buffered=0.5,  # a sound card's clock drifts against ours: keep the buffer short
    )
)


def _open_wav(ctx: SourceContext) -> Any:
    from ..audio.sources import WavFileSource

    path = ctx.spec.split(":", 1)[1] if ctx.spec.startswith("file:") else ctx.spec
    if not Path(path).exists():
        raise LiveError(
            f"--{ctx.channel} {ctx.spec!r}: not a file, and not one of {ctx.alternatives}"
        )
    return WavFileSource(path, ctx.mixer, ctx.channel, loop=ctx["loop"])


register_source(
    SourceEntry(
        name="wav",
        title="a WAV file at real-time pace",
        forms=("FILE.wav",),
        help="a WAV file (played at real-time pace)",
        accepts=lambda spec: True,  # a path, or file:PATH; whether it exists is checked on open
        factory=_open_wav,
        fallback=True,
        options=(Option("--loop", default=False, type=bool, help="loop WAV sources"),),
    )
)

register_source(
    SourceEntry(
        name="zmq",
        title="the audio input socket",
        forms=("zmq",),
        help="zmq (the audio input socket)",
        accepts=lambda spec: spec == "zmq",
        factory=lambda ctx: None,  # the control server writes its audio into the mixer
        audio_socket=True,
        max_buffered=60.0,  # apps send TTS answers in one piece, faster than real time
    )
)

register_source(
    SourceEntry(
        name="none",
        title="silence",
        forms=("none",),
        help="none",
        accepts=lambda spec: spec in ("none", "silence", ""),
        factory=lambda ctx: None,
    )
)
