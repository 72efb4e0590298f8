"""ONNX export of the stage-2 networks and an onnxruntime backend behind the same ``INFPModel``.

:func:`export_onnx` writes three graphs (four with an articulation head) and a ``config.json``
into a folder::

    encoder.onnx    log-mel (B, M, 80) -> audio features (B, T, W); both channels share it
    guider.onnx     own, partner (B, T, W) + style (B, S) -> feature (B, T, W), speaking (B, T)
    denoiser.onnx   MotionDiT (x_t, t, feature, prev, style, keep_feature, keep_prev, keep_style)
    mouth.onnx      own audio features (B, T, W) -> articulation channels (B, T, M), if the
                    model has the head
    config.json     INFPConfig, motion_mean/motion_std, the null style, opset, SHA-256 per graph

:func:`load_onnx_model` turns that folder back into an :class:`INFPModel` whose ``encoder``,
``guider``, ``dit`` (and ``mouth``) run onnxruntime sessions. Sampling, classifier-free guidance and
standardisation stay in torch (they are a few element-wise operations per step), so
``MotionStream``, ``generate_motion`` and the Agent run unchanged on either backend.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._atomic import atomic_path, write_text
from ..model.checkpoint import CheckpointError
from ..model.infp import INFPConfig, INFPModel

FORMAT_VERSION = 1
OPSET = 17
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.onnx"
GUIDER_FILE = "guider.onnx"
DENOISER_FILE = "denoiser.onnx"
MOUTH_FILE = "mouth.onnx"
ONNX_FILES = (ENCODER_FILE, GUIDER_FILE, DENOISER_FILE)

INSTALL_HINT = "pip install onnx onnxruntime (CPU) or pip install 'infp-sdk[gpu]' (CUDA)"

DENOISER_INPUTS = (
    "x_t",
    "t",
    "feature",
    "prev",
    "style",
    "keep_feature",
    "keep_prev",
    "keep_style",
)


class OnnxDependencyError(ImportError):
    """``onnx`` or ``onnxruntime`` is missing; the message says what to install."""


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as e:
        raise OnnxDependencyError(
            f"the ONNX backend needs the {name!r} package, which is not installed: {INSTALL_HINT}"
        ) from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- export
def _example_inputs(cfg: INFPConfig) -> dict[str, tuple[torch.Tensor, ...]]:
    """Tracing inputs whose sizes all differ from each other and from 1.

    The tracer records shape arithmetic from real sizes; a batch of 1 or a window as long as the
    prefix could let a broadcast or a reshape be recorded as a constant.
    """
    g = torch.Generator().manual_seed(0)
    b, n, d = 3, cfg.dit.prev_frames + 3, cfg.latent_dim
    p, w, s = cfg.dit.prev_frames, cfg.encoder.width, cfg.style_dim
    enc = cfg.encoder
    # one spare mel frame: the encoder must drop a partial motion frame at the end
    mel_len = (cfg.audio_context + n + enc.lookahead) * enc.mel_per_frame + 1
    t_len = cfg.audio_context + n

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    return {
        "encoder": (randn(b, mel_len, enc.n_mels) * 3 - 6,),
        "guider": (randn(b, t_len, w), randn(b, t_len, w), randn(b, s)),
        "mouth": (randn(b, t_len, w),),
        "denoiser": (
            randn(b, n, d),
            torch.rand(b, generator=g),
            randn(b, n, w),
            randn(b, p, d),
            randn(b, s),
            torch.ones(b),
            torch.ones(b),
            torch.ones(b),
        ),
    }


def _export_graph(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: dict[str, dict[int, str]],
    outputs: dict[str, dict[int, str]],
    opset: int,
) -> None:
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript;
        # its tracer warnings about shape arithmetic are expected (the axes are declared dynamic
        # and the parity tests check other sizes)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={**inputs, **outputs},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def export_onnx(model: INFPModel, out_dir: str | Path, *, opset: int = OPSET) -> dict[str, Path]:
    """Export ``model``'s encoder, guider and denoiser to ``out_dir`` with a ``config.json``.

    Batch, time and window axes are dynamic, so one export serves any hop, the batch of two that
    classifier-free guidance runs, and the end-of-stream partial hop. Each graph is validated with
    ``onnx.checker``. Returns ``{"encoder", "guider", "denoiser", "config"}`` (and ``"mouth"``
    with an articulation head) -> path.
    Raises :class:`OnnxDependencyError` when ``onnx`` is not installed.
    """
    onnx = _import("onnx")
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # a CPU float32 copy: the caller's model keeps its device, dtype and mode
    src = copy.deepcopy(model).float().cpu().eval()
    cfg = src.config
    examples = _example_inputs(cfg)
    bt = {0: "batch", 1: "frames"}
    batch = {0: "batch"}
    graphs = {
        "encoder": (
            src.encoder,
            ENCODER_FILE,
            {"mel": {0: "batch", 1: "mel_frames"}},
            {"features": bt},
        ),
        "guider": (
            src.guider,
            GUIDER_FILE,
            {"own": bt, "partner": bt, "style": batch},
            {"feature": bt, "speaking": bt},
        ),
        "denoiser": (
            src.dit,
            DENOISER_FILE,
            {
                "x_t": bt,
                "t": batch,
                "feature": bt,
                "prev": {0: "batch", 1: "prev_frames"},
                "style": batch,
                "keep_feature": batch,
                "keep_prev": batch,
                "keep_style": batch,
            },
            {"v": bt},
        ),
    }
    if src.mouth is not None:
        graphs["mouth"] = (src.mouth, MOUTH_FILE, {"own": bt}, {"mouth": bt})
    # The folder loads only through config.json, which records every graph's SHA-256: remove a
    # stale one first, write each graph whole (temporary + rename) and config.json last, also
    # whole. A process killed part-way leaves a folder without config.json, which does not load.
    config_path = out / CONFIG_FILE
    config_path.unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    try:
        with torch.no_grad():
            for key, (module, filename, inputs, outputs) in graphs.items():
                path = out / filename
                with atomic_path(path) as tmp:
                    _export_graph(module, examples[key], tmp, inputs, outputs, opset)
                    onnx.checker.check_model(str(tmp), full_check=True)
                paths[key] = path
        meta = _export_meta(src, cfg, opset, paths, onnx.__version__)
        write_text(config_path, json.dumps(meta, indent=2))
    except BaseException:
        # nothing half-done stays: the graphs this call wrote, and the folder if it made it
        for path in paths.values():
            path.unlink(missing_ok=True)
        if created:
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    paths["config"] = config_path
    return paths


def _export_meta(
    src: INFPModel, cfg: INFPConfig, opset: int, paths: dict[str, Path], onnx_version: str
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "opset": opset,
        "config": cfg.model_dump(mode="json"),
        "motion_mean": src.motion_mean.tolist(),
        "motion_std": src.motion_std.tolist(),
        "null_style": src.dit.null_style.detach().tolist(),
        "files": {
            p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in paths.values()
        },
        "exported_with": {"torch": torch.__version__, "onnx": onnx_version},
    }


# ------------------------------------------------------------------------------------ runtime
def _to_numpy(x: torch.Tensor) -> np.ndarray:
    # expanded tensors (t.expand(b), the null style) are strided views; ORT wants dense float32
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


class _OrtGraph(nn.Module):
    """Runs one onnxruntime session: torch tensors in, torch tensors out on the input's device."""

    def __init__(self, session: Any, filename: str):
        super().__init__()
        self.session = session
        self.filename = filename
        self.input_names = [i.name for i in session.get_inputs()]

    def _run(self, *args: torch.Tensor) -> list[torch.Tensor]:
        device = args[0].device
        feeds = {name: _to_numpy(x) for name, x in zip(self.input_names, args, strict=True)}
        return [torch.from_numpy(o).to(device) for o in self.session.run(None, feeds)]

    def extra_repr(self) -> str:
        return f"{self.filename}, providers={self.session.get_providers()}"


