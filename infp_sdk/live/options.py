"""Options: one declaration per flag of ``infp-sdk live``, which is also a config-file key with
a type and a default. :data:`PIPELINE_OPTIONS` are the pipeline's own (agent, sockets, pacing);
sources and sinks declare theirs in their registry entries."""

from __future__ import annotations

import argparse
from dataclasses import KW_ONLY, dataclass
from typing import Any

from ..motion import FPS


class LiveError(Exception):
    """A setup problem, printed as one line (no traceback)."""


# ----------------------------------------------------------------------------------------------
# Option
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option: a command-line flag, a config-file key of the same name, a default.

    Args:
        flag: the flag, e.g. ``"--camera-size"``; the option's key (in a config file and in the
            options mapping) is the flag without dashes, ``-`` as ``_``: ``camera_size``.
        default: the value when neither the command line nor a config file gives one.
        type: ``str``, ``int``, ``float`` or ``bool`` (a switch: ``--flag`` alone means true).
        help, metavar, choices: as for ``argparse``.
        bare: the value of the flag given without a value (``--vmc`` alone: True, meaning the
            default target); None: the flag always takes a value.
        needs_image: when set, the run needs rendered frames (``--frames``), so a portrait.
    """

    flag: str
    _: KW_ONLY
    default: Any = None
    type: type = str
    help: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    bare: Any = None
    needs_image: bool = False

    def __post_init__(self) -> None:
        if not self.flag.startswith("--"):
            raise ValueError(f"an option's flag starts with '--', got {self.flag!r}")
        if self.type not in (str, int, float, bool):
            raise ValueError(f"{self.flag}: type must be str, int, float or bool")

    @property
    def key(self) -> str:
        """The name in a config file and in the options mapping (``camera_size``)."""
        return self.flag[2:].replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Add the flag to an argparse parser (or group).

        Its argparse default is None, meaning "not given", so that a config file, then
        :attr:`default`, fill in (see :func:`resolve`)."""
        if self.type is bool:
            parser.add_argument(self.flag, action="store_true", default=None, help=self.help)
            return
        kwargs: dict[str, Any] = {"help": self.help}
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        if self.choices is not None:
            kwargs["choices"] = list(self.choices)
        if self.type is not str:
            kwargs["type"] = self.type
        if self.bare is not None:
            kwargs.update(nargs="?", const=self.bare)
        parser.add_argument(self.flag, **kwargs)

    def expected(self, value: Any) -> str | None:
        """What a config file must give instead of ``value``, or None when ``value`` will do
        (None always does: it means the default)."""
        if value is None:
            return None
        if self.type is int:
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif self.type is float:
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif self.type is bool:
            ok, want = isinstance(value, bool), "true or false"
        elif self.bare is not None:
            ok, want = isinstance(value, str) or value is self.bare, f'"{self.metavar}" or true'
        else:
            ok, want = isinstance(value, str), "a string"
        return None if ok else want


AUDIO_IN_DEFAULT = "tcp://127.0.0.1:5557"

PIPELINE_OPTIONS: tuple[Option, ...] = (
    # --own's help lists the registered sources: the command writes it
    Option("--own", default="mic"),
    Option("--partner", default="none", help="the partner's voice, same choices (default none)"),
    Option("--portrait", help="portrait image, for frame sinks (virtual camera, mp4, --frames)"),
    Option("--model", default="default", help="checkpoint path or bundled name (default: default)"),
    Option("--backend", default="auto", choices=("auto", "torch", "onnxruntime")),
    Option("--device", default="auto", help="auto | cpu | cuda[:N]"),
    Option("--hop", type=int, help="frames per model call (lower = less latency, more CPU)"),
    Option("--seed", default=0, type=int),
    Option("--threads", type=int, help="CPU threads of the model (default 1)"),
    Option("--agent", default="agent", help="agent name, the topic suffix (default: agent)"),
    Option("--control", metavar="ENDPOINT", help="control socket, e.g. tcp://127.0.0.1:5556"),
    Option(
        "--audio-in",
        metavar="ENDPOINT",
        help=f"audio input socket (default {AUDIO_IN_DEFAULT} when a source is zmq)",
    ),
    Option("--curve-secret", metavar="FILE", help="server certificate (CURVE encryption)"),
    Option("--curve-clients", metavar="DIR", help="only these clients' public certificates"),
    Option(
        "--fps",
        default=FPS,
        type=float,
        help="output frame rate for every sink (25, or 30/60 interpolated)",
    ),
    Option(
        "--no-pace",
        default=False,
        type=bool,
        help="send frames as soon as they are made instead of evenly at their media time",
    ),
    Option(
        "--latency",
        default=0.06,
        type=float,
        help="audio jitter buffer in seconds (default 0.06)",
    ),
    Option("--duration", type=float, help="stop after this many seconds"),
    Option("--status-interval", type=float, help="seconds between status lines"),
)
