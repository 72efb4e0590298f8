"""InfpVideoService in a real Pipecat pipeline (pipecat's own `run_test`), in real time.

The bundled conversation plays the two roles: the partner's first turn arrives as the user's
microphone (`InputAudioRawFrame`, 20 ms at a time, at real-time pace), then the own voice's first
turn arrives as one burst of `TTSAudioRawFrame`s, as a TTS sends it.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip(
    "pipecat",
    reason="the Pipecat adapter's tests need pipecat-ai (pip install 'infp-sdk[pipecat]'); "
    "it needs protobuf>=5, which the `dev` extra's mediapipe pin rules out",
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

from infp_sdk.audio import read_wav, resample  # noqa: E402
from infp_sdk.integrations.pipecat import InfpVideoService  # noqa: E402

CONVERSATION = ROOT / "examples" / "conversation"
PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"
SIZE = (160, 120)  # small, so rendering keeps up on two shared cores
DELAY = 0.3  # generous for the same reason: the sync tests should not measure a busy machine


def voices(rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(the user's turn, the bot's turn) as int16 at ``rate``."""
    own, sr = read_wav(CONVERSATION / "own.wav")
    partner, _ = read_wav(CONVERSATION / "partner.wav")
    user = partner[: int(2.4 * sr), 0]  # the partner talks from 0.3 s to 3.0 s
    bot = own[int(3.9 * sr) : int(6.7 * sr), 0]  # the own voice's first turn

    def pcm(x):
        x = resample(x, sr, rate) if rate != sr else x
        return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)

    return pcm(user), pcm(bot)


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


def infp_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("infp")]


def timeline(down):
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    return images, audio


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
    images, audio = timeline(down)

    # the voice passed on is the TTS audio, sample for sample, and nothing else
    assert b"".join(f.audio for f in audio) == bot.tobytes()
    assert all(f.sample_rate == rate and f.num_channels == 1 for f in audio)
    # ... in order with the frames around it
    kinds = [type(f) for f in down if isinstance(f, (TTSStartedFrame, TTSAudioRawFrame,
                                                     TTSStoppedFrame))]  # fmt: skip
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
    # ... delayed by the stated amount (one tick of the clock earlier at most)
    added = audio[0].metadata["infp"]["sent"] - queued["t"]
    assert DELAY - 0.02 <= added <= DELAY + 0.05, added

    # images: RGB at the transport's size, at 30 per second
    assert all(f.size == SIZE and f.format == "RGB" for f in images)
    assert len(images[0].image) == SIZE[0] * SIZE[1] * 3
    sent = np.array([f.metadata["infp"]["sent"] for f in images])
    span = sent[-1] - sent[0]
    assert abs((len(sent) - 1) / span - 30) < 1.0
    assert np.median(np.diff(sent)) == pytest.approx(1 / 30, abs=0.005)
    # from the start (media time 0, `delay` later), not only once the bot speaks
    assert sent[0] - face._pacer.t0 < DELAY + 0.1

    # voice and face in step: the frame on screen while a sample plays shows that sample
    offsets, late = av_offsets(images, audio)
    print(
        f"A/V offset p50 {np.median(np.abs(offsets)) * 1000:.0f} ms, max "
        f"{np.abs(offsets).max() * 1000:.0f} ms; late {late:.1%}; delay {added * 1000:.0f} ms"
    )
    assert late <= 0.1, f"{late:.0%} of the frames were late"
    assert np.abs(offsets).max() <= 0.040, np.abs(offsets).max()

    # the mouth moves with the bot's voice and rests while only the user talks
    jaw = np.array([f.metadata["infp"]["jawOpen"] for f in images])
    t = np.array([f.metadata["infp"]["t"] for f in images])
    voiced = t_voiced(audio, rate)
    talking = jaw[voiced(t)]
    listening = jaw[(t > 0.5) & (t < 2.3)]
    print(
        f"jawOpen talking {talking.mean():.3f} (max {talking.max():.3f}), listening "
        f"{listening.mean():.3f} (max {listening.max():.3f})"
    )
    assert talking.mean() > 3 * listening.mean() and talking.max() > 0.2
    assert listening.max() < 0.15
    assert face.stats["frames_out"] == len(images)
    assert not infp_threads()  # EndFrame closed the agent


