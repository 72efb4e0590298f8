"""torch vs onnxruntime on this machine for the ``realtime`` preset (random weights).

    python benchmarks/onnx_vs_torch.py [--threads 2 [1 ...]] [--repeats 40] [--seconds 20]

Measures, for both backends with the same thread count:
- the denoiser (MotionDiT) call for one 10-frame window, batch 1 and batch 2 (guidance);
- one full hop: encoding both audio channels + 6 DPM-Solver++(2M) steps;
- the real-time factor of ``generate_motion`` over ``--seconds`` of noise audio (compute time
  per second of motion; below 1 keeps up with real time);
and the largest difference between the two backends' generated latents. Timings of the two
backends alternate call by call, so background load affects both alike. Results are printed as
a table and saved to ``benchmarks/results/onnx_vs_torch.json`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from infp_sdk.audio import SAMPLE_RATE
from infp_sdk.model import INFPModel, count_parameters, preset
from infp_sdk.runtime.generator import generate_motion
from infp_sdk.runtime.onnx import export_onnx, load_onnx_model


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


def random_realtime_model() -> INFPModel:
    """The realtime preset with every weight perturbed, so no layer is an all-zero shortcut."""
    torch.manual_seed(0)
    model = INFPModel(preset("realtime"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def measure(model: INFPModel, export_dir: str, threads: int, args: argparse.Namespace) -> dict:
    """All measurements at one thread count (both backends use ``threads``)."""
    torch.set_num_threads(threads)
    ort = load_onnx_model(export_dir, threads=threads)
    cfg = model.config
    n, d = cfg.window, cfg.latent_dim
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(2, (cfg.audio_context + n + cfg.encoder.lookahead) * 4, 80, generator=g) - 6
    style = model.style_vector(None, 1)
    prev = torch.randn(1, cfg.dit.prev_frames, d, generator=g)
    noise = torch.randn(1, n, d, generator=g)
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

    with torch.no_grad():
        feature = model.encode(mel[:1], mel[1:], style)[0][:, -n:]
        for batch in (1, 2):
            dit_args = (
                torch.randn(batch, n, d, generator=g),
                torch.full((batch,), 0.5),
                feature.expand(batch, -1, -1),
                prev.expand(batch, -1, -1),
                style.expand(batch, -1),
                torch.ones(batch),
                torch.ones(batch),
                torch.tensor([1.0, 0.0][:batch]),
            )
            t_torch, t_ort = timed_pair(
                lambda a=dit_args: model.dit(*a), lambda a=dit_args: ort.dit(*a), args.repeats
            )
            add(f"denoiser call, batch {batch} ({n} frames)", "ms", 1e3 * t_torch, 1e3 * t_ort)

        def hop(m: INFPModel) -> torch.Tensor:
            f = m.encode(mel[:1], mel[1:], style)[0][:, -n:]
            return m.sample_window(f, prev, style, noise)

        t_torch, t_ort = timed_pair(lambda: hop(model), lambda: hop(ort), max(5, args.repeats // 4))
        add(f"full hop: encode + {cfg.steps} steps ({n} frames)", "ms", 1e3 * t_torch, 1e3 * t_ort)

    rng = np.random.default_rng(0)
    samples = int(args.seconds * SAMPLE_RATE)
    own = (rng.standard_normal(samples) * 0.1).astype(np.float32)
    partner = (rng.standard_normal(samples) * 0.1).astype(np.float32)
    motions = {}

    def run(name: str, m: INFPModel, length: int = samples) -> None:
        motions[name] = generate_motion(m, own[:length], partner[:length], seed=0)

    # warm-up on one second (first-call allocations), then whole recordings, alternately
    timed_pair(lambda: run("torch", model, SAMPLE_RATE), lambda: run("ort", ort, SAMPLE_RATE), 0)
    t_torch, t_ort = timed_pair(
        lambda: run("torch", model), lambda: run("ort", ort), args.rtf_repeats, warm_up=False
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
    model = random_realtime_model()
    cfg = model.config
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_onnx(model, tmp)
        onnx_bytes = sum(paths[k].stat().st_size for k in ("encoder", "guider", "denoiser"))
        runs = [measure(model, tmp, threads, args) for threads in args.threads]
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
            "preset": cfg.preset,
            "parameters": count_parameters(model),
            "window_frames": cfg.window,
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
