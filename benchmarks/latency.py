"""Streaming latency of the Agent with audio fed at real-time pace.

    python benchmarks/latency.py [--seconds 30] [--hops 10 4 2] [--backends torch onnxruntime]

The bundled conversation (looped to --seconds) is pushed in 20 ms chunks on a real-time schedule
from a feeder thread while the main thread takes frames from the agent's blocking iterator. For
each frame:

- its audio dependency is the last sample its features read: the end of frame i + look-ahead;
- latency = the time the frame became available - the time that sample was pushed;
- the algorithmic part = how long after that sample the audio that triggers the frame's hop
  (the hop's last frame + look-ahead) arrived — waiting imposed by the hop, not by compute;
- the compute part = latency - algorithmic part.

It prints p50/p95/p99 of each, the real-time factor (compute seconds per audio second), CPU use
and peak memory, and saves JSON and a latency plot under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from pathlib import Path

import numpy as np

from infp_sdk import Agent
from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, load_audio
from infp_sdk.model import load_model

ROOT = Path(__file__).resolve().parent.parent
CHUNK = SAMPLE_RATE // 50  # 20 ms


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    own = load_audio(ROOT / "examples" / "conversation" / "own.wav")
    partner = load_audio(ROOT / "examples" / "conversation" / "partner.wav")
    n = int(seconds * SAMPLE_RATE)
    reps = -(-n // len(own))
    return np.tile(own, reps)[:n], np.tile(partner, reps)[:n]


def run(model, backend: str, hop: int, own: np.ndarray, partner: np.ndarray) -> dict:
    agent = Agent(model=model, backend=backend, hop=hop)
    lookahead = agent.model.config.encoder.lookahead
    chunks = len(own) // CHUNK
    pushed_at = np.zeros(chunks)
    start = time.perf_counter() + 0.2

    def feed():
        for k in range(chunks):
            delay = start + k * CHUNK / SAMPLE_RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            agent.push(own=own[k * CHUNK : (k + 1) * CHUNK],
                       partner=partner[k * CHUNK : (k + 1) * CHUNK])  # fmt: skip
            pushed_at[k] = time.perf_counter()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    feeder = threading.Thread(target=feed)
    feeder.start()
    frames_expected = chunks * CHUNK // SAMPLES_PER_MOTION_FRAME
    # the stream can only emit frames whose hop is complete; the tail waits for the end
    emitted = (frames_expected - lookahead) // hop * hop
    latency, algorithmic = [], []
    for frame in agent.frames(timeout=10):
        now = time.perf_counter()
        i = frame.index
        dep_sample = (i + 1 + lookahead) * SAMPLES_PER_MOTION_FRAME - 1
        hop_end = (i // hop + 1) * hop
        trigger_sample = (hop_end + lookahead) * SAMPLES_PER_MOTION_FRAME - 1
        t_dep = pushed_at[dep_sample // CHUNK]
        t_trigger = pushed_at[trigger_sample // CHUNK]
        latency.append(now - t_dep)
        algorithmic.append(t_trigger - t_dep)
        if i + 1 >= emitted:
            break
    feeder.join()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    agent.close()
    lat, alg = np.array(latency) * 1000, np.array(algorithmic) * 1000
    comp = lat - alg
    audio_s = len(own) / SAMPLE_RATE

    def pct(x):
        return {f"p{q}": float(np.percentile(x, q)) for q in (50, 95, 99)}

    return {
        "backend": backend,
        "hop_frames": hop,
        "lookahead_frames": lookahead,
        "frames": len(lat),
        "latency_ms": pct(lat),
        "algorithmic_ms": pct(alg),
        "compute_ms": pct(comp),
        "cpu_seconds_per_audio_second": cpu / audio_s,
        "cpu_cores_busy": cpu / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "latencies_ms": lat.round(2).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hops", type=int, nargs="+", default=[10, 4, 2])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    from model_speed import machine  # same folder

    model = load_model(args.model)
    own, partner = conversation(args.seconds)
    rows = [run(model, b, h, own, partner) for b in args.backends for h in args.hops]
    print(f"{'backend':<12} {'hop':>3} {'p50':>7} {'p95':>7} {'p99':>7} {'algo p95':>9} "
          f"{'compute p95':>11} {'CPU s/s':>8} {'RSS MB':>7}")  # fmt: skip
    for r in rows:
        print(
            f"{r['backend']:<12} {r['hop_frames']:>3} {r['latency_ms']['p50']:>7.0f} "
            f"{r['latency_ms']['p95']:>7.0f} {r['latency_ms']['p99']:>7.0f} "
            f"{r['algorithmic_ms']['p95']:>9.0f} {r['compute_ms']['p95']:>11.0f} "
            f"{r['cpu_seconds_per_audio_second']:>8.2f} {r['peak_rss_mb']:>7.0f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency.json").write_text(
        json.dumps(
            {
                "benchmark": "latency",
                "machine": machine(),
                "seconds": args.seconds,
                "chunk_ms": 20,
                "results": rows,
            },
            indent=1,
        )  # fmt: skip
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        for r in rows:
            lat = np.sort(r["latencies_ms"])
            label = f"{r['backend']}, hop {r['hop_frames']}"
            ax.plot(lat, np.linspace(0, 1, len(lat)), label=label)
        ax.axvline(150, color="grey", ls="--", lw=1)
        ax.set_xlabel("latency (ms): frame available - its audio pushed")
        ax.set_ylabel("fraction of frames")
        ax.set_title(f"streaming latency, 20 ms chunks at real-time pace ({args.seconds:.0f} s)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=90)
    except ImportError:
        pass
    print(f"saved {out / 'latency.json'}")


if __name__ == "__main__":
    main()
