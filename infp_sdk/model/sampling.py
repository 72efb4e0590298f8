"""Diffusion schedule and samplers as small pure functions.

Continuous time t in [0, 1] with the cosine schedule alpha = cos(pi/2 t), sigma = sin(pi/2 t)
(variance preserving). The network predicts v = alpha * eps - sigma * x0. Samplers take a
``denoise(x, t) -> x0`` callable, so guidance, batching or an ONNX session can sit behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any, TypeVar

# The samplers are plain arithmetic on arrays, so one implementation serves torch tensors (the
# torch backend, CUDA graphs, training's evaluation) and NumPy arrays (the onnxruntime backend).
Array = TypeVar("Array")
Denoiser = Callable[[Any, float], Any]  # (x_t (B, ...), t) -> x0_hat, t the same for the batch

T_MAX = 0.999  # alpha(1) = 0 makes log-SNR infinite; stop just short of it


def alpha_sigma(t: Any) -> tuple[Any, Any]:
    """(alpha, sigma) at time ``t``: a float (the samplers' host-side schedule) or a tensor."""
    angle = t * (math.pi / 2)
    if isinstance(angle, (int, float)):
        return math.cos(angle), math.sin(angle)
    return angle.cos(), angle.sin()


def add_noise(x0: Any, noise: Any, t: Any) -> Any:
    """x_t for x0 (B, ...) at times t (B,) (tensors)."""
    alpha, sigma = _expand(alpha_sigma(t), x0)
    return alpha * x0 + sigma * noise


def v_target(x0: Any, noise: Any, t: Any) -> Any:
    alpha, sigma = _expand(alpha_sigma(t), x0)
    return alpha * noise - sigma * x0


def x0_from_v(x_t: Array, v: Array, t: Any) -> Array:
    """x0 from the predicted v; ``t`` a float (sampling) or a tensor (B,)."""
    if isinstance(t, (int, float)):
        alpha, sigma = alpha_sigma(t)
    else:
        alpha, sigma = _expand(alpha_sigma(t), x_t)
    return alpha * x_t - sigma * v


def _expand(pair: tuple[Any, Any], like: Any) -> tuple[Any, Any]:
    shape = (-1,) + (1,) * (like.dim() - 1)
    return pair[0].view(shape), pair[1].view(shape)


def time_grid(steps: int) -> list[float]:
    """steps + 1 times from T_MAX down to 0."""
    if steps < 1:
        raise ValueError(f"sampling needs at least 1 step, got {steps}")
    return [T_MAX * (1 - i / steps) for i in range(steps + 1)]


def _half_log_snr(t: float) -> float:
    alpha, sigma = alpha_sigma(t)
    return math.log(alpha) - math.log(sigma)


# The samplers keep the schedule on the host as Python floats: a step never waits for the device
# to answer a question about a tensor, so the whole loop can be captured as one CUDA graph.


def sample_ddim(denoise: Denoiser, noise: Array, steps: int = 20) -> Array:
    """Deterministic DDIM (eta = 0) from pure noise to x0."""
    x = noise
    for t, s in pairwise(time_grid(steps)):
        x0 = denoise(x, t)
        alpha_t, sigma_t = alpha_sigma(t)
        alpha_s, sigma_s = alpha_sigma(s)
        eps = (x - alpha_t * x0) / sigma_t
        x = alpha_s * x0 + sigma_s * eps
    return x


def sample_dpmpp_2m(denoise: Denoiser, noise: Array, steps: int = 6) -> Array:
    """DPM-Solver++(2M): a second-order multistep solver, good in 5-10 steps (for the CPU)."""
    x = noise
    x0_prev = None
    h_prev = 0.0
    for t, s in pairwise(time_grid(steps)):
        x0 = denoise(x, t)
        if s <= 0:  # last step lands on the data
            return x0
        alpha_s, sigma_s = alpha_sigma(s)
        _, sigma_t = alpha_sigma(t)
        h = _half_log_snr(s) - _half_log_snr(t)
        if x0_prev is None:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (sigma_s / sigma_t) * x - (alpha_s * math.expm1(-h)) * d
        x0_prev, h_prev = x0, h
    return x


SAMPLERS: dict[str, Callable[[Denoiser, Any, int], Any]] = {
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
}


def guided(cond: Array, uncond: Array, scale: float) -> Array:
    """Classifier-free guidance: uncond + scale * (cond - uncond); scale 1 is the conditional."""
    return uncond + scale * (cond - uncond)
