"""InfpVideoGenerator driven as LiveKit's AvatarRunner drives it, with real `rtc` frames.

No LiveKit server runs here, so the room is left out and everything around it is real: the
agent's voice arrives as `rtc.AudioFrame`s of 100 ms in a burst (as `DataStreamAudioReceiver`
hands them over) followed by `AudioSegmentEnd`; the user's microphone is a real local audio
track that `PartnerAudio` follows through an `rtc.AudioStream`; what the generator yields goes
into a real `rtc.AVSynchronizer` with an `AudioSource` and a `VideoSource`, as in the runner.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip(
    "livekit.agents",
    reason="the LiveKit adapter's tests need livekit-agents (pip install 'infp-sdk[livekit]'); "
    "it needs protobuf>=5, which the `dev` extra's mediapipe pin rules out",
)

from avsync import (  # noqa: E402
    PORTRAIT,
    BreaksAfter,
    SentAudio,
    SentVideo,
    check_conversation,
    infp_threads,
    voices,
)
from livekit import rtc  # noqa: E402
from livekit.agents.voice.avatar import AudioSegmentEnd  # noqa: E402

from infp_sdk.integrations.livekit import InfpVideoGenerator, PartnerAudio  # noqa: E402
from infp_sdk.motion import blendshape_index  # noqa: E402

SIZE = (160, 120)  # small, so rendering keeps up on two shared cores
DELAY = 0.4  # generous for the same reason: the sync checks should not measure a busy machine
RATE = 24000
JAW = blendshape_index("jawOpen")


def audio_frames(pcm: np.ndarray, rate: int, ms: int) -> list[rtc.AudioFrame]:
    n = rate * ms // 1000
    return [
        rtc.AudioFrame(pcm[i : i + n].tobytes(), rate, 1, len(pcm[i : i + n]))
        for i in range(0, len(pcm), n)
    ]


class Session:
    """A generator with a microphone, consumed as AvatarRunner does; records what it sent."""

    def __init__(self, generator: InfpVideoGenerator):
        self.gen = generator
        self.video: list[SentVideo] = []
        self.voice: list[SentAudio] = []
        self.items: list = []  # everything yielded, in order
        self.mic = rtc.AudioSource(RATE, 1, queue_size_ms=100)
        self.mic_track = rtc.LocalAudioTrack.create_audio_track("mic", self.mic)
        options = generator.options
        self.audio_source = rtc.AudioSource(options.audio_sample_rate, 1, queue_size_ms=100)
        self.video_source = rtc.VideoSource(options.video_width, options.video_height)
        self.av_sync = rtc.AVSynchronizer(
            audio_source=self.audio_source,
            video_source=self.video_source,
            video_fps=options.video_fps,
            video_queue_size_ms=100,
        )

    async def consume(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        async for item in self.gen:
            now = time.monotonic()
            self.items.append(item)
            if isinstance(item, rtc.VideoFrame):
                v = self.gen.last_video
                jaw = float(v.frame.blendshapes[JAW])
                self.video.append(SentVideo(now, v.t, v.source, v.late, jaw))
                await self.av_sync.push(item)
            elif isinstance(item, rtc.AudioFrame):
                info = item.userdata["infp"]
                pcm = np.frombuffer(bytes(item.data), np.int16).copy()
                self.voice.append(SentAudio(info["sent"], info["t"], pcm, item.sample_rate))
                await self.av_sync.push(item)
            if now > end:
                return

    async def speak_into_mic(self, pcm: np.ndarray) -> None:
        """The user's microphone: ``pcm`` in 10 ms frames, at real-time pace."""
        for frame in audio_frames(pcm, RATE, 10):
            await self.mic.capture_frame(frame)

    async def close(self) -> None:
        await self.av_sync.aclose()
        await self.audio_source.aclose()
        await self.video_source.aclose()
        await self.mic.aclose()
        await self.gen.aclose()


def generator(**kw) -> InfpVideoGenerator:
    return InfpVideoGenerator(
        PORTRAIT, width=SIZE[0], height=SIZE[1], fps=30, sample_rate=RATE, delay=DELAY, **kw
    )


@pytest.mark.slow
def test_talks_with_the_agent_listens_to_the_user_and_keeps_them_in_sync():
    user, bot = voices(RATE)

    async def go():
        session = Session(generator())
        await session.gen.start()
        partner = PartnerAudio(None, session.gen)  # no room: its microphone is given directly
        following = asyncio.ensure_future(partner.follow(session.mic_track))
        consuming = asyncio.ensure_future(session.consume(2.4 + 2.8 + DELAY + 0.4))
        await asyncio.sleep(0.05)
        await session.speak_into_mic(user)
        queued = time.monotonic()
        for frame in audio_frames(bot, RATE, 100):  # the agent's answer, in a burst
            await session.gen.push_audio(frame)
        await session.gen.push_audio(AudioSegmentEnd())
        await consuming
        following.cancel()
        actual_fps = session.av_sync.actual_fps
        await session.close()
        return session, queued, actual_fps

    session, queued, actual_fps = asyncio.run(go())
    video, voice = session.video, session.voice

    # the voice passed on is the agent's, sample for sample, then the segment's end
    assert np.concatenate([a.samples for a in voice]).tobytes() == bot.tobytes()
    last_audio = max(i for i, x in enumerate(session.items) if isinstance(x, rtc.AudioFrame))
    ends = [i for i, x in enumerate(session.items) if isinstance(x, AudioSegmentEnd)]
    assert len(ends) == 1 and last_audio < ends[0] <= last_audio + 2  # a video frame between
    # ... delayed by the stated amount (one tick of the clock earlier at most)
    added = voice[0].sent - queued
    assert DELAY - 0.02 <= added <= DELAY + 0.05, added
    # frames at 30 per second from the start, in step with the voice; the mouth talks with the
    # agent and rests while the user (heard through the microphone track) talks
    assert video[0].sent - session.gen._pacer.t0 < DELAY + 0.1
    measured = check_conversation(video, voice, fps=30)
    print(measured, f"delay {added * 1000:.0f} ms, AVSynchronizer at {actual_fps:.1f} fps")
    assert actual_fps == pytest.approx(30, abs=2)
    assert not infp_threads()


