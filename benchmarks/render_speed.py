"""Speed of the portrait renderer: frames per second at 512x512 on the CPU.

    python benchmarks/render_speed.py [--frames 200] [--size 512] [--out benchmarks/results]
        [--compare OLD_RENDERER.py]

Renders the bundled portrait with a moving rig (head turns and nods, jaw, blinks, gaze) and
reports per-frame times (mean, p50, p95) and frames per second for 1 and 2 renderer threads, the
time to load the prepared avatar and build the renderer, and the throughput of rendering plus
H.264 encoding (the render job's loop). Results are printed and saved as JSON with the machine
description and the load average (other processes on the machine slow it down).

``--compare`` times another implementation of the renderer in the same run, frame by frame in
turn with this one so that both see the same load, e.g. an earlier revision's:
``git show REV:infp_sdk/face/renderer.py > old_renderer.py`` (it is imported as a module
of ``infp_sdk.face``; a torch one runs with one torch thread). The largest pixel difference
between the two is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from model_speed import machine  # noqa: E402

from infp_sdk.face import load_avatar, load_portrait  # noqa: E402
from infp_sdk.motion import blendshape_index  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AVATAR = ROOT / "examples" / "portrait" / "astronaut.avatar"


def rig(n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A busy, conversation-like rig sequence: every part of the renderer has work each frame."""
    t = np.arange(n) / 25.0
    out = []
    for ti in t:
        head = np.array(
            [0.25 * np.sin(0.7 * ti), 0.12 * np.sin(1.3 * ti), 0.08 * np.sin(0.5 * ti), 0, 0, 0],
            np.float32,
        )
        gaze = np.full(4, 0.2 * np.sin(0.9 * ti), np.float32)
        bs = np.zeros(52, np.float32)
        bs[blendshape_index("jawOpen")] = 0.5 + 0.5 * np.sin(9.0 * ti)
        bs[blendshape_index("mouthSmileLeft")] = bs[blendshape_index("mouthSmileRight")] = 0.3
        blink = float(np.exp(-(((ti % 3.0) - 1.5) ** 2) / 0.004))
        bs[blendshape_index("eyeBlinkLeft")] = bs[blendshape_index("eyeBlinkRight")] = blink
        bs[blendshape_index("browInnerUp")] = 0.3 + 0.3 * np.sin(0.4 * ti)
        out.append((head, gaze, bs))
    return out


def time_frames(renderer, motion) -> list[float]:
    for head, gaze, bs in motion[:5]:  # warm-up
        renderer.render(head=head, gaze=gaze, blendshapes=bs)
    times = []
    for head, gaze, bs in motion:
        start = time.perf_counter()
        renderer.render(head=head, gaze=gaze, blendshapes=bs)
        times.append(time.perf_counter() - start)
    return times


def load_renderer_module(path: str):
    """A renderer implementation from a file, as a module of infp_sdk.face (relative imports)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("infp_sdk.face._compared_renderer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return module


def compare(avatar, size: int, motion, path: str) -> dict:
    """This renderer and another, frame by frame in turn (alternating which goes first)."""
    other = load_renderer_module(path).Renderer(avatar, size=size, device="cpu")
    this = load_portrait(avatar, size=size)
    pair = {"this": this, "other": other}
    times: dict[str, list[float]] = {"this": [], "other": []}
    diff = 0
    for head, gaze, bs in motion[:5]:
        for r in pair.values():
            r.render(head=head, gaze=gaze, blendshapes=bs)
    for i, (head, gaze, bs) in enumerate(motion):
        frames = {}
        for name in ("this", "other") if i % 2 == 0 else ("other", "this"):
            start = time.perf_counter()
            frames[name] = pair[name].render(head=head, gaze=gaze, blendshapes=bs)
            times[name].append(time.perf_counter() - start)
        d = np.abs(frames["this"].astype(np.int16) - frames["other"].astype(np.int16))
        diff = max(diff, int(d.max()))
    return {
        "other": Path(path).name,
        "this": summary(times["this"]),
        "other_1_torch_thread": summary(times["other"]),
        "max_pixel_difference": diff,
    }


def summary(times: list[float]) -> dict:
    ms = sorted(1000 * x for x in times)
    return {
        "frames": len(ms),
        "mean_ms": round(statistics.fmean(ms), 2),
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "fps": round(1000 / statistics.fmean(ms), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--compare", help="another renderer.py to time in the same run")
    args = ap.parse_args()
    motion = rig(args.frames)
    results: dict = {"size": args.size, "load_average_before": list(os.getloadavg())}

    start = time.perf_counter()
    avatar = load_avatar(AVATAR)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    renderer = load_portrait(avatar, size=args.size)
    build_s = time.perf_counter() - start
    results["avatar_load_ms"] = round(1000 * load_s, 1)
    results["renderer_build_ms"] = round(1000 * build_s, 1)
    print(f"avatar load {1000 * load_s:.0f} ms, renderer build {1000 * build_s:.0f} ms")

    cpu = {}
    for threads in (1, 2):
        r = renderer if threads == 1 else load_portrait(avatar, size=args.size, threads=threads)
        cpu[f"{threads}_threads"] = s = summary(time_frames(r, motion))
        print(
            f"cpu, {threads} thread(s): {s['mean_ms']:.1f} ms/frame (p50 {s['p50_ms']:.1f}, "
            f"p95 {s['p95_ms']:.1f}) = {s['fps']:.1f} fps"
        )
    results["cpu"] = cpu

    # Render + encode, as in the render job (ffmpeg's encoder runs in its own process).
    from infp_sdk.io.video import VideoWriter

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "bench.mp4", size=renderer.size) as video:
            for head, gaze, bs in motion:
                video.write(renderer.render(head=head, gaze=gaze, blendshapes=bs))
        encode_s = time.perf_counter() - start
    results["render_and_encode_fps_1_thread"] = round(len(motion) / encode_s, 1)
    print(f"render + H.264 encode (1 renderer thread): {len(motion) / encode_s:.1f} fps")

    if args.compare:
        results["compare"] = c = compare(avatar, args.size, motion, args.compare)
        print(
            f"in turn with {c['other']}: this {c['this']['mean_ms']:.1f} ms/frame (p50 "
            f"{c['this']['p50_ms']:.1f}), other {c['other_1_torch_thread']['mean_ms']:.1f} "
            f"(p50 {c['other_1_torch_thread']['p50_ms']:.1f}); largest pixel difference "
            f"{c['max_pixel_difference']}"
        )

    results["load_average_after"] = list(os.getloadavg())
    results["machine"] = machine()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "render_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out / 'render_speed.json'}")


if __name__ == "__main__":
    main()
