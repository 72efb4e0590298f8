"""The wire protocol: pydantic models of every message, msgpack encoding, the JSON Schema.

These models are the one source of truth for docs/protocol.md, docs/protocol.schema.json and the
engine clients. Rules every client follows:

* A payload is a msgpack map. Clients ignore keys they do not know, so adding a key is not a
  breaking change and does not bump :data:`PROTOCOL_VERSION`.
* ``v`` is the protocol version. It changes only when a key changes meaning or type or a required
  key is removed; a client drops messages whose ``v`` it does not know.
* Any msgpack number may stand where a number is expected (an int where a float is expected too).

Encoding is deterministic: keys in the order the models declare them, float arrays as msgpack
float32, ``t`` as float64, absent optional keys left out. The same message always gives the same
bytes, so conformance vectors for other languages can be generated from this encoder.

    python -m infp_sdk.io --schema > docs/protocol.schema.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ..motion import ARKIT_BLENDSHAPES, FPS, GAZE_FIELDS, HEAD_FIELDS, Frame

PROTOCOL_VERSION = 1
"""Bumped only for incompatible changes (see the module docstring)."""

MAX_CONTROL_BYTES = 64 * 1024
"""Largest control request accepted (a style reference of ~250 frames of 62 floats fits)."""
MAX_AUDIO_BYTES = 1024 * 1024
"""Largest audio request accepted: 1 MiB, e.g. 16 s of 16 kHz int16 or 2.7 s of 48 kHz float32."""


class F32:
    """Annotation marker: encode this float (or list of floats) as msgpack float32."""


class _Message(BaseModel):
    # Unknown keys are ignored, never an error: newer peers may send more.
    model_config = ConfigDict(extra="ignore", frozen=False)

    v: int = Field(PROTOCOL_VERSION, description="protocol version")


# ----------------------------------------------------------------------------------------------
# Published messages (PUB socket): topic "<kind>.<agent>", payload one of these maps.
# ----------------------------------------------------------------------------------------------


class Hello(_Message):
    """Topic ``hello.<agent>``: what a subscriber needs to read ``motion``.

    Sent when the publisher starts, every 2 s, when a subscriber subscribes, and on a ``hello``
    control request.
    """

    agent: str = Field(description="agent name, also the topic suffix")
    sdk: str = Field(description="infp-sdk version of the publisher")
    fps: float = Field(description="rate of motion messages (frames per second)")
    blendshapes: list[str] = Field(
        description="names of the values in motion.blendshapes, in order (ARKit names)"
    )
    latent_size: int = Field(description="number of float32 values in motion.latent")
    motion_space: str = Field("rig", description="'rig' (the latent is the normalised rig vector)")
    head: list[str] = Field(list(HEAD_FIELDS), description="names of the values in motion.head")
    gaze: list[str] = Field(list(GAZE_FIELDS), description="names of the values in motion.gaze")
    conventions: dict[str, str] = Field(
        default_factory=lambda: dict(CONVENTIONS), description="units and axes, as prose"
    )
    control: str | None = Field(None, description="control socket endpoint, if one is open")
    audio: str | None = Field(None, description="audio input socket endpoint, if one is open")
    frame_format: str | None = Field(
        None, description="'jpeg' or 'rgb' when frame.<agent> messages are published"
    )


CONVENTIONS: dict[str, str] = {
    "t": "seconds on the agent's media clock: centre of the frame; t = 0 is the first audio "
    "sample; restarts after a reset",
    "head": "yaw, pitch, roll in radians (right-handed: +yaw turns to the avatar's left, "
    "+pitch tilts the chin down, +roll tilts towards the avatar's right shoulder), then x, y, z "
    "in metres relative to the rest pose (+x to the avatar's left, +y up, +z to its front)",
    "gaze": "left eye yaw, left eye pitch, right eye yaw, right eye pitch in radians, "
    "signs as head",
    "blendshapes": "ARKit weights in 0..1, in the order of hello.blendshapes",
    "speaking": "0..1, how much the frame is driven by the agent's own speech",
    "latent": "float32 little-endian, latent_size values",
}


class Motion(_Message):
    """Topic ``motion.<agent>``: one frame of motion."""

    agent: str = Field(description="agent name")
    seq: int = Field(description="message counter of this publisher, +1 per motion message; a "
                     "gap means messages were dropped")  # fmt: skip
    index: int = Field(description="frame number on the agent's clock (0 after a reset)")
    t: float = Field(description="media time of the frame's centre (s)")
    blendshapes: Annotated[list[float], F32] = Field(description="ARKit weights 0..1")
    head: Annotated[list[float], F32] = Field(
        min_length=6, max_length=6, description="yaw, pitch, roll (rad), x, y, z (m)"
    )
    gaze: Annotated[list[float], F32] = Field(
        min_length=4, max_length=4, description="left yaw, left pitch, right yaw, right pitch (rad)"
    )
    speaking: Annotated[float, F32] = Field(description="0..1")
    latent: bytes = Field(description="float32 little-endian, hello.latent_size values")

    @classmethod
    def from_frame(cls, frame: Frame, agent: str, seq: int) -> Motion:
        """The message for one :class:`~infp_sdk.Frame`."""
        return cls(
            agent=agent,
            seq=seq,
            index=frame.index,
            t=float(frame.t),
            blendshapes=np.asarray(frame.blendshapes, np.float32).tolist(),
            head=np.asarray(frame.head, np.float32).tolist(),
            gaze=np.asarray(frame.gaze, np.float32).tolist(),
            speaking=float(frame.speaking),
            latent=np.asarray(frame.latent, "<f4").tobytes(),
        )

    def latent_array(self) -> np.ndarray:
        """``latent`` as float32 values (a trailing partial value is ignored)."""
        n = len(self.latent) // 4
        return np.frombuffer(self.latent[: n * 4], "<f4").astype(np.float32)


class FrameImage(_Message):
    """Topic ``frame.<agent>`` (optional): the rendered image of a frame."""

    agent: str = Field(description="agent name")
    seq: int = Field(description="counter of frame messages, +1 each")
    index: int = Field(description="frame number, matches motion.index")
    t: float = Field(description="media time (s), matches motion.t")
    format: Literal["jpeg", "rgb"] = Field(description="'jpeg', or 'rgb' (raw uint8 RGB rows)")
    width: int = Field(description="pixels")
    height: int = Field(description="pixels")
    data: bytes = Field(description="the JPEG file, or height*width*3 bytes of RGB")


# ----------------------------------------------------------------------------------------------
# Requests (control and audio sockets, ROUTER: REQ or DEALER clients) and replies.
# ----------------------------------------------------------------------------------------------


def _number_only(cls, value: Any) -> Any:
    # Lax validation would turn "16000" into 16000 and True into 1; the wire takes numbers only.
    if isinstance(value, (str, bytes, bytearray, bool)):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return value


def _bin_only(cls, value: Any) -> Any:
    # Lax validation would encode a str as UTF-8; binary fields must be msgpack bin.
    if value is not None and not isinstance(value, (bytes, bytearray)):
        raise ValueError(f"expected msgpack bin, got {type(value).__name__}")
    return value


def _id_only(cls, value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, bool)):
        raise ValueError(f"expected an integer or a string, got {type(value).__name__}")
    return value


class _Request(_Message):
    id: int | str | None = Field(None, description="echoed in the reply (optional)")

    _ids = field_validator("id", mode="before")(_id_only)


class Ping(_Request):
    """Liveness check; the reply carries the server's clocks."""

    cmd: Literal["ping"] = "ping"


