"""The main job: a portrait and a conversation's audio -> an mp4 of the portrait conversing.

``infp-sdk render --portrait P --own OWN.wav [--partner PARTNER.wav] -o out.mp4``: motion from the
model (the bundled default unless ``--model``), frames from the portrait renderer, H.264 at 25 fps
with the audio muxed in, as long as the audio.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .motion import FPS, Frame

AUDIO_CHOICES = ("mix", "own", "partner", "none")


@dataclass
class RenderResult:
    """What :func:`render_video` wrote and how long it took."""

    path: str
    frames: int
    seconds: float
    """Of audio."""
    motion_s: float
    """From the start of the motion to its last frame (the rendering runs alongside)."""
    render_s: float
    """From the start of the motion to the last frame encoded."""
    total_s: float
    """Everything, loading the model and the portrait included."""

    @property
    def render_fps(self) -> float:
        """Frames rendered and encoded per second of wall time."""
        return self.frames / max(self.render_s, 1e-9)


def audio_track(own: np.ndarray, partner: np.ndarray | None, which: str) -> np.ndarray | None:
    """The audio to mux: own, partner, both mixed (peak-limited to full scale), or none."""
    if which not in AUDIO_CHOICES:
        raise ValueError(f"audio must be one of {', '.join(AUDIO_CHOICES)}, got {which!r}")
    if which == "none":
        return None
    n = max(len(own), 0 if partner is None else len(partner))
    a = np.pad(np.asarray(own, np.float32), (0, n - len(own)))
    b = np.zeros(n, np.float32) if partner is None else np.pad(partner, (0, n - len(partner)))
    track = {"own": a, "partner": b, "mix": a + b}[which]
    peak = float(np.abs(track).max(initial=0.0))
    return track / peak if peak > 1.0 else track


def render_video(
    portrait: Any,
    own: Any,
    output: str | Path,
    partner: Any = None,
    *,
    model: Any = "default",
    audio: str = "mix",
    size: int | tuple[int, int] = 512,
    crop: str | float = "face",
    seed: int = 0,
    hop: int | None = None,
    steps: int | None = None,
    device: str | None = None,
    render_threads: int | None = 1,
    model_threads: int | None = None,
    progress: bool = True,
) -> RenderResult:
    """Render a conversation to an mp4. ``own``/``partner``: WAV paths or 16 kHz float arrays.

    ``portrait``: an image or ``.avatar`` path, an array, a PIL image or an Avatar.
    ``model``: a checkpoint path, a bundled name or a loaded model. The video has
    round(25 x audio seconds) frames. ``device``: the renderer's, ``"cpu"`` or None (it is numpy).
    ``render_threads``: the renderer's CPU threads (default 1: ffmpeg's encoder works on another
    core meanwhile; None is 1). ``model_threads``: the motion model's (default 1).
    """
    from .audio import SAMPLE_RATE, load_audio
    from .face import load_portrait
    from .runtime.backend import load_hop_model
    from .runtime.generator import iter_motion

    started = time.perf_counter()
    own_pcm = load_audio(own) if isinstance(own, (str, Path)) else np.asarray(own, np.float32)
    partner_pcm = None
    if partner is not None:
        partner_pcm = (
            load_audio(partner)
            if isinstance(partner, (str, Path))
            else np.asarray(partner, np.float32)
        )
    track = audio_track(own_pcm, partner_pcm, audio)  # validates `audio` before the slow parts
    renderer = load_portrait(
        portrait, size=size, crop=crop, device=device, threads=render_threads or 1
    )
    net = load_hop_model(model, "auto", "auto", threads=model_threads)
    samples = max(len(own_pcm), 0 if partner_pcm is None else len(partner_pcm))
    seconds = samples / SAMPLE_RATE
    n_frames = max(1, round(seconds * FPS))

    t0 = time.perf_counter()
    motion = _MotionThread(
        lambda: iter_motion(net, own_pcm, partner_pcm, seed=seed, hop=hop, steps=steps),
        n_frames,
    )
    try:
        first = motion.next()
        if first is None:
            raise ValueError("the audio is too short for a single frame of motion")
        out = Path(output)
        _encode(renderer, first, motion, n_frames, out, track, progress, t0)
    finally:
        motion.stop()
    render_s = time.perf_counter() - t0
    return RenderResult(
        path=str(out),
        frames=n_frames,
        seconds=seconds,
        motion_s=motion.seconds,
        render_s=render_s,
        total_s=time.perf_counter() - started,
    )


class _MotionThread:
    """Generates the motion on a thread of its own, frame by frame into a bounded queue, so
    that the renderer (and the encoder) work on the first frames while the model makes the
    rest: on two cores the job takes about as long as its slower half instead of both."""

    def __init__(self, rows: Callable[[], Iterator[tuple[np.ndarray, float]]], limit: int):
        self._queue: queue.Queue = queue.Queue(maxsize=2 * FPS)
        self._stopping = threading.Event()
        self._started = time.perf_counter()
        self.seconds = 0.0  # until the last frame was generated
        self._thread = threading.Thread(
            target=self._run, args=(rows, limit), name="infp-render-motion", daemon=True
        )
        self._thread.start()

    def _run(self, rows: Callable[[], Iterator[tuple[np.ndarray, float]]], limit: int) -> None:
        item: Any = None
        try:
            for i, (latent, speaking) in enumerate(rows()):
                if i >= limit or not self._put(Frame.from_rig_latent(i, latent, speaking)):
                    break
        except BaseException as e:  # raised by next() on the caller's thread
            item = e
        self.seconds = time.perf_counter() - self._started
        self._put(item)

    def _put(self, item: Any) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> Frame | None:
        """The next frame; None after the last. Raises what the generation raised."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Stop generating (if it has not finished) and wait for the thread."""
        self._stopping.set()
        self._thread.join()


