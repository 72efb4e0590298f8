"""The CUDA path on a GPU machine: parity with the CPU, CUDA graphs against eager, real-time runs.

    python benchmarks/gpu.py [--seconds 15] [--out benchmarks/results] [--device cuda]

One script, a few minutes long, for a machine with an NVIDIA GPU (it exits with a message on one
without). ``--device cpu`` runs every part on the CPU instead (no graph capture): a dry run of
the script itself, for machines without a GPU. Each part is timed and saved even if a later part
fails:

1. parity: the default model's hops on the CPU, on CUDA eagerly and on CUDA through captured
   graphs (largest latent difference);
2. real-time runs (`infp_sdk.bench.run_realtime`) at the default setting: 1, 16, 64 and 256
   agents on one shared engine, on the torch backend (CUDA graphs) and, when the installed
   onnxruntime has the CUDA provider, on onnxruntime;
3. per-batch time of one hop, eager against graph, for hops of 2 and 10 frames and batches of
   1 to 64 agents (the CPU's batch of 1 in the same run, for scale).

The portrait renderer runs on the CPU (numpy) and is measured by ``render_speed.py``.

Results: ``gpu.json`` with the machine and GPU description.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from infp_sdk.audio import load_audio
from infp_sdk.bench import format_rows, looped, machine, run_realtime
from infp_sdk.model.checkpoint import load_model
from infp_sdk.runtime.generator import HopBatch, MotionStream, generate_hops
from infp_sdk.runtime.graphs import HopGraphs
from infp_sdk.runtime.torch_backend import run_hop_batch

ROOT = Path(__file__).resolve().parent.parent


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    folder = ROOT / "examples" / "conversation"
    return looped(load_audio(folder / "own.wav"), load_audio(folder / "partner.wav"), seconds)


def ready_hops(model, own, partner, hop: int, agents: int, warm_frames: int = 20):
    """One ready hop per agent, each agent at a different point of the conversation."""
    hops = []
    for k in range(agents):
        stream = MotionStream(model, seed=k, hop=hop)
        shift = (k * 4000) % (len(own) - 16000 * 4)
        stream.append(own[shift : shift + 16000 * 3], partner[shift : shift + 16000 * 3])
        while stream.frames_out < warm_frames:
            stream.accept(*generate_hops(model, [stream.next_hop()])[0])
        hops.append(stream.next_hop())
    return hops


def median_ms(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def eager_hops(model, hops) -> np.ndarray:
    """The latents of a batch of hops run eagerly on the model's device (no CUDA graph)."""
    device = next(model.parameters()).device
    tensors = [torch.from_numpy(a).to(device) for a in HopBatch.stack(hops).arrays()]
    x, _ = run_hop_batch(model, *tensors, hops[0].sampling)
    return x.cpu().numpy()


def graph_hops(graphs: HopGraphs, hops) -> np.ndarray:
    return graphs.run(HopBatch.stack(hops), hops[0].sampling)[0]


def parity(cpu_model, cuda_model, own, partner, device: torch.device) -> dict:
    out = {}
    for hop in (2, 10):
        hops = ready_hops(cpu_model, own, partner, hop, agents=4)
        ref = eager_hops(cpu_model, hops)
        eager = eager_hops(cuda_model, hops)
        graphs = HopGraphs(cuda_model, device)
        graphed = graph_hops(graphs, hops[:3])  # padded to 4
        out[f"hop{hop}"] = {
            "cuda_eager_vs_cpu": float(np.abs(eager - ref).max()),
            "cuda_graph_vs_cuda_eager": float(np.abs(graphed - eager[:3]).max()),
            "graph_replays": graphs.replays,
            "graph_eager_fallbacks": graphs.eager,
        }
    return out


def hop_times(cpu_model, cuda_model, own, partner, device: torch.device) -> list[dict]:
    rows = []
    for hop in (2, 10):
        hops = ready_hops(cpu_model, own, partner, hop, agents=64, warm_frames=10)
        cpu_ms = median_ms(lambda h=hops: eager_hops(cpu_model, h[:1]), 20)
        graphs = HopGraphs(cuda_model, device)
        for batch in (1, 4, 16, 64):
            part = hops[:batch]
            eager = median_ms(lambda p=part: eager_hops(cuda_model, p), 30)
            graph = median_ms(lambda p=part, g=graphs: graph_hops(g, p), 30)
            row = {
                "hop_frames": hop,
                "batch": batch,
                "cuda_eager_ms": round(eager, 3),
                "cuda_graph_ms": round(graph, 3),
                "graph_over_eager": round(graph / eager, 3),
                "cpu_batch1_ms": round(cpu_ms, 3),
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def realtime(seconds: float, device: torch.device) -> list[dict]:
    """Agents on one shared engine at the default setting (hop 1): the torch backend (CUDA
    graphs) with torch's threads and with one (the host's per-agent work is many small
    operations), then onnxruntime's CUDA provider when this onnxruntime has it."""
    import onnxruntime

    from infp_sdk.runtime.backend import load_hop_model

    own, partner = conversation(seconds)
    rows = []
    threads = torch.get_num_threads()
    runs = [("torch", n, threads) for n in (1, 16, 64)]
    runs += [("torch", n, 1) for n in (64, 256)]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        runs += [("onnxruntime", n, threads) for n in (1, 16, 64, 256)]
    for backend, agents, torch_threads in runs:
        torch.set_num_threads(torch_threads)
        model = load_hop_model("default", str(device), backend)
        label = f"{backend} {device.type} {torch_threads}thr"
        rows.append(run_realtime(model, own, partner, agents=agents, label=label))
        rows[-1].update(backend=backend, torch_threads=torch_threads)
        print(format_rows(rows[-1:]), flush=True)
    torch.set_num_threads(threads)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for a dry run")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: this benchmark needs one", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "gpu", "machine": machine(), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        result["gpu"] = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                         "cuda": torch.version.cuda}  # fmt: skip
    own, partner = conversation(20.0)
    cpu_model = load_model("default").eval()
    cuda_model = load_model("default").to(device).eval()
    parts = [
        ("parity", lambda: parity(cpu_model, cuda_model, own, partner, device)),
        # before the batch-64 timings, which leave the process slower for what follows
        ("realtime", lambda: realtime(args.seconds, device)),
        ("hop_times", lambda: hop_times(cpu_model, cuda_model, own, partner, device)),
    ]
    for name, part in parts:
        t0 = time.perf_counter()
        try:
            result[name] = part()
        except Exception:
            result[name] = {"error": traceback.format_exc()}
        print(f"{name} ({time.perf_counter() - t0:.0f} s):", json.dumps(result[name])[:2000])
        (out / "gpu.json").write_text(json.dumps(result, indent=1))
    failed = [name for name, _ in parts if "error" in result[name]]
    print(f"saved {out / 'gpu.json'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
