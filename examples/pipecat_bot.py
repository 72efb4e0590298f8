"""A Pipecat voice bot with a conversing face (infp_sdk.integrations.pipecat.InfpVideoService).

Two ways to run it:

    python examples/pipecat_bot.py demo -o pipecat_demo.mp4
        Offline, no keys: the bundled conversation goes through a real Pipecat pipeline (the
        partner's track as the user's microphone, at real-time pace; the own track's turns as
        TTS answers, each in one burst) and what the service passes on — the face and the
        delayed voice — is recorded to an mp4 (needs ffmpeg).

    python examples/pipecat_bot.py serve
        A bot you talk to from a browser (Pipecat's development runner, SmallWebRTC on
        http://localhost:7860): Deepgram speech-to-text, an OpenAI LLM and Cartesia speech,
        with the face after the speech. Needs
        pip install "infp-sdk[pipecat]" "pipecat-ai[webrtc,runner,deepgram,openai,cartesia]"
        and DEEPGRAM_API_KEY, OPENAI_API_KEY, CARTESIA_API_KEY in the environment.
        Arguments after `serve` go to Pipecat's runner (`serve --help`).

The face: --portrait (default: the bundled astronaut), rendered at --width x --height.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PORTRAIT = HERE / "portrait" / "astronaut.png"
CONVERSATION = HERE / "conversation"

# `serve` reads these (the development runner calls bot() with no room for options)
FACE = {"portrait": str(PORTRAIT), "width": 512, "height": 512, "fps": 30}


def face_service():
    from infp_sdk.integrations.pipecat import InfpVideoService

    return InfpVideoService(
        FACE["portrait"], width=FACE["width"], height=FACE["height"], fps=FACE["fps"]
    )


# ------------------------------------------------------------------------------- serve
async def bot(runner_args) -> None:
    """Pipecat's development runner calls this for each browser session."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.runner.utils import create_transport
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.transports.base_transport import TransportParams
    from pipecat.workers.runner import WorkerRunner

    def params() -> TransportParams:
        return TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            video_out_enabled=True,
            video_out_is_live=True,  # frames are shown at the rate they come, not looped
            video_out_width=FACE["width"],
            video_out_height=FACE["height"],
            video_out_framerate=FACE["fps"],
        )

    transport = await create_transport(runner_args, {"webrtc": params})
    stt = DeepgramSTTService(api_key=os.environ["DEEPGRAM_API_KEY"])  # passes the mic on
    llm = OpenAILLMService(api_key=os.environ["OPENAI_API_KEY"])
    tts = CartesiaTTSService(api_key=os.environ["CARTESIA_API_KEY"])
    context = LLMContext(
        [{"role": "system", "content": "You are a friendly face. Answer in a sentence or two."}]
    )
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            face_service(),  # after the speech: the bot's voice and the user's mic both pass here
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))
    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