class Reset(_Request):
    """Forget all audio and motion; the next frame is frame 0 at t = 0.02 s."""

    cmd: Literal["reset"] = "reset"


class Interrupt(_Request):
    """The agent's own speech was cut off (barge-in): return to listening at once."""

    cmd: Literal["interrupt"] = "interrupt"


class Style(_Request):
    """Speak and listen in the manner of a clip of motion latents; no reference = default."""

    cmd: Literal["style"] = "style"
    reference: bytes | None = Field(
        None, description="float32 little-endian latents, frames * hello.latent_size values"
    )
    frames: int | None = Field(None, ge=1, description="number of frames in reference")

    _numbers = field_validator("frames", mode="before")(_number_only)
    _bins = field_validator("reference", mode="before")(_bin_only)


class HelloRequest(_Request):
    """Publish ``hello`` now; the reply carries it too."""

    cmd: Literal["hello"] = "hello"


class Stats(_Request):
    """Counters of the server (frames, drops, errors)."""

    cmd: Literal["stats"] = "stats"


class Audio(_Request):
    """Audio input socket: a chunk of PCM for one channel."""

    cmd: Literal["audio"] = "audio"
    channel: Literal["own", "partner"] = Field(description="whose voice")
    rate: int = Field(ge=4000, le=192000, description="sample rate (Hz)")
    format: Literal["s16", "f32"] = Field(
        "s16", description="'s16' int16 or 'f32' float32 in -1..1, little-endian"
    )
    channels: int = Field(1, ge=1, le=8, description="interleaved channels (mixed to mono)")
    pcm: bytes = Field(description="the samples")

    _numbers = field_validator("rate", "channels", mode="before")(_number_only)
    _bins = field_validator("pcm", mode="before")(_bin_only)


