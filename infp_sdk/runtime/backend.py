"""What the streaming runtime needs of a model, and how a model name becomes one.

The runtime (:class:`~infp_sdk.runtime.generator.MotionStream`, the Engine, the Agent) keeps its
state in NumPy and asks a :class:`HopModel` for one thing: the frames of a batch of hops. Two
backends implement it:

* ``onnxruntime`` (:class:`~infp_sdk.runtime.onnx.OrtHopModel`): exported graphs, no torch. The
  bundled model ships its graphs in the package, so ``Agent()`` needs neither torch nor an
  export step.
* ``torch`` (:class:`~infp_sdk.runtime.torch_backend.TorchHopModel`): an ``INFPModel`` in
  memory, replayed as CUDA graphs on a GPU. Needs the ``torch`` extra.

This module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import sys
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..model.config import INFPConfig
from ..motion import RIG_DIM

Sampling = tuple[str | None, int | None, float | None]
"""(sampler, steps, cfg_scale) overrides of a stream; None takes the model's default."""

BACKENDS = ("auto", "onnxruntime", "torch")
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
"""Bundled models: ``weights/<name>/`` holds the checkpoint and the graphs made from it."""

TORCH_HINT = (
    "pip install 'infp-sdk[torch]' (on a machine without a GPU, install the CPU build of torch "
    "first: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)


@runtime_checkable
class HopModel(Protocol):
    """A model as the streaming runtime sees it: a pure function from a batch of hops to frames.

    ``config`` is the model's :class:`~infp_sdk.model.config.INFPConfig`; ``backend`` is
    "onnxruntime" or "torch"; ``device`` is "cpu" or "cuda[:N]".
    """

    config: INFPConfig
    backend: str
    device: str

    def run_hops(self, batch: Any, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
        """A :class:`~infp_sdk.runtime.generator.HopBatch` -> latents (B, count, D) and
        speaking (B, count), float32."""
        ...

    def style_vector(self, reference: np.ndarray | None) -> np.ndarray:
        """The style (1, S) of reference motion latents (T, D); None: the model's null style."""
        ...


def sampling_settings(config: INFPConfig, sampling: Sampling) -> tuple[str, int, float]:
    """Overrides filled in from the model's defaults, with a clear error for a bad sampler."""
    from ..model.sampling import SAMPLERS

    sampler, steps, cfg_scale = sampling
    name = sampler or config.sampler
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}: choose one of {sorted(SAMPLERS)}")
    return name, steps or config.steps, config.cfg_scale if cfg_scale is None else cfg_scale


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def is_torch_model(model: Any) -> bool:
    """Whether ``model`` is an ``INFPModel`` (checked without importing torch)."""
    if "torch" not in sys.modules:
        return False  # no INFPModel can exist without torch loaded
    from ..model.infp import INFPModel

    return isinstance(model, INFPModel)


def as_hop_model(model: Any) -> HopModel:
    """``model`` as a :class:`HopModel`: itself, or an ``INFPModel`` wrapped for the torch
    backend on the device its weights are on."""
    if isinstance(model, HopModel):
        return model
    if is_torch_model(model):
        from .torch_backend import TorchHopModel

        return TorchHopModel(model)
    raise TypeError(
        f"expected a model (an exported model from load_onnx_model, an INFPModel or a "
        f"HopModel), got {type(model).__name__}"
    )


def require_rig_motion(config: INFPConfig) -> None:
    """Raise ValueError unless the model generates rig vectors, the only latents the runtime
    turns into frames (a model in another motion space would fail at its first frame)."""
    if config.latent_dim != RIG_DIM:
        raise ValueError(
            f"this model generates {config.latent_dim}-value motion latents, but the runtime "
            f"turns each latent into a Frame through the rig ({RIG_DIM} values: head 6, gaze 4, "
            f"ARKit blendshapes 52), so an Agent or Engine cannot serve it. Use a checkpoint "
            f"trained in the rig motion space (latent_dim={RIG_DIM}), such as the bundled "
            f"'default'."
        )


def _cuda_driver_present() -> bool:
    # Asking torch whether a GPU exists costs its whole import (seconds); without a CUDA
    # driver library on the machine the answer is no, which is cheap to learn.
    return ctypes.util.find_library("cuda") is not None


def _ort_has_cuda() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _torch_has_cuda() -> bool:
    if not torch_available() or not _cuda_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def pick_device(device: str, backend: str = "auto") -> str:
    """``"auto"``, ``"cpu"`` or ``"cuda[:N]"`` -> "cpu" or "cuda[:N]", with a clear error when
    a GPU is asked for that no backend can reach."""
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda") and not (
            (backend != "torch" and _ort_has_cuda())
            or (backend != "onnxruntime" and _torch_has_cuda())
        ):
            raise RuntimeError(
                f"device {device!r} was asked for but no GPU backend is available: install "
                "onnxruntime-gpu (pip install 'infp-sdk[gpu]') or a CUDA build of torch, or use "
                "device='cpu' or 'auto'"
            )
        return device
    if device != "auto":
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'")
    if backend != "onnxruntime" and _torch_has_cuda():
        return "cuda"
    if backend != "torch" and _ort_has_cuda():
        return "cuda"
    return "cpu"


