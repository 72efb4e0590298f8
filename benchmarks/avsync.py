"""Voice-to-face sync and added delay of the voice-agent adapters, in real time.

    python benchmarks/avsync.py [--seconds 20] [--delays 0.12 0.2 0.3] [--size 512]
                                [--adapters pipecat livekit]

The bundled conversation plays both roles, as in the adapters' tests: the partner's track is
the user's microphone (20 ms at a time, at real-time pace) and each turn of the own track is a
TTS answer that arrives in one burst when the turn starts. For Pipecat it runs through a real
pipeline (``InfpVideoService`` between a feeder and a recorder); for LiveKit through
``InfpVideoGenerator`` with real ``rtc`` frames, the microphone as a local audio track followed
by ``PartnerAudio``, and the output pushed into an ``rtc.AVSynchronizer`` as ``AvatarRunner``
does. For every 5 ms of voice passed on it measures the offset between that audio and the frame
on screen when it plays (the centre of the agent frame the image shows, minus the audio's media
time; a sink plays a chunk from when it gets it), the share of late frames (not ready in time:
an older one shown again), and the added delay (from a TTS answer's arrival to the moment its
first sample is passed on). Saves benchmarks/results/avsync.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np

from infp_sdk.audio import read_wav
from infp_sdk.bench import machine
from infp_sdk.motion import blendshape_index

ROOT = Path(__file__).resolve().parent.parent
PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"
JAW = blendshape_index("jawOpen")
FPS = 30


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray, int, list[tuple[int, int]]]:
    """(own, partner) int16, their rate, and the own track's turns as (start, end) samples."""
    own, rate = read_wav(ROOT / "examples" / "conversation" / "own.wav")
    partner, _ = read_wav(ROOT / "examples" / "conversation" / "partner.wav")
    n = min(len(own), int(seconds * rate))
    own, partner = own[:n, 0], partner[:n, 0]
    frame = rate // 25
    rms = np.sqrt((own[: n // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
    turns: list[tuple[int, int]] = []
    for i in np.flatnonzero(rms > 0.01):  # voiced frames, gaps under 0.6 s joined
        if turns and i * frame - turns[-1][1] < 0.6 * rate:
            turns[-1] = (turns[-1][0], (i + 1) * frame)
        else:
            turns.append((i * frame, (i + 1) * frame))
    pcm = lambda x: (np.clip(x, -1, 1) * 32767).astype(np.int16)  # noqa: E731
    return pcm(own), pcm(partner), rate, turns


async def feed(own, partner, rate, turns, *, mic, answer, end) -> list[float]:
    """Play the microphone in real time and send each answer when its turn starts; returns
    the wall time each answer was handed over."""
    step = rate // 50
    starts = {s // step: (s, e) for s, e in turns}
    loop = asyncio.get_running_loop()
    t0, sent = loop.time(), []
    for j in range(len(partner) // step):
        if j in starts:
            s, e = starts[j]
            sent.append(time.monotonic())
            await answer(own[s:e])
        await mic(partner[j * step : (j + 1) * step])
        await asyncio.sleep(max(0.0, t0 + (j + 1) * step / rate - loop.time()))
    await end()
    return sent


def measure(video, audio, answered: list[float], delay: float) -> dict:
    """``video``: (sent, source, late, jaw) per image; ``audio``: (sent, t, samples, rate)."""
    sent = np.array([v[0] for v in video])
    shows = np.array([(v[1] + 0.5) / 25 for v in video])
    late = np.array([v[2] for v in video], bool)
    all_off, on_time = [], []
    for chunk_sent, t, samples, rate in audio:
        for s in np.arange(0, len(samples) / rate, 0.005):
            k = np.searchsorted(sent, chunk_sent + s, side="right") - 1
            if k >= 0:
                all_off.append(shows[k] - (t + s))
                if not late[k]:
                    on_time.append(all_off[-1])
    # each answer's first sample: the first chunk sent after it was handed over
    added = []
    for a in answered:
        after = [c[0] for c in audio if c[0] >= a]
        if after:
            added.append(min(after) - a)

    def stats(x):
        x = np.abs(np.array(x)) * 1000
        if not len(x):
            return None
        return {
            "p50_ms": round(float(np.median(x)), 1),
            "p95_ms": round(float(np.percentile(x, 95)), 1),
            "max_ms": round(float(x.max()), 1),
        }

    return {
        "delay_s": delay,
        "frames": len(video),
        "fps": round((len(sent) - 1) / (sent[-1] - sent[0]), 2),
        # the longest time between two images: a stall of the process shows here
        "max_image_gap_ms": round(float(np.diff(sent).max() * 1000), 1),
        "late_frames": round(float(late.mean()), 4),
        "offset_all_frames": stats(all_off),
        "offset_on_time_frames": stats(on_time),
        "added_delay_ms": [round(x * 1000, 1) for x in added],
        "voice_s": round(sum(len(c[2]) / c[3] for c in audio), 2),
    }


async def run_pipecat(seconds: float, delay: float, size: int) -> dict:
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
    from pipecat.processors.frame_processor import FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    from infp_sdk.integrations.pipecat import InfpVideoService

    own, partner, rate, turns = conversation(seconds)
    video, audio = [], []

    class Recorder(FrameProcessor):
        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, OutputImageRawFrame):
                i = frame.metadata["infp"]
                video.append((i["sent"], i["source"], i["late"], i["jawOpen"]))
            elif isinstance(frame, TTSAudioRawFrame):
                i = frame.metadata["infp"]
                audio.append((i["sent"], i["t"], np.frombuffer(frame.audio, np.int16), rate))
            await self.push_frame(frame, direction)

    face = InfpVideoService(PORTRAIT, width=size, height=size, fps=FPS, delay=delay)
    worker = PipelineWorker(
        Pipeline([face, Recorder()]),
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(worker, frame):
        started.set()

    async def answer(x):
        await worker.queue_frame(TTSStartedFrame())
        for k in range(0, len(x), rate // 25):
            await worker.queue_frame(TTSAudioRawFrame(x[k : k + rate // 25].tobytes(), rate, 1))
        await worker.queue_frame(TTSStoppedFrame())

    async def mic(x):
        await worker.queue_frame(InputAudioRawFrame(x.tobytes(), rate, 1))

    async def end():
        await worker.queue_frame(EndFrame())

    async def go():
        await started.wait()
        return await feed(own, partner, rate, turns, mic=mic, answer=answer, end=end)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    _, answered = await asyncio.gather(runner.run(), go())
    return measure(video, audio, answered, delay)


async def run_livekit(seconds: float, delay: float, size: int) -> dict:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd

    from infp_sdk.integrations.livekit import InfpVideoGenerator, PartnerAudio

    own, partner, rate, turns = conversation(seconds)
    gen = InfpVideoGenerator(
        PORTRAIT, width=size, height=size, fps=FPS, sample_rate=rate, delay=delay
    )
    await gen.start()
    source = rtc.AudioSource(rate, 1, queue_size_ms=100)
    mic_track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    out_audio = rtc.AudioSource(rate, 1, queue_size_ms=100)
    out_video = rtc.VideoSource(size, size)
    av_sync = rtc.AVSynchronizer(audio_source=out_audio, video_source=out_video, video_fps=FPS)
    following = asyncio.ensure_future(PartnerAudio(None, gen).follow(mic_track))
    video, audio = [], []
    done = asyncio.Event()

    async def consume():
        async for item in gen:
            if isinstance(item, rtc.VideoFrame):
                v = gen.last_video
                video.append((time.monotonic(), v.source, v.late, v.frame.blendshapes[JAW]))
            elif isinstance(item, rtc.AudioFrame):
                i = item.userdata["infp"]
                pcm = np.frombuffer(bytes(item.data), np.int16)
                audio.append((i["sent"], i["t"], pcm, item.sample_rate))
            if not isinstance(item, AudioSegmentEnd):
                await av_sync.push(item)
            if done.is_set() and not gen.pending:
                return

    async def answer(x):
        for k in range(0, len(x), rate // 10):  # 100 ms frames, as the data stream hands over
            chunk = x[k : k + rate // 10]
            await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk)))
        await gen.push_audio(AudioSegmentEnd())

    async def mic(x):
        await source.capture_frame(rtc.AudioFrame(x.tobytes(), rate, 1, len(x)))

    async def end():
        done.set()

    consuming = asyncio.ensure_future(consume())
    answered = await feed(own, partner, rate, turns, mic=mic, answer=answer, end=end)
    await consuming
    following.cancel()
    for closing in (av_sync, out_audio, out_video, source, gen):
        await closing.aclose()
    result = measure(video, audio, answered, delay)
    result["av_synchronizer_fps"] = round(av_sync.actual_fps, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--delays", type=float, nargs="+", default=[0.12, 0.2, 0.3])
    parser.add_argument("--size", type=int, default=512, help="video width and height")
    parser.add_argument("--adapters", nargs="+", default=["pipecat", "livekit"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "avsync.json"))
    args = parser.parse_args()
    runs = {"pipecat": run_pipecat, "livekit": run_livekit}
    results = []
    for adapter in args.adapters:
        for delay in args.delays:
            load = os.getloadavg()[0]
            r = asyncio.run(runs[adapter](args.seconds, delay, args.size))
            # other work on the machine makes frames late: the 1-minute load average says how much
            r.update(adapter=adapter, size=args.size, load_before=round(load, 2),
                     load_after=round(os.getloadavg()[0], 2))  # fmt: skip
            results.append(r)
            print(
                f"{adapter:8s} delay {delay * 1000:4.0f} ms: late {r['late_frames']:6.1%}, "
                f"offset p50/p95/max {r['offset_all_frames']['p50_ms']}/"
                f"{r['offset_all_frames']['p95_ms']}/{r['offset_all_frames']['max_ms']} ms "
                f"(on-time frames max {(r['offset_on_time_frames'] or {}).get('max_ms')} ms), "
                f"added delay "
                f"{r['added_delay_ms']} ms, {r['fps']} fps",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine(),
        "command": "python benchmarks/avsync.py " + " ".join(
            f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k != "out"
        ),
        "conversation_s": args.seconds,
        "fps": FPS,
        "results": results,
    }  # fmt: skip
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
