"""Plot motion from `infp-sdk motion` against the two voices: does it talk and listen?

    infp-sdk motion --own examples/conversation/own.wav \
        --partner examples/conversation/partner.wav -o motion.jsonl
    python examples/plot_motion.py motion.jsonl --own examples/conversation/own.wav \
        --partner examples/conversation/partner.wav -o docs/images/bundled_conversation_motion.png

Rows: the loudness of each voice, then jawOpen, head pitch (nods), head yaw, a listening
expression (brows and smile) and `speaking`, with the stretches where each side talks shaded.
Needs matplotlib.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from infp_sdk.audio import SAMPLES_PER_MOTION_FRAME, load_audio
from infp_sdk.motion import FPS, blendshape_index


def loudness_db(audio: np.ndarray, frames: int) -> np.ndarray:
    """RMS level per motion frame in dB."""
    audio = np.pad(audio, (0, max(0, frames * SAMPLES_PER_MOTION_FRAME - len(audio))))
    chunks = audio[: frames * SAMPLES_PER_MOTION_FRAME].reshape(frames, -1)
    return 20 * np.log10(np.sqrt((chunks**2).mean(axis=1)) + 1e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("motion", help="JSON lines from infp-sdk motion")
    parser.add_argument("--own", required=True)
    parser.add_argument("--partner", required=True)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.motion) as f:
        frames = [json.loads(line) for line in f]
    n = len(frames)
    t = (np.arange(n) + 0.5) / FPS
    shapes = np.array([fr["blendshapes"] for fr in frames])
    head = np.degrees(np.array([fr["head"][:3] for fr in frames]))
    speaking = np.array([fr["speaking"] for fr in frames])
    own_db = loudness_db(load_audio(args.own), n)
    partner_db = loudness_db(load_audio(args.partner), n)

    def b(name: str) -> np.ndarray:
        return shapes[:, blendshape_index(name)]

    rows = [
        ("voices (dB)", [(own_db, "own voice"), (partner_db, "partner voice")]),
        ("jawOpen", [(b("jawOpen"), None)]),
        ("head pitch (deg)", [(head[:, 1], None)]),
        ("head yaw (deg)", [(head[:, 0], None)]),
        ("listening face", [(b("browInnerUp"), "browInnerUp"),
                            ((b("mouthSmileLeft") + b("mouthSmileRight")) / 2, "smile")]),
        ("speaking", [(speaking, None)]),
    ]  # fmt: skip
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 10), sharex=True)
    own_talks, partner_talks = own_db > -45, partner_db > -45
    for ax, (label, curves) in zip(axes, rows, strict=True):
        for mask, colour in ((own_talks, "tab:blue"), (partner_talks, "tab:orange")):
            ax.fill_between(t, 0, 1, where=mask, transform=ax.get_xaxis_transform(),
                            color=colour, alpha=0.12, lw=0)  # fmt: skip
        for values, name in curves:
            ax.plot(t, values, lw=1, label=name)
        ax.set_ylabel(label)
        if any(name for _, name in curves):
            ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s); shaded: blue own voice, orange partner voice")
    fig.suptitle("infp-sdk motion on the bundled conversation (default model)")
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
