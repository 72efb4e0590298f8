"""Memory of a long-running Agent: RSS while minutes of conversation stream through it.

    python benchmarks/memory_soak.py [--minutes 10] [--backend torch] [--hop 10]

The bundled conversation, looped, is pushed in 20 ms chunks as fast as the agent consumes it
(the agent's state does not depend on the wall clock, so pacing does not change what it holds),
frames are pulled and dropped, and the process's resident memory is sampled every 10 s of audio.
Growth is measured from the end of the first minute (after warm-up) to the end.
Saves JSON and a plot under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from latency import conversation
from model_speed import machine

from infp_sdk import Agent
from infp_sdk.audio import SAMPLE_RATE

CHUNK = SAMPLE_RATE // 50


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--hop", type=int, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    own, partner = conversation(60.0)
    total_chunks = int(args.minutes * 60 * 50)
    per_sample = 10 * 50  # one RSS sample every 10 s of audio
    samples, frames = [], 0
    started = time.perf_counter()
    with Agent(backend=args.backend, hop=args.hop) as agent:
        for k in range(total_chunks):
            i = (k * CHUNK) % len(own)
            agent.push(own=own[i : i + CHUNK], partner=partner[i : i + CHUNK])
            if k % 25 == 0:  # let the worker keep up, as a real-time feed would
                agent.wait_idle()
                frames += len(agent.pull())
            if (k + 1) % per_sample == 0:
                samples.append(((k + 1) / 50, rss_mb()))
        agent.flush()
        frames += len(agent.pull())
    elapsed = time.perf_counter() - started
    t, rss = np.array(samples).T
    after_warmup = rss[t >= 60][0] if (t >= 60).any() else rss[0]
    result = {
        "benchmark": "memory_soak",
        "machine": machine(),
        "backend": args.backend,
        "hop": args.hop,
        "audio_minutes": args.minutes,
        "frames": frames,
        "wall_seconds": elapsed,
        "rss_mb_after_first_minute": float(after_warmup),
        "rss_mb_end": float(rss[-1]),
        "growth_mb": float(rss[-1] - after_warmup),
        "rss_mb_max": float(rss.max()),
        "samples": [[float(a), float(b)] for a, b in samples],
    }
    print(
        f"{args.minutes:.0f} min of audio, {frames} frames in {elapsed:.0f} s; RSS "
        f"{after_warmup:.0f} MB after 1 min -> {rss[-1]:.0f} MB at the end "
        f"(growth {rss[-1] - after_warmup:+.1f} MB, max {rss.max():.0f} MB)"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"memory_soak_{args.backend}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(t / 60, rss)
        ax.set_xlabel("audio streamed (min)")
        ax.set_ylabel("resident memory (MB)")
        ax.set_title(f"Agent memory over {args.minutes:.0f} min ({args.backend})")
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=90)
    except ImportError:
        pass
    print(f"saved {out / name}.json")


if __name__ == "__main__":
    main()
