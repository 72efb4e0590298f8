"""LiveKit Agents: a conversing face as an avatar, self-hosted.

Two pieces, used by an avatar worker (a process that joins the room next to the voice agent):

* :class:`InfpVideoGenerator` implements ``livekit.agents.voice.avatar.VideoGenerator``: the
  agent's voice comes in through ``push_audio`` (in bursts, as the agent's TTS makes it) and is
  played out into an :class:`infp_sdk.Agent` at real-time pace; iterating it yields
  ``rtc.VideoFrame`` s at ``fps``, the voice as ``rtc.AudioFrame`` s ``delay`` seconds later in
  step with the frames that show it, and ``AudioSegmentEnd`` after the last audio of each
  segment. ``clear_buffer`` (the agent was interrupted) drops the voice not yet played and
  sends the face back to listening.
* :class:`PartnerAudio` subscribes to the user's microphone track in the room and pushes it to
  the generator as the partner's voice, so the face listens while the user speaks (no hosted
  avatar does this).

:func:`run_avatar_worker` puts them together with livekit-agents' ``AvatarRunner`` and
``DataStreamAudioReceiver`` in a connected room; :func:`send_voice_to_avatar` is the line for
the voice agent's side. ``docs/integrations/livekit.md`` has the whole set-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

try:
    from livekit import rtc
    from livekit.agents.voice.avatar import (
        AudioSegmentEnd,
        AvatarOptions,
        AvatarRunner,
        DataStreamAudioOutput,
        DataStreamAudioReceiver,
        VideoGenerator,
    )
except ModuleNotFoundError as e:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError(
        "infp_sdk.integrations.livekit needs livekit-agents: pip install 'infp-sdk[livekit]'"
    ) from e

from ..live.fanout import Fanout
from ..runtime.pacer import AudioOut, MarkerOut, Pacer, VideoOut, warm_up

log = logging.getLogger(__name__)

DEFAULT_DELAY_S = 0.2
"""Seconds the agent's voice is held back so that the face can catch up with it (see
``docs/integrations/livekit.md``)."""

DEFAULT_IDENTITY = "infp-avatar"
"""The avatar worker's participant identity unless told otherwise."""


