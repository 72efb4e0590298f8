"""Checkpoints: one ``.safetensors`` file, never a pickle.

The file's metadata carries the model's JSON config (``infp.config``), the checkpoint format
version (``infp.format``) and a SHA-256 over the tensors (``infp.sha256``), so a checkpoint is
self-describing and a flipped byte is caught before the weights are used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._atomic import atomic_path
from .errors import CheckpointError
from .infp import INFPConfig, INFPModel

FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 4 * 1024 * 1024
"""Largest safetensors header read (the shipped checkpoint's is about 20 KB): the header is parsed
before anything else is checked, so its size is bounded first."""
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin"}
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUNDLED_CHECKPOINT = "model.safetensors"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_model(
    model: INFPModel,
    path: str | Path,
    extra: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model`` to ``path`` (.safetensors) with its config and a digest in the metadata.

    ``dtype=torch.float16`` halves the file (weights are cast back to float32 on loading).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoints are .safetensors files; got {path.name!r}")
    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    metadata = {
        "infp.format": FORMAT_VERSION,
        "infp.config": model.config.model_dump_json(),
        "infp.sha256": tensors_digest(tensors),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:  # a crash leaves the previous file or none, never half
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """``"default"`` or a bundled name -> the packaged file; otherwise a path (file or folder).

    A bundled model is a folder ``weights/NAME/`` holding ``model.safetensors`` and the ONNX
    graphs made from it (which read their weights from that file).
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and not path.suffix and not path.exists():
        bundled = WEIGHTS_DIR / name_or_path / BUNDLED_CHECKPOINT
        if bundled.exists():
            return bundled
        available = sorted(p.parent.name for p in WEIGHTS_DIR.glob(f"*/{BUNDLED_CHECKPOINT}"))
        raise CheckpointError(
            f"no bundled model named {name_or_path!r} (bundled: {available or 'none'}); "
            "pass the path of a .safetensors checkpoint instead"
        )
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise CheckpointError(
                f"{path} holds {len(found)} .safetensors files; name the checkpoint file itself"
            )
        path = found[0]
    return path


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and every tensor's shape, from the header alone (no tensor data is read)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        if len(head) < 9 or n < 2 or 8 + n > size or head[8:9] != b"{":
            if head[:2] == b"PK" or head[:1] == b"\x80":
                raise CheckpointError(
                    f"{path} is a pickle (torch.save) file, not safetensors; pickles can run "
                    "arbitrary code when loaded, so infp-sdk does not load them. Convert it "
                    "with infp_sdk.model.save_model in an environment you trust"
                )
            raise CheckpointError(
                f"{path} is not a safetensors file (or it is truncated): re-export it with "
                "infp_sdk.model.save_model"
            )
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(
                f"{path} has a safetensors header of {n} bytes; infp-sdk reads headers of up to "
                f"{MAX_HEADER_BYTES} bytes (a checkpoint's is tens of KB). The file is damaged or "
                "not an infp-sdk checkpoint: re-export it with infp_sdk.model.save_model"
            )
        try:
            header = json.loads(head[8:9] + f.read(n - 1))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            problem = "nested too deeply" if isinstance(e, RecursionError) else str(e)
            raise CheckpointError(
                f"{path} has a corrupt safetensors header ({problem}); re-export it with "
                "infp_sdk.model.save_model"
            ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path} has a corrupt safetensors header (not a JSON object); re-export it with "
            "infp_sdk.model.save_model"
        )
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(
            f"{path} has a corrupt safetensors header (__metadata__ must be a JSON object of "
            "strings); re-export it with infp_sdk.model.save_model"
        )
    shapes = {}
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise CheckpointError(
                f"{path} has a corrupt safetensors header (tensor {name!r} has no valid shape); "
                "re-export it with infp_sdk.model.save_model"
            )
        shapes[name] = tuple(shape)
    return meta, shapes


def _with_blocks(config: INFPConfig, depth: int, layers: int) -> INFPConfig:
    return config.model_copy(
        update={
            "dit": config.dit.model_copy(update={"depth": depth}),
            "encoder": config.encoder.model_copy(update={"layers": layers}),
        }
    )


def _meta_model(config: INFPConfig) -> INFPModel:
    """The model ``config`` describes, on the meta device: shapes without memory."""
    with torch.device("meta"):
        return INFPModel(config)


