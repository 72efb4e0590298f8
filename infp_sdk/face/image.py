"""Reading a portrait: paths, arrays and PIL images in common modes, EXIF rotation, size limit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

MAX_SIDE = 1024
"""Portraits are downscaled so that their longer side is at most this many pixels."""


class PortraitError(ValueError):
    """A portrait that cannot be used: not an image, no face, a face too small, a corrupt avatar.

    The message says what was wrong and what to do about it.
    """


def load_image(image: Any, max_side: int = MAX_SIDE) -> np.ndarray:
    """Any supported portrait input -> uint8 RGB array (H, W, 3), at most ``max_side`` long.

    Accepts a path (str or ``os.PathLike``), a numpy array (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4), uint8 or float in 0..1, or a PIL image. EXIF orientation is applied; transparency
    is composited over mid grey (a neutral backdrop for the face).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"portrait not found: {path}")
        try:
            with Image.open(path) as pil:
                pil.load()
                pil = ImageOps.exif_transpose(pil)
                array = _pil_to_rgb(pil)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise PortraitError(
                f"{path} is not a readable image ({e.__class__.__name__}: {e}); "
                "give a PNG or JPEG photo of one face"
            ) from None
    elif isinstance(image, Image.Image):
        array = _pil_to_rgb(ImageOps.exif_transpose(image))
    elif isinstance(image, np.ndarray):
        array = _array_to_rgb(image)
    else:
        raise PortraitError(
            f"cannot read a portrait from {type(image).__name__}: give a file path, a numpy "
            "array (H, W[, 3|4]) or a PIL image"
        )
    return downscale(array, max_side)


def _pil_to_rgb(pil: Any) -> np.ndarray:
    if pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info):
        pil = pil.convert("RGBA")
        return _array_to_rgb(np.asarray(pil))
    return np.asarray(pil.convert("RGB"))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 2:
        raise PortraitError(
            f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}"
        )
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float32))
        if f.max(initial=0.0) > 1.0 + 1e-3:
            f = f / 255.0  # float arrays in 0..255 are common enough to accept
    elif np.issubdtype(a.dtype, np.integer):
        f = a.astype(np.float32) / (65535.0 if a.max(initial=0) > 255 else 255.0)
    else:
        raise PortraitError(f"unsupported image dtype {a.dtype}: use uint8 or float in 0..1")
    f = np.clip(f, 0.0, 1.0)
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    elif f.shape[2] == 4:
        alpha = f[:, :, 3:4]
        f = f[:, :, :3] * alpha + 0.5 * (1.0 - alpha)
    return np.ascontiguousarray(np.round(f * 255.0).astype(np.uint8))


def downscale(array: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrink (never enlarge) an RGB array so that its longer side is at most ``max_side``."""
    from PIL import Image

    h, w = array.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return array
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.LANCZOS))
