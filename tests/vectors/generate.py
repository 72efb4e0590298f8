"""Generate the wire-protocol conformance vectors that every client in bindings/ is tested against.

    python tests/vectors/generate.py            # rewrite tests/vectors/
    python tests/vectors/generate.py OUT_DIR    # write elsewhere (the test compares the two)

Each vector is one published message, ``NAME.zmsg``: its ZeroMQ frames (topic, payload), each as a
uint32 little-endian length followed by the bytes. ``manifest.json`` lists the vectors in order
with what a client must make of each: the decoded fields, or the error code (``malformed``: not
msgpack, truncated, trailing bytes, not a map, absurd lengths; ``invalid``: a key missing or of the
wrong type; ``unsupported_version``: ``v`` newer than the client's). Valid messages are encoded by
the publisher's own encoder (:func:`infp_sdk.io.protocol.encode`); malformed ones are built by hand.

The expected outcome of every vector is what the Python reference decoder
(:func:`infp_sdk.io.protocol.decode_message`) makes of it, plus the two checks a client makes once
it has seen the publisher's ``hello`` (the vector's ``context``): ``latent`` must hold exactly
``4 * latent_size`` bytes and ``blendshapes`` exactly ``len(hello.blendshapes)`` values.

Change the protocol, then run this script and commit the new vectors: the clients' tests will tell
which of them need changing too.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from infp_sdk.io import protocol
from infp_sdk.io.protocol import PROTOCOL_VERSION, Hello, Motion, ProtocolError, encode
from infp_sdk.motion import ARKIT_BLENDSHAPES, Frame

HERE = Path(__file__).resolve().parent
SDK = "0.0.0-vectors"  # a fixed version string, so the vectors do not change with every release


# ---------------------------------------------------------------------------------- references
def reference_decode(topic: str, payload: bytes, context: Hello | None) -> Hello | Motion:
    """The Python decoder plus the checks a client makes against the publisher's hello."""
    msg = protocol.decode_message(topic, payload)
    if context is not None and isinstance(msg, Motion):
        if len(msg.latent) != 4 * context.latent_size:
            raise ProtocolError(
                "invalid",
                f"latent has {len(msg.latent)} bytes; hello.latent_size "
                f"{context.latent_size} needs {4 * context.latent_size}",
            )
        if len(msg.blendshapes) != len(context.blendshapes):
            raise ProtocolError(
                "invalid",
                f"{len(msg.blendshapes)} blendshapes; hello names {len(context.blendshapes)}",
            )
    return msg


def f32(values) -> list[float]:
    """Values as the float32 numbers a client holds (as exact Python floats)."""
    return [float(v) for v in np.asarray(values, np.float32)]


def expected_fields(msg: Hello | Motion) -> dict[str, Any]:
    if isinstance(msg, Hello):
        return {
            "v": msg.v,
            "agent": msg.agent,
            "sdk": msg.sdk,
            "fps": msg.fps,
            "blendshapes": list(msg.blendshapes),
            "latent_size": msg.latent_size,
            "motion_space": msg.motion_space,
            "head": list(msg.head),
            "gaze": list(msg.gaze),
            "conventions": dict(msg.conventions),
            "control": msg.control,
            "audio": msg.audio,
            "frame_format": msg.frame_format,
        }
    return {
        "v": msg.v,
        "agent": msg.agent,
        "seq": msg.seq,
        "index": msg.index,
        "t": msg.t,
        "blendshapes": f32(msg.blendshapes),
        "head": f32(msg.head),
        "gaze": f32(msg.gaze),
        "speaking": f32([msg.speaking])[0],
        "latent_bytes": len(msg.latent),
        "latent": f32(msg.latent_array()),
    }


# ---------------------------------------------------------------------------------- raw msgpack
def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def raw_map(items: list[tuple[str, bytes]]) -> bytes:
    """A map from already-packed values (so a value can be any byte string, even a broken one)."""
    out = [_map_header(len(items))]
    for key, value in items:
        out += [pack(key), value]
    return b"".join(out)


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + struct.pack(">H", n)