class InfpVideoGenerator(VideoGenerator):
    """A talking and listening face as a LiveKit Agents ``VideoGenerator``.

    Args:
        portrait: the face (anything :func:`infp_sdk.face.load_portrait` takes), rendered at
            ``width`` x ``height``.
        agent: a ready :class:`infp_sdk.Agent` with a portrait, instead of ``portrait`` (its
            images are scaled to fit). The generator owns it and closes it in :meth:`aclose`.
        width, height, fps: the video track.
        sample_rate, channels: the audio track (the voice is resampled to it on arrival).
        delay: seconds the voice is held back; it must cover the agent's mouth-to-face latency
            or some frames come out late (an older one shown again; counted in :attr:`stats`).
        agent_options: keyword arguments for :class:`infp_sdk.Agent` when it is made from
            ``portrait``.
        sinks: sinks of ``infp-sdk live`` that every frame shown also goes to, by option key
            (``{"zmq": "tcp://127.0.0.1:5555"}``: a game engine's avatar follows the room).

    Call :meth:`start` to make the agent ahead of time (iterating does it otherwise), and
    :meth:`aclose` when done. A failure of the agent is raised by the iteration.
    """

    def __init__(
        self,
        portrait: Any = None,
        *,
        agent: Any = None,
        width: int = 512,
        height: int = 512,
        fps: float = 30.0,
        sample_rate: int = 24000,
        channels: int = 1,
        delay: float = DEFAULT_DELAY_S,
        agent_options: dict[str, Any] | None = None,
        sinks: Mapping[str, Any] | None = None,
    ):
        if (portrait is None) == (agent is None):
            raise ValueError("give either a portrait or a ready agent (Agent(portrait))")
        if not (16 <= int(width) <= 4096 and 16 <= int(height) <= 4096):
            raise ValueError(f"width and height must be 16..4096, got {width}x{height}")
        self._portrait = portrait
        self._agent = agent
        self._agent_options = dict(agent_options or {})
        self._size = (int(width), int(height))
        self._fps = float(fps)
        self._sample_rate, self._channels = int(sample_rate), int(channels)
        self._delay = float(delay)
        self._pacer: Pacer | None = None
        self._sinks = dict(sinks or {})
        self._fanout: Fanout | None = None
        self._ready: list[AudioSegmentEnd] = []  # segment ends with no audio left to wait for
        self._start_lock = asyncio.Lock()
        self._closed = False
        self.last_video: VideoOut | None = None
        """The output frame yielded last: which agent frame it shows (``source``), its media
        time ``t``, whether it was ``late`` — for whoever checks the timing."""

    # ------------------------------------------------------------------ set-up
    @property
    def options(self) -> AvatarOptions:
        """The ``AvatarOptions`` that match this generator (for ``AvatarRunner``)."""
        return AvatarOptions(
            video_width=self._size[0],
            video_height=self._size[1],
            video_fps=self._fps,
            audio_sample_rate=self._sample_rate,
            audio_channels=self._channels,
        )

    @property
    def agent(self) -> Any:
        """The :class:`infp_sdk.Agent` (None until :meth:`start`)."""
        return self._agent

    @property
    def delay(self) -> float:
        """Seconds the voice is held back."""
        return self._delay

    @property
    def pending(self) -> bool:
        """Voice (or a segment end) still waiting to be played out."""
        return self._pacer is not None and (self._pacer.pending or bool(self._ready))

    @property
    def stats(self) -> dict[str, int]:
        """Video frames out, late ones (an older frame shown again), and skipped ones."""
        return dict(self._pacer.stats) if self._pacer is not None else {}

    async def start(self) -> None:
        """Make and warm up the agent (seconds: the model and the portrait); idempotent."""
        async with self._start_lock:
            if self._pacer is not None:
                return
            if self._closed:
                raise RuntimeError("this generator is closed")
            if self._agent is None:
                self._agent = await asyncio.to_thread(self._make_agent)
            await asyncio.to_thread(warm_up, self._agent)
            self._fanout = await asyncio.to_thread(
                Fanout.open, self._sinks, self._agent.latent_size
            )
            self._pacer = Pacer(
                self._agent,
                sample_rate=self._sample_rate,
                channels=self._channels,
                size=self._size,
                fps=self._fps,
                delay=self._delay,
            )

    def _make_agent(self) -> Any:
        from .. import Agent
        from ..face import load_portrait

        return Agent(load_portrait(self._portrait, size=self._size), **self._agent_options)

    async def aclose(self) -> None:
        """Close the agent (its threads are joined); idempotent."""
        self._closed = True
        agent, self._agent = self._agent, None
        if agent is not None:
            await asyncio.to_thread(agent.close)
        fanout, self._fanout = self._fanout, None
        if fanout is not None:
            await asyncio.to_thread(fanout.close)

    # ------------------------------------------------------------------ VideoGenerator
    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """The agent's voice (``AudioSegmentEnd``: the end of an utterance)."""
        await self.start()
        assert self._pacer is not None
        if isinstance(frame, AudioSegmentEnd):
            self._pacer.end_own()
            if not self._pacer.mark(frame):
                self._ready.append(frame)
            return
        self._pacer.push_own(frame.data, frame.sample_rate, frame.num_channels)

    def push_partner(self, frame: rtc.AudioFrame) -> None:
        """The user's voice, as it arrives (see :class:`PartnerAudio`). Before the generator
        is iterated there is no clock yet, and it is dropped."""
        if self._pacer is not None and self._pacer.started:
            self._pacer.push_partner(frame.data, frame.sample_rate, frame.num_channels)

    async def clear_buffer(self) -> None:
        """Interrupted: drop the voice not yet played, and let the face listen again."""
        if self._pacer is None:
            return
        self._pacer.interrupt()  # segment ends go too: the runner reports the interruption
        self._ready.clear()
        if self._agent is not None:
            await asyncio.to_thread(self._agent.interrupt)  # waits for a model call at most

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        await self.start()
        pacer = self._pacer
        assert pacer is not None
        if not pacer.started:
            pacer.start()
        while not self._closed:
            while self._ready:
                yield self._ready.pop(0)
            try:
                outs = pacer.step()  # raises the agent's failure, if any
            except Exception:
                if self._closed:  # aclose() while the runner still iterates: just stop
                    return
                raise
            for out in outs:
                if isinstance(out, VideoOut):
                    yield self._video_frame(out)
                elif isinstance(out, AudioOut):
                    yield self._audio_frame(out)
                elif isinstance(out, MarkerOut):
                    yield out.item
            await asyncio.sleep(pacer.wait())

    def _video_frame(self, out: VideoOut) -> rtc.VideoFrame:
        h, w = out.image.shape[:2]
        self.last_video = out
        if self._fanout is not None:
            self._fanout.show(out.frame)
        return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGB24, out.image.tobytes())

    def _audio_frame(self, out: AudioOut) -> rtc.AudioFrame:
        n, channels = out.samples.shape
        # its media time rides along, for whoever checks the timing
        info = {"t": out.t, "sent": time.monotonic()}
        return rtc.AudioFrame(
            out.samples.tobytes(), out.sample_rate, channels, n, userdata={"infp": info}
        )


