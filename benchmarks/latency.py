"""Streaming latency of one Agent with audio fed at real-time pace.

    python benchmarks/latency.py [--seconds 30] [--hops 10 4 2] [--backends torch onnxruntime]

The bundled conversation (looped to --seconds) is pushed in 20 ms chunks on a real-time schedule
while frames are taken from the agent's blocking iterator; how each frame's latency is split into
an algorithmic part (waiting for the hop's audio) and a compute part is described in
`infp_sdk/bench.py`. It prints p50/p95/p99 of each, CPU seconds per audio second, CPU use and
peak memory, and saves JSON and a latency plot under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from infp_sdk.audio import load_audio
from infp_sdk.bench import format_rows, load_backend, looped, machine, run_realtime

ROOT = Path(__file__).resolve().parent.parent


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    folder = ROOT / "examples" / "conversation"
    return looped(load_audio(folder / "own.wav"), load_audio(folder / "partner.wav"), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hops", type=int, nargs="+", default=[10, 4, 2])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    own, partner = conversation(args.seconds)
    rows = []
    print(format_rows([]), flush=True)
    for backend in args.backends:
        model = load_backend(args.model, backend)
        for hop in args.hops:
            rows.append(run_realtime(model, own, partner, hop=hop, label=backend))
            print(format_rows(rows[-1:]).splitlines()[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "latency",
        "machine": machine(),
        "model": args.model,
        "seconds": args.seconds,
        "chunk_ms": 20,
        "results": rows,
    }
    (out / "latency.json").write_text(json.dumps(result, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"saved {out / 'latency.json'} (no plot: matplotlib is not installed)")
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        lat = np.sort(r["latencies_ms"])
        ax.plot(lat, np.linspace(0, 1, len(lat)), label=f"{r['label']}, hop {r['hop_frames']}")
    ax.axvline(150, color="grey", ls="--", lw=1)
    ax.set_xlabel("latency (ms): frame available - its audio pushed")
    ax.set_ylabel("fraction of frames")
    ax.set_title(f"streaming latency, 20 ms chunks at real-time pace ({args.seconds:.0f} s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=90)
    print(f"saved {out / 'latency.json'} and latency.png")


if __name__ == "__main__":
    main()
