"""Streaming measurements: latency of one agent, agents sustained in real time.

Audio is pushed in 20 ms chunks on a real-time schedule by a feeder thread (to every agent at
once), while one thread per agent takes frames from its blocking iterator. For each frame:

- latency (mouth-to-face) = the time the frame became available - the time the chunk holding
  the frame's centre sample was pushed: how late the face shows a sound that was heard;
- the algorithmic part = how long after that chunk the audio that triggers the frame's hop
  (the hop's last frame + look-ahead) arrived: the rest of the frame, the wait for the hop's
  end and the look-ahead, imposed by the settings, not by compute;
- the compute part = latency - the algorithmic part;
- the dependency latency (secondary) counts from the last sample the frame's features read
  instead (the end of frame i + look-ahead): it leaves out the part a viewer sees while the
  model waits for future audio.

Used by ``infp-sdk bench`` and by the scripts in ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, load_audio
from .runtime.backend import HopModel, load_hop_model
from .runtime.engine import Engine

CHUNK = SAMPLE_RATE // 50  # 20 ms

# An agent is "sustained in real time" when its frames keep up with the audio: the compute part
# of the latency stays below this at the 95th percentile (no backlog builds up).
SUSTAINED_COMPUTE_P95_MS = 250.0


def machine() -> dict:
    """A description of this machine for benchmark results."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def looped(own: np.ndarray, partner: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The two tracks repeated (or cut) to ``seconds``."""
    n = int(seconds * SAMPLE_RATE)
    length = max(len(own), len(partner))
    own = np.pad(own, (0, length - len(own)))
    partner = np.pad(partner, (0, length - len(partner)))
    reps = -(-n // length)
    return np.tile(own, reps)[:n], np.tile(partner, reps)[:n]


def _percentiles(x: np.ndarray) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(x, q)) for q in (50, 95, 99)} if len(x) else {}


