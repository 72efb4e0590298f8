"""One browser conversation of ``infp-sdk serve``: a WebRTC peer connection around a paced agent.

The browser sends its microphone (the partner) and receives the avatar: a video track and the
bot's voice, both on one media clock. The same :class:`~infp_sdk.runtime.pacer.Pacer` as
the Pipecat and LiveKit adapters plays both voices into the agent in real time and hands back
each span of the bot's voice together with the frames that show it, ``delay`` seconds later.
Audio frames and video frames carry presentation times on that clock and leave when they fall
due, so the browser (which plays the two tracks of one stream in sync from their RTP times)
shows each syllable with its mouth.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import statistics
import time
from collections import deque
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..audio import SAMPLE_RATE
from ..live.fanout import Fanout
from ..runtime.pacer import AudioOut, Pacer, VideoOut
from .bot import REPLIES, TurnDetector, speak

log = logging.getLogger(__name__)

AUDIO_RATE = SAMPLE_RATE  # the agent's rate: the timeline needs no resampling into it
AUDIO_BLOCK = AUDIO_RATE // 50  # 20 ms, one Opus frame
VIDEO_CLOCK = 90_000  # RTP's video clock
STATUS_EVERY_S = 0.25


class _QueueTrack(MediaStreamTrack):
    """A track whose frames are put in by the conversation's clock as they fall due; the RTP
    sender takes them as they come. ``keep_latest``: when the encoder falls behind, only the
    newest frame is sent (a video track), else every frame is (the voice)."""

    def __init__(self, kind: str, keep_latest: bool, on_sent):
        super().__init__()
        self.kind = kind
        self._keep_latest = keep_latest
        self._on_sent = on_sent
        self.queue: asyncio.Queue = asyncio.Queue()
        self.dropped = 0

    async def recv(self) -> av.frame.Frame:
        frame = await self.queue.get()
        while self._keep_latest and not self.queue.empty():
            frame = self.queue.get_nowait()
            self.dropped += 1
        if frame is None:
            self.stop()
            raise MediaStreamError
        self._on_sent(self.kind, float(frame.pts * frame.time_base), time.monotonic())
        return frame


class Conversation:
    """The avatar's side of one WebRTC session.

    Args:
        agent: an :class:`~infp_sdk.Agent` with a portrait, reset and idle; the conversation
            drives it and resets it when it ends (the server owns it).
        size: ``(width, height)`` of the video.
        fps: video frames per second.
        delay: seconds the bot's voice and face are held back behind the conversation; it must
            cover the agent's mouth-to-face latency (see ``docs/serve.md``).
        replies: the lines the bot speaks, in turn (the first greets the person).
        fanout: the server's sinks (:class:`~infp_sdk.live.fanout.Fanout`): each agent frame
            goes to them as it is shown, in step with the video.
    """

    def __init__(
        self,
        agent: Any,
        *,
        size: tuple[int, int],
        fps: float,
        delay: float,
        replies: tuple[str, ...] = REPLIES,
        fanout: Fanout | None = None,
    ):
        self.agent = agent
        self.fanout = fanout
        if fanout is not None:
            fanout.restart()  # the agent was reset for this conversation
        self.pc = RTCPeerConnection()
        self.pacer = Pacer(agent, sample_rate=AUDIO_RATE, size=size, fps=fps, delay=delay)
        self.fps = float(fps)
        self.detector = TurnDetector()
        self.replies = replies
        self.video = _QueueTrack("video", keep_latest=True, on_sent=self._sent)
        self.voice = _QueueTrack("audio", keep_latest=False, on_sent=self._sent)
        self.state = "connecting"  # connecting, listening, thinking, speaking, closed, failed
        self.error: str | None = None
        self.counts = {"replies": 0, "barge_ins": 0}
        self._next_reply = 0
        self._tasks: list[asyncio.Task] = []
        self._channel: Any = None
        self._audio_pos = 0  # timeline sample of the next voice block sent
        self._audio_buf = np.zeros(0, np.int16)  # the voice from _audio_pos on
        self._sent_at: dict[str, deque] = {"audio": deque(maxlen=500), "video": deque(maxlen=200)}
        self.closed = asyncio.Event()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._read_partner(track), "infp-serve-partner")

        @self.pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            self._channel = channel

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("serve: connection %s", self.pc.connectionState)
            if self.pc.connectionState == "connected" and not self.pacer.started:
                self.pacer.start()
                self.state = "listening"
                self._spawn(self._run_clock(), "infp-serve-clock")
                self._spawn(self._send_status(), "infp-serve-status")
                self._reply()  # the greeting
            elif self.pc.connectionState in ("failed", "closed"):
                await self.close()

    # ------------------------------------------------------------------ signalling
    async def answer(self, sdp: str, type_: str = "offer") -> RTCSessionDescription:
        """Take the browser's offer (with its ICE candidates gathered) and return the answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if "audio" not in kinds or "video" not in kinds:
            raise ValueError("the offer must have an audio (the microphone) and a video section")
        self.pc.addTrack(self.voice)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    async def close(self, error: str | None = None) -> None:
        """End the conversation (idempotent): stop the media, close the connection, reset the
        agent for the next one."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.error = self.error or error
        self.state = "failed" if self.error else "closed"
        if self.error:
            self._send({"state": self.state, "error": self.error})
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for track in (self.video, self.voice):
            track.queue.put_nowait(None)
        await self.pc.close()
        await asyncio.to_thread(self.agent.reset)

    # ------------------------------------------------------------------ status
    def stats(self) -> dict[str, Any]:
        """Where the conversation stands: state, frames, and, as measured where the RTP senders
        take them (medians over the last seconds; None until sent), how long the voice is held
        back behind the conversation and how much later a frame leaves than the voice with the
        same presentation time."""
        lag = self._lags()
        voice, face = lag.get("audio"), lag.get("video")
        return {
            "state": self.state,
            "error": self.error,
            "user_speaking": self.detector.speaking,
            "delay_ms": None if voice is None else round(1000 * (voice - self.pacer.t0)),
            "av_offset_ms": None if None in (voice, face) else round(1000 * (face - voice), 1),
            "video_dropped": self.video.dropped,
            **self.pacer.stats,
            **self.counts,
        }

    def _lags(self) -> dict[str, float]:
        """Per kind, the median of (monotonic time sent - presentation time)."""
        return {
            kind: statistics.median(sent - pts for pts, sent in times)
            for kind, times in self._sent_at.items()
            if times
        }

    def _sent(self, kind: str, pts: float, at: float) -> None:
        self._sent_at[kind].append((pts, at))

    # ------------------------------------------------------------------ media
    async def _run_clock(self) -> None:
        """Push both voices into the agent on time; send voice and face as they fall due."""
        pacer = self.pacer
        try:
            while not self.closed.is_set():
                for out in pacer.step():
                    if isinstance(out, VideoOut):
                        self._send_video(out)
                        if self.fanout is not None:
                            self.fanout.show(out.frame)
                    elif isinstance(out, AudioOut):
                        self._write_voice(out)
                self._send_voice(time.monotonic() - pacer.t0 - pacer.delay)
                if self.state == "speaking" and not pacer.pending:
                    self.state = "listening"
                next_block = (self._audio_pos + AUDIO_BLOCK) / AUDIO_RATE + pacer.delay
                wait = min(pacer.wait(), pacer.t0 + next_block - time.monotonic())
                await asyncio.sleep(max(0.0, wait))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the agent failed: say so to the page and the log
            log.exception("serve: the avatar stopped")
            await self.close(f"the avatar stopped: {e}")

    def _send_video(self, out: VideoOut) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(out.image), format="rgb24")
        frame.pts = int(round(out.index / self.fps * VIDEO_CLOCK))
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        # a block of voice leaves when it ends, a frame when it starts: hold frames one block,
        # so that both leave as long after their presentation time (the browser syncs by that)
        asyncio.get_running_loop().call_later(
            AUDIO_BLOCK / AUDIO_RATE, self.video.queue.put_nowait, frame
        )

    def _write_voice(self, out: AudioOut) -> None:
        """Place a span of the bot's voice on the outgoing timeline."""
        start = int(round(out.t * AUDIO_RATE)) - self._audio_pos
        pcm = out.samples[:, 0]
        if start < 0:  # its block has gone already (cannot happen while the clock keeps up)
            pcm, start = pcm[-start:], 0
        end = start + len(pcm)
        if end > len(self._audio_buf):
            self._audio_buf = np.concatenate(
                [self._audio_buf, np.zeros(end - len(self._audio_buf), np.int16)]
            )
        self._audio_buf[start:end] = pcm

    def _send_voice(self, horizon: float) -> None:
        """Send the 20 ms blocks of voice (silence where the bot is quiet) that end by
        ``horizon`` on the timeline."""
        while (self._audio_pos + AUDIO_BLOCK) / AUDIO_RATE <= horizon:
            block = np.zeros(AUDIO_BLOCK, np.int16)
            have = min(AUDIO_BLOCK, len(self._audio_buf))
            block[:have] = self._audio_buf[:have]
            self._audio_buf = self._audio_buf[have:]
            frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._audio_pos
            frame.time_base = fractions.Fraction(1, AUDIO_RATE)
            self.voice.queue.put_nowait(frame)
            self._audio_pos += AUDIO_BLOCK

    async def _read_partner(self, track: MediaStreamTrack) -> None:
        """The microphone: into the agent as the partner's voice, and into the turn detector."""
        while not self.closed.is_set():
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            pcm = _interleaved_int16(frame)
            if not self.pacer.started:
                continue
            self.pacer.push_partner(pcm, frame.sample_rate, pcm.shape[1])
            mono = pcm.mean(axis=1, dtype=np.float32) / 32768.0
            for event in self.detector.process(mono, frame.sample_rate, self._bot_holds_turn):
                if event.kind == "barge_in" and self._bot_holds_turn:
                    await self._barge_in()
                elif event.kind == "end_of_turn" and not self._bot_holds_turn:
                    self._reply()

    # ------------------------------------------------------------------ the bot
    @property
    def _bot_holds_turn(self) -> bool:
        return self.state in ("thinking", "speaking")

    def _reply(self) -> None:
        text = self.replies[self._next_reply % len(self.replies)]
        self._next_reply += 1
        self.state = "thinking"
        self._spawn(self._speak(text), "infp-serve-reply")

    async def _speak(self, text: str) -> None:
        try:
            pcm, rate = await asyncio.to_thread(speak, text)
        except Exception as e:
            log.exception("serve: the bot could not speak")
            await self.close(f"the bot could not speak: {e}")
            return
        if self.state != "thinking":  # interrupted while it was being synthesized
            return
        self.pacer.push_own(pcm, rate)
        self.pacer.end_own()
        self.detector.reset_turn()
        self.counts["replies"] += 1
        self.state = "speaking"

    async def _barge_in(self) -> None:
        """The person talks over the bot: it stops, and the face goes back to listening."""
        self.state = "listening"
        self.counts["barge_ins"] += 1
        self.pacer.interrupt()
        await asyncio.to_thread(self.agent.interrupt)  # waits for a model call at most

    # ------------------------------------------------------------------ the page
    async def _send_status(self) -> None:
        while not self.closed.is_set():
            self._send(self.stats())
            await asyncio.sleep(STATUS_EVERY_S)

    def _send(self, message: dict[str, Any]) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message))

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("serve: %s failed", task.get_name(), exc_info=task.exception())


def _interleaved_int16(frame: av.AudioFrame) -> np.ndarray:
    """An audio frame as int16 (samples, channels)."""
    channels = len(frame.layout.channels)
    x = frame.to_ndarray()
    x = x.T if frame.format.is_planar else x.reshape(-1, channels)
    if x.dtype.kind == "f":
        x = np.clip(np.round(x * 32768.0), -32768, 32767)
    return np.ascontiguousarray(x, dtype=np.int16)