Request = Annotated[
    Ping | Reset | Interrupt | Style | HelloRequest | Stats | Audio, Field(discriminator="cmd")
]
_REQUEST = TypeAdapter(Request)
COMMANDS = ("ping", "reset", "interrupt", "style", "hello", "stats", "audio")


class Reply(_Message):
    """Every request gets one reply: ``ok`` true, or false with an ``error`` code and message."""

    ok: bool
    cmd: str | None = Field(None, description="the request's cmd, when it could be read")
    id: int | str | None = Field(None, description="the request's id, when it had one")
    error: str | None = Field(
        None,
        description="malformed | too_large | unsupported_version | unknown_cmd | invalid | "
        "bad_audio | failed",
    )
    message: str | None = Field(None, description="what was wrong, for people")
    time: float | None = Field(None, description="ping: server wall clock (Unix s)")
    t: float | None = Field(None, description="ping: media time of the last frame out (s)")
    hello: Hello | None = Field(None, description="hello: the hello message")
    stats: dict[str, int] | None = Field(None, description="stats: counters")


ERROR_CODES = (
    "malformed",  # not msgpack, or not a map
    "too_large",  # over MAX_CONTROL_BYTES / MAX_AUDIO_BYTES
    "unsupported_version",  # v newer than this server
    "unknown_cmd",  # cmd missing or not one this socket takes
    "invalid",  # a field is missing or of the wrong type
    "bad_audio",  # the PCM could not be used (length not a whole number of samples, ...)
    "failed",  # the command was valid but failed on the server
)