def test_the_frames_shown_also_reach_a_live_sink():
    """sinks={"zmq": ...}: each agent frame the generator yields is also published on ZeroMQ,
    once and in order, for a game engine to follow the room."""
    from avsync import free_port, motion_received

    from infp_sdk.io.client import MotionSubscriber

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    subscriber = MotionSubscriber(endpoint)

    async def go():
        session = Session(generator(sinks={"zmq": endpoint}))
        await session.gen.start()
        await session.consume(2.5)
        await session.close()
        return session

    session = asyncio.run(go())
    motion = motion_received(subscriber)
    assert len(session.video) >= 60 and len(motion) >= 40, (len(session.video), len(motion))
    indices = [m.index for m in motion]
    assert indices == sorted(set(indices))
    assert not infp_threads()


@pytest.mark.slow
def test_clear_buffer_cuts_the_voice_and_stops_the_mouth():
    _, bot = voices(RATE)

    async def go():
        session = Session(generator())
        await session.gen.start()
        consuming = asyncio.ensure_future(session.consume(3.0))
        await asyncio.sleep(0.5)
        for frame in audio_frames(bot, RATE, 100):
            await session.gen.push_audio(frame)
        await session.gen.push_audio(AudioSegmentEnd())
        await asyncio.sleep(1.2)
        cut = time.monotonic()
        await session.gen.clear_buffer()
        await consuming
        await session.close()
        return session, cut

    session, cut = asyncio.run(go())
    video, voice = session.video, session.voice
    played = sum(len(a.samples) for a in voice)
    assert 0.5 * RATE < played < 1.5 * RATE
    assert max(a.sent for a in voice) < cut + 0.05
    assert not any(isinstance(x, AudioSegmentEnd) for x in session.items)
    jaw = np.array([v.jaw for v in video])
    sent = np.array([v.sent for v in video]) - cut
    assert jaw[(sent > -0.8) & (sent < 0)].max() > 0.2
    moving = sent[jaw > 0.05]
    stops = moving.max() if len(moving) else 0.0
    print(f"mouth at rest {stops * 1000:.0f} ms after clear_buffer (delay {DELAY * 1000:.0f} ms)")
    assert stops <= DELAY + 0.2
    assert (jaw[sent > DELAY + 0.2] < 0.05).all() and (sent > DELAY + 0.2).sum() > 20
    assert not infp_threads()


@pytest.mark.slow
def test_a_failure_of_the_agent_is_raised_by_the_iteration():
    from infp_sdk import Agent
    from infp_sdk.face import load_portrait
    from infp_sdk.runtime.agent import AgentFailedError

    async def go():
        agent = Agent(BreaksAfter(load_portrait(PORTRAIT, size=SIZE), 20))
        gen = InfpVideoGenerator(agent=agent, width=SIZE[0], height=SIZE[1], delay=DELAY)
        frames = 0
        try:
            with pytest.raises(AgentFailedError, match="renderer broke"):
                async for item in gen:
                    frames += isinstance(item, rtc.VideoFrame)
        finally:
            await gen.aclose()
        return frames

    assert 0 < asyncio.run(go()) <= 20
    assert not infp_threads()


def test_partner_audio_follows_a_users_microphone_only():
    follow = PartnerAudio(None, None)
    mic, camera = rtc.TrackSource.SOURCE_MICROPHONE, rtc.TrackSource.SOURCE_CAMERA
    user = SimpleNamespace(identity="alice", kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)
    agent = SimpleNamespace(identity="bot", kind=rtc.ParticipantKind.PARTICIPANT_KIND_AGENT)
    assert follow.wanted(SimpleNamespace(source=mic), user)
    assert not follow.wanted(SimpleNamespace(source=camera), user)
    assert not follow.wanted(SimpleNamespace(source=mic), agent)
    only_bob = PartnerAudio(None, None, identity="bob")
    assert not only_bob.wanted(SimpleNamespace(source=mic), user)


def test_the_example_avatar_worker_starts(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "livekit_avatar.py"), "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "--url" in res.stdout and "--portrait" in res.stdout


def test_the_example_worker_makes_its_token():
    import jwt

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import livekit_avatar
    finally:
        sys.path.pop(0)
    args = livekit_avatar.parse_args(["--room", "demo", "--agent-identity", "voice-agent"])
    claims = jwt.decode(livekit_avatar.make_token(args), "secret", algorithms=["HS256"])
    assert claims["sub"] == "infp-avatar" and claims["kind"] == "agent"
    assert claims["video"]["room"] == "demo" and claims["video"]["roomJoin"]
    assert claims["attributes"] == {"lk.publish_on_behalf": "voice-agent"}


def test_the_voice_agent_sends_its_voice_to_the_avatar():
    from livekit.agents import AgentSession
    from livekit.agents.voice.avatar import DataStreamAudioOutput

    from infp_sdk.integrations.livekit import send_voice_to_avatar

    async def go():
        session = AgentSession()
        send_voice_to_avatar(session, rtc.Room(), avatar_identity="face")
        return session.output.audio

    out = asyncio.run(go())
    assert isinstance(out, DataStreamAudioOutput)
    assert out._destination_identity == "face" and out.sample_rate == 24000