def _tensor_count(config: INFPConfig) -> int:
    """How many tensors the model ``config`` describes has, from three models of one or two blocks.

    The count grows linearly with ``dit.depth`` and ``encoder.layers``; building a model even on
    the meta device costs time and memory per block, so a config of millions of blocks is refused
    before it is built.
    """
    counts = [
        len(_meta_model(_with_blocks(config, d, e)).state_dict())
        for d, e in ((1, 1), (2, 1), (1, 2))
    ]
    per_dit, per_encoder = counts[1] - counts[0], counts[2] - counts[0]
    return counts[0] + (config.dit.depth - 1) * per_dit + (config.encoder.layers - 1) * per_encoder


def _check_shapes(path: Path, config: INFPConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """Compare the tensors the config needs with those the file holds, allocating nothing."""
    try:
        needed = _tensor_count(config)
        # Twice the file's count leaves room to build a model of a few blocks more than the
        # file holds, so that the first missing tensor can be named (below).
        if needed > 2 * len(shapes):
            raise CheckpointError(
                f"{path}: the config describes a model of {needed} tensors but the file holds "
                f"{len(shapes)}; the config and the weights come from different models"
            )
        reference = _meta_model(config).state_dict()
    except CheckpointError:
        raise
    except Exception as e:  # sizes that overflow, widths not divisible by heads, ...
        raise CheckpointError(
            f"{path} carries a model config that cannot be built ({type(e).__name__}: {e}); "
            "re-export the checkpoint with infp_sdk.model.save_model"
        ) from None
    for name, tensor in reference.items():
        if name not in shapes:
            raise CheckpointError(
                f"{path}: tensor {name!r} (shape {tuple(tensor.shape)}) required by the config is "
                "missing; the config and the weights come from different models"
            )
        if shapes[name] != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {shapes[name]} but the config "
                f"needs {tuple(tensor.shape)}; the config and the weights come from different "
                "models"
            )
    unexpected = sorted(set(shapes) - set(reference))
    if unexpected:
        raise CheckpointError(
            f"{path}: tensor {unexpected[0]!r} is not part of the model the config describes "
            f"({len(unexpected)} unexpected in all); the config and the weights do not match"
        )


def load_model(
    name_or_path: str | Path = "default", device: str | torch.device = "cpu"
) -> INFPModel:
    """Load a checkpoint into an :class:`INFPModel` in eval mode.

    Refuses pickles; checks the format version, the config, the tensors against the config (the
    first mismatching tensor is named, before the model is built) and the SHA-256 digest.
    """
    path = resolve_checkpoint(name_or_path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"refusing to load {path.name}: {path.suffix} files are Python pickles, which can run "
            "arbitrary code when loaded. infp-sdk loads only .safetensors checkpoints; convert "
            "it in an environment you trust: build the model, load_state_dict(torch.load(..., "
            "weights_only=True)), then infp_sdk.model.save_model(model, 'model.safetensors')"
        )
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    meta, shapes = _read_header(path)
    fmt = meta.get("infp.format")
    if fmt is None or "infp.config" not in meta:
        raise CheckpointError(
            f"{path} is a safetensors file but not an infp-sdk checkpoint (no infp.config "
            "metadata); save models with infp_sdk.model.save_model"
        )
    if fmt != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {fmt}; this infp-sdk reads format {FORMAT_VERSION}. "
            "Upgrade infp-sdk or re-export the checkpoint"
        )
    try:
        config = INFPConfig.model_validate_json(meta["infp.config"])
    except ValueError as e:
        raise CheckpointError(f"{path} carries an invalid model config: {e}") from None
    # Before any memory is allocated: the model the config describes must be the one whose
    # tensors the file holds, so what loading allocates is bounded by the file's size.
    _check_shapes(path, config, shapes)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({e}); re-export it") from None
    expected = meta.get("infp.sha256")
    if expected is not None and tensors_digest(tensors) != expected:
        raise CheckpointError(
            f"{path}: the weights do not match the checksum stored with them; the file was "
            "modified or damaged after it was saved. Re-export or re-download it"
        )
    model = INFPModel(config)
    model.load_state_dict(tensors)
    return model.to(device).eval()
