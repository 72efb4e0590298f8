"""Speed of the stage-2 presets on this machine: denoiser forward, full window, FLOPs, RTF.

    python benchmarks/model_speed.py [--threads 2] [--repeats 20] [--out benchmarks/results]

For each preset (and a few sampler settings) it measures, with random weights of the right shapes:
- the denoiser forward time for one window (batch 2 when guidance is on: cond + uncond);
- the full window time: encoding both audio channels + all solver steps;
- FLOPs per generated second of motion (torch's FLOP counter);
- the real-time factor = compute time per second of motion (below 1 keeps up with real time).
Results are printed as a table and saved as JSON with the machine description.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from infp_sdk.bench import machine
from infp_sdk.model import INFPModel, count_parameters, preset
from infp_sdk.motion import FPS


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def bench_variant(name: str, overrides: dict, repeats: int) -> dict:
    cfg = preset(name, **overrides)
    model = INFPModel(cfg).eval()
    n, d = cfg.window, cfg.latent_dim
    mel_len = (cfg.audio_context + n + cfg.encoder.lookahead) * 4
    mel = torch.randn(1, mel_len, 80) - 6
    prev = torch.randn(1, cfg.dit.prev_frames, d)
    noise = torch.randn(1, n, d)
    style = model.style_vector(None, 1)
    guided = cfg.cfg_scale != 1.0
    batch = 2 if guided else 1

    with torch.no_grad():
        feature = model.encode(mel, mel, style)[0][:, -n:]
        args = (
            torch.randn(batch, n, d),
            torch.full((batch,), 0.5),
            feature.expand(batch, -1, -1),
            prev.expand(batch, -1, -1),
            style.expand(batch, -1),
            torch.ones(batch),
            torch.ones(batch),
            torch.ones(batch),
        )

        def forward():
            model.dit(*args)

        def window():
            f = model.encode(mel, mel, style)[0][:, -n:]
            model.sample_window(f, prev, style, noise)

        forward_s = timed(forward, repeats)
        window_s = timed(window, max(3, repeats // 4))
        with FlopCounterMode(display=False) as counter:
            window()
        flops_window = counter.get_total_flops()

    window_median = statistics.median(window_s)
    windows_per_second = FPS / n
    return {
        "preset": name,
        "overrides": overrides,
        "parameters": count_parameters(model),
        "window_frames": n,
        "sampler": cfg.sampler,
        "steps": cfg.steps,
        "cfg_scale": cfg.cfg_scale,
        "denoiser_batch": batch,
        "denoiser_forward_ms": 1000 * statistics.median(forward_s),
        "denoiser_forward_p90_ms": 1000 * sorted(forward_s)[int(0.9 * (len(forward_s) - 1))],
        "window_ms": 1000 * window_median,
        "gflops_per_motion_second": flops_window * windows_per_second / 1e9,
        "rtf": window_median * windows_per_second,
    }


VARIANTS = [
    ("realtime", {}),
    ("realtime", {"sampler": "ddim", "steps": 20}),
    ("realtime", {"cfg_scale": 2.0}),
    ("paper", {}),
    ("paper", {"sampler": "dpmpp_2m", "steps": 6, "cfg_scale": 1.0}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = [bench_variant(name, overrides, args.repeats) for name, overrides in VARIANTS]
    header = (
        f"{'preset':<9} {'sampler':<9} {'steps':>5} {'cfg':>4} {'params':>8} {'fwd ms':>7} "
        f"{'window ms':>9} {'GFLOP/s':>8} {'RTF':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['preset']:<9} {r['sampler']:<9} {r['steps']:>5} {r['cfg_scale']:>4} "
            f"{r['parameters'] / 1e6:>7.1f}M {r['denoiser_forward_ms']:>7.1f} "
            f"{r['window_ms']:>9.1f} {r['gflops_per_motion_second']:>8.2f} {r['rtf']:>6.2f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "model_speed", "machine": machine(), "results": rows}
    (out / "model_speed.json").write_text(json.dumps(result, indent=2))
    print(f"saved {out / 'model_speed.json'}")


if __name__ == "__main__":
    main()