class OrtAudioEncoder(_OrtGraph):
    """``AudioEncoder`` on onnxruntime: mel (B, M, 80) -> features (B, T, W)."""

    def __init__(self, session: Any, config: INFPConfig):
        super().__init__(session, ENCODER_FILE)
        self.config = config.encoder

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self._run(mel)[0]


class OrtGuider(_OrtGraph):
    """``InteractiveMotionGuider`` on onnxruntime -> feature (B, T, W), speaking (B, T)."""

    def __init__(self, session: Any, config: INFPConfig):
        super().__init__(session, GUIDER_FILE)
        self.config = config.guider

    def forward(
        self, own: torch.Tensor, partner: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # a guider without memory banks has no style input (the export drops unused inputs)
        feature, speaking = self._run(*(own, partner, style)[: len(self.input_names)])
        return feature, speaking


class OrtMouthHead(_OrtGraph):
    """``MouthHead`` on onnxruntime: own audio features (B, T, W) -> (B, T, M)."""

    def __init__(self, session: Any):
        super().__init__(session, MOUTH_FILE)

    def forward(self, own: torch.Tensor) -> torch.Tensor:
        return self._run(own)[0]


class OrtMotionDiT(_OrtGraph):
    """``MotionDiT`` on onnxruntime; carries ``null_style`` for ``INFPModel.style_vector``."""

    def __init__(self, session: Any, config: INFPConfig, null_style: torch.Tensor):
        super().__init__(session, DENOISER_FILE)
        self.config = config.dit
        # a (frozen) parameter rather than a buffer: MotionStream finds the model's device with
        # next(model.parameters()), and this is the only tensor state the wrappers hold
        self.null_style = nn.Parameter(null_style, requires_grad=False)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        feature: torch.Tensor,
        prev: torch.Tensor,
        style: torch.Tensor,
        keep_feature: torch.Tensor,
        keep_prev: torch.Tensor,
        keep_style: torch.Tensor,
    ) -> torch.Tensor:
        return self._run(x_t, t, feature, prev, style, keep_feature, keep_prev, keep_style)[0]

    def condition(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``MotionDiT.condition``'s arguments, kept for :meth:`velocity` (one graph runs all)."""
        return inputs

    def velocity(
        self, x_t: torch.Tensor, t: torch.Tensor, condition: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        return self(x_t, t, *condition)


class _NoStyleEncoder(nn.Module):
    def forward(self, reference: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "a style from reference motion is not part of the ONNX export; the onnxruntime "
            "backend uses the null style. Use the torch backend (infp_sdk.load_model) for "
            "reference styles"
        )


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then the CPU."""
    ort = _import("onnxruntime")
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int | None = None, *, spin: bool = False) -> Any:
    """Session options for small graphs on a few CPU cores.

    ``threads`` (default: ``torch.get_num_threads()``, so ``--threads``/``torch.set_num_threads``
    govern both backends) bounds the intra-op pool. The graphs are a chain of small ops, so
    inter-op parallelism only adds contention; one call at a time runs sequentially.
    ``spin=False`` lets idle pool threads sleep: with 2 cores shared with audio I/O (or any other
    load) spinning threads steal the core the work needs; on a 2-core machine under load a
    2-thread denoiser call took 8.9 ms spinning and 5.1 ms without. Pass ``spin=True`` on an
    otherwise idle machine with cores to spare.
    """
    ort = _import("onnxruntime")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = max(1, threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3  # errors only: the optimiser's notices are not actionable
    return opts


def _read_export(root: Path) -> dict[str, Any]:
    fix = "re-export it with `infp-sdk export --out DIR` or infp_sdk.runtime.onnx.export_onnx"
    config_path = root / CONFIG_FILE
    if not config_path.exists():
        raise CheckpointError(f"{config_path} does not exist: {root} is not an ONNX export; {fix}")
    try:
        meta = json.loads(config_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{config_path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(meta, dict) or "config" not in meta or "files" not in meta:
        raise CheckpointError(f"{config_path} is not an infp-sdk ONNX config; {fix}")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has export format {meta.get('format')}; this infp-sdk reads format "
            f"{FORMAT_VERSION}. Upgrade infp-sdk or {fix}"
        )
    try:
        meta["config"] = INFPConfig.model_validate(meta["config"])
    except ValueError as e:
        raise CheckpointError(f"{config_path} carries an invalid model config: {e}") from None
    cfg: INFPConfig = meta["config"]
    for key, size in (
        ("motion_mean", cfg.latent_dim),
        ("motion_std", cfg.latent_dim),
        ("null_style", cfg.style_dim),
    ):
        value = meta.get(key)
        if not isinstance(value, list) or len(value) != size:
            raise CheckpointError(
                f"{config_path}: {key!r} should hold {size} numbers for this config; the file "
                f"was edited or comes from another model; {fix}"
            )
    graphs = (*ONNX_FILES, MOUTH_FILE) if cfg.mouth is not None else ONNX_FILES
    for name in graphs:
        path = root / name
        expected = meta["files"].get(name, {}).get("sha256")
        if not path.exists():
            raise CheckpointError(f"{path} is missing from the ONNX export; {fix}")
        if expected is None:
            raise CheckpointError(f"{config_path} records no checksum for {name}; {fix}")
        if _sha256(path) != expected:
            raise CheckpointError(
                f"{path}: the graph does not match the SHA-256 recorded in {CONFIG_FILE}; the "
                f"file was modified or damaged after export. {fix[0].upper()}{fix[1:]}"
            )
    return meta


def _check_io(session: Any, path: Path, inputs: dict[str, int], outputs: dict[str, int]) -> None:
    """Every named input/output exists and its last (static) axis has the config's size."""
    for kind, found, wanted in (
        ("input", session.get_inputs(), inputs),
        ("output", session.get_outputs(), outputs),
    ):
        shapes = {arg.name: arg.shape for arg in found}
        if list(shapes) != list(wanted):
            raise CheckpointError(
                f"{path} has {kind}s {list(shapes)} but this infp-sdk expects {list(wanted)}; "
                "re-export the model with this version (infp-sdk export)"
            )
        for name, size in wanted.items():
            last = shapes[name][-1] if shapes[name] else None
            if size and isinstance(last, int) and last != size:
                raise CheckpointError(
                    f"{path}: {kind} {name!r} has last axis {last} but {CONFIG_FILE} describes "
                    f"{size}; the config and the graphs come from different models. Re-export "
                    "them together (infp-sdk export)"
                )


def cache_dir() -> Path:
    """Where exports are cached: ``$INFP_SDK_CACHE``, else ``$XDG_CACHE_HOME/infp-sdk``, else
    ``~/.cache/infp-sdk``."""
    import os

    if os.environ.get("INFP_SDK_CACHE"):
        return Path(os.environ["INFP_SDK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "infp-sdk"


def _export_key(model: INFPModel) -> str:
    """A digest of what an export depends on: the weights, the config, the exporter."""
    from .. import __version__

    digest = hashlib.sha256()
    digest.update(f"{__version__}/{FORMAT_VERSION}/{OPSET}/{torch.__version__}".encode())
    digest.update(model.config.model_dump_json().encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_export(model: INFPModel, cache: str | Path | None = None) -> Path:
    """The folder of ``model``'s ONNX export, exported on first use and reused after.

    An export takes seconds (about 13 s on a 2-core CPU); the folder is keyed by a digest of
    the weights, the config and the exporter's versions under :func:`cache_dir` (or ``cache``),
    and written under a temporary name and renamed when complete, so concurrent processes and a
    process killed part-way never leave a half export in use. Delete the folder to reclaim the
    space.
    """
    import os
    import secrets
    import shutil

    root = Path(cache) if cache is not None else cache_dir()
    folder = root / f"onnx-{_export_key(model)}"
    if (folder / CONFIG_FILE).exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{folder.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        export_onnx(model, staging)
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same export first: use its folder
            if not (folder / CONFIG_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_onnx_model(
    path_or_dir: str | Path,
    providers: Sequence[str] | None = None,
    *,
    threads: int | None = None,
    spin: bool = False,
) -> INFPModel:
    """An :class:`INFPModel` whose encoder, guider and DiT run on onnxruntime.

    ``path_or_dir`` is the export folder (or any file in it). ``providers`` defaults to
    :func:`default_providers`; ``threads`` and ``spin`` set the CPU thread pool (see
    :func:`session_options`). Checks every graph's SHA-256 and its inputs and outputs against
    ``config.json`` and raises :class:`~infp_sdk.model.CheckpointError` naming the file and the
    fix; raises :class:`OnnxDependencyError` when onnxruntime is not installed.
    A reference style is not supported: ``style_vector(None, b)`` gives the exported null style.
    """
    ort = _import("onnxruntime")
    root = Path(path_or_dir)
    if root.is_file():
        root = root.parent
    if not root.exists():
        raise CheckpointError(
            f"ONNX export {root} does not exist; create it with `infp-sdk export --out {root}`"
        )
    meta = _read_export(root)
    cfg: INFPConfig = meta["config"]
    opts = session_options(threads, spin=spin)
    chosen = list(providers) if providers is not None else default_providers()

    def session(name: str) -> Any:
        try:
            return ort.InferenceSession(str(root / name), sess_options=opts, providers=chosen)
        except Exception as e:  # onnxruntime raises its own exception types for bad graphs
            raise CheckpointError(
                f"{root / name} could not be loaded by onnxruntime ({e}); re-export it"
            ) from None

    w, s, d, m = cfg.encoder.width, cfg.style_dim, cfg.latent_dim, cfg.encoder.n_mels
    encoder, guider, denoiser = session(ENCODER_FILE), session(GUIDER_FILE), session(DENOISER_FILE)
    _check_io(encoder, root / ENCODER_FILE, {"mel": m}, {"features": w})
    _check_io(
        guider,
        root / GUIDER_FILE,
        {"own": w, "partner": w, **({"style": s} if cfg.guider.memory_banks else {})},
        {"feature": w, "speaking": 0},
    )
    _check_io(
        denoiser,
        root / DENOISER_FILE,
        dict(zip(DENOISER_INPUTS, (d, 0, w, d, s, 0, 0, 0), strict=True)),
        {"v": d},
    )

    # Build on the meta device: the torch networks are replaced at once, so allocating and
    # initialising their weights would only cost time and memory.
    with torch.device("meta"):
        model = INFPModel(cfg)
    model.encoder = OrtAudioEncoder(encoder, cfg)
    model.guider = OrtGuider(guider, cfg)
    model.dit = OrtMotionDiT(denoiser, cfg, torch.tensor(meta["null_style"], dtype=torch.float32))
    if cfg.mouth is not None:
        mouth = session(MOUTH_FILE)
        _check_io(mouth, root / MOUTH_FILE, {"own": w}, {"mouth": len(cfg.mouth.channels)})
        model.mouth = OrtMouthHead(mouth)
    model.style_encoder = _NoStyleEncoder()
    model.motion_mean = torch.tensor(meta["motion_mean"], dtype=torch.float32)
    model.motion_std = torch.tensor(meta["motion_std"], dtype=torch.float32)
    model.mouth_index = torch.tensor(model.mouth_channels, dtype=torch.long)
    return model.eval()


# ---------------------------------------------------------------------------------------- CLI
def _cmd_export(args: argparse.Namespace) -> int:
    from ..model import load_model

    model = load_model(args.model)
    try:
        paths = export_onnx(model, args.out)
    except OnnxDependencyError as e:
        print(f"infp-sdk export: error: {e}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    total = sum(p.stat().st_size for p in paths.values())
    print(f"exported {args.model} to {args.out} ({total / 1e6:.2f} MB, opset {OPSET})")
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export --out DIR [--model default|PATH]`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (encoder, guider, denoiser) for onnxruntime",
        description="Write encoder.onnx, guider.onnx, denoiser.onnx and config.json to OUT; "
        "load them with infp_sdk.runtime.onnx.load_onnx_model or Agent(backend='onnxruntime').",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", default="default", help="checkpoint path or bundled name")
    parser.set_defaults(func=_cmd_export)
    return parser


__all__ = [
    "OPSET",
    "cache_dir",
    "cached_export",
    "OnnxDependencyError",
    "OrtAudioEncoder",
    "OrtGuider",
    "OrtMotionDiT",
    "default_providers",
    "export_onnx",
    "load_onnx_model",
    "register_cli",
    "session_options",
]
