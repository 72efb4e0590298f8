"""The portrait: preparation (face mesh, head segmentation), the ``.avatar`` bundle, the renderer.

```python
from infp_sdk.face import load_portrait
renderer = load_portrait("me.jpg")          # or "me.avatar", an array, a PIL image, an Avatar
rgb = renderer.render(frame)                # uint8 (512, 512, 3)
```

Preparing a photo needs the ``face`` extra (MediaPipe); rendering a prepared ``.avatar`` needs
only numpy (no torch).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from .avatar import AVATAR_SUFFIX, AVATAR_VERSION, Avatar, file_sha256, load_avatar
from .image import MAX_SIDE, PortraitError, load_image
from .renderer import DEFAULT_SIZE, Renderer, crop_box


def prepare(image: Any, *, max_side: int = MAX_SIDE) -> Avatar:
    """Prepare a portrait (path, array or PIL image) for rendering; see :mod:`.portrait`."""
    from .portrait import prepare as _prepare

    return _prepare(image, max_side=max_side)


def sibling_avatar(image_path: str | os.PathLike) -> Avatar | None:
    """The ``.avatar`` saved next to a photo (same name), if it was prepared from these bytes.

    Lets a shipped portrait render without the face detector; a stale avatar (the photo changed
    since) is ignored.
    """
    path = Path(image_path)
    candidate = path.with_suffix(AVATAR_SUFFIX)
    if not candidate.is_file() or not path.is_file():
        return None
    try:
        avatar = load_avatar(candidate)
    except PortraitError:
        return None
    if avatar.meta.get("source_sha256") != file_sha256(path):
        return None
    return avatar


PORTRAITS_DIR = Path(__file__).resolve().parent / "portraits"
"""Portraits that ship with the package, prepared; ``load_portrait(NAME)`` finds them by name."""

DEFAULT_PORTRAIT = "astronaut"
"""The bundled portrait used where none is given (a NASA photo in the public domain)."""


def bundled_portraits() -> list[str]:
    """Names of the portraits that ship with the package."""
    return sorted(p.stem for p in PORTRAITS_DIR.glob(f"*{AVATAR_SUFFIX}"))


def as_avatar(portrait: Any) -> Avatar:
    """An :class:`Avatar` from an avatar, a ``.avatar`` path, an image path, array or PIL image,
    or the name of a bundled portrait (:func:`bundled_portraits`, e.g. ``"astronaut"``).

    An image path with an up-to-date ``.avatar`` beside it loads that instead of re-detecting.
    """
    if isinstance(portrait, Avatar):
        return portrait
    if (
        isinstance(portrait, str)
        and portrait in bundled_portraits()
        and not Path(portrait).exists()
    ):
        return load_avatar(PORTRAITS_DIR / f"{portrait}{AVATAR_SUFFIX}")
    if isinstance(portrait, (str, os.PathLike)):
        path = Path(portrait)
        if path.suffix.lower() == AVATAR_SUFFIX:
            return load_avatar(path)
        if not path.is_file():
            raise FileNotFoundError(f"portrait not found: {path}")
        cached = sibling_avatar(path)
        if cached is not None:
            return cached
    return prepare(portrait)


def load_portrait(
    portrait: Any,
    size: int | tuple[int, int] = DEFAULT_SIZE,
    crop: str | float = "face",
    device: str | None = None,
    *,
    threads: int = 1,
) -> Renderer:
    """A :class:`Renderer` for a portrait, ready to turn rig frames into RGB images.

    ``portrait``: an image path, a ``.avatar`` path, a numpy array, a PIL image or an
    :class:`Avatar`. ``size``: output side (int) or (width, height), default 512x512. ``crop``:
    ``"face"`` (head and shoulders, default), ``"full"`` (the whole photo, cut to the aspect
    ratio) or a number (box height in face heights). ``device``: ``"cpu"`` or None (the renderer
    runs on the CPU in numpy; anything else raises ``ValueError``). ``threads``: CPU threads per
    frame (see :class:`Renderer`).
    """
    return Renderer(as_avatar(portrait), size=size, crop=crop, device=device, threads=threads)


# ----------------------------------------------------------------------------------------------
# infp-sdk prepare
# ----------------------------------------------------------------------------------------------


def _cmd_prepare(args: argparse.Namespace) -> int:
    out = Path(args.output) if args.output else Path(args.portrait).with_suffix(AVATAR_SUFFIX)
    if out.suffix.lower() != AVATAR_SUFFIX:
        out = out.with_name(out.name + AVATAR_SUFFIX)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            avatar = prepare(args.portrait, max_side=args.max_side)
        except ImportError as e:
            print(f"infp-sdk prepare: error: {e}", file=sys.stderr)
            return 2
    for w in caught:
        print(f"infp-sdk prepare: warning: {w.message}", file=sys.stderr)
    avatar.save(out)
    w, h = avatar.size
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {w}x{h} portrait, face "
        f"{avatar.meta['face_width']:.0f} px wide, {len(avatar.vertices)} control points"
    )
    return 0


def register_cli(sub: Any) -> None:
    """Add ``infp-sdk prepare`` to the command's subparsers."""
    p = sub.add_parser(
        "prepare",
        help="portrait photo -> .avatar (face mesh, head segmentation) for fast rendering",
        description="Find the face in a photo, fit the dense face mesh, segment head and hair, "
        "and save everything the renderer needs as an .avatar bundle (needs the face extra).",
    )
    p.add_argument("portrait", help="the photo (PNG, JPEG, ...; one face, the largest is used)")
    p.add_argument("-o", "--output", help="output .avatar path (default: next to the photo)")
    p.add_argument("--max-side", type=int, default=MAX_SIDE, help="downscale larger photos")
    p.set_defaults(func=_cmd_prepare)


__all__ = [
    "AVATAR_VERSION",
    "Avatar",
    "PortraitError",
    "Renderer",
    "as_avatar",
    "crop_box",
    "load_avatar",
    "load_image",
    "load_portrait",
    "prepare",
    "register_cli",
    "sibling_avatar",
]
