"""infp-sdk serve: the demo bot's turn-taking, the signalling, and a whole conversation in a real
headless Chromium whose fake microphone plays a WAV (benchmarks/serve_browser.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip("aiortc")

from infp_sdk.serve.bot import SpeechError, TurnDetector, speak  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from serve_browser import chromium_path  # noqa: E402


def _events(detector: TurnDetector, audio: np.ndarray, rate: int, bot_speaking) -> list:
    """Feed ``audio`` 20 ms at a time (as WebRTC delivers it); ``bot_speaking(t)``."""
    out, n = [], rate // 50
    for i in range(0, len(audio), n):
        out += detector.process(audio[i : i + n], rate, bot_speaking(i / rate))
    return out


@pytest.fixture(scope="module")
def sentence() -> tuple[np.ndarray, int]:
    pcm, rate = speak("Hello there, this is a test of the turn detector.", voice="en-gb")
    return pcm.astype(np.float32) / 32768.0, rate


def test_turn_ends_after_the_person_stops(sentence):
    x, rate = sentence
    audio = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(2 * rate, np.float32)])
    audio += 0.001 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
    events = _events(TurnDetector(), audio, rate, lambda t: False)
    ends = [e.t for e in events if e.kind == "end_of_turn"]
    speech_end = 0.5 + np.nonzero(np.abs(x) > 0.01)[0][-1] / rate  # espeak pads with silence
    assert len(ends) == 1, events  # pauses between words do not end the turn
    assert speech_end + 0.5 < ends[0] < speech_end + 1.0
    assert not [e for e in events if e.kind == "barge_in"]


def test_talking_over_the_bot_is_a_barge_in(sentence):
    x, rate = sentence
    audio = np.concatenate([np.zeros(rate, np.float32), x])
    events = _events(TurnDetector(), audio, rate, lambda t: True)
    barge = [e.t for e in events if e.kind == "barge_in"]
    assert barge and 1.0 < barge[0] < 1.0 + 0.6  # within the first words
    assert not _events(TurnDetector(), np.zeros(2 * rate, np.float32), rate, lambda t: True)


def test_missing_espeak_names_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SpeechError, match="apt-get install espeak-ng"):
        speak("hello")


def test_offer_errors_are_clear():
    """A bad offer is answered 400 with what is wrong; the server goes on serving."""
    import aiohttp

    from infp_sdk.serve.server import AvatarServer, ServeOptions

    async def run():
        server = AvatarServer(ServeOptions(port=0, size=128))
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(url + "offer", data="not json") as r:
                    assert r.status == 400 and "sdp" in await r.text()
                offer = {"sdp": "v=0\r\n", "type": "offer"}
                async with http.post(url + "offer", json=offer) as r:
                    assert r.status == 400 and "offer" in await r.text()
                async with http.get(url) as r:
                    assert r.status == 200 and "<video" in await r.text()
                async with http.get(url + "status") as r:
                    assert (await r.json())["size"] == 128
        finally:
            await server.stop()

    asyncio.run(run())


def test_a_conversation_also_drives_the_live_sinks():
    """serve --zmq: a WebRTC client (aiortc, on loopback) talks to the server, and the frames
    it is shown also reach a ZeroMQ subscriber, as they would a game engine."""
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack

    from infp_sdk.io.client import MotionSubscriber
    from infp_sdk.io.protocol import Motion
    from infp_sdk.serve.server import AvatarServer, ServeOptions

    async def run():
        options = ServeOptions(port=0, size=96, sinks={"zmq": "tcp://127.0.0.1:*"})
        server = AvatarServer(options)
        url = await server.start()
        pc = RTCPeerConnection()
        try:
            subscriber = MotionSubscriber(server.fanout.endpoints()["zmq"])
            pc.addTrack(AudioStreamTrack())  # a silent microphone
            pc.addTransceiver("video", direction="recvonly")
            pc.createDataChannel("infp")
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
            async with aiohttp.ClientSession() as http:
                async with http.post(url + "offer", json=offer) as r:
                    assert r.status == 200, await r.text()
                    await pc.setRemoteDescription(RTCSessionDescription(**await r.json()))
                await asyncio.sleep(3.0)  # the greeting
                async with http.get(url + "status") as r:
                    status = await r.json()
            messages, deadline = [], time.monotonic() + 2.0  # what queued up, and no more
            while time.monotonic() < deadline and (m := subscriber.recv(0.2)) is not None:
                messages.append(m)
            subscriber.close()
            return status, [m for m in messages if isinstance(m, Motion)]
        finally:
            await pc.close()
            await server.stop()

    status, motion = asyncio.run(run())
    assert status["sinks"] == {"zmq": "zmq ok"}
    assert status["conversation"]["state"] in ("speaking", "thinking", "listening")
    assert len(motion) >= 30, len(motion)  # ~25 per second once connected
    assert [m.index for m in motion] == sorted({m.index for m in motion})  # each frame once
    assert max(m.speaking for m in motion) > 0.5  # the greeting: the face talks


def test_serve_rejects_bad_options():
    from infp_sdk.serve.server import AvatarServer, ServeOptions

    with pytest.raises(ValueError, match="size"):
        AvatarServer(ServeOptions(size=8))


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed"
)
def test_conversation_in_chromium(tmp_path):
    """The page connects on its own (?autostart=1), its <video> decodes >= 20 fps, the avatar
    greets, answers when the fake microphone stops and stops when it talks over the answer; its
    mouth moves on its own while it speaks and only with the head while the microphone talks;
    voice and face leave in step; Ctrl-C ends the server cleanly."""
    shot = tmp_path / "serve.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve_browser.py"), "--seconds", "22",
         "--out", str(tmp_path), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    r = json.loads((tmp_path / "serve_browser.json").read_text())
    s = r["server"]
    assert r["page_error"] is None and s["error"] is None
    assert r["connect_s"] < 10
    assert r["fps_mean"] >= 20, r
    assert s["replies"] >= 2 and s["barge_ins"] >= 1, s  # greeting + an answer; interrupted
    speaking, listening = r["avatar_speaking"], r["user_speaking"]
    assert speaking["samples"] >= 30 and listening["samples"] >= 30, r
    assert listening["articulation"] < 1.15, r  # the mouth rests: it moves as the face does
    assert speaking["articulation"] > 1.25 * listening["articulation"], r
    assert abs(s["av_offset_ms"]) <= 40, s
    assert r["server_exit"] == 0
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