def _first_tts(callback):
    async def handler(processor, frame):
        if isinstance(frame, TTSAudioRawFrame):
            callback()

    return handler


def av_offsets(images, audio) -> tuple[np.ndarray, float]:
    """For every 5 ms of the voice passed on: the media time shown on screen when it plays
    (the centre of the agent frame in the image sent last before it) minus its own media time;
    and the fraction of images that were late.

    A transport plays a chunk from the moment it gets it, so a sample ``s`` seconds into a
    chunk plays ``s`` after the chunk was sent. A late image (the agent's frame was not ready in
    time, so an older one is shown again: a busy machine, counted by the service) is left out
    of the offsets and counted instead.
    """
    sent = np.array([f.metadata["infp"]["sent"] for f in images])
    shows = np.array([(f.metadata["infp"]["source"] + 0.5) / 25 for f in images])
    late = np.array([f.metadata["infp"]["late"] for f in images])
    offsets = []
    for chunk in audio:
        info = chunk.metadata["infp"]
        for s in np.arange(0, chunk.num_frames / chunk.sample_rate, 0.005):
            k = np.searchsorted(sent, info["sent"] + s, side="right") - 1
            if k >= 0 and not late[k]:
                offsets.append(shows[k] - (info["t"] + s))
    return np.array(offsets), float(late.mean())


def t_voiced(audio, rate):
    """A test of media times: inside the voice passed on and loud there."""
    spans = []
    for chunk in audio:
        x = np.frombuffer(chunk.audio, np.int16).astype(np.float32) / 32768
        if np.sqrt((x**2).mean()) > 0.05:
            t = chunk.metadata["infp"]["t"]
            spans.append((t, t + len(x) / rate))

    def inside(t):
        return np.array([any(a <= x < b for a, b in spans) for x in t], bool)

    return inside


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
    images, audio = timeline(down)

    # the voice stops at the interruption: what was still held back is never passed on
    assert 0.5 * rate < sum(f.num_frames for f in audio) < 1.5 * rate
    assert max(f.metadata["infp"]["sent"] for f in audio) < cut["t"] + 0.02
    assert not any(isinstance(f, TTSStoppedFrame) for f in down)  # dropped with the rest
    assert any(isinstance(f, InterruptionFrame) for f in down)
    # the mouth: open during the answer, at rest once the frames made before the cut are shown
    jaw = np.array([f.metadata["infp"]["jawOpen"] for f in images])
    sent = np.array([f.metadata["infp"]["sent"] for f in images]) - cut["t"]
    assert jaw[(sent > -0.8) & (sent < 0)].max() > 0.2
    moving = sent[jaw > 0.05]
    stops = moving.max() if len(moving) else 0.0
    print(
        f"mouth at rest {stops * 1000:.0f} ms after the interruption (delay {DELAY * 1000:.0f} ms)"
    )
    assert stops <= DELAY + 0.2
    assert (jaw[sent > DELAY + 0.2] < 0.05).all() and (sent > DELAY + 0.2).sum() > 20
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
    images, audio = timeline(down)
    assert all(f.sample_rate == out_rate for f in audio)
    got = np.frombuffer(b"".join(f.audio for f in audio), np.int16)
    if out_rate == tts_rate:
        assert got.tobytes() == bot.tobytes()
    else:  # resampled to the transport's rate, as one stream
        want = resample(bot.astype(np.float32) / 32768, tts_rate, out_rate)
        assert abs(len(got) - len(want)) <= 8
        n = min(len(got), len(want))
        assert np.corrcoef(got[:n].astype(np.float32), want[:n])[0, 1] > 0.99
    sent = np.array([f.metadata["infp"]["sent"] for f in images])
    assert abs((len(sent) - 1) / (sent[-1] - sent[0]) - 30) < 1.5
    offsets, late = av_offsets(images, audio)
    assert late <= 0.2 and np.abs(offsets).max() <= 0.040


class BreaksAfter:
    """A renderer that fails at its ``n``-th frame (a stand-in for a broken GPU, say)."""

    def __init__(self, renderer, n: int):
        self.renderer, self.n = renderer, n

    def render(self, frame):
        self.n -= 1
        if self.n < 0:
            raise RuntimeError("the renderer broke")
        return self.renderer.render(frame)


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
    images, audio = timeline(down)
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
