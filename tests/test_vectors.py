"""Conformance vectors: up to date with the protocol, what the publisher sends, self-checking."""

from __future__ import annotations

import json

import zmq
from conftest import ROOT
from vectors import generate
from vectors.conformance import VECTORS, compare, manifest

from infp_sdk.io import MotionPublisher
from infp_sdk.io.protocol import Motion, ProtocolError, decode_message


def read_frames(path) -> list[bytes]:
    data, frames, p = path.read_bytes(), [], 0
    while p < len(data):
        n = int.from_bytes(data[p : p + 4], "little")
        frames.append(data[p + 4 : p + 4 + n])
        p += 4 + n
    assert p == len(data), f"{path.name}: frame lengths do not add up"
    return frames


def test_committed_vectors_are_what_the_generator_makes(tmp_path):
    """A protocol change without regenerated vectors fails here."""
    written = set(generate.generate(tmp_path))
    committed = {p.name for p in VECTORS.iterdir() if p.suffix in (".zmsg", ".json")}
    assert committed == written, (
        f"missing: {sorted(written - committed)}, stale: {sorted(committed - written)}; "
        "run python tests/vectors/generate.py"
    )
    for name in sorted(written):
        assert (VECTORS / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"tests/vectors/{name} differs from what the protocol encodes now: run "
            "python tests/vectors/generate.py, commit, and fix the clients whose tests then fail"
        )


def test_manifest_covers_hello_motion_and_each_error():
    vectors = manifest()["vectors"]
    assert len(vectors) >= 50
    outcomes = {(v["topic"].split(".")[0], v["expect"].get("error")) for v in vectors}
    for kind in ("hello", "motion"):
        for error in (None, "malformed", "invalid", "unsupported_version"):
            assert (kind, error) in outcomes, (kind, error)
    for v in vectors:
        topic, payload = read_frames(VECTORS / v["file"])
        assert topic.decode() == v["topic"]


def python_dump() -> str:
    """The Python reference run through the same comparison as the other clients."""
    vectors = manifest()["vectors"]
    hellos = {}
    lines = []
    for v in vectors:
        topic, payload = read_frames(VECTORS / v["file"])
        context = None
        if v["context"]:
            context = decode_message(*read_frames(VECTORS / v["context"]))
        try:
            msg = generate.reference_decode(topic.decode(), payload, context)
            kind = "motion" if isinstance(msg, Motion) else "hello"
            hellos[v["name"]] = msg
            line = {"ok": True, "kind": kind, "fields": generate.expected_fields(msg)}
        except ProtocolError as e:
            line = {"ok": False, "error": e.code, "message": str(e)}
        lines.append(json.dumps({"file": v["file"], **line}))
    return "\n".join(lines)


def test_python_reference_passes_and_the_comparison_catches_differences():
    output = python_dump()
    checks, problems = compare(output)
    assert problems == [] and checks > 200
    # A client that gets one value wrong, accepts a bad message or rejects a good one must fail.
    lines = [json.loads(line) for line in output.splitlines()]
    basic = next(i for i, x in enumerate(lines) if x["file"] == "motion_basic.zmsg")
    lines[basic]["fields"]["head"][0] += 1e-6
    bad = next(i for i, x in enumerate(lines) if x["file"] == "motion_head_5_values.zmsg")
    lines[bad] = {"file": "motion_head_5_values.zmsg", "ok": True, "kind": "motion", "fields": {}}
    hello = next(i for i, x in enumerate(lines) if x["file"] == "hello_unknown_keys.zmsg")
    lines[hello] = {"file": "hello_unknown_keys.zmsg", "ok": False, "error": "invalid"}
    _, problems = compare("\n".join(json.dumps(x) for x in lines))
    assert len(problems) == 3, problems


def test_vectors_are_what_the_publisher_sends():
    """motion_first_frame is byte for byte the first message of a real MotionPublisher, and its
    hello carries hello_basic's fields (all but the SDK version)."""
    want_topic, want_payload = read_frames(VECTORS / "motion_first_frame.zmsg")
    _, hello_payload = read_frames(VECTORS / "hello_basic.zmsg")
    ctx = zmq.Context.instance()
    with MotionPublisher("tcp://127.0.0.1:*", agent="ava", latent_size=62) as pub:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(pub.endpoint)
        try:
            assert sub.poll(3000), "no hello from the publisher"
            topic, payload = sub.recv_multipart()
            assert topic == b"hello.ava"
            got = decode_message(topic, payload).model_dump()
            want = decode_message(topic, hello_payload).model_dump()
            got.pop("sdk"), want.pop("sdk")
            assert got == want
            pub.publish(generate.a_frame(0))
            while True:
                assert sub.poll(3000), "no motion from the publisher"
                topic, payload = sub.recv_multipart()
                if topic.startswith(b"motion."):
                    break
            assert (topic, payload) == (want_topic, want_payload)
        finally:
            sub.close()


def test_readme_describes_the_vectors():
    text = (ROOT / "tests" / "vectors" / "README.md").read_text()
    assert "generate.py" in text and "manifest.json" in text
