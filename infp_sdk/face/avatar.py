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

An avatar may come from anywhere, so :func:`load_avatar` treats the file as hostile until it
has checked it: it reads the members into memory (never extracting anything to disk), bounds
every size by :data:`AVATAR_LIMITS` before reading and again while reading, checks each array's
dtype and shape from its ``.npy`` header before allocating it, and reports every fault as a
:class:`~infp_sdk.face.image.PortraitError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import numbers
import os
import struct
import zipfile
import zlib
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
_HEADER = "avatar.json"
_MEMBERS = (_HEADER, *(f"{a}.npy" for a in _ARRAYS))
_REDO = "prepare it again with `infp-sdk prepare PORTRAIT -o NAME.avatar`"
_UNTRUSTED = "a zip bomb, or not an avatar written by infp-sdk"

_MiB = 1 << 20


@dataclass(frozen=True)
class AvatarLimits:
    """What :func:`load_avatar` is willing to read (sizes are uncompressed bytes).

    The largest avatar ``infp-sdk prepare`` writes at its default ``--max-side 1024`` holds a
    3 MiB image and a 1 MiB head-weight map (4.2 MiB in all); the shipped example holds 1.1 MB.
    The limits leave room for portraits prepared at up to 8192 pixels a side (a 192 MiB image
    and a 64 MiB map), and stop a zip bomb long before it can exhaust memory.
    """

    member_bytes: int = 256 * _MiB
    """One array member, as declared by the zip and as actually read."""
    total_bytes: int = 320 * _MiB
    """All members together."""
    header_bytes: int = 1 * _MiB
    """``avatar.json`` (a few hundred bytes in practice)."""
    members: int = 64
    """Entries in the archive (an avatar has 5; others are ignored, never extracted)."""
    directory_bytes: int = 64 << 10
    """The zip's central directory, checked before the zip is parsed."""


AVATAR_LIMITS = AvatarLimits()
"""The limits every avatar is loaded (and saved) under."""

_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # those whose reads are bounded
_EOCD, _EOCD_SIZE = b"PK\x05\x06", 22  # zip end-of-central-directory record
_ZIP64_LOCATOR, _ZIP64_LOCATOR_SIZE = b"PK\x06\x07", 20
_ZIP64_EOCD, _ZIP64_EOCD_SIZE = b"PK\x06\x06", 56
# dtype kinds, dimensions and last axis each array member may have (exact dtypes are checked by
# Avatar.validate; vertices and triangles are converted to float32 and int32 on loading).
_LAYOUT = {
    "image": ("u", 3, 3),
    "vertices": ("fiu", 2, 3),
    "triangles": ("iu", 2, 3),
    "head_weight": ("u", 2, None),
}


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
        members: dict[str, str | bytes] = {_HEADER: json.dumps(header, indent=1, sort_keys=True)}
        for name in _ARRAYS:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(getattr(self, name)), allow_pickle=False)
            members[f"{name}.npy"] = buf.getvalue()
        # Never write what load_avatar would refuse.
        sizes = {n: len(m.encode() if isinstance(m, str) else m) for n, m in members.items()}
        problem = _size_problem(sizes, AVATAR_LIMITS)
        if problem:
            raise PortraitError(
                f"cannot save {path}: {problem}; prepare the portrait with a smaller --max-side"
            )
        with (
            atomic_path(path) as tmp,  # whole or absent
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        ):
            for name, member in members.items():
                z.writestr(name, member)
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
        problems += _meta_problems(self.meta, len(self.vertices))
        if problems:
            raise PortraitError(f"{where} is not a valid avatar: {'; '.join(problems)}; {_REDO}")


def load_avatar(path: str | os.PathLike) -> Avatar:
    """Read an ``.avatar`` file written by :meth:`Avatar.save` (or ``infp-sdk prepare``).

    Raises ``FileNotFoundError`` for a missing file and :class:`PortraitError` for anything that
    is not a valid bundle of a version this SDK reads, including hostile files: zip bombs,
    archives with too many members or duplicated ones, encrypted or oddly compressed members,
    arrays whose ``.npy`` header disagrees with their data. Nothing is extracted to disk; members
    other than the five an avatar holds are ignored (never read). Sizes are bounded by
    :data:`AVATAR_LIMITS`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"avatar not found: {path}")
    limits = AVATAR_LIMITS
    try:
        with open(path, "rb") as f:
            _check_directory(f, path, limits)
            with zipfile.ZipFile(f) as z:
                infos = _avatar_members(z, path, limits)
                header = _read_header(z, infos[_HEADER], path)
                arrays = {a: _read_array(z, infos[f"{a}.npy"], path) for a in _ARRAYS}
    except PortraitError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        struct.error,
        ValueError,
        OSError,
        EOFError,
        KeyError,
        RuntimeError,  # an encrypted member, an unsupported compression method
    ) as e:
        if isinstance(e, OSError) and e.errno == errno.EINVAL:  # an offset before the start
            e = zipfile.BadZipFile("the zip's offsets point outside the file")
        raise PortraitError(
            f"{path} is not a readable avatar ({e.__class__.__name__}: {e}); {_REDO}"
        ) from None
    triangles = arrays["triangles"]
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(arrays["vertices"])):
        # checked before the cast to int32, which would wrap a huge index into range
        raise PortraitError(
            f"{path} is not a valid avatar: triangles index vertices that do not exist; {_REDO}"
        )
    meta = {k: v for k, v in header.items() if k not in ("format", "version")}
    avatar = Avatar(
        image=arrays["image"],
        vertices=arrays["vertices"].astype(np.float32),
        triangles=triangles.astype(np.int32),
        head_weight=arrays["head_weight"],
        meta=meta,
    )
    avatar.validate(str(path))
    return avatar


def _refused(path: Path, problem: str) -> PortraitError:
    return PortraitError(f"{path} is refused: {problem}; {_REDO}")


def _mib(n: int) -> str:
    return f"{n / _MiB:.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.1f} GiB"


def _size_problem(sizes: dict[str, int], limits: AvatarLimits) -> str | None:
    """Why members of these (uncompressed) sizes exceed ``limits``, or None."""
    for name, size in sizes.items():
        limit = limits.header_bytes if name == _HEADER else limits.member_bytes
        if size > limit:
            return f"{name} is {_mib(size)} uncompressed, over the limit of {_mib(limit)}"
    total = sum(sizes.values())
    if total > limits.total_bytes:
        return f"its members hold {_mib(total)} in total, over {_mib(limits.total_bytes)}"
    return None


def _check_directory(f: Any, path: Path, limits: AvatarLimits) -> None:
    """Find the zip's end record as :mod:`zipfile` does and bound its central directory.

    Runs before :class:`zipfile.ZipFile` parses the directory, which would otherwise build one
    object per entry for however many entries the file claims.
    """
    f.seek(0, os.SEEK_END)
    end = f.tell()
    start = max(end - (1 << 16) - _EOCD_SIZE, 0)  # a zip comment is at most 64 KiB
    f.seek(start)
    tail = f.read()
    if tail[-_EOCD_SIZE:-18] == _EOCD and tail[-2:] == b"\0\0":
        at = len(tail) - _EOCD_SIZE
    else:
        at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        f.seek(0)
        if f.read(4) == b"PK\x03\x04":
            problem = "it starts like a zip archive but its end is missing (truncated or damaged)"
        else:
            problem = "it is not a zip archive (an .avatar is a zip written by infp-sdk)"
        raise _refused(path, problem)
    entries, directory = struct.unpack_from("<HL", tail, at + 10)
    # A zip64 end record just before the end record overrides those numbers in zipfile: bound
    # whichever it will use.
    eocd = start + at
    if eocd >= _ZIP64_LOCATOR_SIZE + _ZIP64_EOCD_SIZE:
        f.seek(eocd - _ZIP64_LOCATOR_SIZE - _ZIP64_EOCD_SIZE)
        record = f.read(_ZIP64_EOCD_SIZE + _ZIP64_LOCATOR_SIZE)
        if record[:4] == _ZIP64_EOCD and record[_ZIP64_EOCD_SIZE:][:4] == _ZIP64_LOCATOR:
            entries64, directory64 = struct.unpack_from("<QQ", record, 32)
            entries, directory = max(entries, entries64), max(directory, directory64)
    if entries > limits.members or directory > limits.directory_bytes:
        raise _refused(
            path,
            f"its zip directory lists {entries} members in {directory} bytes; an avatar has "
            f"{len(_MEMBERS)} (at most {limits.members} members in "
            f"{limits.directory_bytes} bytes are read)",
        )


def _avatar_members(z: zipfile.ZipFile, path: Path, limits: AvatarLimits) -> dict[str, Any]:
    """The five members by name, each checked for size, compression and encryption."""
    infos = z.infolist()
    if len(infos) > limits.members:
        raise _refused(
            path,
            f"it has {len(infos)} members; an avatar has {len(_MEMBERS)} (at most "
            f"{limits.members} are read)",
        )
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in _MEMBERS:
            if info.filename in found:
                # zip tools disagree on which copy counts: refuse rather than pick one
                raise _refused(path, f"it holds {info.filename} more than once")
            found[info.filename] = info
    missing = [n for n in _MEMBERS if n not in found]
    if missing:
        raise PortraitError(f"{path} lacks {', '.join(missing)}; {_REDO}")
    for name, info in found.items():
        if info.flag_bits & 0x1:
            raise _refused(path, f"{name} is encrypted")
        if info.compress_type not in _METHODS:
            # zipfile inflates bzip2 and LZMA members without bounding each read's output, so
            # a size they lie about would only be noticed after it was allocated
            raise _refused(
                path,
                f"{name} uses zip compression method {info.compress_type}; an avatar's members "
                "are deflated (or stored)",
            )
        limit = limits.header_bytes if name == _HEADER else limits.member_bytes
        if info.compress_size > limit:
            raise _refused(
                path,
                f"{name} is {_mib(info.compress_size)} compressed, over the limit of "
                f"{_mib(limit)} ({_UNTRUSTED})",
            )
    problem = _size_problem({n: i.file_size for n, i in found.items()}, limits)
    if problem:
        raise _refused(path, f"{problem} ({_UNTRUSTED})")
    return found


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """A member's bytes: never more than its declared size (checked against the limits)."""
    with z.open(info) as stream:
        data = stream.read(info.file_size + 1)  # deflate output is bounded by the request
    if len(data) != info.file_size:
        raise _refused(
            path,
            f"{info.filename} holds {'more' if len(data) > info.file_size else 'less'} data than "
            f"the {info.file_size} bytes it declares ({_UNTRUSTED})",
        )
    return data


def _read_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> dict[str, Any]:
    data = _read_member(z, info, path)
    try:
        header = json.loads(data)
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, nested too deeply
        raise _refused(path, f"{_HEADER} is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(header, dict) or header.get("format") != AVATAR_FORMAT:
        raise PortraitError(f"{path} is not an infp-sdk avatar; {_REDO}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _refused(path, f"{_HEADER} has version {version!r:.40}, not a positive integer")
    if version > AVATAR_VERSION:
        raise PortraitError(
            f"{path} is avatar format version {version}; this infp-sdk reads versions "
            f"1..{AVATAR_VERSION}: upgrade infp-sdk or {_REDO}"
        )
    return header


def _read_array(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member, its header checked against its layout and data before loading."""
    name = info.filename
    kinds, ndim, last = _LAYOUT[name.removesuffix(".npy")]
    data = _read_member(z, info, path)
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]}")
    except (ValueError, TypeError, SyntaxError) as e:
        raise _refused(path, f"{name} is not a readable .npy array ({e})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype or dtype.kind not in kinds:
        raise _refused(path, f"{name} holds {dtype} data")
    if len(shape) != ndim or (last is not None and shape[-1] != last):
        raise _refused(path, f"{name} has shape {shape}")
    needed, held = math.prod(shape) * dtype.itemsize, len(data) - buf.tell()
    if needed != held:
        raise _refused(
            path, f"{name} declares shape {shape} ({needed} bytes) but holds {held} bytes"
        )
    return np.load(io.BytesIO(data), allow_pickle=False)


def _meta_problems(meta: dict[str, Any], n_vertices: int) -> list[str]:
    """What is wrong with the header facts the renderer uses (the vertex groups)."""
    groups = meta.get("groups", {})
    if not isinstance(groups, dict):
        return ["meta 'groups' is not an object"]
    problems = []
    for key in ("eye_rings", "outer_rings"):
        spec = groups.get(key, [0, 0, 0])
        if not (
            isinstance(spec, (list, tuple))
            and len(spec) == 3
            and all(_is_count(v) for v in spec)
            and spec[0] + spec[1] * spec[2] <= n_vertices
        ):
            problems.append(
                f"meta groups.{key} is {spec!r:.60}, not [first, count, rings] within "
                f"{n_vertices} vertices"
            )
    depth = groups.get("pivot_depth", 0.0)
    if not (
        isinstance(depth, numbers.Real) and not isinstance(depth, bool) and math.isfinite(depth)
    ):
        problems.append(f"meta groups.pivot_depth is {depth!r:.40}, not a finite number")
    return problems


def _is_count(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (how an avatar remembers which photo it was made from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
