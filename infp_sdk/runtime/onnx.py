"""The exported model: ONNX graphs made from a checkpoint, and the backend that runs them.

:func:`export_onnx` writes four graphs and a ``config.json`` into a folder::

    encode.onnx     log-mel of both channels (B, M, 80) x2 + style (B, S) -> feature (B, T, W),
                    speaking (B, T) and, with an articulation head, mouth (B, T, C)
    condition.onnx  the DiT's per-hop condition: feature (B, N, W), prev (B, P, D) standardised,
                    style, keep flags -> tokens, the motion attention's keys and values per
                    block, the style's share of adaLN and the attention biases
    velocity.onnx   one solver step: x_t (B, N, D), t (B,) + the condition -> v (B, N, D)
    style.onnx      reference motion latents (B, T, D) -> style (B, S)
    config.json     INFPConfig, motion_mean/motion_std, the null style, opset, SHA-256 per graph

The condition is computed once per hop and each solver step runs only ``velocity.onnx``.

:func:`load_onnx_model` turns that folder into an :class:`OrtHopModel`, which runs a batch of hops
with onnxruntime and NumPy alone: the log-mel, sampling, guidance and standardisation are NumPy
(``infp_sdk.model.sampling`` serves both backends). The bundled models ship their exports in the
package (``infp_sdk/weights/NAME/``, graphs beside the checkpoint they read their weights from);
exporting needs torch and onnx (the ``torch`` extra), running needs neither.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, write_text
from ..model.config import INFPConfig, rig_indices
from ..model.errors import CheckpointError
from ..model.sampling import SAMPLERS, guided, x0_from_v
from .backend import TORCH_HINT, Sampling, bundled_onnx, is_torch_model, sampling_settings

FORMAT_VERSION = 2
OPSET = 17
CONFIG_FILE = "config.json"
ENCODE_FILE = "encode.onnx"
CONDITION_FILE = "condition.onnx"
VELOCITY_FILE = "velocity.onnx"
STYLE_FILE = "style.onnx"
ONNX_FILES = (ENCODE_FILE, CONDITION_FILE, VELOCITY_FILE, STYLE_FILE)

INSTALL_HINT = "pip install onnxruntime (CPU) or pip install 'infp-sdk[gpu]' (CUDA)"

CONDITION_INPUTS = ("feature", "prev", "style", "keep_feature", "keep_prev", "keep_style")


def condition_names(depth: int) -> list[str]:
    """The condition graph's outputs (the velocity graph's inputs after x_t and t), in order."""
    kv = [f"motion_{kind}{i}" for i in range(depth) for kind in ("k", "v")]
    return [
        "prev_tokens",
        "feature_tokens",
        *kv,
        "style_cond",
        "self_bias",
        "motion_bias",
        "temporal_bias",
    ]


class OnnxDependencyError(ImportError):
    """``onnx``, ``onnxruntime`` or ``torch`` is missing; the message says what to install."""


def _import(name: str, hint: str = INSTALL_HINT) -> Any:
    try:
        return __import__(name)
    except ImportError as e:
        raise OnnxDependencyError(
            f"this needs the {name!r} package, which is not installed: {hint}"
        ) from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- export
def _graph_modules(model: Any) -> dict[str, Any]:
    """The torch modules each graph is traced from (built only when exporting)."""
    import torch
    from torch import nn

    from ..model.dit import DiTCondition

    class Encode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, mel_own, mel_partner, style):
            feature, speaking, mouth = self.model.encode(mel_own, mel_partner, style)
            return (
                (feature, speaking, mouth) if self.model.mouth is not None else (feature, speaking)
            )

    class Condition(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dit = model.dit

        def forward(self, *args):
            c = self.dit.condition(*args)
            kv = [x for pair in c.motion_kv for x in pair]
            return (c.prev_tokens, c.feature_tokens, *kv, c.style, c.self_bias, c.motion_bias,
                    c.temporal_bias)  # fmt: skip

    class Velocity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dit = model.dit

        def forward(self, x_t, t, prev_tokens, feature_tokens, *rest):
            depth = len(self.dit.blocks)
            kv, (style, self_bias, motion_bias, temporal_bias) = (
                rest[: 2 * depth],
                rest[2 * depth :],
            )
            c = DiTCondition(
                prev_tokens=prev_tokens,
                feature_tokens=feature_tokens,
                motion_kv=[(kv[2 * i], kv[2 * i + 1]) for i in range(depth)],
                style=style,
                self_bias=self_bias,
                motion_bias=motion_bias,
                temporal_bias=temporal_bias,
            )
            return self.dit.velocity(x_t, t, c)

    class Style(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, reference):
            return self.model.style_encoder(self.model.standardise(reference))

    del torch
    return {"encode": Encode(), "condition": Condition(), "velocity": Velocity(), "style": Style()}


def _example_inputs(model: Any) -> dict[str, tuple[Any, ...]]:
    """Tracing inputs whose sizes all differ from each other and from 1.

    The tracer records shape arithmetic from real sizes; a batch of 1 or a window as long as the
    prefix could let a broadcast or a reshape be recorded as a constant.
    """
    import torch

    cfg: INFPConfig = model.config
    g = torch.Generator().manual_seed(0)
    b, n, d = 3, cfg.dit.prev_frames + 3, cfg.latent_dim
    p, w, s = cfg.dit.prev_frames, cfg.encoder.width, cfg.style_dim
    enc = cfg.encoder
    # one spare mel frame: the encoder must drop a partial motion frame at the end
    mel_len = (cfg.audio_context + n + enc.lookahead) * enc.mel_per_frame + 1

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    condition_args = (randn(b, n, w), randn(b, p, d), randn(b, s), torch.ones(b), torch.ones(b),
                      torch.ones(b))  # fmt: skip
    with torch.no_grad():
        condition = _graph_modules(model)["condition"](*condition_args)
    return {
        "encode": (
            randn(b, mel_len, enc.n_mels) * 3 - 6,
            randn(b, mel_len, enc.n_mels) * 3 - 6,
            randn(b, s),
        ),  # fmt: skip
        "condition": condition_args,
        "velocity": (randn(b, n, d), torch.rand(b, generator=g), *condition),
        "style": (randn(b, n + 7, d),),
    }


def _axes(
    cfg: INFPConfig,
) -> dict[str, tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]]:
    """Per graph: (inputs, outputs), each name -> its dynamic axes."""
    bt = {0: "batch", 1: "frames"}
    batch = {0: "batch"}
    mel = {0: "batch", 1: "mel_frames"}
    encode_out = {"feature": bt, "speaking": bt, **({"mouth": bt} if cfg.mouth else {})}
    kv = {0: "batch", 2: "frames"}
    names = condition_names(cfg.dit.depth)
    cond_axes: dict[str, dict[int, str]] = {}
    for name in names:
        if name == "prev_tokens":
            cond_axes[name] = {0: "batch", 1: "prev_frames"}
        elif name == "feature_tokens":
            cond_axes[name] = bt
        elif name == "style_cond":
            cond_axes[name] = batch
        elif name == "motion_bias":  # (H, P+N, N)
            cond_axes[name] = {1: "tokens", 2: "frames"}
        elif name.endswith("_bias"):  # (H, P+N, P+N)
            cond_axes[name] = {1: "tokens", 2: "tokens"}
        else:  # the motion attention's keys and values (B, H, N, W/H)
            cond_axes[name] = kv
    return {
        "encode": ({"mel_own": mel, "mel_partner": mel, "style": batch}, encode_out),
        "condition": (
            {
                "feature": bt,
                "prev": {0: "batch", 1: "prev_frames"},
                "style": batch,
                "keep_feature": batch,
                "keep_prev": batch,
                "keep_style": batch,
            },  # fmt: skip
            cond_axes,
        ),
        "velocity": ({"x_t": bt, "t": batch, **cond_axes}, {"v": bt}),
        "style": ({"reference": bt}, {"style": batch}),
    }


def _export_graph(
    module: Any, args: tuple, path: Path, inputs: dict, outputs: dict, opset: int
) -> None:
    import torch

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
            # unfolded, every weight keeps its parameter's name and layout, so a graph can read
            # it from the checkpoint (weights=); onnxruntime folds the constants when it loads
            do_constant_folding=False,
            dynamo=False,
        )


def _safetensors_index(path: Path) -> dict[str, tuple[str, list[int], int, int]]:
    """name -> (dtype, shape, byte offset in the file, byte length) of a .safetensors file."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    start = 8 + size
    return {
        name: (
            info["dtype"],
            info["shape"],
            start + info["data_offsets"][0],
            info["data_offsets"][1] - info["data_offsets"][0],
        )  # fmt: skip
        for name, info in header.items()
        if name != "__metadata__"
    }


