"""Agents sustained in real time on this machine: one shared Engine vs one engine per agent.

    python benchmarks/throughput.py [--agents 1 2 4 8 12 16] [--hop H] [--seconds 20]
                                    [--backend auto|torch|onnxruntime] [--engines shared each]

N agents each receive the bundled conversation in 20 ms chunks at real-time pace. With a shared
Engine their hops run as batched model calls; with separate engines each agent has its own model
calls and worker thread. An agent count is sustained when every frame arrived and the compute
part of the latency stayed at or below 250 ms at p95 (see `infp_sdk/bench.py`). Saves JSON and
a plot of p95 latency and CPU use against N under benchmarks/results/: throughput.json for the
default (what ``Engine()`` runs: its backend, hop 1 and 3 solver steps),
throughput_<backend>_hop<H>.json for other settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latency import conversation  # same folder

from infp_sdk.bench import format_rows, load_backend, machine, run_realtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 2, 4, 8, 12, 16])
    parser.add_argument("--hop", type=int, help="frames per model call (default: the model's)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])
    parser.add_argument(
        "--engines", nargs="+", default=["shared", "each"], choices=["shared", "each"]
    )
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--threads", type=int, help="the model's CPU threads (default: the engine's)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    own, partner = conversation(args.seconds)
    model, _ = load_backend(args.model, args.backend, args.threads)
    rows = []
    print(format_rows([]), flush=True)
    for shared in [kind == "shared" for kind in args.engines]:
        label = "shared engine" if shared else "engine each"
        for n in args.agents:
            row = run_realtime(model, own, partner, agents=n, hop=args.hop, shared=shared,
                               label=label)  # fmt: skip
            rows.append(row)
            print(format_rows([row]).splitlines()[-1], flush=True)
            if not row["sustained"]:
                break  # more agents will not keep up either
    sustained = {
        label: max((r["agents"] for r in rows if r["label"] == label and r["sustained"]),
                   default=0)
        for label in ("shared engine", "engine each")
    }  # fmt: skip
    print(f"agents sustained in real time: {sustained}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default = args.backend == "auto" and args.hop is None
    name = "throughput" if default else f"throughput_{args.backend}_hop{args.hop or 'default'}"
    result = {
        "benchmark": "throughput",
        "machine": machine(),
        "model": args.model,
        "backend": args.backend,
        "hop_frames": args.hop,
        "threads": args.threads,
        "seconds": args.seconds,
        "chunk_ms": 20,
        "sustained_agents": sustained,
        "results": rows,
    }
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"saved {out / name}.json (no plot: matplotlib is not installed)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label in ("shared engine", "engine each"):
        sel = [r for r in rows if r["label"] == label]
        n = [r["agents"] for r in sel]
        ax1.plot(n, [r["latency_ms"]["p95"] for r in sel], "o-", label=label)
        ax2.plot(n, [r["cpu_cores_busy"] for r in sel], "o-", label=label)
    ax1.set_xlabel("agents")
    ax1.set_ylabel("p95 latency (ms)")
    ax1.set_yscale("log")
    ax2.set_xlabel("agents")
    ax2.set_ylabel("CPU cores busy")
    ax1.legend()
    fig.suptitle(f"{args.backend}, hop {args.hop}, 20 ms chunks at real-time pace")
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=90)
    print(f"saved {out / name}.json and {name}.png")


if __name__ == "__main__":
    main()
