"""Pipecat: a conversing face as a frame processor, placed between the TTS and the transport.

    from infp_sdk.integrations.pipecat import InfpVideoService

    face = InfpVideoService("me.jpg", width=640, height=480, fps=30)
    pipeline = Pipeline([transport.input(), stt, user_agg, llm, tts, face,
                         transport.output(), assistant_agg])

What it reads and writes:

* ``TTSAudioRawFrame`` (the bot's voice) is the agent's own voice. It is played out at
  real-time pace into the agent and passed on ``delay`` seconds later, in step with the
  ``OutputImageRawFrame`` s that show it (RGB, ``width`` x ``height``, ``fps`` per second).
* ``InputAudioRawFrame`` / ``UserAudioRawFrame`` (the user's microphone, passed along by the
  STT) is the partner's voice: the face listens while the user talks. It is passed on at once.
* ``InterruptionFrame`` (barge-in): the bot's voice not yet passed on is dropped and the agent
  returns to listening (:meth:`infp_sdk.Agent.interrupt`).
* Other downstream data and control frames (text, ``TTSStoppedFrame``, ``EndFrame``, ...) keep
  their place after the voice that came before them; system frames and upstream frames pass
  at once. ``EndFrame`` is passed on once the voice before it has been played out;
  ``CancelFrame`` stops at once. Either closes the agent (no threads are left running).

A failure of the agent (on its background threads) is pushed upstream as an ``ErrorFrame``
that marks this processor unusable, and no more frames come out of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

try:
    from pipecat.frames.frames import (
        CancelFrame,
        EndFrame,
        Frame,
        InputAudioRawFrame,
        InterruptionFrame,
        OutputImageRawFrame,
        StartFrame,
        SystemFrame,
        TTSAudioRawFrame,
        TTSStoppedFrame,
    )
    from pipecat.processors.frame_processor import (
        FrameDirection,
        FrameProcessor,
        FrameProcessorSetup,
    )
except ModuleNotFoundError as e:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError(
        "infp_sdk.integrations.pipecat needs pipecat-ai: pip install 'infp-sdk[pipecat]'"
    ) from e

from ..live.fanout import Fanout
from ..motion import blendshape_index
from ..runtime.pacer import AudioOut, MarkerOut, Pacer, VideoOut, warm_up

_JAW_OPEN = blendshape_index("jawOpen")

DEFAULT_DELAY_S = 0.2
"""Seconds the bot's voice is held back so that the face can catch up with it (see
``docs/integrations/pipecat.md`` for how it was chosen and what it measured)."""


class InfpVideoService(FrameProcessor):
    """A talking and listening face for a Pipecat bot (place it right after the TTS).

    Args:
        portrait: the face: a photo path, a prepared ``.avatar``, an array or PIL image
            (anything :func:`infp_sdk.face.load_portrait` takes). Rendered at
            ``width`` x ``height``.
        agent: a ready :class:`infp_sdk.Agent` with a portrait, instead of ``portrait`` (its
            images are scaled to fit ``width`` x ``height``). The service owns it from then
            on and closes it when the pipeline ends.
        width, height: the transport's video size (``video_out_width``/``video_out_height``).
        fps: output frames per second (the transport's ``video_out_framerate``).
        delay: seconds the bot's voice is held back; it must cover the agent's mouth-to-face
            latency, or some frames come out late (an older frame shown again; counted in
            :attr:`stats`).
        sample_rate: the rate of the voice passed on; default the pipeline's
            ``audio_out_sample_rate``. TTS audio at another rate is resampled to it.
        agent_options: keyword arguments for :class:`infp_sdk.Agent` (``model``, ``backend``,
            ``hop``, ``seed``...) when it is made from ``portrait``.
        sinks: sinks of ``infp-sdk live`` that every frame shown also goes to, by option key
            (``{"zmq": "tcp://127.0.0.1:5555"}``: a game engine's avatar follows the call).
        **kwargs: passed to :class:`FrameProcessor` (e.g. ``name``).
    """

    def __init__(
        self,
        portrait: Any = None,
        *,
        agent: Any = None,
        width: int = 512,
        height: int = 512,
        fps: float = 30.0,
        delay: float = DEFAULT_DELAY_S,
        sample_rate: int | None = None,
        agent_options: dict[str, Any] | None = None,
        sinks: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if (portrait is None) == (agent is None):
            raise ValueError("give either a portrait or a ready agent (Agent(portrait))")
        if not (16 <= int(width) <= 4096 and 16 <= int(height) <= 4096):
            raise ValueError(f"width and height must be 16..4096, got {width}x{height}")
        self._portrait = portrait
        self._agent = agent
        self._agent_options = dict(agent_options or {})
        self._size = (int(width), int(height))
        self._fps = float(fps)
        self._delay = float(delay)
        self._sample_rate = sample_rate
        self._pacer: Pacer | None = None
        self._sinks = dict(sinks or {})
        self._fanout: Fanout | None = None
        self._clock_task: asyncio.Task | None = None
        self._closed = False
        self._ended = False
        self._failed = False

    # ------------------------------------------------------------------ public state
    @property
    def agent(self) -> Any:
        """The :class:`infp_sdk.Agent` (None until the pipeline is set up)."""
        return self._agent

    @property
    def delay(self) -> float:
        """Seconds the bot's voice is held back."""
        return self._delay

    @property
    def fps(self) -> float:
        """Output video frames per second."""
        return self._fps

    @property
    def stats(self) -> dict[str, int]:
        """Output frames so far (``frames_out``), how many of them were late (an older frame
        shown again) and how many were skipped because no frame existed yet."""
        return dict(self._pacer.stats) if self._pacer is not None else {}

    # ------------------------------------------------------------------ lifecycle
    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Make the agent (the slow part: model and portrait) while the pipeline sets up."""
        await super().setup(setup)
        rate = self._sample_rate or setup.audio_out_sample_rate
        if self._agent is None:
            self._agent = await asyncio.to_thread(self._make_agent)
        await asyncio.to_thread(warm_up, self._agent)
        self._fanout = await asyncio.to_thread(Fanout.open, self._sinks, self._agent.latent_size)
        self._pacer = Pacer(
            self._agent, sample_rate=rate, size=self._size, fps=self._fps, delay=self._delay
        )

    def _make_agent(self) -> Any:
        from .. import Agent
        from ..face import load_portrait

        return Agent(load_portrait(self._portrait, size=self._size), **self._agent_options)

    async def cleanup(self) -> None:
        """Stop the clock and close the agent (idempotent)."""
        await super().cleanup()
        await self._stop()

    async def _stop(self) -> None:
        task, self._clock_task = self._clock_task, None
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)
        if not self._closed and self._agent is not None:
            self._closed = True
            await asyncio.to_thread(self._agent.close)  # joins its threads
        fanout, self._fanout = self._fanout, None
        if fanout is not None:
            await asyncio.to_thread(fanout.close)

    # ------------------------------------------------------------------ frames
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route a frame: voices into the agent, everything else on (in order)."""
        await super().process_frame(frame, direction)
        pacer = self._pacer
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if pacer is not None and not pacer.started:
                pacer.start()
                self._clock_task = self.create_task(self._run_clock(), "infp-video-clock")
        elif isinstance(frame, CancelFrame):
            await self._stop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            kept = pacer.interrupt() if pacer is not None else []  # no more of that voice
            await self.push_frame(frame, direction)
            if self._agent is not None and not self._closed:
                await asyncio.to_thread(self._agent.interrupt)  # waits for a model call at most
            for item in kept:
                await self._forward(item)
        elif direction == FrameDirection.UPSTREAM or pacer is None or self._ended or self._failed:
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSAudioRawFrame):
            pacer.push_own(frame.audio, frame.sample_rate, frame.num_channels, frame.context_id)
        elif isinstance(frame, InputAudioRawFrame):  # UserAudioRawFrame is one too
            pacer.push_partner(frame.audio, frame.sample_rate, frame.num_channels)
            await self.push_frame(frame, direction)
        elif isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
        else:
            if isinstance(frame, TTSStoppedFrame):
                pacer.end_own()
            if not pacer.mark(frame, interruptible=frame.interruptible):
                await self._forward(frame)

    async def _forward(self, frame: Frame) -> None:
        """Pass a frame that kept its place after the voice; EndFrame ends the service."""
        if isinstance(frame, EndFrame):
            self._ended = True
            await self._stop()
        await self.push_frame(frame)

    async def _run_clock(self) -> None:
        """Push audio into the agent on time and hand out voice and face as they fall due."""
        pacer = self._pacer
        assert pacer is not None
        try:
            while not self._ended:
                for out in pacer.step():
                    await self._emit(out)
                await asyncio.sleep(pacer.wait())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the agent failed: tell the pipeline, stop producing
            self._failed = True  # from now on frames pass straight through: the voice goes on
            await self.push_error(
                f"{self}: the face stopped: {e}", exception=e, force_treat_as_permanent=True
            )
            for out in pacer.drain():  # the voice held back, and e.g. an EndFrame behind it
                await self._emit(out)
            await self._stop()

    async def _emit(self, out: VideoOut | AudioOut | MarkerOut) -> None:
        if isinstance(out, VideoOut):
            await self.push_frame(self._image_frame(out))
            if self._fanout is not None:
                self._fanout.show(out.frame)
        elif isinstance(out, AudioOut):
            await self.push_frame(self._audio_frame(out))
        elif not self._ended:
            await self._forward(out.item)

    def _image_frame(self, out: VideoOut) -> OutputImageRawFrame:
        h, w = out.image.shape[:2]
        frame = OutputImageRawFrame(image=out.image.tobytes(), size=(w, h), format="RGB")
        # what the frame shows, for whoever checks the timing (and the tests)
        frame.metadata["infp"] = {
            "t": out.t,
            "source": out.source,
            "late": out.late,
            "sent": time.monotonic(),
            "jawOpen": float(out.frame.blendshapes[_JAW_OPEN]),
        }
        return frame

    def _audio_frame(self, out: AudioOut) -> TTSAudioRawFrame:
        frame = TTSAudioRawFrame(
            audio=out.samples.tobytes(),
            sample_rate=out.sample_rate,
            num_channels=out.samples.shape[1],
            context_id=out.tag,
        )
        frame.metadata["infp"] = {"t": out.t, "sent": time.monotonic()}
        return frame


__all__ = ["DEFAULT_DELAY_S", "InfpVideoService"]
