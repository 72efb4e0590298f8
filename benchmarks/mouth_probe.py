"""Where syllable detail is lost: probes of the audio features, and the audio path's capacity.

Two measurements, both scored on the held-out ``test`` split, frames inside own turns only
(:func:`infp_sdk.eval.metrics.inside_turns`), as Pearson r against the teacher per mouth channel:

* ``probe``: how much of the teacher's mouth a model's audio encoder features carry. The
  encoder is frozen; a linear map (ridge) and a small MLP are fitted per frame on ``train``
  features -> teacher mouth channels.
* ``capacity``: the audio path alone (encoder + articulation head, no diffusion), trained from
  scratch for a few thousand steps at several encoder widths and depths, scored at several
  points of training: how much an encoder of that size can learn, and how fast.

    python benchmarks/mouth_probe.py probe --data DATA --model MODEL
    python benchmarks/mouth_probe.py capacity --data DATA

Results go to ``benchmarks/results/mouth_probe_*.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from infp_sdk.audio import MEL_FRAMES_PER_MOTION_FRAME
from infp_sdk.data.dataset import energy_vad
from infp_sdk.data.dataset import examples as dataset_examples
from infp_sdk.data.windows import Session
from infp_sdk.eval import metrics as M
from infp_sdk.model.config import ARTICULATION_CHANNELS, AudioEncoderConfig, MouthConfig
from infp_sdk.model.encoder import AudioEncoder, pad_lookahead
from infp_sdk.model.mouth import MouthHead
from infp_sdk.motion import RIG_BLENDSHAPES, blendshape_index

RESULTS = Path(__file__).parent / "results"
SCORED = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
          "mouthLowerDownLeft", "mouthUpperUpLeft")  # fmt: skip
TARGET = [RIG_BLENDSHAPES.start + blendshape_index(n) for n in ARTICULATION_CHANNELS]


def load(root: Path, split: str, limit: int | None) -> list[tuple[Session, np.ndarray]]:
    """(session, inside-turn mask) per example of a split."""
    out = []
    for ex in dataset_examples(root, split)[:limit]:
        s = Session.from_audio(ex.own, ex.partner, ex.latents, ex.speaking)
        partner = energy_vad(ex.partner, s.frames)
        out.append((s, M.inside_turns(ex.speaking[: s.frames], partner)))
    return out


@torch.no_grad()
def features(encoder: AudioEncoder, session: Session) -> torch.Tensor:
    """Own-voice encoder features for a whole session (T, W): causal, like a stream."""
    mel = pad_lookahead(session.mel_own[None], encoder.config)
    return encoder(mel)[0, : session.frames]


def score(pred: list[np.ndarray], truth: list[np.ndarray], masks: list[np.ndarray]) -> dict:
    out = {}
    for name in SCORED:
        k = ARTICULATION_CHANNELS.index(name)
        r = M.correlation_by_lag([p[:, k] for p in pred], [t[:, k] for t in truth], masks, 0)[0]
        out[name] = round(r, 4)
    return out


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + lam * len(x) * 1e-3 * np.eye(x.shape[1]), xc.T @ (y - my))
    return w, my - mx @ w


def run_probe(args: argparse.Namespace) -> dict:
    from infp_sdk.model.checkpoint import load_model

    model = load_model(args.model).eval()
    std = model.motion_std[TARGET].numpy()
    mean = model.motion_mean[TARGET].numpy()
    sets = {}
    for split, limit in (("train", args.train_sessions), ("test", None)):
        data = load(args.data, split, limit)
        feats = [features(model.encoder, s).numpy() for s, _ in data]
        truth = [(s.motion[:, TARGET].numpy() - mean) / std for s, _ in data]
        sets[split] = (feats, truth, [m for _, m in data])
    fx, fy, fm = sets["train"]
    x = np.concatenate([f[m] for f, m in zip(fx, fm, strict=True)])
    y = np.concatenate([t[m] for t, m in zip(fy, fm, strict=True)])
    tx, ty, tm = sets["test"]
    w, b = ridge(x, y)
    linear = score([f @ w + b for f in tx], ty, tm)
    torch.manual_seed(0)
    head = MouthHead(x.shape[1], MouthConfig())
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    for _ in range(args.mlp_steps):
        idx = torch.randint(len(xt), (512,))
        loss = torch.nn.functional.mse_loss(head(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mlp = score([head(torch.from_numpy(f)).numpy() for f in tx], ty, tm)
    return {"model": str(args.model), "linear": linear, "mlp": mlp,
            "train_frames": int(len(x))}  # fmt: skip


class AudioPath(torch.nn.Module):
    def __init__(self, config: AudioEncoderConfig):
        super().__init__()
        self.encoder = AudioEncoder(config)
        self.head = MouthHead(config.width, MouthConfig())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(mel))


def run_capacity(args: argparse.Namespace) -> dict:
    train = load(args.data, "train", args.train_sessions)
    test = load(args.data, "test", None)
    motion = torch.cat([s.motion for s, _ in train])[:, TARGET]
    mean, std = motion.mean(0), motion.std(0).clamp(min=0.05)
    truth = [((s.motion[:, TARGET] - mean) / std).numpy() for s, _ in test]
    masks = [m for _, m in test]
    k = MEL_FRAMES_PER_MOTION_FRAME
    runs = []
    for width, layers, lookahead in args.sizes:
        torch.manual_seed(0)
        cfg = AudioEncoderConfig(width=width, layers=layers, lookahead=lookahead)
        net = AudioPath(cfg)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
        context, n = cfg.receptive_field, 10
        g = torch.Generator().manual_seed(0)
        curve, started = [], time.perf_counter()
        for step in range(1, max(args.checkpoints) + 1):
            mels, ys = [], []
            for _ in range(32):
                s, _ = train[int(torch.randint(len(train), (1,), generator=g))]
                t0 = int(torch.randint(context, s.frames - n - cfg.lookahead, (1,), generator=g))
                mels.append(s.mel_own[(t0 - context) * k : (t0 + n + cfg.lookahead) * k])
                ys.append((s.motion[t0 : t0 + n, TARGET] - mean) / std)
            pred = net(torch.stack(mels))[:, -n:]
            loss = torch.nn.functional.mse_loss(pred, torch.stack(ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step in args.checkpoints:
                net.eval()
                with torch.no_grad():
                    preds = [
                        net(pad_lookahead(s.mel_own[None], cfg))[0, : s.frames].numpy()
                        for s, _ in test
                    ]
                net.train()
                r = score(preds, truth, masks)
                curve.append({"step": step, "loss": round(float(loss), 4), "r": r})
                print(f"{width}x{layers}x{lookahead} step {step}: jaw r {r['jawOpen']:.3f}",
                      flush=True)  # fmt: skip
        params = sum(p.numel() for p in net.encoder.parameters())
        seconds = round(time.perf_counter() - started, 1)
        runs.append({"width": width, "layers": layers, "lookahead": lookahead,
                     "encoder_parameters": params,
                     "seconds": seconds, "curve": curve})  # fmt: skip
    return {"runs": runs, "train_sessions": args.train_sessions, "batch": 32, "window": 10}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "capacity"):
        c = sub.add_parser(name)
        c.add_argument("--data", type=Path, required=True)
        c.add_argument("--train-sessions", type=int, default=200, help="train examples used")
        c.add_argument("--threads", type=int, default=1)
        c.add_argument("--out", type=Path)
    sub.choices["probe"].add_argument("--model", default="default")
    sub.choices["probe"].add_argument("--mlp-steps", type=int, default=3000)
    sub.choices["capacity"].add_argument(
        "--sizes", type=lambda v: tuple(int(x) for x in v.split("x")), nargs="+",
        default=[(64, 4, 2), (128, 4, 2), (256, 4, 2), (128, 8, 2), (128, 4, 1), (128, 4, 0)],
        help="WIDTHxLAYERSxLOOKAHEAD (look-ahead in motion frames)",
    )  # fmt: skip
    sub.choices["capacity"].add_argument(
        "--checkpoints", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000]
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result = run_probe(args) if args.cmd == "probe" else run_capacity(args)
    result["command"] = " ".join(["python benchmarks/mouth_probe.py", args.cmd])
    out = args.out or RESULTS / f"mouth_probe_{args.cmd}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