def items_of(payload: bytes) -> list[tuple[str, bytes]]:
    """The keys and packed values of an encoded message, in order."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    n = unpacker.read_map_header()
    items = []
    for _ in range(n):
        key = unpacker.unpack()
        start = unpacker.tell()
        unpacker.skip()
        items.append((key, payload[start : unpacker.tell()]))
    return items


def edit(payload: bytes, drop: tuple[str, ...] = (), **replace: bytes) -> bytes:
    """``payload`` with keys dropped or their packed values replaced (new keys go last)."""
    items = [(k, replace.pop(k, v)) for k, v in items_of(payload) if k not in drop]
    return raw_map(items + list(replace.items()))


def f32_array(values, header: bytes | None = None) -> bytes:
    """An array of float32 values, optionally under a non-minimal header."""
    body = b"".join(b"\xca" + struct.pack(">f", v) for v in values)
    if header is None:
        return msgpack.Packer().pack_array_header(len(values)) + body
    return header + body


# ---------------------------------------------------------------------------------- messages
def a_frame(index: int, latent_size: int = 62) -> Frame:
    """A frame with fixed, varied values (no random generator, no transcendental functions)."""
    i = np.arange(latent_size)
    return Frame(
        index=index,
        t=(index + 0.5) / 25,
        latent=((i * 37 % 101) / 50.0 - 1.0).astype(np.float32),
        blendshapes=((np.arange(52) * 7 % 53) / 52.0).astype(np.float32),
        head=np.array([0.1, -0.05, 0.02, 0.003, -0.004, 0.012], np.float32),
        gaze=np.array([0.15, -0.1, 0.12, -0.09], np.float32),
        speaking=0.75,
    )


def hello_basic() -> Hello:
    names = list(ARKIT_BLENDSHAPES)
    return Hello(agent="ava", sdk=SDK, fps=25.0, blendshapes=names, latent_size=62)


def hello_small() -> Hello:
    names = ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight"]
    return Hello(agent="tiny", sdk=SDK, fps=30.0, blendshapes=names, latent_size=3)


def build() -> list[dict[str, Any]]:
    """Every vector: name, topic, payload, context (a hello vector's name), what it tests."""
    vectors: list[dict[str, Any]] = []

    def add(name, topic, payload, what, context=None, error=None):
        vectors.append(
            dict(name=name, topic=topic, payload=payload, what=what, context=context, error=error)
        )

    hello = encode(hello_basic())
    add("hello_basic", "hello.ava", hello, "a publisher's hello, default conventions")
    add(
        "hello_endpoints",
        "hello.agent_2",
        encode(
            Hello(
                agent="agent_2",
                sdk=SDK,
                fps=25.0,
                blendshapes=list(ARKIT_BLENDSHAPES),
                latent_size=62,
                control="tcp://127.0.0.1:5556",
                audio="tcp://127.0.0.1:5557",
                frame_format="jpeg",
            )
        ),
        "optional keys present: control, audio, frame_format",
    )
    add("hello_small", "hello.tiny", encode(hello_small()), "3 blendshapes, latent_size 3, 30 fps")
    add(
        "hello_fps_int",
        "hello.ava",
        edit(hello, fps=pack(25)),
        "an int where a float is expected (fps)",
    )
    add(
        "hello_unknown_keys",
        "hello.ava",
        raw_map(
            [("zz_first", pack({"nested": [1, 2.5, None, True, b"\x00\x01"]}))]
            + items_of(hello)
            + [("avatar_hint", pack("realistic")), ("extra_list", pack(list(range(20))))]
        ),
        "unknown keys before and after the known ones are ignored",
    )
    add(
        "hello_missing_latent_size",
        "hello.ava",
        edit(hello, drop=("latent_size",)),
        "required key missing",
        error="invalid",
    )
    add(
        "hello_blendshapes_not_array",
        "hello.ava",
        edit(hello, blendshapes=pack("eyeBlinkLeft")),
        "blendshapes is a string, not an array",
        error="invalid",
    )
    add(
        "hello_blendshape_name_int",
        "hello.ava",
        edit(hello, blendshapes=pack(["eyeBlinkLeft", 7])),
        "a blendshape name that is not a string",
        error="invalid",
    )
    add(
        "hello_latent_size_string",
        "hello.ava",
        edit(hello, latent_size=pack("sixty-two")),
        "latent_size of the wrong type",
        error="invalid",
    )
    add(
        "hello_future_version",
        "hello.ava",
        edit(hello, v=pack(PROTOCOL_VERSION + 1), new_key=pack({"a": 1})),
        "v newer than this protocol, with unknown keys: dropped",
        error="unsupported_version",
    )
    add("hello_truncated", "hello.ava", hello[: len(hello) // 2], "cut in half", error="malformed")
    add("hello_not_a_map", "hello.ava", pack(["hello"]), "an array payload", error="malformed")

    # ---- motion
    basic = encode(Motion.from_frame(a_frame(40), "ava", 41))
    add("motion_basic", "motion.ava", basic, "a frame as the publisher sends it", "hello_basic")
    add("motion_no_context", "motion.ava", basic, "the same frame before any hello")
    add(
        "motion_first_frame",
        "motion.ava",
        encode(Motion.from_frame(a_frame(0), "ava", 0)),
        "seq 0, index 0",
        "hello_basic",
    )
    add(
        "motion_small",
        "motion.tiny",
        encode(
            Motion(
                agent="tiny",
                seq=3,
                index=2,
                t=2.5 / 30,
                blendshapes=[0.5, 0.25, 1.0],
                head=[0.0] * 6,
                gaze=[0.0] * 4,
                speaking=0.0,
                latent=np.array([1.5, -2.0, 0.125], "<f4").tobytes(),
            )
        ),
        "3 blendshapes and a 3-value latent, as hello_small announces",
        "hello_small",
    )
    add(
        "motion_big_counters",
        "motion.ava",
        edit(basic, seq=pack(2**33 + 7), index=pack(2**31 + 5)),
        "seq and index beyond 32 bits (uint64 on the wire)",
        "hello_basic",
    )
    add(
        "motion_any_number",
        "motion.ava",
        edit(
            basic,
            seq=b"\xcd" + struct.pack(">H", 300),  # uint16
            index=b"\xd0" + struct.pack(">b", -3),  # int8
            t=pack(2),  # positive fixint where a float64 is expected
            blendshapes=pack([0, 1, 0.5, 0.1] + [0.25] * 48),  # ints and float64s
            head=f32_array([0.1, -0.2, 0.3, 1.0, 2.0, -3.0], b"\xdd\x00\x00\x00\x06"),  # array32
            gaze=b"\xdc\x00\x04" + pack(-1) + pack(0.5) + pack(-(2**40)) + pack(2**40),
            speaking=pack(1),
        ),
        "every msgpack number kind where a float or int is expected, non-minimal headers",
        "hello_basic",
    )
    add(
        "motion_unknown_keys",
        "motion.ava",
        raw_map(
            [("a_future_key", pack({"deep": [[1, [2, {"x": None}]], "s" * 40]}))]
            + items_of(basic)[:5]
            + [("mid", pack(b"\x00" * 300)), ("flag", pack(False)), ("nil", pack(None))]
            + items_of(basic)[5:]
            + [("str16", pack("x" * 300)), ("neg", pack(-(2**62))), ("f", pack(1.5))]
        ),
        "unknown keys of every type, before, among and after the known ones, are ignored",
        "hello_basic",
    )
    add(
        "motion_no_v",
        "motion.ava",
        edit(basic, drop=("v",)),
        "v absent: read as the current version",
        "hello_basic",
    )
    add(
        "motion_utf8_agent",
        "motion.äva",
        edit(basic, agent=pack("äva_" + "é" * 20)),
        "a non-ASCII agent name (str8)",
        "hello_basic",
    )
    add(
        "motion_empty_latent",
        "motion.ava",
        edit(basic, latent=pack(b"")),
        "an empty latent and no hello yet: nothing to check it against",
    )
    add(
        "motion_bin32_latent",
        "motion.ava",
        edit(basic, latent=b"\xc6" + struct.pack(">I", 16) + np.arange(4, dtype="<f4").tobytes()),
        "latent under a bin32 header",
    )

    # ---- malformed and invalid motion
    for name, cut, what in [
        ("motion_truncated_header", 1, "only the map header"),
        ("motion_truncated_blendshapes", basic.index(b"head") - 30, "inside blendshapes"),
        ("motion_truncated_latent", len(basic) - 100, "inside the latent bytes"),
        ("motion_truncated_last_byte", len(basic) - 1, "one byte short"),
    ]:
        add(name, "motion.ava", basic[:cut], f"truncated: {what}", "hello_basic", "malformed")
    add("motion_empty", "motion.ava", b"", "an empty payload", error="malformed")
    add("motion_not_a_map", "motion.ava", pack(7), "a number payload", error="malformed")
    add(
        "motion_trailing_bytes",
        "motion.ava",
        basic + b"\xc0",
        "a valid map followed by one more byte",
        "hello_basic",
        "malformed",
    )
    add(
        "motion_int_key",
        "motion.ava",
        basic[:1].replace(b"\x8a", b"\x8b") + pack(1) + pack(2) + basic[1:],
        "a map key that is not a string",
        error="malformed",
    )
    add(
        "motion_deep_nesting",
        "motion.ava",
        raw_map(items_of(basic) + [("deep", b"\x91" * 2000 + b"\xc0")]),
        "an unknown value nested 2000 arrays deep",
        error="malformed",
    )
    huge = [
        ("motion_absurd_blendshapes", "blendshapes", b"\xdd\x7f\xff\xff\xff" + b"\xca" * 8),
        ("motion_absurd_latent", "latent", b"\xc6\xff\xff\xff\xff" + b"\x00" * 8),
        ("motion_absurd_agent", "agent", b"\xdb\xff\xff\xff\xf0" + b"ava"),
        ("motion_absurd_unknown", "zz", b"\xdf\x7f\xff\xff\xff" + b"\xc0" * 4),
    ]
    for name, key, value in huge:
        add(
            name,
            "motion.ava",
            edit(basic, **{key: value}),
            f"{key}: a length of about 2^31 or 2^32 with a few bytes behind it",
            "hello_basic",
            "malformed",
        )
    add(
        "motion_absurd_map",
        "motion.ava",
        b"\xdf\xff\xff\xff\xff" + basic[1:],
        "a map header claiming 2^32-1 entries",
        error="malformed",
    )
    for name, drop in [
        ("motion_missing_seq", "seq"),
        ("motion_missing_t", "t"),
        ("motion_missing_head", "head"),
        ("motion_missing_latent", "latent"),
        ("motion_missing_blendshapes", "blendshapes"),
    ]:
        add(name, "motion.ava", edit(basic, drop=(drop,)), f"{drop} missing", "hello_basic",
            "invalid")  # fmt: skip
    for name, key, value, what in [
        ("motion_blendshapes_string", "blendshapes", pack("0.5"), "a string, not an array"),
        ("motion_blendshapes_map", "blendshapes", pack({"jawOpen": 0.5}), "a map, not an array"),
        ("motion_blendshape_string", "blendshapes", pack(["x"] * 52), "array of strings"),
        ("motion_head_5_values", "head", f32_array([0.0] * 5), "5 values, 6 required"),
        ("motion_head_7_values", "head", f32_array([0.0] * 7), "7 values, 6 required"),
        ("motion_gaze_3_values", "gaze", f32_array([0.0] * 3), "3 values, 4 required"),
        ("motion_head_nil_value", "head", pack([0.0, None, 0, 0, 0, 0]), "a nil in head"),
        ("motion_agent_int", "agent", pack(5), "agent is a number"),
        ("motion_seq_string", "seq", pack("forty-one"), "seq is a string"),
        ("motion_seq_float", "seq", pack(41.5), "seq is a fractional float"),
        ("motion_t_nil", "t", pack(None), "t is nil"),
        ("motion_speaking_array", "speaking", pack([0.5]), "speaking is an array"),
        ("motion_latent_array", "latent", pack([0.0] * 62), "latent as an array, not bin"),
        ("motion_v_string", "v", pack("1"), "v is a string"),
    ]:
        add(name, "motion.ava", edit(basic, **{key: value}), f"wrong type: {what}",
            "hello_basic", "invalid")  # fmt: skip
    add(
        "motion_latent_short",
        "motion.ava",
        edit(basic, latent=pack(b"\x00" * (4 * 61))),
        "latent of 61 values where hello says 62",
        "hello_basic",
        "invalid",
    )
    add(
        "motion_latent_odd_bytes",
        "motion.ava",
        edit(basic, latent=pack(b"\x00" * 247)),
        "latent of 247 bytes, not a multiple of 4",
        "hello_basic",
        "invalid",
    )
    add(
        "motion_blendshape_count",
        "motion.ava",
        edit(basic, blendshapes=f32_array([0.5] * 51)),
        "51 blendshapes where hello names 52",
        "hello_basic",
        "invalid",
    )
    add(
        "motion_future_version",
        "motion.ava",
        edit(basic, v=pack(PROTOCOL_VERSION + 1), gaze_confidence=pack(0.9)),
        "v newer than this protocol, with unknown keys: dropped",
        "hello_basic",
        "unsupported_version",
    )
    return vectors


# ---------------------------------------------------------------------------------- files
def frames_file(topic: str, payload: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(f)) + f for f in (topic.encode("utf-8"), payload))


def generate(out: Path) -> list[str]:
    """Write every vector and manifest.json into ``out``; returns the file names written."""
    out.mkdir(parents=True, exist_ok=True)
    vectors = build()
    by_name = {v["name"]: v for v in vectors}
    assert len(by_name) == len(vectors), "duplicate vector names"
    entries, written = [], []
    for vec in vectors:
        context = None
        if vec["context"] is not None:
            ctx = by_name[vec["context"]]
            context = protocol.decode_message(ctx["topic"], ctx["payload"])
        try:
            msg = reference_decode(vec["topic"], vec["payload"], context)
            expect: dict[str, Any] = {"ok": True, "kind": vec["topic"].split(".")[0]}
            expect["fields"] = expected_fields(msg)
        except ProtocolError as e:
            expect = {"ok": False, "error": e.code}  # (messages are for people, not compared)
        got = expect.get("error")
        if got != vec["error"]:  # the vector must mean what it says it tests
            raise AssertionError(f"{vec['name']}: reference gives {got}, meant {vec['error']}")
        file = f"{vec['name']}.zmsg"
        (out / file).write_bytes(frames_file(vec["topic"], vec["payload"]))
        written.append(file)
        entries.append(
            {
                "name": vec["name"],
                "file": file,
                "topic": vec["topic"],
                "context": vec["context"] and f"{vec['context']}.zmsg",
                "what": vec["what"],
                "expect": expect,
            }
        )
    manifest = {
        "protocol_version": PROTOCOL_VERSION,
        "about": "Conformance vectors of the infp-sdk wire protocol; see README.md. Generated by "
        "tests/vectors/generate.py: do not edit by hand.",
        "file_format": "frames (topic, payload), each a uint32 little-endian length then bytes",
        "vectors": entries,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    written.append("manifest.json")
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else HERE
    files = generate(out)
    print(f"{len(files) - 1} vectors and manifest.json written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