def _encode(
    renderer: Any,
    first: Frame,
    motion: _MotionThread,
    n_frames: int,
    out: Path,
    track: np.ndarray | None,
    progress: bool,
    t0: float,
) -> None:
    from .audio import SAMPLE_RATE
    from .io.video import VideoWriter

    # A terminal gets one line redrawn twice a second; a log gets a line every 5 s.
    tty = sys.stderr.isatty()
    every = 0.5 if tty else 5.0
    frame: Frame | None = first
    with VideoWriter(out, fps=FPS, size=renderer.size, audio=track, audio_rate=SAMPLE_RATE) as v:
        last = time.perf_counter()
        shown = first
        for i in range(n_frames):
            if i and frame is not None:
                frame = motion.next()
            # The model may end a frame early at the very end of the audio: hold the last pose.
            shown = frame if frame is not None else shown
            v.write(renderer.render(shown))
            now = time.perf_counter()
            if progress and (now - last > every or i == n_frames - 1):
                last = now
                done = (i + 1) / n_frames
                rate = (i + 1) / max(now - t0, 1e-9)
                bar = "#" * int(30 * done)
                print(
                    f"{chr(13) if tty else ''}render: [{bar:<30}] {i + 1}/{n_frames} frames, "
                    f"{rate:.1f} fps",
                    end="" if tty and i < n_frames - 1 else "\n",
                    file=sys.stderr,
                    flush=True,
                )


def _cmd_render(args: argparse.Namespace) -> int:
    if args.device not in (None, "cpu"):
        print(
            f"infp-sdk render: error: the portrait renderer runs on the CPU, not {args.device!r}: "
            "leave --device out (or pass --device cpu)",
            file=sys.stderr,
        )
        return 2
    size: int | tuple[int, int] = args.size
    if "x" in str(args.size):
        w, h = str(args.size).lower().split("x", 1)
        size = (int(w), int(h))
    else:
        size = int(args.size)
    crop: str | float = args.crop
    if crop not in ("face", "full"):
        crop = float(crop)
    try:
        result = render_video(
            args.portrait,
            args.own,
            args.output,
            args.partner,
            model=args.model,
            audio=args.audio,
            size=size,
            crop=crop,
            seed=args.seed,
            hop=args.hop,
            steps=args.steps,
            device=args.device,
            render_threads=args.threads or 1,
            model_threads=args.threads,
            progress=not args.quiet,
        )
    except ImportError as e:
        print(f"infp-sdk render: error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {result.path}: {result.frames} frames ({result.seconds:.1f} s) in "
        f"{result.total_s:.1f} s (motion {result.motion_s:.1f} s alongside frames "
        f"{result.render_s:.1f} s, {result.render_fps:.1f} fps)"
    )
    if args.json:
        import json

        print(json.dumps({**asdict(result), "render_fps": result.render_fps}))
    return 0


def register_cli(sub: Any) -> None:
    """Add ``infp-sdk render`` to the command's subparsers."""
    p = sub.add_parser(
        "render",
        help="portrait + conversation audio -> mp4 of the portrait talking and listening",
        description="Generate motion for a conversation (own voice and partner) and render the "
        "portrait with it: H.264 mp4 at 25 fps, as long as the audio, audio muxed in.",
    )
    p.add_argument("--portrait", required=True, help="photo (PNG/JPEG) or prepared .avatar")
    p.add_argument("--own", required=True, help="the agent's own voice (WAV)")
    p.add_argument("--partner", help="the partner's voice (WAV); silence if omitted")
    p.add_argument("-o", "--output", required=True, help="output .mp4")
    p.add_argument("--model", default="default", help="checkpoint path or bundled name")
    p.add_argument(
        "--audio", default="mix", choices=AUDIO_CHOICES, help="audio track (default: mix)"
    )
    p.add_argument("--size", default="512", help="output size: 512 or WIDTHxHEIGHT")
    p.add_argument("--crop", default="face", help="face (default), full, or face heights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hop", type=int, help="motion frames per model step (default: model's)")
    p.add_argument("--steps", type=int, help="solver steps (default: model's)")
    p.add_argument("--device", help="renderer device: cpu (the default and only choice)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for the motion model and for the renderer (renderer default: 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="also print the timings as JSON")
    p.set_defaults(func=_cmd_render)