def _compact_weights(path: Path, weights: Path | None) -> None:
    """Store the graph's weights compactly, with the same numbers.

    With ``weights`` (a .safetensors checkpoint in the graph's folder), a weight that equals the
    checkpoint's tensor of the same name is read from that file (ONNX external data at its
    offset), so the folder holds the weights once. Otherwise a weight whose values are exactly
    float16 numbers (a checkpoint saved in float16, like the bundled ones) is stored as float16.
    Either way a float16 weight gets a Cast to float32 in front, which onnxruntime folds when it
    loads the graph, so the run is float32 as before.
    """
    import onnx
    from onnx import helper, numpy_helper

    index = _safetensors_index(weights) if weights is not None else {}
    graph = onnx.load(str(path))
    casts = []
    for init in graph.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        name = init.name
        # the encode and style graphs wrap the whole model (their weights are "model.<name>")
        stored = index.get(name) or index.get(name.removeprefix("model."))
        half = values.astype(np.float16)
        exact_half = np.array_equal(half.astype(np.float32), values)
        if stored is not None and list(values.shape) == stored[1] and stored[0] in ("F16", "F32"):
            dtype, _, offset, length = stored
            with open(weights, "rb") as f:
                f.seek(offset)
                raw = np.frombuffer(f.read(length), np.float16 if dtype == "F16" else np.float32)
            if np.array_equal(raw.astype(np.float32).reshape(values.shape), values):
                kind = onnx.TensorProto.FLOAT16 if dtype == "F16" else onnx.TensorProto.FLOAT
                ref = onnx.TensorProto(name=f"{name}__stored", data_type=kind, dims=values.shape)
                ref.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", weights.name), ("offset", str(offset)),
                                   ("length", str(length))):  # fmt: skip
                    entry = ref.external_data.add()
                    entry.key, entry.value = key, value
                init.CopyFrom(ref)
                to = onnx.TensorProto.FLOAT
                casts.append(helper.make_node("Cast", [f"{name}__stored"], [name], to=to))
                continue
        if values.size >= 1024 and exact_half:
            init.CopyFrom(numpy_helper.from_array(half, f"{name}__stored"))
            to = onnx.TensorProto.FLOAT
            casts.append(helper.make_node("Cast", [f"{name}__stored"], [name], to=to))
    if casts:
        nodes = list(graph.graph.node)
        del graph.graph.node[:]
        graph.graph.node.extend(casts + nodes)
        # the graph is saved into the folder of `weights`, so the references resolve
        onnx.save(graph, str(path))