def bundled_onnx(name: str) -> Path | None:
    """The exported graphs shipped for bundled model ``name``, if any."""
    folder = WEIGHTS_DIR / name
    return folder if (folder / "config.json").exists() else None


def _is_export_folder(model: Any) -> bool:
    if not isinstance(model, (str, Path)):
        return False
    path = Path(model)
    return path.is_dir() and (path / "config.json").exists()


def pick_backend(model: Any, device: str) -> str:
    """What ``backend="auto"`` runs.

    * a model object in memory: torch if it is an ``INFPModel`` (one being trained or
      evaluated, whose outputs then match the offline tools exactly);
    * an export folder, or a bundled model with shipped graphs, on the CPU: onnxruntime;
    * a checkpoint file on the CPU: onnxruntime (exported once and cached, which needs torch),
      since its hops cost less CPU time and latency than torch's (docs/runtime.md);
    * on a GPU: torch (CUDA graphs) when it is installed with CUDA, else onnxruntime's CUDA
      provider.
    """
    if isinstance(model, HopModel):
        return model.backend
    if is_torch_model(model):
        return "torch"
    if _is_export_folder(model):
        return "onnxruntime"
    if device.startswith("cuda"):
        return "torch" if _torch_has_cuda() else "onnxruntime"
    return "onnxruntime"


def load_hop_model(
    model: Any = "default",
    device: str = "auto",
    backend: str = "auto",
    *,
    threads: int | None = None,
) -> HopModel:
    """Turn what a user passes to ``Agent``/``Engine`` into a :class:`HopModel`.

    ``model``: "default" or another bundled name, a checkpoint path, an export folder (from
    ``infp-sdk export``), an ``INFPModel`` or a :class:`HopModel`. Raises ValueError for a
    model that does not generate rig motion, and ImportError naming the extra to install when
    a backend's package is missing. ``threads``: the backend's CPU threads (onnxruntime's
    sessions; torch's global pool).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if isinstance(model, HopModel):
        require_rig_motion(model.config)
        return model
    resolved = pick_device(device, backend)
    if backend == "auto":
        backend = pick_backend(model, resolved)
    if backend == "onnxruntime":
        from .onnx import load_onnx_model, onnx_for

        hop_model = load_onnx_model(onnx_for(model), device=resolved, threads=threads)
    else:
        if not torch_available():
            raise ImportError(
                f"the torch backend needs torch, which is not installed: {TORCH_HINT}"
            )
        from .torch_backend import TorchHopModel

        hop_model = TorchHopModel.load(model, resolved, threads=threads)
    require_rig_motion(hop_model.config)
    return hop_model
