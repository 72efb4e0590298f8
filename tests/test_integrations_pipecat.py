"""InfpVideoService in a real Pipecat pipeline (pipecat's own `run_test`), in real time.

The bundled conversation plays the two roles: the partner's first turn arrives as the user's
microphone (`InputAudioRawFrame`, 20 ms at a time, at real-time pace), then the own voice's first
turn arrives as one burst of `TTSAudioRawFrame`s, as a TTS sends it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip(
    "pipecat",
    reason="the Pipecat adapter's tests need pipecat-ai (pip install 'infp-sdk[pipecat]'); "
    "it needs protobuf>=5, which the `dev` extra's mediapipe pin rules out",
)

from avsync import (  # noqa: E402
    PORTRAIT,
    BreaksAfter,
    SentAudio,
    SentVideo,
    av_offsets,
    check_conversation,
    fps_of,
    infp_threads,
    voices,
)
from pipecat.frames.frames import (  # noqa: E402
    InputAudioRawFrame,
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.worker import PipelineParams  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from infp_sdk.audio import resample  # noqa: E402
from infp_sdk.integrations.pipecat import InfpVideoService  # noqa: E402

SIZE = (160, 120)  # small, so rendering keeps up on two shared cores
DELAY = 0.4  # generous for the same reason: the sync tests should not measure a busy machine


def mic_frames(user: np.ndarray, rate: int, seconds: float) -> list:
    """The microphone: ``user`` then silence, in 20 ms frames at real-time pace."""
    n = rate // 50
    mic = np.zeros(int(seconds * rate), np.int16)
    mic[: len(user)] = user[: len(mic)]
    frames = []
    for i in range(0, len(mic) - n + 1, n):
        frames += [InputAudioRawFrame(mic[i : i + n].tobytes(), rate, 1), SleepFrame(0.02)]
    return frames


def tts_frames(bot: np.ndarray, rate: int) -> list:
    """A TTS answer, all at once, in 40 ms frames between TTSStarted and TTSStopped."""
    n = rate // 25
    chunks = [bot[i : i + n] for i in range(0, len(bot), n)]
    return [
        TTSStartedFrame(),
        *[TTSAudioRawFrame(c.tobytes(), rate, 1) for c in chunks],
        TTSStoppedFrame(),
    ]


def run(service, frames, rate, **kwargs):
    """Run ``frames`` through ``service`` in a pipeline; returns (downstream, upstream)."""
    params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)

    async def go():
        return await run_test(
            service, frames_to_send=frames, pipeline_params=params, start_timeout=60, **kwargs
        )

    return asyncio.run(go())


def service(**kw) -> InfpVideoService:
    return InfpVideoService(PORTRAIT, width=SIZE[0], height=SIZE[1], delay=DELAY, **kw)


def timeline(down) -> tuple[list, list, list[SentVideo], list[SentAudio]]:
    """(images, voice frames) passed on, and the same as what the timing checks read."""
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    video = [
        SentVideo(i["sent"], i["t"], i["source"], i["late"], i["jawOpen"])
        for i in (f.metadata["infp"] for f in images)
    ]
    voice = [
        SentAudio(f.metadata["infp"]["sent"], f.metadata["infp"]["t"],
                  np.frombuffer(f.audio, np.int16)[:: f.num_channels], f.sample_rate)
        for f in audio
    ]  # fmt: skip
    return images, audio, video, voice


@pytest.mark.slow
def test_talks_with_the_tts_listens_to_the_user_and_keeps_them_in_sync():
    rate = 24000
    user, bot = voices(rate)
    # 2.4 s of the user, then the TTS answer arrives while the mic carries on (silent)
    mic = mic_frames(user, rate, 2.4 + 3.0)
    at_tts = len(mic_frames(user, rate, 2.4))
    frames = mic[:at_tts] + tts_frames(bot, rate) + mic[at_tts:]
    face = service()
    queued = {}

    def note_tts_queued(*_):
        queued.setdefault("t", time.monotonic())

    face.add_event_handler("on_before_process_frame", _first_tts(note_tts_queued))
    down, _ = run(face, frames, rate)
    images, audio, video, voice = timeline(down)

    # the voice passed on is the TTS audio, sample for sample, and nothing else
    assert b"".join(f.audio for f in audio) == bot.tobytes()
    assert all(f.sample_rate == rate and f.num_channels == 1 for f in audio)
    # ... in order with the frames around it
    kinds = [type(f) for f in down if isinstance(f, (TTSStartedFrame, TTSAudioRawFrame,
                                                     TTSStoppedFrame))]  # fmt: skip
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
    # ... delayed by the stated amount (one tick of the clock earlier at most)
    added = voice[0].sent - queued["t"]
    assert DELAY - 0.02 <= added <= DELAY + 0.05, added

    # images: RGB at the transport's size, from the start (media time 0, `delay` later)
    assert all(f.size == SIZE and f.format == "RGB" for f in images)
    assert len(images[0].image) == SIZE[0] * SIZE[1] * 3
    assert video[0].sent - face._pacer.t0 < DELAY + 0.1
    # ... at 30 per second, in step with the voice; the mouth talks and listens
    measured = check_conversation(video, voice, fps=30)
    print(measured, f"delay {added * 1000:.0f} ms")
    assert face.stats["frames_out"] == len(images)
    assert not infp_threads()  # EndFrame closed the agent


def _first_tts(callback):
    async def handler(processor, frame):
        if isinstance(frame, TTSAudioRawFrame):
            callback()

    return handler


@pytest.mark.slow
def test_an_interruption_cuts_the_voice_and_stops_the_mouth():
    rate = 16000
    _, bot = voices(rate)
    mic = mic_frames(np.zeros(0, np.int16), rate, 3.0)  # the user's mic, silent
    at_tts, at_cut = 25, 25 + 60  # 0.5 s in, then 1.2 s into the answer
    frames = mic[: 2 * at_tts] + tts_frames(bot, rate) + mic[2 * at_tts : 2 * at_cut]
    frames += [InterruptionFrame()] + mic[2 * at_cut :]
    face = service()
    cut = {}

    async def note_cut(processor, frame):
        if isinstance(frame, InterruptionFrame):
            cut.setdefault("t", time.monotonic())

    face.add_event_handler("on_before_process_frame", note_cut)
    down, _ = run(face, frames, rate)
    images, audio, video, voice = timeline(down)

    # the voice stops at the interruption: what was still held back is never passed on
    assert 0.5 * rate < sum(f.num_frames for f in audio) < 1.5 * rate
    assert max(a.sent for a in voice) < cut["t"] + 0.02
    assert not any(isinstance(f, TTSStoppedFrame) for f in down)  # dropped with the rest
    assert any(isinstance(f, InterruptionFrame) for f in down)
    # the mouth: open during the answer, at rest once the frames made before the cut are shown
    jaw = np.array([v.jaw for v in video])
    sent = np.array([v.sent for v in video]) - cut["t"]
    assert jaw[(sent > -0.8) & (sent < 0)].max() > 0.2
    moving = sent[jaw > 0.05]
    stops = moving.max() if len(moving) else 0.0
    print(
        f"mouth at rest {stops * 1000:.0f} ms after the interruption (delay {DELAY * 1000:.0f} ms)"
    )
    assert stops <= DELAY + 0.2
    assert (jaw[sent > DELAY + 0.2] < 0.05).all() and (sent > DELAY + 0.2).sum() > 20
    assert not infp_threads()


def test_the_frames_shown_also_reach_a_live_sink():
    """sinks={"zmq": ...}: each agent frame the service shows is also published on ZeroMQ,
    once and in order, for a game engine to follow the call."""
    from avsync import free_port, motion_received

    from infp_sdk.io.client import MotionSubscriber

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    subscriber = MotionSubscriber(endpoint)  # ZeroMQ connects before the bind, and waits
    user, _ = voices(16000)
    down, _ = run(service(sinks={"zmq": endpoint}), mic_frames(user, 16000, 2.0), 16000)
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    motion = motion_received(subscriber)
    assert len(images) >= 50 and len(motion) >= 40, (len(images), len(motion))
    indices = [m.index for m in motion]
    assert indices == sorted(set(indices))
    assert not infp_threads()


@pytest.mark.slow
@pytest.mark.parametrize("out_rate, tts_rate", [(16000, 16000), (48000, 48000), (16000, 24000)])
def test_any_transport_rate(out_rate, tts_rate):
    user, _ = voices(out_rate)
    _, bot = voices(tts_rate)
    bot = bot[:tts_rate]  # one second of the answer
    mic = mic_frames(user, out_rate, 2.0)
    frames = mic[:20] + tts_frames(bot, tts_rate) + mic[20:]
    face = service(sample_rate=out_rate) if out_rate != tts_rate else service()
    down, _ = run(face, frames, out_rate)
    images, audio, video, voice = timeline(down)
    assert all(f.sample_rate == out_rate for f in audio)
    got = np.frombuffer(b"".join(f.audio for f in audio), np.int16)
    if out_rate == tts_rate:
        assert got.tobytes() == bot.tobytes()
    else:  # resampled to the transport's rate, as one stream
        want = resample(bot.astype(np.float32) / 32768, tts_rate, out_rate)
        assert abs(len(got) - len(want)) <= 8
        n = min(len(got), len(want))
        assert np.corrcoef(got[:n].astype(np.float32), want[:n])[0, 1] > 0.99
    assert abs(fps_of(video) - 30) < 1.5
    offsets, late = av_offsets(video, voice)
    assert late <= 0.2 and np.percentile(np.abs(offsets), 99) <= 0.040


@pytest.mark.slow
def test_a_failure_of_the_agent_reaches_the_pipeline_and_the_voice_goes_on():
    from pipecat.frames.frames import ErrorFrame

    from infp_sdk import Agent
    from infp_sdk.face import load_portrait
    from infp_sdk.runtime.agent import AgentFailedError

    rate = 16000
    _, bot = voices(rate)
    agent = Agent(BreaksAfter(load_portrait(PORTRAIT, size=SIZE), 20))
    face = InfpVideoService(agent=agent, width=SIZE[0], height=SIZE[1], delay=DELAY)
    mic = mic_frames(np.zeros(0, np.int16), rate, 2.0)
    frames = mic[:10] + tts_frames(bot, rate) + mic[10:]

    down, up = run(face, frames, rate)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and isinstance(errors[0].exception, AgentFailedError)
    assert "renderer broke" in str(errors[0].exception)
    assert not face.is_usable
    # the pipeline ended normally, and the bot's voice was still passed on in full
    images, audio, video, voice = timeline(down)
    assert len(images) <= 20
    assert len(b"".join(f.audio for f in audio)) == len(bot.tobytes())
    assert not infp_threads()


@pytest.mark.slow
def test_cancelling_the_pipeline_leaves_no_threads():
    from pipecat.frames.frames import CancelFrame

    rate = 16000
    _, bot = voices(rate)
    frames = tts_frames(bot, rate) + [SleepFrame(0.5), CancelFrame()]

    down, _ = run(service(), frames, rate, send_end_frame=False)
    assert any(isinstance(f, OutputImageRawFrame) for f in down)
    assert not infp_threads()


def test_the_example_bot_starts():
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipecat_bot.py"), "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout and "serve" in res.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_the_example_bots_offline_demo(tmp_path):
    out = tmp_path / "demo.mp4"
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipecat_bot.py"), "--width", "64",
         "--height", "64", "demo", "-o", str(out), "--seconds", "5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.stat().st_size > 1000
    images = int(re.search(r"'images': (\d+)", res.stdout).group(1))
    assert 140 <= images <= 152  # 5 s at 30 fps, less the delay at the end
