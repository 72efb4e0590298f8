"""The wire protocol: deterministic msgpack, round trips, unknown keys, versions, schema file."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from conftest import ROOT

from infp_sdk.io import protocol
from infp_sdk.io.protocol import (
    PROTOCOL_VERSION,
    Hello,
    Motion,
    ProtocolError,
    decode_message,
    decode_request,
    encode,
    hello_for,
)
from infp_sdk.motion import ARKIT_BLENDSHAPES, RIG_DIM, Frame


def a_frame(index=3, seed=0) -> Frame:
    latent = np.random.default_rng(seed).standard_normal(RIG_DIM).astype(np.float32)
    return Frame.from_rig_latent(index, latent, 0.25)


def test_motion_round_trip_and_wire_types():
    frame = a_frame()
    data = encode(Motion.from_frame(frame, "ava", 7))
    raw = msgpack.unpackb(data, raw=False)
    assert list(raw) == ["v", "agent", "seq", "index", "t", "blendshapes", "head", "gaze",
                         "speaking", "latent"]  # fmt: skip
    assert raw["v"] == PROTOCOL_VERSION and raw["seq"] == 7 and raw["index"] == 3
    # float arrays travel as float32 (0xca), t as float64 (0xcb), latent as bin
    assert data.count(b"\xca") >= 52 + 6 + 4 + 1
    assert isinstance(raw["latent"], bytes) and len(raw["latent"]) == 4 * RIG_DIM
    msg = decode_message(b"motion.ava", data)
    assert isinstance(msg, Motion)
    np.testing.assert_array_equal(np.float32(msg.blendshapes), frame.blendshapes)
    np.testing.assert_array_equal(msg.latent_array(), frame.latent)
    assert msg.t == frame.t


def test_encoding_is_deterministic():
    a = encode(Motion.from_frame(a_frame(), "ava", 1))
    b = encode(Motion.from_frame(a_frame(), "ava", 1))
    assert a == b
    assert encode(hello_for("ava", RIG_DIM)) == encode(hello_for("ava", RIG_DIM))


def test_hello_carries_names_and_conventions():
    hello = decode_message(b"hello.ava", encode(hello_for("ava", RIG_DIM, control="tcp://x:1")))
    assert isinstance(hello, Hello)
    assert hello.blendshapes == list(ARKIT_BLENDSHAPES) and hello.fps == 25
    assert hello.latent_size == RIG_DIM and hello.control == "tcp://x:1" and hello.audio is None
    assert {"head", "gaze", "t", "blendshapes"} <= set(hello.conventions)


def test_unknown_keys_are_ignored_and_newer_versions_refused():
    raw = msgpack.unpackb(encode(Motion.from_frame(a_frame(), "ava", 1)), raw=False)
    raw["future_key"] = {"nested": [1, 2]}
    assert decode_message("motion.ava", msgpack.packb(raw)).seq == 1
    raw["v"] = PROTOCOL_VERSION + 1
    with pytest.raises(ProtocolError) as e:
        decode_message("motion.ava", msgpack.packb(raw))
    assert e.value.code == "unsupported_version"


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"\xc1", "malformed"),
        (msgpack.packb([1, 2]), "malformed"),
        (msgpack.packb({"cmd": "dance"}), "unknown_cmd"),
        (msgpack.packb({"cmd": "audio", "channel": "own"}), "invalid"),
        (
            msgpack.packb({"cmd": "audio", "channel": "both", "rate": 16000, "pcm": b"\0\0"}),
            "invalid",
        ),  # fmt: skip
        (msgpack.packb({"cmd": "ping", "v": "one"}), "invalid"),
        (msgpack.packb({"cmd": "ping", "pad": b"x" * 70000}), "too_large"),
    ],
)
def test_bad_requests_raise_protocol_errors_with_codes(payload, code):
    with pytest.raises(ProtocolError) as e:
        decode_request(payload)
    assert e.value.code == code


def test_schema_file_is_up_to_date():
    """docs/protocol.schema.json is generated: python -m infp_sdk.io --schema."""
    on_disk = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(protocol.json_schema()))
    for name in ("Hello", "Motion", "FrameImage", "Ping", "Reset", "Interrupt", "Style",
                 "Audio", "Reply"):  # fmt: skip
        assert name in on_disk["$defs"]