class ProtocolError(ValueError):
    """A message that cannot be decoded; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, cmd: str | None = None, id: Any = None):
        super().__init__(message)
        self.code = code
        self.cmd = cmd
        self.id = id


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------

_PACK64 = msgpack.Packer(use_bin_type=True, use_single_float=False)
_PACK32 = msgpack.Packer(use_bin_type=True, use_single_float=True)


def _is_f32(model: type[BaseModel], name: str) -> bool:
    return any(m is F32 for m in model.model_fields[name].metadata)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value if v is not None}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode(message: BaseModel) -> bytes:
    """The msgpack bytes of a message (deterministic; None fields are left out)."""
    fields = [(k, v) for k, v in message if v is not None]
    out = [_PACK64.pack_map_header(len(fields))]
    cls = type(message)
    for key, value in fields:
        out.append(_PACK64.pack(key))
        packer = _PACK32 if _is_f32(cls, key) else _PACK64
        out.append(packer.pack(_plain(value)))
    return b"".join(out)


def _unpack(data: bytes, max_bytes: int) -> dict:
    if len(data) > max_bytes:
        raise ProtocolError("too_large", f"message of {len(data)} bytes; the limit is {max_bytes}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=1024,
            max_ext_len=0,
        )
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise ProtocolError("malformed", f"not a msgpack message: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"payload must be a msgpack map, got {type(obj).__name__}")
    return obj


def _check_version(obj: dict, cmd: str | None = None, id: Any = None) -> None:
    v = obj.get("v", PROTOCOL_VERSION)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError("invalid", f"v must be an integer, got {v!r}", cmd, id)
    if v > PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {v} is newer than this server's {PROTOCOL_VERSION}",
            cmd,
            id,
        )


def _short(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"]) or "(message)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def decode_request(data: bytes, max_bytes: int = MAX_CONTROL_BYTES) -> BaseModel:
    """Decode a control or audio request; raises :class:`ProtocolError` with an error code."""
    obj = _unpack(data, max_bytes)
    cmd = obj.get("cmd")
    id = obj.get("id")
    id = id if isinstance(id, (int, str)) and not isinstance(id, bool) else None
    cmd_name = cmd if isinstance(cmd, str) else None
    _check_version(obj, cmd_name, id)
    if cmd_name not in COMMANDS:
        raise ProtocolError(
            "unknown_cmd", f"unknown cmd {cmd!r}; expected one of {', '.join(COMMANDS)}", None, id
        )
    try:
        return _REQUEST.validate_python(obj)
    except ValidationError as e:
        raise ProtocolError("invalid", _short(e), cmd_name, id) from None


_PUBLISHED = {"hello": Hello, "motion": Motion, "frame": FrameImage}


def decode_message(topic: bytes | str, data: bytes, max_bytes: int = 64 << 20) -> BaseModel:
    """Decode a published message by its topic's kind (``hello``, ``motion``, ``frame``)."""
    name = topic.decode("utf-8", "replace") if isinstance(topic, bytes) else topic
    kind = name.split(".", 1)[0]
    model = _PUBLISHED.get(kind)
    if model is None:
        raise ProtocolError("unknown_cmd", f"unknown topic kind {kind!r}")
    obj = _unpack(data, max_bytes)
    _check_version(obj)
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise ProtocolError("invalid", _short(e)) from None


def decode_reply(data: bytes) -> Reply:
    """Decode a reply (for clients)."""
    obj = _unpack(data, 64 << 20)
    try:
        return Reply.model_validate(obj)
    except ValidationError as e:
        raise ProtocolError("invalid", _short(e)) from None


def hello_for(agent: str, latent_size: int, fps: float = FPS, **endpoints: str | None) -> Hello:
    """The hello message of an agent publishing ``latent_size`` latents at ``fps``."""
    from .. import __version__

    return Hello(
        agent=agent,
        sdk=__version__,
        fps=float(fps),
        blendshapes=list(ARKIT_BLENDSHAPES),
        latent_size=int(latent_size),
        **endpoints,
    )


# ----------------------------------------------------------------------------------------------
# JSON Schema
# ----------------------------------------------------------------------------------------------

PUBLISHED_MODELS: dict[str, type[BaseModel]] = {
    "hello": Hello,
    "motion": Motion,
    "frame": FrameImage,
}
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "ping": Ping,
    "reset": Reset,
    "interrupt": Interrupt,
    "style": Style,
    "hello": HelloRequest,
    "stats": Stats,
    "audio": Audio,
}


def json_schema() -> dict[str, Any]:
    """One JSON Schema document describing every message (as decoded from msgpack).

    ``bytes`` fields are msgpack bin values; they appear as strings of format ``binary``.
    """
    defs: dict[str, Any] = {}
    for model in [*PUBLISHED_MODELS.values(), *REQUEST_MODELS.values(), Reply]:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"infp-sdk wire protocol, version {PROTOCOL_VERSION}",
        "description": "Payloads are msgpack maps; clients ignore unknown keys. Published topics: "
        + ", ".join(f"{k}.<agent> -> {m.__name__}" for k, m in PUBLISHED_MODELS.items())
        + ". Requests (by cmd): "
        + ", ".join(f"{k} -> {m.__name__}" for k, m in REQUEST_MODELS.items())
        + "; every request gets a Reply.",
        "protocol_version": PROTOCOL_VERSION,
        "$defs": defs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The infp-sdk wire protocol")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    args = parser.parse_args(argv)
    if args.schema:
        json.dump(json_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