def export_onnx(
    model: Any, out_dir: str | Path, *, opset: int = OPSET, weights: str | Path | None = None
) -> dict[str, Path]:
    """Export ``model`` (an ``INFPModel``) to ``out_dir``: the four graphs and ``config.json``.

    Batch, time and window axes are dynamic, so one export serves any hop, the doubled batch of
    classifier-free guidance and the end-of-stream partial hop. Each graph is validated with
    ``onnx.checker``. ``weights``: the model's checkpoint file, inside ``out_dir``; the graphs
    then read their weights from it rather than holding a copy (how the bundled models ship),
    and ``config.json`` records its checksum too. Returns ``{"encode", "condition", "velocity",
    "style", "config"}`` -> path. Raises :class:`OnnxDependencyError` when torch or onnx is not
    installed.
    """
    torch = _import("torch", TORCH_HINT)
    onnx = _import("onnx", TORCH_HINT)
    import copy

    out = Path(out_dir)
    if weights is not None and Path(weights).resolve().parent != out.resolve():
        raise ValueError(f"weights= must be a checkpoint inside {out}, got {weights}")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # a CPU float32 copy: the caller's model keeps its device, dtype and mode
    src = copy.deepcopy(model).float().cpu().eval()
    cfg: INFPConfig = src.config
    modules = _graph_modules(src)
    examples = _example_inputs(src)
    axes = _axes(cfg)
    files = {"encode": ENCODE_FILE, "condition": CONDITION_FILE, "velocity": VELOCITY_FILE,
             "style": STYLE_FILE}  # fmt: skip
    # The folder loads only through config.json, which records every graph's SHA-256: remove a
    # stale one first, write each graph whole (temporary + rename) and config.json last, also
    # whole. A process killed part-way leaves a folder without config.json, which does not load.
    config_path = out / CONFIG_FILE
    config_path.unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    try:
        with torch.no_grad():
            for key, filename in files.items():
                path = out / filename
                inputs, outputs = axes[key]
                with atomic_path(path) as tmp:
                    _export_graph(modules[key], examples[key], tmp, inputs, outputs, opset)
                    _compact_weights(tmp, None if weights is None else Path(weights))
                    onnx.checker.check_model(str(tmp), full_check=True)
                paths[key] = path
        meta = {
            "format": FORMAT_VERSION,
            "opset": opset,
            "config": cfg.model_dump(mode="json"),
            "motion_mean": src.motion_mean.tolist(),
            "motion_std": src.motion_std.tolist(),
            "null_style": src.dit.null_style.detach().tolist(),
            "files": {
                p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size}
                for p in [*paths.values(), *([Path(weights)] if weights is not None else [])]
            },
            "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        }
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


