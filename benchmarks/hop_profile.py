"""Where the time of one torch hop goes, and what computing the DiT's condition once per hop saves.

    python benchmarks/hop_profile.py [--hops 2 4 10] [--threads 1 2] [--repeats 60]

For the default model and one agent: the median time of a whole hop (encoder + every solver
step), of the encoder alone, and of the same hop with the DiT's step-invariant part recomputed
at every step (``MotionDiT.forward`` per step, how sampling worked before ``condition`` was split
out); then a ``torch.profiler`` breakdown of a hop by operator. Variants are interleaved in one
run and compared as ratios. Saves ``hop_profile.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from infp_sdk.audio import load_audio
from infp_sdk.bench import machine
from infp_sdk.model import sampling
from infp_sdk.model.checkpoint import load_model
from infp_sdk.runtime.generator import MotionStream, generate_hops

ROOT = Path(__file__).resolve().parent.parent


def a_ready_hop(model, hop: int):
    folder = ROOT / "examples" / "conversation"
    own, partner = load_audio(folder / "own.wav"), load_audio(folder / "partner.wav")
    stream = MotionStream(model, hop=hop)
    stream.append(own[: 16000 * 4], partner[: 16000 * 4])
    while stream.frames_out < 40:
        stream.accept(*generate_hops(model, [stream.next_hop()])[0])
    return stream.next_hop()


def per_step_condition_hop(model, hop) -> None:
    """The same hop with ``MotionDiT.forward`` (condition included) at every solver step."""
    cfg = model.config
    with torch.no_grad():
        feature, _, _ = model.encode(hop.mel[None, 0], hop.mel[None, 1], hop.style)
        feature = feature[:, -hop.count :]
        prev = model.standardise(hop.prev)
        ones = torch.ones(1)
        has_prev = torch.tensor([hop.has_prev])

        def denoise(x, t):
            v = model.dit(x, torch.full((1,), t), feature, prev, hop.style, ones, has_prev, ones)
            return sampling.x0_from_v(x, v, t)

        model.destandardise(sampling.SAMPLERS[cfg.sampler](denoise, hop.noise, cfg.steps))


def encoder_only(model, hop) -> None:
    with torch.no_grad():
        model.encode(hop.mel[None, 0], hop.mel[None, 1], hop.style)


def median_ms(variants: dict, repeats: int) -> dict[str, float]:
    """Interleaved timing: each round runs every variant once, so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()
        fn()
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(v) for name, v in times.items()}


def operator_breakdown(model, hop, rounds: int = 10) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            generate_hops(model, [hop])
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "share": e.self_cpu_time_total / total,
            "calls_per_hop": e.count / rounds,
            "ms_per_hop": e.self_cpu_time_total / rounds / 1000,
        }
        for e in events[:8]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, nargs="+", default=[2, 4, 10])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    model = load_model("default").eval()
    rows = []
    print("threads hop   hop ms  encoder ms  per-step-condition ms  saved")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.hops:
            hop = a_ready_hop(model, size)
            ms = median_ms(
                {
                    "hop": lambda h=hop: generate_hops(model, [h]),
                    "encoder": lambda h=hop: encoder_only(model, h),
                    "per_step_condition": lambda h=hop: per_step_condition_hop(model, h),
                },
                args.repeats,
            )
            row = {
                "threads": threads,
                "hop_frames": size,
                "hop_ms": ms["hop"],
                "encoder_ms": ms["encoder"],
                "per_step_condition_hop_ms": ms["per_step_condition"],
                "saved_fraction": 1 - ms["hop"] / ms["per_step_condition"],
            }
            rows.append(row)
            print(
                f"{threads:7d} {size:3d} {ms['hop']:8.1f} {ms['encoder']:11.1f} "
                f"{ms['per_step_condition']:22.1f} {row['saved_fraction']:6.1%}",
                flush=True,
            )
    torch.set_num_threads(1)
    breakdown = operator_breakdown(model, a_ready_hop(model, 2))
    print("\nhop 2, one thread, by operator (self time):")
    for e in breakdown:
        print(f"  {e['op']:50s} {e['share']:6.1%} {e['calls_per_hop']:6.0f} calls/hop")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "hop_profile",
        "machine": machine(),
        "model": "default",
        "results": rows,
        "hop2_operators": breakdown,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    (out / "hop_profile.json").write_text(json.dumps(result, indent=1))
    print(f"saved {out / 'hop_profile.json'}")


if __name__ == "__main__":
    main()
