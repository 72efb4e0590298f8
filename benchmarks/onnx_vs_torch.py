"""torch vs onnxruntime on this machine for the bundled default model.

    python benchmarks/onnx_vs_torch.py [--threads 2 [1 ...]] [--repeats 40] [--seconds 20]

Measures, for both backends with the same thread count (torch: the checkpoint in memory;
onnxruntime: the graphs shipped in the package):
- one hop as the Agent runs it by default (1 frame, 3 solver steps), with guidance 2, and a
  10-frame hop with 6 steps;
- the real-time factor of ``generate_motion`` at the default setting over ``--seconds`` of noise
  audio (compute time per second of motion; below 1 keeps up with real time);
and the largest difference between the two backends' generated latents. Timings of the two
backends alternate call by call, so background load affects both alike. Results are printed as
a table and saved to ``benchmarks/results/onnx_vs_torch.json`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from infp_sdk.audio import SAMPLE_RATE
from infp_sdk.model import count_parameters, load_model
from infp_sdk.runtime.backend import bundled_onnx
from infp_sdk.runtime.generator import HopBatch, MotionStream, generate_hops, generate_motion
from infp_sdk.runtime.onnx import load_onnx_model
from infp_sdk.runtime.torch_backend import TorchHopModel


def machine(threads: list[int]) -> dict:
    """The shared machine description plus what this comparison needs to be read."""
    from model_speed import machine as base  # same folder

    return {
        **base(),
        "threads": threads,
        # the machine may be shared: the load says how much of it these numbers had
        "load_average_1min_at_start": os.getloadavg()[0],
        "onnxruntime": onnxruntime.__version__,
    }


def timed_pair(
    a: Callable[[], object], b: Callable[[], object], repeats: int, warm_up: bool = True
) -> tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, called alternately (after one warm-up call each)."""
    if warm_up:
        a(), b()
    if repeats == 0:
        return float("nan"), float("nan")
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def measure(torch_model: Any, ort_model: Any, threads: int, args: argparse.Namespace) -> dict:
    """All measurements at one thread count (both backends use ``threads``)."""
    torch.set_num_threads(threads)
    ort = load_onnx_model(ort_model.root, threads=threads)
    rows = []

    def add(name: str, unit: str, torch_value: float, ort_value: float) -> None:
        rows.append(
            {
                "measure": name,
                "unit": unit,
                "threads": threads,
                "torch": torch_value,
                "onnxruntime": ort_value,
                "ratio_ort_over_torch": ort_value / torch_value,
            }
        )

    rng = np.random.default_rng(0)
    samples = int(args.seconds * SAMPLE_RATE)
    own = (rng.standard_normal(samples) * 0.1).astype(np.float32)
    partner = (rng.standard_normal(samples) * 0.1).astype(np.float32)
    for name, hop, sampling in (
        ("one hop: 1 frame, 3 steps (the default)", 1, {}),
        ("one hop: 1 frame, 3 steps, guidance 2", 1, {"cfg_scale": 2.0}),
        ("one hop: 10 frames, 6 steps", 10, {"steps": 6}),
    ):
        stream = MotionStream(ort, hop=hop, **sampling)
        stream.append(own[: 2 * SAMPLE_RATE], partner[: 2 * SAMPLE_RATE])
        stream.accept(*generate_hops(ort, [stream.next_hop()])[0])
        batch = HopBatch.stack([stream.next_hop()])
        sampling_key = stream.sampling
        t_torch, t_ort = timed_pair(
            lambda b=batch, s=sampling_key: torch_model.run_hops(b, s),
            lambda b=batch, s=sampling_key: ort.run_hops(b, s),
            args.repeats,
        )
        add(name, "ms", 1e3 * t_torch, 1e3 * t_ort)
    motions = {}

    def run(name: str, m: Any, length: int = samples) -> None:
        motions[name] = generate_motion(m, own[:length], partner[:length], seed=0)

    # warm-up on one second (first-call allocations), then whole recordings, alternately
    timed_pair(
        lambda: run("torch", torch_model, SAMPLE_RATE), lambda: run("ort", ort, SAMPLE_RATE), 0
    )
    t_torch, t_ort = timed_pair(
        lambda: run("torch", torch_model), lambda: run("ort", ort), args.rtf_repeats, warm_up=False
    )
    rtf_name = f"generate_motion RTF ({args.seconds:g} s audio)"
    add(rtf_name, "x", t_torch / args.seconds, t_ort / args.seconds)
    parity = float(np.abs(motions["torch"].latents - motions["ort"].latents).max())
    return {"threads": threads, "rows": rows, "max_abs_latent_difference": parity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="e.g. --threads 2 1")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rtf-repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    info = machine(args.threads)
    torch_model = TorchHopModel(load_model("default"), "cpu")
    ort_model = load_onnx_model(bundled_onnx("default"))
    cfg = torch_model.config
    onnx_bytes = sum(p.stat().st_size for p in ort_model.root.glob("*.onnx"))
    runs = [measure(torch_model, ort_model, threads, args) for threads in args.threads]
    info["load_average_1min_at_end"] = os.getloadavg()[0]

    print(
        f"{info['cpu']}, {info['cores']} cores; torch {info['torch']}, onnxruntime "
        f"{info['onnxruntime']}; 1-min load average {info['load_average_1min_at_start']:.2f} "
        f"at start, {info['load_average_1min_at_end']:.2f} at end"
    )
    header = f"{'measure':<42} {'threads':>7} {'torch':>10} {'onnxruntime':>12} {'ort/torch':>10}"
    print(header)
    print("-" * len(header))
    for run in runs:
        for r in run["rows"]:
            fmt, unit = (".3f", "") if r["unit"] == "x" else (".2f", " ms")
            print(
                f"{r['measure']:<42} {r['threads']:>7} {r['torch']:>7{fmt}}{unit:<3} "
                f"{r['onnxruntime']:>9{fmt}}{unit:<3} {r['ratio_ort_over_torch']:>10.2f}"
            )
    for run in runs:
        print(
            f"max |latent difference| torch vs onnxruntime over {args.seconds:g} s "
            f"({run['threads']} threads): {run['max_abs_latent_difference']:.2e}"
        )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "onnx_vs_torch",
        "machine": info,
        "model": {
            "name": "default",
            "parameters": count_parameters(torch_model.model),
            "hop": cfg.hop,
            "sampler": cfg.sampler,
            "steps": cfg.steps,
            "onnx_bytes": onnx_bytes,
        },
        "repeats": args.repeats,
        "rtf_repeats": args.rtf_repeats,
        "seconds": args.seconds,
        "runs": runs,
    }
    (out / "onnx_vs_torch.json").write_text(json.dumps(result, indent=2))
    print(f"saved {out / 'onnx_vs_torch.json'}")


if __name__ == "__main__":
    main()
