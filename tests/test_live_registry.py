"""The live registry: a sink and a source added from outside through the public API are one class
and one entry each, and `infp-sdk live` then offers, configures, opens and feeds them like the
built-in ones (a real run: WAV file, a generated tone, the agent, a sink writing a real file)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, random_model

from infp_sdk.cli import main
from infp_sdk.live import (
    DEFAULTS,
    REGISTRY,
    LiveError,
    Option,
    SinkContext,
    SinkEntry,
    SourceContext,
    SourceEntry,
    register_sink,
    register_source,
    unregister,
)
from infp_sdk.model import save_model

PARTNER = ROOT / "examples" / "conversation" / "partner.wav"


class JsonLinesSink:
    """A toy sink: one JSON line per frame."""

    def __init__(self, path: str, fps: float):
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115  (closed by close())
        self.fps = fps

    def send(self, frame) -> None:
        line = {"index": frame.index, "t": frame.t, "jawOpen": float(frame.blendshapes[24])}
        self.file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self.file.close()


class ToneSource:
    """A toy source: a sine tone written into its mixer channel at real-time pace."""

    made: list[ToneSource] = []

    def __init__(self, hz: float, mixer, channel: str):
        self.hz, self.mixer, self.channel = hz, mixer, channel
        self.written = 0
        self.stopped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        ToneSource.made.append(self)

    def start(self) -> ToneSource:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            t = (self.written + np.arange(320)) / 16000
            self.mixer.write(self.channel, (0.3 * np.sin(2 * np.pi * self.hz * t)).astype("f4"))
            self.written += 320

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.stopped = True


def open_jsonl(ctx: SinkContext) -> JsonLinesSink:
    return JsonLinesSink(ctx["jsonl"], ctx.fps)


def open_tone(ctx: SourceContext) -> ToneSource:
    return ToneSource(float(ctx.spec.split(":", 1)[1]), ctx.mixer, ctx.channel)


@pytest.fixture
def toys():
    """The toy sink and source in the registry for one test."""
    sink = register_sink(
        SinkEntry(
            name="jsonl",
            title="frames as JSON lines",
            options=(
                Option("--jsonl", metavar="PATH", help="write every frame as a JSON line"),
                Option("--jsonl-note", default="toy", help="a second option of the toy sink"),
            ),
            factory=open_jsonl,
        )
    )
    source = register_source(
        SourceEntry(
            name="tone",
            forms=("tone:HZ",),
            help="tone:HZ (a sine tone)",
            accepts=lambda spec: spec.startswith("tone:"),
            factory=open_tone,
        )
    )
    ToneSource.made.clear()
    yield sink, source
    unregister(sink)
    unregister(source)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_model(random_model(), tmp_path_factory.mktemp("m") / "m.safetensors")


def test_a_registered_sink_and_source_appear_in_the_command(toys, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # as one line: argparse wraps
    assert "--jsonl PATH write every frame as a JSON line" in help_text
    assert "jsonl sink: frames as JSON lines" in help_text
    assert "tone:HZ (a sine tone)" in help_text  # in the sources the description lists
    own = "--own OWN the agent's own voice: mic | device:NAME | FILE.wav | zmq | none | tone:HZ"
    assert own in help_text
    # one declaration gives the config key and its default
    assert DEFAULTS["jsonl"] is None and DEFAULTS["jsonl_note"] == "toy"
    config = tmp_path / "live.toml"
    config.write_text("jsonl_note = 3\n")
    assert main(["live", "--config", str(config)]) == 2
    assert "config " + str(config) + ": jsonl_note must be a string, got 3" in (
        capsys.readouterr().err
    )
    # the error for a value that names no source lists the new one
    assert main(["live", "--own", "nowhere.wav"]) == 2
    assert "not one of mic, device:NAME, zmq, none, tone:HZ" in capsys.readouterr().err


def test_a_registered_sink_receives_the_frames_of_a_real_run(toys, checkpoint, tmp_path, capsys):
    out = tmp_path / "frames.jsonl"
    started = time.monotonic()
    code = main(["live", "--model", str(checkpoint), "--threads", "1", "--own", "tone:220",
                 "--partner", str(PARTNER), "--jsonl", str(out), "--fps", "30",
                 "--duration", "3", "--status-interval", "1"])  # fmt: skip
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 0, err
    assert "live: stopped cleanly" in err and "no sinks given" not in err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # every frame the sink was handed, in order, at the sink's 30 fps; the last ~0.2 s are
    # still in the pacing queue when the run stops
    indices = [line["index"] for line in lines]
    assert indices == list(range(len(indices))), indices[:10]
    assert 30 * 3 * 0.5 <= len(lines) <= 30 * 3 + 2, (len(lines), took, err)
    assert np.diff([line["t"] for line in lines]) == pytest.approx(1 / 30)
    # the tone source was made for the own channel, fed the mixer, and was stopped
    (tone,) = ToneSource.made
    assert tone.channel == "own" and tone.written > 16000 and tone.stopped
    # the status line counts the sink's frames like any other
    status = [ln for ln in err.splitlines() if " fps " in ln and "dropped 0" in ln]
    assert status, err


def test_sinks_open_from_python_without_a_command_line(toys, tmp_path):
    """What an adapter or a server does: options by key, defaults for the rest, no argparse."""
    from infp_sdk.motion import Frame

    out = tmp_path / "frames.jsonl"
    options = REGISTRY.resolve({"jsonl": str(out), "livelink": "127.0.0.1:9"})
    assert options["fps"] == DEFAULTS["fps"] and options["vmc"] is None
    opened = REGISTRY.open_sinks(options, fps=30, latent_size=62)
    assert [entry.name for entry, _ in opened] == ["livelink", "jsonl"]  # registry order
    zeros = np.zeros
    for i in range(3):
        frame = Frame(index=i, t=(i + 0.5) / 30, latent=zeros(62, "f4"),
                      blendshapes=zeros(52, "f4"), head=zeros(6, "f4"), gaze=zeros(4, "f4"),
                      speaking=0.0)  # fmt: skip
        for _, sink in opened:
            sink.send(frame)
    for _, sink in opened:
        sink.close()
    assert len(out.read_text().splitlines()) == 3
    with pytest.raises(LiveError, match="unknown option.*jsnol"):
        REGISTRY.resolve({"jsnol": "x"})


def test_a_sink_declares_its_extra_and_whether_it_needs_rendered_frames(checkpoint, capsys):
    def needs_a_package(ctx):
        import infp_sdk_no_such_package  # noqa: F401

    entry = register_sink(
        SinkEntry(
            name="hologram",
            options=(Option("--hologram", default=False, type=bool, help="a toy"),),
            factory=needs_a_package,
            needs_image=True,
            extra="hologram",
        )
    )
    try:
        args = ["live", "--model", str(checkpoint), "--own", "none", "--hologram"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "--hologram: frames carry no image" in err and "--portrait" in err
        assert REGISTRY.image_flags({"hologram": True, "frames": "jpeg"}) == [
            "--hologram",
            "--frames",
        ]
        portrait = ROOT / "examples" / "portrait" / "astronaut.avatar"
        assert main([*args, "--portrait", str(portrait), "--duration", "1"]) == 2
        err = capsys.readouterr().err
        assert (
            "the hologram sink needs the 'infp_sdk_no_such_package' package: "
            "pip install 'infp-sdk[hologram]'"
        ) in err
    finally:
        unregister(entry)
    assert "hologram" not in DEFAULTS


def test_registering_twice_or_reusing_an_option_is_refused(toys):
    sink, _ = toys
    with pytest.raises(ValueError, match="registered already"):
        register_sink(sink)
    clash = SinkEntry(name="other", options=(Option("--fps", type=float),), factory=open_jsonl)
    with pytest.raises(ValueError, match="--fps is declared twice"):
        register_sink(clash)
