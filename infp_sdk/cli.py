"""The ``infp-sdk`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._atomic import atomic_path


def _cmd_motion(args: argparse.Namespace) -> int:
    from .audio import SAMPLE_RATE, load_audio
    from .runtime.backend import load_hop_model
    from .runtime.generator import generate_motion

    model = load_hop_model(args.model, args.device, args.backend, threads=args.threads)
    own = load_audio(args.own)
    partner = load_audio(args.partner) if args.partner else None
    started = time.perf_counter()
    motion = generate_motion(
        model,
        own,
        partner,
        seed=args.seed,
        hop=args.hop,
        sampler=args.sampler,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
    )
    elapsed = time.perf_counter() - started
    out = Path(args.output)
    with atomic_path(out) as tmp, open(tmp, "w") as f:  # whole or absent
        for frame in motion.frames():
            f.write(json.dumps(frame.to_dict()) + "\n")
    seconds = max(len(own), 0 if partner is None else len(partner)) / SAMPLE_RATE
    print(
        f"wrote {len(motion.latents)} frames ({seconds:.1f} s of audio) to {out} "
        f"in {elapsed:.1f} s (real-time factor {elapsed / max(seconds, 1e-9):.2f})"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .model.config import preset
    from .train.trainer import TrainConfig, train

    model_config = preset(args.preset)
    if args.no_memory_banks:
        model_config = model_config.model_copy(
            update={"guider": model_config.guider.model_copy(update={"memory_banks": False})}
        )
    if args.lookahead is not None:
        encoder = model_config.encoder.model_copy(update={"lookahead": args.lookahead})
        model_config = model_config.model_copy(update={"encoder": encoder})
    cfg = TrainConfig(
        data=args.data,
        out=args.out,
        preset=args.preset,
        steps=args.steps,
        one_sided_steps=args.one_sided_steps,
        batch_size=args.batch_size,
        min_window=None if args.fixed_window else args.min_window,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        threads=args.threads,
    )
    path = train(cfg, model_config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"saved {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .model import count_parameters, load_model

    model = load_model(args.model)
    print(
        json.dumps({"parameters": count_parameters(model), **model.config.model_dump()}, indent=2)
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infp-sdk",
        description="A portrait that converses: talking and listening head motion from two "
        "audio streams (the agent's own voice and its partner's).",
    )
    parser.add_argument("--version", action="version", version=f"infp-sdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    motion = sub.add_parser(
        "motion",
        help="audio files -> motion frames as JSON lines",
        description="Generate conversational motion for a recording: one JSON object per 40 ms "
        "frame (index, t, speaking, head, gaze, blendshapes, latent).",
    )
    motion.add_argument("--own", required=True, help="the agent's own voice (WAV, any rate)")
    motion.add_argument("--partner", help="the partner's voice (WAV); silence if omitted")
    motion.add_argument("-o", "--output", required=True, help="output .jsonl path")
    motion.add_argument(
        "--model", default="default", help="bundled name, checkpoint path or export folder"
    )
    motion.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnxruntime", "torch"],
        help="default auto: onnxruntime on the CPU (docs/runtime.md#backends)",
    )
    motion.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    motion.add_argument("--seed", type=int, default=0)
    motion.add_argument("--hop", type=int, help="frames generated per step (default: model's)")
    motion.add_argument("--sampler", choices=["ddim", "dpmpp_2m"], help="default: model's")
    motion.add_argument("--steps", type=int, help="solver steps (default: model's)")
    motion.add_argument("--cfg-scale", type=float, help="guidance scale (default: model's)")
    motion.add_argument("--threads", type=int, help="the model's CPU threads (default 1)")
    motion.set_defaults(func=_cmd_motion)

    tr = sub.add_parser(
        "train",
        help="train the stage-2 model on a dataset folder",
        description="Train on a dataset folder (docs/dataset.md): one-sided warm-up, then "
        "dyadic windows; EMA weights saved to OUT/model.safetensors; --resume continues.",
    )
    tr.add_argument("--data", required=True, help="dataset folder with manifest.json")
    tr.add_argument("--out", required=True, help="output folder (checkpoints, metrics.csv)")
    tr.add_argument("--preset", default="realtime", choices=["realtime", "paper"])
    tr.add_argument("--steps", type=int, default=20_000)
    tr.add_argument("--one-sided-steps", type=int, default=2_000)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument(
        "--min-window",
        type=int,
        default=1,
        help="shortest training window; lengths are drawn from here up to the model's window so "
        "short streaming hops are learned (default 1)",
    )
    tr.add_argument(
        "--fixed-window", action="store_true", help="train on the model's window length only"
    )
    tr.add_argument(
        "--no-memory-banks",
        action="store_true",
        help="a guider without M_v/M_nv: the audio features are projected directly (the "
        "paper's ablation; the bundled model uses it, see its model card)",
    )
    tr.add_argument(
        "--lookahead",
        type=int,
        default=None,
        help="motion frames (40 ms each) of future audio each frame hears (default: the "
        "preset's); each frame of look-ahead adds 40 ms to the latency a viewer sees",
    )
    tr.add_argument("--lr", type=float, default=1e-4)
    tr.add_argument("--warmup-steps", type=int, default=200)
    tr.add_argument("--val-every", type=int, default=500)
    tr.add_argument("--checkpoint-every", type=int, default=1000)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--threads", type=int)
    tr.add_argument("--resume", action="store_true", help="continue from OUT/train_state")
    tr.set_defaults(func=_cmd_train)

    from .bench import register_cli as register_bench
    from .data.synth import register_cli as register_synth
    from .eval.report import register_cli as register_eval
    from .face import register_cli as register_prepare
    from .live import register_cli as register_live
    from .render import register_cli as register_render
    from .runtime.onnx import register_cli as register_export
    from .serve import register_cli as register_serve

    register_render(sub)
    register_prepare(sub)
    register_synth(sub)
    register_eval(sub)
    register_export(sub)
    register_bench(sub)
    register_live(sub)
    register_serve(sub)

    info = sub.add_parser("info", help="describe a checkpoint (config, parameter count)")
    info.add_argument("--model", default="default", help="checkpoint path or bundled name")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .audio import AudioFormatError
    from .model import CheckpointError

    try:
        return args.func(args)
    except (AudioFormatError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"infp-sdk {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