# ------------------------------------------------------------------------------- demo
def own_turns(own: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """(start, end) samples of the own track's turns: voiced stretches with gaps < 0.6 s."""
    n = rate // 25
    rms = np.sqrt((own[: len(own) // n * n].reshape(-1, n) ** 2).mean(axis=1))
    voiced = np.flatnonzero(rms > 0.01)
    turns: list[tuple[int, int]] = []
    for i in voiced:
        if turns and i * n - turns[-1][1] < 0.6 * rate:
            turns[-1] = (turns[-1][0], (i + 1) * n)
        else:
            turns.append((i * n, (i + 1) * n))
    return turns


async def demo(out: Path, seconds: float, face) -> dict:
    from pipecat.frames.frames import (
        EndFrame,
        InputAudioRawFrame,
        OutputImageRawFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    from infp_sdk.audio import read_wav

    own, rate = read_wav(CONVERSATION / "own.wav")
    partner, _ = read_wav(CONVERSATION / "partner.wav")
    n = min(len(own), int(seconds * rate))
    own, partner = own[:n, 0], partner[:n, 0]
    pcm = lambda x: (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()  # noqa: E731
    images: list = []
    voice: list = []

    class Recorder(FrameProcessor):
        async def process_frame(self, frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, OutputImageRawFrame):
                images.append(frame)
            elif isinstance(frame, TTSAudioRawFrame):
                voice.append(frame)
            await self.push_frame(frame, direction)

    worker = PipelineWorker(
        Pipeline([face, Recorder()]),
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(worker, frame):
        started.set()

    async def feed() -> None:
        await started.wait()
        step = rate // 50  # the microphone: 20 ms at a time
        answers = {start // step: (start, end) for start, end in own_turns(own, rate)}
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for j in range(n // step):
            if j in answers:  # an answer is due: the TTS sends it all at once
                start, end = answers[j]
                await worker.queue_frame(TTSStartedFrame())
                for k in range(start, end, rate // 25):
                    chunk = own[k : min(k + rate // 25, end)]
                    await worker.queue_frame(TTSAudioRawFrame(pcm(chunk), rate, 1))
                await worker.queue_frame(TTSStoppedFrame())
            mic = partner[j * step : (j + 1) * step]
            await worker.queue_frame(InputAudioRawFrame(pcm(mic), rate, 1))
            await asyncio.sleep(max(0.0, t0 + (j + 1) * step / rate - loop.time()))
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), feed())
    write_mp4(out, images, voice, partner, rate, face.fps)
    return {"images": len(images), "voice_s": sum(f.num_frames for f in voice) / rate, **face.stats}


def write_mp4(out: Path, images, voice, partner: np.ndarray, rate: int, fps: float) -> None:
    """The face as passed on, with the voice passed on and the user's, on the media clock."""
    from infp_sdk.io.video import VideoWriter

    if not images:
        raise SystemExit("no frames came out")
    w, h = images[0].size
    length = int((images[-1].metadata["infp"]["t"] + 1) * rate)
    track = np.zeros(max(length, len(partner)), np.float32)
    track[: len(partner)] += partner * 0.7
    for f in voice:  # each chunk at the media time it carries
        x = np.frombuffer(f.audio, np.int16).astype(np.float32) / 32768
        start = int(round(f.metadata["infp"]["t"] * rate))
        track[start : start + len(x)] += x[: len(track) - start]
    with VideoWriter(out, fps=fps, size=(w, h), audio=track, audio_rate=rate) as video:
        k = 0
        for f in images:  # fill any skipped slot with the frame before it
            index = int(f.metadata["infp"]["t"] * fps)
            while k <= index:
                video.write(np.frombuffer(f.image, np.uint8).reshape(h, w, 3))
                k += 1


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portrait", default=str(PORTRAIT), help="the face (photo or .avatar)")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--fps", type=float, default=30)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="offline: the bundled conversation through the pipeline")
    d.add_argument("-o", "--out", default="pipecat_demo.mp4", help="mp4 to write")
    d.add_argument("--seconds", type=float, default=12.0, help="how much of the conversation")
    d.add_argument("--delay", type=float, default=None, help="seconds the voice is held back")
    sub.add_parser("serve", help="a browser bot through Pipecat's development runner",
                   add_help=False)  # fmt: skip
    args, rest = parser.parse_known_args(argv)
    FACE.update(portrait=args.portrait, width=args.width, height=args.height, fps=args.fps)

    if args.command == "serve":
        from pipecat.runner.run import main as pipecat_main

        sys.argv = [sys.argv[0], *rest]
        pipecat_main()
        return 0

    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    from infp_sdk.integrations.pipecat import DEFAULT_DELAY_S, InfpVideoService

    face = InfpVideoService(
        args.portrait,
        width=args.width,
        height=args.height,
        fps=args.fps,
        delay=DEFAULT_DELAY_S if args.delay is None else args.delay,
    )
    stats = asyncio.run(demo(Path(args.out), args.seconds, face))
    print(f"wrote {args.out}: {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
