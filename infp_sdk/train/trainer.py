"""Stage-2 training on a dataset folder (see docs/dataset.md): ``infp-sdk train``.

Under ``torchrun --nproc_per_node=N`` the same code trains with DistributedDataParallel (gloo on
CPU, nccl on GPU): every rank draws its own windows, gradients are averaged, rank 0 writes logs
and checkpoints.

The paper's recipe: AdamW (lr 1e-4, weight decay 1e-2), condition dropout for guidance, a warm-up
on one-sided clips (the partner channel silenced, so the model first learns to talk) and then
dyadic clips. EMA weights are what gets validated and saved.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from .._atomic import atomic_path, write_text
from ..data.windows import Session, random_batch
from ..model.checkpoint import save_model, tensors_digest
from ..model.config import LOG_MEL_FLOOR, INFPConfig, preset
from ..model.infp import INFPModel
from .stage2 import EMA, calibrated, make_optimizer, train_step


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path
    out: Path
    preset: str = "realtime"
    steps: int = Field(20_000, ge=1)
    one_sided_steps: int = Field(2_000, ge=0, description="warm-up steps with partner silenced")
    batch_size: int = Field(32, ge=1)
    min_window: int | None = Field(
        1,
        ge=1,
        description="each batch's window length is drawn from min_window..the model's window, "
        "so the model learns the short hops a low-latency stream asks for; None: fixed windows",
    )
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    warmup_steps: int = Field(200, ge=0, description="linear learning-rate warm-up")
    ema_decay: float = Field(0.999, ge=0, lt=1)
    val_every: int = Field(500, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    log_every: int = Field(50, ge=1)
    seed: int = 0
    threads: int | None = None


class Progress:
    """A progress bar on stderr when it is a terminal: step, loss, throughput, time left."""

    def __init__(self, total: int, first: int = 0):
        self.total, self.first = total, first
        self.started = time.perf_counter()
        self.live = sys.stderr.isatty()
        self._shown = 0.0

    def eta(self, step: int) -> str:
        done = step - self.first
        if done <= 0:
            return "--:--"
        left = (time.perf_counter() - self.started) / done * (self.total - step)
        return f"{int(left // 60):d}:{int(left % 60):02d}"

    def update(self, step: int, loss: float, rate: float) -> None:
        now = time.perf_counter()
        if not self.live or (now - self._shown < 0.2 and step < self.total):
            return
        self._shown = now
        filled = int(30 * step / self.total)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {step}/{self.total}  loss {loss:.4f}  "
            f"{rate:.0f} windows/s  {self.eta(step)} left "
        )
        sys.stderr.flush()

    def line(self, text: str) -> None:
        """A log line that stays (printed above the bar)."""
        if self.live:
            sys.stderr.write("\r" + " " * 100 + "\r")
        print(text, flush=True)


def load_sessions(root: Path, split: str) -> list[Session]:
    """Every example (each side of each conversation) of a split, as training sessions."""
    from ..data.dataset import examples

    return [
        Session.from_audio(e.own, e.partner, e.latents, e.speaking) for e in examples(root, split)
    ]


def silence_partner(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**batch, "mel_partner": torch.full_like(batch["mel_partner"], LOG_MEL_FLOOR)}


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def validate(model: INFPModel, batches: list[dict[str, torch.Tensor]], seed: int) -> float:
    """Mean diffusion loss on fixed batches with fixed noise (comparable across steps)."""
    model.eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    losses = [float(model.loss(b)["diffusion"]) for b in batches]
    torch.random.set_rng_state(state)
    return sum(losses) / len(losses)


def save_train_state(path: Path, model, ema: EMA, optimizer, step: int) -> None:
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.contiguous() for k, v in ema.model.state_dict().items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).contiguous()
    meta = {"step": str(step), "config": model.config.model_dump_json()}
    with atomic_path(path) as tmp:  # never leave a half-written state behind
        save_file(tensors, str(tmp), metadata=meta)


def load_train_state(path: Path, model, ema: EMA, optimizer) -> int:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    opt = optimizer.state_dict()
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            opt["state"].setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict(opt)
    return int(meta["step"])


def train(cfg: TrainConfig, model_config: INFPConfig | None = None, resume: bool = False) -> Path:
    """Train and write ``out/model.safetensors`` (EMA weights); returns its path."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
    else:
        rank = 0
    main = rank == 0
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_sessions = load_sessions(Path(cfg.data), "train")
    val_sessions = load_sessions(Path(cfg.data), "val") or train_sessions[:2]
    if not train_sessions:
        raise ValueError(f"no training sessions in {cfg.data} (split 'train'); see docs/dataset.md")
    mconf = model_config or preset(cfg.preset)
    model = INFPModel(mconf)
    model.set_motion_stats(torch.cat([s.motion for s in train_sessions]))
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    state_path = out / "train_state.safetensors"
    step = 0
    if resume and state_path.exists():
        step = load_train_state(state_path, model, ema, optimizer)
        if main:
            print(f"resumed from step {step}")
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    if main:
        write_text(out / "train_config.json", cfg.model_dump_json(indent=2))
    # each rank draws different windows; resuming continues a fresh, reproducible stream
    generator = torch.Generator().manual_seed(cfg.seed + step + 1_000_003 * rank)
    val_gen = torch.Generator().manual_seed(12345)
    val_batches = [random_batch(val_sessions, cfg.batch_size, mconf, val_gen) for _ in range(4)]
    log_path = out / "metrics.csv" if main else Path(os.devnull)  # rank 0 logs for all
    new_log = not (resume and log_path.exists())
    with open(log_path, "w" if new_log else "a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(
                ["step", "loss", "diffusion", "speaking", "mouth", "val", "lr", "windows_per_s"]
            )
        started, window_count, running = time.perf_counter(), 0, []
        progress = Progress(cfg.steps, first=step)
        while step < cfg.steps:
            lr = _lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            length = mconf.window
            if cfg.min_window is not None and cfg.min_window < mconf.window:
                draw = torch.randint(cfg.min_window, mconf.window + 1, (1,), generator=generator)
                length = int(draw)
            batch = random_batch(train_sessions, cfg.batch_size, mconf, generator, length=length)
            if step < cfg.one_sided_steps:
                batch = silence_partner(batch)
            losses = train_step(net, optimizer, batch)
            ema.update(model)
            step += 1
            window_count += cfg.batch_size
            if main:
                running.append(losses)
                rate = window_count / (time.perf_counter() - started)
                progress.update(step, losses["loss"], rate)
            val = ""
            if main and (step % cfg.val_every == 0 or step == cfg.steps):
                val = f"{validate(ema.model, val_batches, cfg.seed):.5f}"
            if main and (step % cfg.log_every == 0 or val):
                rate = window_count / (time.perf_counter() - started)
                mean = {k: sum(r.get(k, 0.0) for r in running) / len(running) for k in running[0]}
                speaking, mouth = mean.get("speaking", 0.0), mean.get("mouth", 0.0)
                log.writerow(
                    [step, f"{mean['loss']:.5f}", f"{mean['diffusion']:.5f}", f"{speaking:.5f}",
                     f"{mouth:.5f}", val, f"{lr:.2e}", f"{rate:.1f}"]
                )  # fmt: skip
                log_file.flush()
                progress.line(
                    f"step {step}/{cfg.steps}  loss {mean['loss']:.4f}  "
                    f"{'val ' + val + '  ' if val else ''}lr {lr:.1e}  {rate:.0f} windows/s  "
                    f"{progress.eta(step)} left"
                )
                running = []
            if main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                save_train_state(state_path, model, ema, optimizer, step)
                # the shipped weights: the EMA copy, its mouth's spread calibrated on val
                shipped = calibrated(ema.model, val_sessions)
                save_model(shipped, out / "model.safetensors", {"infp.step": str(step)})
    # one line per rank, so a distributed run can be checked for ranks that drifted apart
    print(f"rank {rank}: weights sha256 {tensors_digest(model.state_dict())}", flush=True)
    if main:
        summary = {
            "steps": step,
            "seconds": time.perf_counter() - started,
            "ranks": (torch.distributed.get_world_size() if distributed else 1),
        }
        write_text(out / "train_summary.json", json.dumps(summary))
    if distributed:
        torch.distributed.destroy_process_group()
    return out / "model.safetensors"
