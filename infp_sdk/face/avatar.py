"""The ``.avatar`` bundle: a prepared portrait that loads without a face detector.

An ``.avatar`` file is a zip archive of a JSON header and plain ``.npy`` arrays (read with
``allow_pickle=False``; nothing in it is ever unpickled or executed):

``avatar.json``      ``{"format": "infp-avatar", "version": 1, ...}`` plus what prepare found
``image.npy``        uint8 (H, W, 3) RGB, the portrait after EXIF rotation and downscaling
``vertices.npy``     float32 (N, 3) control points in image pixels: x, y and depth z (larger =
                     farther from the camera, same pixel scale); the 478 face-mesh landmarks
                     first, then the points prepare added (eye interiors, rings around the face)
``triangles.npy``    int32 (T, 3) the control mesh over those vertices
``head_weight.npy``  uint8 (H, W): how much each pixel follows the head pose (255 = fully;
                     0 = still background), neck and hair included
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .image import PortraitError

AVATAR_FORMAT = "infp-avatar"
AVATAR_VERSION = 1
AVATAR_SUFFIX = ".avatar"
_ARRAYS = ("image", "vertices", "triangles", "head_weight")
_REDO = "prepare it again with `infp-sdk prepare PORTRAIT -o NAME.avatar`"


@dataclass
class Avatar:
    """A prepared portrait: the image, its control mesh and its head-motion weights."""

    image: np.ndarray
    """uint8 (H, W, 3) RGB."""
    vertices: np.ndarray
    """float32 (N, 3): x, y, z in image pixels (z grows away from the camera)."""
    triangles: np.ndarray
    """int32 (T, 3) indices into ``vertices``."""
    head_weight: np.ndarray
    """uint8 (H, W): 255 where a pixel moves with the head, 0 where it stays still."""
    meta: dict[str, Any] = field(default_factory=dict)
    """JSON-ready facts: landmark counts, vertex groups, face box, source hash, detector."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle (a zip of JSON + ``.npy`` arrays) and return its path."""
        path = Path(path)
        header = {"format": AVATAR_FORMAT, "version": AVATAR_VERSION, **self.meta}
        with (
            atomic_path(path) as tmp,  # whole or absent
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        ):
            z.writestr("avatar.json", json.dumps(header, indent=1, sort_keys=True))
            for name in _ARRAYS:
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(getattr(self, name)), allow_pickle=False)
                z.writestr(f"{name}.npy", buf.getvalue())
        return path

    def validate(self, where: str = "avatar") -> None:
        """Check shapes, dtypes and index ranges; raise :class:`PortraitError` if wrong."""
        problems = []
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            problems.append(f"image is {self.image.dtype} {self.image.shape}, not uint8 (H, W, 3)")
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or len(self.vertices) < 478:
            problems.append(f"vertices have shape {self.vertices.shape}, expected (N >= 478, 3)")
        elif not np.isfinite(self.vertices).all():
            problems.append("vertices contain NaN or inf")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3 or len(self.triangles) == 0:
            problems.append(f"triangles have shape {self.triangles.shape}, expected (T, 3)")
        elif self.triangles.min() < 0 or self.triangles.max() >= len(self.vertices):
            problems.append("triangles index vertices that do not exist")
        if self.head_weight.dtype != np.uint8 or self.head_weight.shape != self.image.shape[:2]:
            problems.append(
                f"head_weight is {self.head_weight.dtype} {self.head_weight.shape}, "
                f"not uint8 {self.image.shape[:2]}"
            )
        if problems:
            raise PortraitError(f"{where} is not a valid avatar: {'; '.join(problems)}; {_REDO}")


def load_avatar(path: str | os.PathLike) -> Avatar:
    """Read an ``.avatar`` file written by :meth:`Avatar.save` (or ``infp-sdk prepare``).

    Raises ``FileNotFoundError`` for a missing file and :class:`PortraitError` for anything that
    is not a valid bundle of a version this SDK reads.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"avatar not found: {path}")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = [n for n in ("avatar.json", *(f"{a}.npy" for a in _ARRAYS)) if n not in names]
            if missing:
                raise PortraitError(f"{path} lacks {', '.join(missing)}; {_REDO}")
            header = json.loads(z.read("avatar.json"))
            if not isinstance(header, dict) or header.get("format") != AVATAR_FORMAT:
                raise PortraitError(f"{path} is not an infp-sdk avatar; {_REDO}")
            version = header.get("version")
            if not isinstance(version, int) or version > AVATAR_VERSION or version < 1:
                raise PortraitError(
                    f"{path} is avatar format version {version}; this infp-sdk reads versions "
                    f"1..{AVATAR_VERSION}: upgrade infp-sdk or {_REDO}"
                )
            arrays = {
                a: np.load(io.BytesIO(z.read(f"{a}.npy")), allow_pickle=False) for a in _ARRAYS
            }
    except PortraitError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise PortraitError(
            f"{path} is not a readable avatar ({e.__class__.__name__}: {e}); {_REDO}"
        ) from None
    meta = {k: v for k, v in header.items() if k not in ("format", "version")}
    avatar = Avatar(
        image=arrays["image"],
        vertices=arrays["vertices"].astype(np.float32),
        triangles=arrays["triangles"].astype(np.int32),
        head_weight=arrays["head_weight"],
        meta=meta,
    )
    avatar.validate(str(path))
    return avatar


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (how an avatar remembers which photo it was made from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