class PartnerAudio:
    """Follows the user's microphone in a room and pushes it to a generator as the partner.

    It follows one participant at a time: ``identity`` if given, else the first participant
    that is not an agent (``ParticipantKind`` AGENT: the voice agent, other avatars) to
    publish a microphone track; when that track goes, the next one to appear is followed.
    """

    def __init__(
        self, room: rtc.Room, generator: InfpVideoGenerator, *, identity: str | None = None
    ):
        self.room, self.generator, self.identity = room, generator, identity
        self.following: str | None = None  # the identity followed now
        self._task: asyncio.Task | None = None
        self._track_sid: str | None = None

    def start(self) -> None:
        """Follow the microphone already subscribed, if any, and those that come later."""
        self.room.on("track_subscribed", self._on_subscribed)
        self.room.on("track_unsubscribed", self._on_unsubscribed)
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_subscribed(publication.track, publication, participant)

    def wanted(self, publication: Any, participant: Any) -> bool:
        """Whether ``participant``'s ``publication`` is a user's microphone to follow."""
        if publication.source != rtc.TrackSource.SOURCE_MICROPHONE:
            return False
        if self.identity is not None:
            return participant.identity == self.identity
        return participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT

    def _on_subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        if self._task is not None or not self.wanted(publication, participant):
            return
        self.following, self._track_sid = participant.identity, publication.sid
        self._task = asyncio.ensure_future(self.follow(track))
        self._task.add_done_callback(self._done)

    def _on_unsubscribed(self, track: Any, publication: Any, participant: Any) -> None:
        if publication.sid == self._track_sid and self._task is not None:
            self._task.cancel()

    def _done(self, task: asyncio.Task) -> None:
        if task is self._task:
            self._task, self.following, self._track_sid = None, None, None
        if not task.cancelled() and task.exception() is not None:
            log.error("following the user's microphone failed", exc_info=task.exception())

    async def follow(self, track: Any) -> None:
        """Push ``track``'s audio to the generator until it ends (or this is cancelled)."""
        rate = self.generator.options.audio_sample_rate
        stream = rtc.AudioStream.from_track(track=track, sample_rate=rate, num_channels=1)
        try:
            async for event in stream:
                self.generator.push_partner(event.frame)
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        """Stop following."""
        self.room.off("track_subscribed", self._on_subscribed)
        self.room.off("track_unsubscribed", self._on_unsubscribed)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def run_avatar_worker(
    room: rtc.Room,
    generator: InfpVideoGenerator,
    *,
    sender_identity: str | None = None,
    partner_identity: str | None = None,
) -> None:
    """Serve the face in a connected ``room`` until the room disconnects (or this task is
    cancelled); the generator is closed on the way out.

    ``sender_identity``: the voice agent that sends its voice (default: the first agent
    participant); ``partner_identity``: the user to listen to (default: the first
    non-agent participant with a microphone).
    """
    await generator.start()
    receiver = DataStreamAudioReceiver(room, sender_identity=sender_identity)
    runner = AvatarRunner(room, audio_recv=receiver, video_gen=generator, options=generator.options)
    partner = PartnerAudio(room, generator, identity=partner_identity)
    disconnected = asyncio.Event()

    def on_state(state: Any) -> None:
        if state == rtc.ConnectionState.CONN_DISCONNECTED:
            disconnected.set()

    room.on("connection_state_changed", on_state)
    try:
        await runner.start()
        partner.start()
        done = asyncio.ensure_future(runner.wait_for_complete())
        gone = asyncio.ensure_future(disconnected.wait())
        await asyncio.wait([done, gone], return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if done.done():
            done.result()  # the generator's failure, if that is why it ended
        else:
            done.cancel()
    finally:
        room.off("connection_state_changed", on_state)
        await partner.aclose()
        await runner.aclose()
        await generator.aclose()


def send_voice_to_avatar(
    session: Any,
    room: rtc.Room,
    *,
    avatar_identity: str = DEFAULT_IDENTITY,
    sample_rate: int | None = 24000,
) -> None:
    """The voice agent's side: send ``session``'s voice (an ``AgentSession``) to the avatar
    worker ``avatar_identity`` instead of publishing it; the avatar publishes it with the
    face, in step. It waits for the avatar's video track before it starts sending."""
    session.output.replace_audio_tail(
        DataStreamAudioOutput(
            room,
            destination_identity=avatar_identity,
            sample_rate=sample_rate,
            wait_remote_track=rtc.TrackKind.KIND_VIDEO,
        )
    )


__all__ = [
    "DEFAULT_DELAY_S",
    "DEFAULT_IDENTITY",
    "InfpVideoGenerator",
    "PartnerAudio",
    "run_avatar_worker",
    "send_voice_to_avatar",
]