def run_realtime(
    model: HopModel,
    own: np.ndarray,
    partner: np.ndarray,
    *,
    agents: int = 1,
    hop: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    shared: bool = True,
    label: str = "",
) -> dict:
    """Feed ``agents`` agents the same conversation at real-time pace and time their frames.

    ``model`` is a :class:`~infp_sdk.runtime.backend.HopModel` (see :func:`load_backend`).
    ``shared``: all agents on one :class:`Engine` (batched model calls); otherwise one engine,
    and thread, per agent.
    ``hop``, ``steps`` (solver steps) and ``cfg_scale`` default to the model's.
    """
    engines = [Engine(model=model)] if shared else [Engine(model=model) for _ in range(agents)]
    crowd = [
        engines[k % len(engines)].agent(seed=k, hop=hop, steps=steps, cfg_scale=cfg_scale)
        for k in range(agents)
    ]
    hop = crowd[0].hop
    lookahead = model.config.encoder.lookahead
    chunks = len(own) // CHUNK
    pushed_at = np.zeros(chunks)
    expected = chunks * CHUNK // SAMPLES_PER_MOTION_FRAME
    emitted = (expected - lookahead) // hop * hop  # the tail waits for audio that never comes
    records: list[list[tuple[int, float]]] = [[] for _ in crowd]
    start = time.perf_counter() + 0.2

    def feed() -> None:
        for k in range(chunks):
            delay = start + k * CHUNK / SAMPLE_RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            piece = slice(k * CHUNK, (k + 1) * CHUNK)
            for agent in crowd:
                agent.push(own=own[piece], partner=partner[piece])
            pushed_at[k] = time.perf_counter()

    def collect(n: int) -> None:
        for frame in crowd[n].frames(timeout=20):
            records[n].append((frame.index, time.perf_counter()))
            if frame.index + 1 >= emitted:
                return

    cpu0, wall0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=feed)]
    threads += [threading.Thread(target=collect, args=(n,)) for n in range(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    batches = sum(e.batches for e in engines)
    hops = sum(e.hops for e in engines)
    for e in engines:
        e.close()
    latency, algorithmic, dependency = [], [], []
    for rec in records:
        for i, now in rec:
            centre_sample = i * SAMPLES_PER_MOTION_FRAME + SAMPLES_PER_MOTION_FRAME // 2
            dep_sample = (i + 1 + lookahead) * SAMPLES_PER_MOTION_FRAME - 1
            trigger_sample = ((i // hop + 1) * hop + lookahead) * SAMPLES_PER_MOTION_FRAME - 1
            heard = pushed_at[centre_sample // CHUNK]
            latency.append(now - heard)
            algorithmic.append(pushed_at[trigger_sample // CHUNK] - heard)
            dependency.append(now - pushed_at[dep_sample // CHUNK])
    lat, alg = np.array(latency) * 1000, np.array(algorithmic) * 1000
    comp = lat - alg
    audio_s = len(own) / SAMPLE_RATE
    complete = all(len(r) >= emitted for r in records)
    compute = _percentiles(comp)
    return {
        "label": label,
        "agents": agents,
        "shared_engine": shared,
        "hop_frames": hop,
        "solver_steps": steps or model.config.steps,
        "cfg_scale": model.config.cfg_scale if cfg_scale is None else cfg_scale,
        "lookahead_frames": lookahead,
        "frames": len(lat),
        "frames_expected": emitted * agents,
        "latency_ms": _percentiles(lat),
        "algorithmic_ms": _percentiles(alg),
        "compute_ms": compute,
        "dependency_latency_ms": _percentiles(np.array(dependency) * 1000),
        "sustained": bool(complete and compute and compute["p95"] <= SUSTAINED_COMPUTE_P95_MS),
        "mean_batch": hops / max(batches, 1),
        "cpu_seconds_per_audio_second": cpu / audio_s,
        "cpu_cores_busy": cpu / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "latencies_ms": lat.round(2).tolist() if agents == 1 else [],
    }


def format_rows(rows: list[dict]) -> str:
    """A table of :func:`run_realtime` results."""
    head = (
        f"{'run':<14} {'agents':>6} {'hop':>3} {'p50':>6} {'p95':>6} {'p99':>6} {'algo95':>6} "
        f"{'comp95':>6} {'dep95':>6} {'batch':>5} {'CPU s/s':>7} {'RSS MB':>6}  sustained"
    )
    lines = [head]
    for r in rows:
        lat, comp = r["latency_ms"], r["compute_ms"]
        lines.append(
            f"{r['label']:<14} {r['agents']:>6} {r['hop_frames']:>3} {lat.get('p50', 0):>6.0f} "
            f"{lat.get('p95', 0):>6.0f} {lat.get('p99', 0):>6.0f} "
            f"{r['algorithmic_ms'].get('p95', 0):>6.0f} {comp.get('p95', 0):>6.0f} "
            f"{r.get('dependency_latency_ms', {}).get('p95', 0):>6.0f} "
            f"{r['mean_batch']:>5.1f} {r['cpu_seconds_per_audio_second']:>7.2f} "
            f"{r['peak_rss_mb']:>6.0f}  {'yes' if r['sustained'] else 'no'}"
        )
    return "\n".join(lines)


def load_backend(model: Any, backend: str, threads: int | None = None) -> tuple[HopModel, str]:
    """The model for ``backend`` on the CPU and the backend's name ("auto" as the Agent
    resolves it)."""
    hop_model = load_hop_model(model, "cpu", backend, threads=threads)
    return hop_model, hop_model.backend


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    own_path, partner_path = Path(args.own), Path(args.partner)
    for p in (own_path, partner_path):
        if not p.exists():
            raise FileNotFoundError(
                f"{p} not found: run from the repository root (it holds examples/conversation) "
                "or pass --own and --partner WAV files"
            )
    own, partner = looped(load_audio(own_path), load_audio(partner_path), args.seconds)
    rows = []
    print(format_rows([]), flush=True)
    for backend in args.backends:
        model, backend = load_backend(args.model, backend, args.threads)
        for n in args.agents:
            rows.append(
                run_realtime(
                    model,
                    own,
                    partner,
                    agents=n,
                    hop=args.hop,
                    steps=args.steps,
                    cfg_scale=args.cfg_scale,
                    label=backend,
                )
            )
            print(format_rows(rows[-1:]).splitlines()[-1], flush=True)
    result = {
        "benchmark": "bench",
        "machine": machine(),
        "seconds": args.seconds,
        "chunk_ms": 20,
        "sustained_rule": f"all frames arrived and compute p95 <= {SUSTAINED_COMPUTE_P95_MS} ms",
        "results": rows,
    }
    if args.json:
        from . import _atomic

        _atomic.write_text(args.json, json.dumps(result, indent=1))
        print(f"saved {args.json}")
    return 0


def register_cli(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="measure streaming latency and agents sustained in real time on this machine",
        description="Push a conversation in 20 ms chunks at real-time pace to N agents on one "
        "engine and report per-frame mouth-to-face latency (from the push of the frame's centre "
        "sample; p50/p95/p99, algorithmic and compute parts; the latency from the last sample "
        "the frame depends on as dep95), CPU per audio second and peak memory.",
    )
    bench.add_argument("--own", default="examples/conversation/own.wav")
    bench.add_argument("--partner", default="examples/conversation/partner.wav")
    bench.add_argument("--model", default="default", help="checkpoint path or bundled name")
    bench.add_argument("--seconds", type=float, default=20.0, help="audio per run (looped)")
    bench.add_argument("--agents", type=int, nargs="+", default=[1], help="agent counts to try")
    bench.add_argument("--hop", type=int, help="frames per hop (default: the model's)")
    bench.add_argument("--steps", type=int, help="solver steps (default: the model's)")
    bench.add_argument("--cfg-scale", type=float, help="guidance scale (default: the model's)")
    bench.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        choices=["auto", "torch", "onnxruntime"],
        help="default: auto, what Agent() runs on the CPU",
    )
    bench.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime")
    bench.add_argument("--json", help="also save the results here")
    bench.set_defaults(func=_cmd_bench)
