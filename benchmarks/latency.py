"""Mouth-to-face latency of one Agent, per setting, with audio fed at real-time pace.

    python benchmarks/latency.py [--seconds 30] [--settings default torch steps2 ...]
                                 [--threads 1] [--model default]

The bundled conversation (looped to --seconds) is pushed in 20 ms chunks on a real-time schedule
while frames are taken from the agent's blocking iterator. A frame's latency counts from the push
of the chunk that holds its centre sample to the moment it can be pulled; its algorithmic and
compute parts are described in `infp_sdk/bench.py`. Each setting is one row of the table in
docs/runtime.md: ``default`` is what ``Agent()`` runs (its backend, hop and solver steps), the
others change one thing. It prints p50/p95/p99, CPU seconds per audio second and peak memory, and
saves benchmarks/results/latency.json and latency.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from infp_sdk.audio import load_audio
from infp_sdk.bench import format_rows, load_backend, looped, machine, run_realtime

ROOT = Path(__file__).resolve().parent.parent

# name -> (what a user writes, bundled model or None for --model, backend, Agent options)
SETTINGS: dict[str, tuple[str, str | None, str, dict]] = {
    "default": ("Agent()", None, "auto", {}),
    "torch": ('Agent(backend="torch")', None, "torch", {}),
    "steps2": ("Agent(steps=2)", None, "auto", {"steps": 2}),
    "hop2": ("Agent(hop=2)", None, "auto", {"hop": 2}),
    "lookahead2": ('Agent(model="lookahead2")', "lookahead2", "auto", {}),
    "hop10": ("Agent(hop=10, steps=6)", None, "auto", {"hop": 10, "steps": 6}),
}


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    folder = ROOT / "examples" / "conversation"
    return looped(load_audio(folder / "own.wav"), load_audio(folder / "partner.wav"), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--threads", type=int, help="torch and onnxruntime threads")
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    own, partner = conversation(args.seconds)
    rows = []
    print(format_rows([]), flush=True)
    for name in args.settings:
        code, bundled, backend, options = SETTINGS[name]
        model, resolved = load_backend(bundled or args.model, backend, args.threads)
        row = run_realtime(model, own, partner, label=name, **options)
        row.update(setting=code, backend=resolved)
        rows.append(row)
        print(format_rows([row]).splitlines()[-1], f"  {code} ({resolved})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "latency",
        "machine": machine(),
        "model": args.model,
        "seconds": args.seconds,
        "chunk_ms": 20,
        "command": "python benchmarks/latency.py "
        + " ".join(
            f"--{k} {v}"
            for k, v in (("seconds", args.seconds), ("threads", args.threads))
            if v is not None
        ),  # fmt: skip
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
        ax.plot(lat, np.linspace(0, 1, len(lat)), label=f"{r['setting']} ({r['backend']})")
    ax.axvline(100, color="grey", ls="--", lw=1)
    ax.set_xlabel("mouth-to-face latency (ms): frame available - push of its centre sample")
    ax.set_ylabel("fraction of frames")
    ax.set_title(f"one agent, 20 ms chunks at real-time pace ({args.seconds:.0f} s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=90)
    print(f"saved {out / 'latency.json'} and latency.png")


if __name__ == "__main__":
    main()