def cache_dir() -> Path:
    """Where exports are cached: ``$INFP_SDK_CACHE``, else ``$XDG_CACHE_HOME/infp-sdk``, else
    ``~/.cache/infp-sdk``."""
    import os

    if os.environ.get("INFP_SDK_CACHE"):
        return Path(os.environ["INFP_SDK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "infp-sdk"


def _export_key(model: Any) -> str:
    """A digest of what an export depends on: the weights, the config, the exporter."""
    import torch

    from .. import __version__

    digest = hashlib.sha256()
    digest.update(f"{__version__}/{FORMAT_VERSION}/{OPSET}/{torch.__version__}".encode())
    digest.update(model.config.model_dump_json().encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


CACHE_UNUSED_DAYS = 30
"""An export in the cache that no process has used for this long is removed when another
export is made (each use marks its folder); a staging folder left by a killed export goes after
a day."""


def prune_cache(root: Path, *, keep: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove exports unused for :data:`CACHE_UNUSED_DAYS` and stale staging folders under
    ``root`` (never ``keep``); returns what was removed."""
    import shutil
    import time

    now = time.time() if now is None else now
    removed = []
    for entry in root.iterdir() if root.is_dir() else ():
        if not entry.is_dir() or entry == keep:
            continue
        if entry.name.startswith("onnx-"):
            limit = CACHE_UNUSED_DAYS * 86400
        elif entry.name.startswith(".onnx-") and ".partial-" in entry.name:
            limit = 86400
        else:
            continue  # not ours
        try:
            if now - entry.stat().st_mtime > limit:
                shutil.rmtree(entry)
                removed.append(entry)
        except OSError:  # another process removed or is using it: leave it
            continue
    return removed


def cached_export(model: Any, cache: str | Path | None = None) -> Path:
    """The folder of ``model``'s ONNX export, exported on first use and reused after.

    An export takes seconds (about 13 s on a 2-core CPU); the folder is keyed by a digest of
    the weights, the config and the exporter's versions under :func:`cache_dir` (or ``cache``),
    and written under a temporary name and renamed when complete, so concurrent processes and a
    process killed part-way never leave a half export in use. Each use marks the folder; when a
    new export is made, exports unused for :data:`CACHE_UNUSED_DAYS` days are removed
    (:func:`prune_cache`), so a cache fed by many training runs does not grow without end.
    """
    import secrets
    import shutil

    root = Path(cache) if cache is not None else cache_dir()
    folder = root / f"onnx-{_export_key(model)}"
    if (folder / CONFIG_FILE).exists():
        try:
            os.utime(folder)  # in use: keep it from pruning
        except OSError:
            pass
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
    prune_cache(root, keep=folder)
    return folder


def onnx_for(model: Any) -> Path:
    """The export folder for ``model``: an export folder itself, a bundled model's shipped
    graphs, or (with torch installed) a checkpoint or ``INFPModel`` exported once and cached."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.is_dir() and (path / CONFIG_FILE).exists():
            return path
        if isinstance(model, str) and bundled_onnx(model) is not None:
            return bundled_onnx(model)
    if not is_torch_model(model):
        from .backend import torch_available

        if not torch_available():
            raise OnnxDependencyError(
                f"{model!r} is a checkpoint: running it needs an ONNX export, which needs torch "
                f"and onnx ({TORCH_HINT}); or export it elsewhere with `infp-sdk export --model "
                f"{model} --out DIR` and pass DIR"
            )
        from ..model.checkpoint import load_model

        model = load_model(model)
    from .backend import require_rig_motion

    require_rig_motion(model.config)  # before spending an export on it
    return cached_export(model)


# ------------------------------------------------------------------------------------ runtime
DEFAULT_THREADS = 1
"""The sessions' CPU threads unless told otherwise. A hop of the default setting is a batch of
one frame per stream, a chain of small operations: on a 2-core CPU a second intra-op thread
measured 0.49-0.52 CPU s per audio s against 0.41-0.44 for one, at the same latency
(``benchmarks/latency.py --threads``). Pass ``threads=`` for large batches on more cores."""


def providers_for(device: str) -> list[Any]:
    """onnxruntime execution providers for ``device`` ("cpu" or "cuda[:N]")."""
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int | None = None, *, spin: bool = False) -> Any:
    """Session options for small graphs on a few CPU cores.

    ``threads`` (default: :data:`DEFAULT_THREADS`) bounds the intra-op pool. The graphs are a
    chain of small ops, so inter-op parallelism only adds contention; one call at a time runs
    sequentially. ``spin=False`` lets idle pool threads sleep: with 2 cores shared with audio
    I/O (or any other load) spinning threads steal the core the work needs; on a 2-core machine
    under load a 2-thread denoiser call took 8.9 ms spinning and 5.1 ms without. Pass
    ``spin=True`` on an otherwise idle machine with cores to spare.
    """
    ort = _import("onnxruntime")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = max(1, threads or DEFAULT_THREADS)
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
    # the graphs, and a checkpoint they read their weights from
    for name in dict.fromkeys([*ONNX_FILES, *meta["files"]]):
        if Path(name).name != name:
            raise CheckpointError(f"{config_path} names a file outside its folder: {name!r}; {fix}")
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
    """Every named input/output exists and its last (static) axis has the config's size.

    Inputs the exporter dropped as unused (the style of a guider without memory banks) may be
    missing; any other difference means the graph comes from another version or model.
    """
    for kind, found, wanted in (
        ("input", session.get_inputs(), inputs),
        ("output", session.get_outputs(), outputs),
    ):
        shapes = {arg.name: arg.shape for arg in found}
        extra = [name for name in shapes if name not in wanted]
        missing = [name for name in wanted if name not in shapes]
        if extra or (kind == "output" and missing) or (kind == "input" and len(missing) > 1):
            raise CheckpointError(
                f"{path} has {kind}s {list(shapes)} but this infp-sdk expects {list(wanted)}; "
                "re-export the model with this version (infp-sdk export)"
            )
        for name, size in wanted.items():
            last = shapes[name][-1] if shapes.get(name) else None
            if size and isinstance(last, int) and last != size:
                raise CheckpointError(
                    f"{path}: {kind} {name!r} has last axis {last} but {CONFIG_FILE} describes "
                    f"{size}; the config and the graphs come from different models. Re-export "
                    "them together (infp-sdk export)"
                )


class _Graph:
    """One onnxruntime session, called with NumPy arrays by input name.

    :meth:`bound` runs it through an IO binding: inputs may be arrays or OrtValues already on
    the session's device, and the outputs stay there as OrtValues. The DiT's condition is made
    once per hop and read by every solver step, so on a GPU it never travels back to the host;
    each step moves only the noisy latents in and the velocity out.
    """

    def __init__(self, session: Any, device: str = "cpu"):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        kind, _, index = device.partition(":")
        self.device_type, self.device_id = kind, int(index or 0)

    def __call__(self, **feeds: np.ndarray) -> list[np.ndarray]:
        # inputs the export dropped (unused by the graph) are not fed
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})

    def bound(self, host_outputs: tuple[str, ...] = (), **feeds: Any) -> dict[str, Any]:
        """Run with an IO binding: outputs named in ``host_outputs`` come back as arrays, the
        others stay on the session's device as OrtValues."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            if name not in self.inputs:
                continue
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            else:
                binding.bind_ortvalue_input(name, value)
        for name in self.outputs:
            on_host = name in host_outputs
            binding.bind_output(name, "cpu" if on_host else self.device_type,
                                0 if on_host else self.device_id)  # fmt: skip
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return {
            name: value.numpy() if name in host_outputs else value
            for name, value in zip(self.outputs, values, strict=True)
        }


class OrtHopModel:
    """The exported model on onnxruntime: a :class:`~infp_sdk.runtime.backend.HopModel`.

    Made by :func:`load_onnx_model`. A hop runs ``encode.onnx`` once, ``condition.onnx`` once
    and ``velocity.onnx`` once per solver step; the solver, guidance and standardisation are
    the NumPy side of :mod:`infp_sdk.model.sampling`, the same functions the torch model runs.
    """

    backend = "onnxruntime"

    def __init__(self, root: Path, meta: dict[str, Any], sessions: dict[str, Any], device: str):
        self.root = root
        self.config: INFPConfig = meta["config"]
        self.device = device
        self.motion_mean = np.asarray(meta["motion_mean"], np.float32)
        self.motion_std = np.asarray(meta["motion_std"], np.float32)
        self.null_style = np.asarray(meta["null_style"], np.float32)[None]
        self.mouth_channels = rig_indices(self.config.mouth) if self.config.mouth else []
        self.encode = _Graph(sessions[ENCODE_FILE], device)
        self.condition = _Graph(sessions[CONDITION_FILE], device)
        self.velocity = _Graph(sessions[VELOCITY_FILE], device)
        self.style = _Graph(sessions[STYLE_FILE], device)

    def __repr__(self) -> str:
        providers = self.encode.session.get_providers()
        return f"<OrtHopModel {self.root} on {self.device} ({', '.join(providers)})>"

    def style_vector(self, reference: np.ndarray | None) -> np.ndarray:
        """The style (1, S) of reference motion latents (T, D); None: the null style."""
        if reference is None:
            return self.null_style.copy()
        ref = np.asarray(reference, np.float32)
        return self.style(reference=ref[None] if ref.ndim == 2 else ref)[0]

    def run_hops(self, batch: Any, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
        """Latents (B, count, D) and speaking (B, count) for a
        :class:`~infp_sdk.runtime.generator.HopBatch`."""
        sampler, steps, cfg_scale = sampling_settings(self.config, sampling)
        count = batch.noise.shape[1]
        b = batch.noise.shape[0]
        f32 = np.float32
        mel = np.ascontiguousarray(batch.mel, f32)
        style = np.ascontiguousarray(batch.style, f32)
        encoded = self.encode(mel_own=mel[:, 0], mel_partner=mel[:, 1], style=style)
        feature, speaking = encoded[0][:, -count:], encoded[1][:, -count:]
        prev = ((batch.prev - self.motion_mean) / self.motion_std).astype(f32)
        ones, zeros = np.ones(b, f32), np.zeros(b, f32)
        keep_prev = np.asarray(batch.has_prev, f32)
        # the condition stays on the sessions' device for all the hop's solver steps
        if cfg_scale == 1.0:
            feeds = self.condition.bound(feature=np.ascontiguousarray(feature), prev=prev,
                                         style=style, keep_feature=ones, keep_prev=keep_prev,
                                         keep_style=ones)  # fmt: skip
        else:
            # cond and uncond as one batch of 2B: the uncond drops the feature and the style
            # but keeps the previous latents (see INFPModel.denoiser)
            both = lambda a: np.concatenate([a, a])  # noqa: E731
            feeds = self.condition.bound(
                feature=both(np.ascontiguousarray(feature)), prev=both(prev), style=both(style),
                keep_feature=np.concatenate([ones, zeros]), keep_prev=both(keep_prev),
                keep_style=np.concatenate([ones, zeros]),
            )  # fmt: skip

        def denoise(x: np.ndarray, t: float) -> np.ndarray:
            x_in = x if cfg_scale == 1.0 else np.concatenate([x, x])
            t_in = np.full(x_in.shape[0], t, f32)
            v = self.velocity.bound(("v",), x_t=x_in, t=t_in, **feeds)["v"]
            if cfg_scale != 1.0:
                v = guided(v[:b], v[b:], cfg_scale)
            return x0_from_v(x, v, t).astype(f32)

        z = SAMPLERS[sampler](denoise, np.ascontiguousarray(batch.noise, f32), steps)
        if self.mouth_channels:
            z = z.copy()
            z[..., self.mouth_channels] = encoded[2][:, -count:]
        latents = (z * self.motion_std + self.motion_mean).astype(f32)
        return latents, np.asarray(speaking, f32)


def load_onnx_model(
    path_or_dir: str | Path,
    providers: list[Any] | None = None,
    *,
    device: str = "cpu",
    threads: int | None = None,
    spin: bool = False,
) -> OrtHopModel:
    """The export in ``path_or_dir`` (the folder, or any file in it) on onnxruntime.

    ``device`` picks the execution providers ("cpu", or "cuda[:N]" with onnxruntime-gpu);
    ``providers`` overrides them. ``threads`` and ``spin`` set the CPU thread pool (see
    :func:`session_options`). Checks every graph's SHA-256 and its inputs and outputs against
    ``config.json`` and raises :class:`~infp_sdk.model.CheckpointError` naming the file and the
    fix; raises :class:`OnnxDependencyError` when onnxruntime is not installed.
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
    chosen = list(providers) if providers is not None else providers_for(device)

    def session(name: str) -> Any:
        try:
            return ort.InferenceSession(str(root / name), sess_options=opts, providers=chosen)
        except Exception as e:  # onnxruntime raises its own exception types for bad graphs
            raise CheckpointError(
                f"{root / name} could not be loaded by onnxruntime ({e}); re-export it"
            ) from None

    sessions = {name: session(name) for name in ONNX_FILES}
    w, s, d, m = cfg.encoder.width, cfg.style_dim, cfg.latent_dim, cfg.encoder.n_mels
    names = condition_names(cfg.dit.depth)
    _check_io(
        sessions[ENCODE_FILE],
        root / ENCODE_FILE,
        {"mel_own": m, "mel_partner": m, "style": s},
        {"feature": w, "speaking": 0, **({"mouth": len(cfg.mouth.channels)} if cfg.mouth else {})},
    )
    _check_io(
        sessions[CONDITION_FILE],
        root / CONDITION_FILE,
        dict(zip(CONDITION_INPUTS, (w, d, s, 0, 0, 0), strict=True)),
        dict.fromkeys(names, 0),
    )
    _check_io(
        sessions[VELOCITY_FILE],
        root / VELOCITY_FILE,
        {"x_t": d, "t": 0, **dict.fromkeys(names, 0)},
        {"v": d},
    )
    _check_io(sessions[STYLE_FILE], root / STYLE_FILE, {"reference": d}, {"style": s})
    return OrtHopModel(root, meta, sessions, device)


# ---------------------------------------------------------------------------------------- CLI
def _cmd_export(args: argparse.Namespace) -> int:
    try:
        _import("torch", TORCH_HINT)
        from ..model import load_model
        from ..model.checkpoint import resolve_checkpoint

        checkpoint = resolve_checkpoint(args.model)
        model = load_model(checkpoint)
        out = Path(args.out)
        # a checkpoint already in OUT is read by the graphs, not copied into them
        inside = out.exists() and checkpoint.resolve().parent == out.resolve()
        paths = export_onnx(model, out, weights=checkpoint if inside else None)
    except OnnxDependencyError as e:
        print(f"infp-sdk export: error: {e}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    total = sum(p.stat().st_size for p in paths.values())
    shared = f"; weights read from {checkpoint.name}" if inside else ""
    print(f"exported {args.model} to {args.out} ({total / 1e6:.2f} MB, opset {OPSET}{shared})")
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export --out DIR [--model default|PATH]`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX graphs for the onnxruntime backend (needs torch)",
        description="Write encode.onnx, condition.onnx, velocity.onnx, style.onnx and "
        "config.json to OUT; load them with infp_sdk.runtime.onnx.load_onnx_model or "
        "Agent(model=OUT). A checkpoint that is already in OUT is not copied: the graphs read "
        "their weights from it. Exporting needs the torch extra; running the export does not.",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", default="default", help="checkpoint path or bundled name")
    parser.set_defaults(func=_cmd_export)
    return parser


__all__ = [
    "OPSET",
    "OnnxDependencyError",
    "OrtHopModel",
    "cache_dir",
    "cached_export",
    "export_onnx",
    "load_onnx_model",
    "prune_cache",
    "onnx_for",
    "providers_for",
    "register_cli",
    "session_options",
]
