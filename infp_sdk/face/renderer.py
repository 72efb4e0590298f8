"""The portrait renderer: rig (head pose, gaze, 52 blendshapes) -> RGB frame, in numpy.

How a frame is made (all shapes fixed at construction, so the per-frame work is a handful of
array operations on a coarse grid plus one full-resolution resampling):

1. Expression: the blendshape and gaze weights mix precomputed dense displacement fields
   (one per channel, rasterised once from the control mesh with barycentric weights) into one
   2-D field, on a grid at half the output resolution covering only the moving region.
2. Head pose: every grid point carries a depth (from the face mesh, falling back to the head's
   centre on the rings around it); the points are turned by yaw, pitch and roll around a pivot
   behind the face at ear height, projected orthographically, shifted and scaled by the head
   translation, and mixed in by the head weight (1 on the head, fading down the neck and into a
   band of background, 0 beyond), so the background stays exactly still.
3. The forward field (where each source point goes) is inverted by a few Newton steps
   (source = target - displacement(source)), upsampled, and the portrait is resampled
   bilinearly; only the moving region is resampled, the rest is copied.
4. Mouth: where the lips have parted further than in the photo, a cavity with a hint of upper and
   lower teeth is drawn between the inner lip contours.

Everything is numpy on the CPU: no torch, no compiled graph. The bilinear sampling is done by
hand (gathers from tables built once), which measured faster here than onnxruntime's GridSample;
``docs/architecture.md`` has the numbers. The sampling conventions are those of torch's
``grid_sample(align_corners=False)`` and ``interpolate``, which the renderer used before, so the
frames are the same to within rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..motion import ARKIT_BLENDSHAPES, NUM_BLENDSHAPES, Frame
from . import mesh
from .avatar import Avatar
from .image import PortraitError
from .shapes import FaceFrame, vertex_bases

DEFAULT_SIZE = 512

GRID_CELLS = 128
"""The warp is solved on a grid of about this many cells along the output's shorter side (every
2 pixels up to 256 px, then every ``side // 128``): the warp is smooth, and at 512 px a grid
every 4 pixels draws the same frames to within a level or two on edges, in 40 % of the time."""
FACE_CROP = 2.6
"""The ``crop="face"`` box is this many face heights (brow-to-chin mesh) tall."""
FACE_WIDTH_M = 0.14
"""Width of the face mesh in metres: converts the rig's head translation into pixels."""
DEPTH_SCALE = 0.75
"""Depth relief used for head rotation, relative to the face mesh's (see ``Renderer``)."""
CAMERA_DISTANCE_M = 0.6
"""Distance from camera to face assumed for the rig's z translation (perspective scale)."""
BAND_PIXELS = 16384
"""Pixels (or grid points) worked on at once: about a dozen float32 arrays of this size fit in
a core's L2 cache."""
NEWTON_TOLERANCE = 1e-3
"""Pixels: a point of the inverse warp whose Newton step was smaller has converged."""


def crop_box(
    avatar: Avatar, aspect: float, crop: str | float = "face"
) -> tuple[float, float, float, float]:
    """The region of the avatar image shown: (x0, y0, width, height) with width/height = aspect.

    ``crop="face"`` frames head and shoulders (the box is about 2.6 face heights tall, the face a
    little above the centre); ``"full"`` shows as much of the image as the aspect ratio allows,
    centred on the face where it has to cut; a number is the box height in face heights.
    """
    w, h = avatar.size
    pts = avatar.vertices[: mesh.NUM_FACE_POINTS]
    fx0, fy0 = pts[:, :2].min(0)
    fx1, fy1 = pts[:, :2].max(0)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    if crop == "full":
        bh = min(h, w / aspect)
    else:
        try:
            k = FACE_CROP if crop == "face" else float(crop)
        except (TypeError, ValueError):
            raise ValueError(f"crop must be 'face', 'full' or a number, got {crop!r}") from None
        if not k > 0:
            raise ValueError(f"crop must be positive, got {crop!r}")
        bh = min(k * (fy1 - fy0), h, w / aspect)
        cy = cy + 0.12 * bh  # a little room for the shoulders below the face
    bw = bh * aspect
    x0 = float(np.clip(cx - bw / 2, 0, w - bw))
    y0 = float(np.clip(cy - bh / 2, 0, h - bh))
    return x0, y0, float(bw), float(bh)


def _rasterise(tri_xy: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which triangle covers each grid point, and its barycentric weights.

    ``tri_xy`` (T, 3, 2) in the grid's units, the grid points at integer (gx, gy). Returns
    (tri_id (Gh, Gw) with -1 outside all triangles, bary (Gh, Gw, 3)).
    """
    gh, gw = len(gy), len(gx)
    tri_id = np.full((gh, gw), -1, np.int64)
    bary = np.zeros((gh, gw, 3), np.float32)
    for t, (a, b, c) in enumerate(tri_xy):
        x0 = max(0, math.floor(min(a[0], b[0], c[0])))
        x1 = min(gw - 1, math.ceil(max(a[0], b[0], c[0])))
        y0 = max(0, math.floor(min(a[1], b[1], c[1])))
        y1 = min(gh - 1, math.ceil(max(a[1], b[1], c[1])))
        if x1 < x0 or y1 < y0:
            continue
        den = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(den) < 1e-9:
            continue
        xs = np.arange(x0, x1 + 1, dtype=np.float32)[None, :]
        ys = np.arange(y0, y1 + 1, dtype=np.float32)[:, None]
        l1 = ((b[1] - c[1]) * (xs - c[0]) + (c[0] - b[0]) * (ys - c[1])) / den
        l2 = ((c[1] - a[1]) * (xs - c[0]) + (a[0] - c[0]) * (ys - c[1])) / den
        l3 = 1.0 - l1 - l2
        eps = -1e-4
        inside = (l1 >= eps) & (l2 >= eps) & (l3 >= eps)
        free = tri_id[y0 : y1 + 1, x0 : x1 + 1] < 0
        sel = inside & free
        if not sel.any():
            continue
        tri_id[y0 : y1 + 1, x0 : x1 + 1][sel] = t
        bary[y0 : y1 + 1, x0 : x1 + 1][sel] = np.stack(
            [np.broadcast_to(l, sel.shape)[sel] for l in (l1, l2, l3)], -1
        )
    return tri_id, bary


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation in camera axes (x right, y down, z away from the camera).

    +yaw turns the nose to image right (the avatar's left), +pitch the chin down, +roll the head
    towards the avatar's right shoulder (image left).
    """
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, sr, 0], [-sr, cr, 0], [0, 0, 1]])
    return (r_roll @ r_pitch @ r_yaw).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Resampling helpers: the conventions of torch's grid_sample / interpolate (align_corners=False),
# so frames match those of the torch renderer this replaced. Coordinates are in pixels of the
# source, pixel centres at integers.
# ----------------------------------------------------------------------------------------------


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Keys cubic convolution weights (A = -0.75, as torch's bicubic) of the 4 taps around t."""
    a = -0.75

    def near(x: np.ndarray) -> np.ndarray:
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], -1)


def _sample_matrix(coords: np.ndarray, n_in: int, mode: str) -> np.ndarray:
    """(len(coords), n_in) matrix sampling a 1-D signal at ``coords``, clamped at the border.

    ``mode`` is ``"bilinear"`` (the coordinate is clamped) or ``"bicubic"`` (each tap is).
    """
    m = np.zeros((len(coords), n_in))
    rows = np.arange(len(coords))
    if mode == "bilinear":
        c = np.clip(coords, 0, n_in - 1)
        i0 = np.floor(c).astype(np.intp)
        t = c - i0
        np.add.at(m, (rows, i0), 1 - t)
        np.add.at(m, (rows, np.minimum(i0 + 1, n_in - 1)), t)
    else:
        i0 = np.floor(coords).astype(np.intp)
        w = _cubic_weights(coords - i0)
        for k in range(4):
            np.add.at(m, (rows, np.clip(i0 - 1 + k, 0, n_in - 1)), w[:, k])
    return m


def _antialias_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) antialiased bilinear resize (a triangle filter widened by the scale)."""
    scale = n_in / n_out
    support, inv = (scale, 1.0 / scale) if scale >= 1.0 else (1.0, 1.0)
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - centre + 0.5) * inv))
        if w.sum() > 0:
            m[i, lo:hi] = w / w.sum()
    return m


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) area (adaptive average) downsampling."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _separable(my: np.ndarray, image: np.ndarray, mx: np.ndarray) -> np.ndarray:
    """(H, W, C) image -> (C, out_h, out_w) float32 through row and column matrices."""
    rows = np.tensordot(my, image, axes=(1, 0))  # (out_h, W, C)
    return np.tensordot(mx, rows, axes=(1, 1)).transpose(2, 1, 0).astype(np.float32)


def _sample_points(image: np.ndarray, x: np.ndarray, y: np.ndarray, border: bool) -> np.ndarray:
    """Bilinear samples of a (C, H, W) image at pixel coordinates (x, y) -> (C, *x.shape).

    Outside the image: the nearest edge pixel (``border``) or zero.
    """
    _, h, w = image.shape
    if border:
        x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x), np.floor(y)
    tx, ty = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    out = np.zeros((image.shape[0], *np.shape(x)), np.float32)
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out += image[:, yi.clip(0, h - 1), xi.clip(0, w - 1)] * (wx * wy * ok)
    return out


def _upsample_taps(n_out: int, n_in: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling by ``factor`` along one axis: (first taps, second taps, their weight)."""
    src = np.maximum((np.arange(n_out) + 0.5) / factor - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def _device(device: Any) -> str:
    """The renderer runs on the CPU: accept "cpu" (or None), refuse anything else clearly."""
    if device is None or str(device) == "cpu":
        return "cpu"
    raise ValueError(
        f"the portrait renderer runs on the CPU (numpy), not on {str(device)!r}: "
        "pass device='cpu' or leave device out"
    )


class _Scratch:
    """Per-renderer work arrays for one frame (``n`` grid points, ``m`` region pixels)."""

    def __init__(self, n: int, m: int, grid: tuple[int, int]):
        f32 = np.float32
        gh, gw = grid
        self.field_coef = np.empty((gh + 2) * (gw + 2), np.dtype((np.void, 96)))
        self.field_tmp = np.empty((2, gh + 2, gw + 2, 6), f32)
        self.cell6 = np.empty(n, np.dtype((np.void, 96)))
        self.v = np.empty((6, n), f32)
        self.expr = np.empty(2 * n, f32)
        self.forward = np.empty((2, n), f32)
        self.back = np.empty((2, n), f32)
        self.g = np.empty((2, n), f32)
        self.n = np.empty((4, n), f32)
        self.k = np.empty(n, np.intp)
        self.ok = np.empty(n, bool)
        self.rows = np.empty(2 * m, f32)
        self.rows2 = np.empty(2 * m, f32)
        self.p = np.empty((6, m), f32)
        self.pk = np.empty(m, np.intp)
        self.region = np.empty(3 * m, f32)
        self.cell = np.empty(m, np.dtype((np.void, 16)))


class Renderer:
    """Animates one portrait from the rig. Build with :func:`load_portrait`.

    ``render(frame)`` returns uint8 (H, W, 3) RGB. The renderer keeps no per-frame state, so frames
    can be rendered in any order; it is not safe to call from two threads at once (it reuses its
    scratch buffers).

    ``device`` is accepted for compatibility and must be ``"cpu"`` or None: the renderer is numpy.
    ``threads``: CPU threads for one frame (default 1). More split each frame's bands of pixels and
    grid points between threads; that can only pay on idle cores (on a busy 2-core machine two
    were slower than one, and the render job leaves the second core to the video encoder).
    ``stride`` is the coarse grid's spacing in output pixels (default: :data:`GRID_CELLS` cells
    along the shorter side, at least every 2 pixels), ``iterations`` the Newton steps of the
    inverse warp.
    """

    def __init__(
        self,
        avatar: Avatar,
        size: int | tuple[int, int] = DEFAULT_SIZE,
        crop: str | float = "face",
        device: Any = None,
        *,
        stride: int | None = None,
        iterations: int = 3,
        threads: int = 1,
    ):
        avatar.validate()
        out_w, out_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if out_w < 16 or out_h < 16 or out_w > 4096 or out_h > 4096:
            raise ValueError(f"output size must be 16..4096 pixels a side, got {out_w}x{out_h}")
        self.device = _device(device)
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        # numpy releases the GIL in its array loops, so bands of the frame render in parallel.
        self._threads = int(threads)
        self._pool = ThreadPoolExecutor(threads, "infp-render") if threads > 1 else None
        self.avatar = avatar
        self.width, self.height = out_w, out_h
        if stride is None:
            stride = max(2, min(out_w, out_h) // GRID_CELLS)
        if not 1 <= int(stride) <= 16:
            raise ValueError(f"stride must be 1..16 output pixels, got {stride}")
        stride = int(stride)
        self.stride = stride
        self.iterations = iterations
        self.crop = crop_box(avatar, out_w / out_h, crop)
        x0, y0, bw, bh = self.crop
        scale = out_w / bw
        self.scale = scale

        # Base image and head weight at the output size.
        base = self._crop_resize(avatar.image.astype(np.float32) / 255.0)
        weight = self._crop_resize(avatar.head_weight.astype(np.float32)[:, :, None] / 255.0)[0]
        # Resampling rings a little around the edges of the head region: whatever is below one
        # level of the stored map is exactly still, so the background stays bit-identical.
        weight = np.where(weight < 0.5 / 255, 0.0, np.minimum(weight, 1.0)).astype(np.float32)
        self.head_weight = weight  # (H, W): how much each output pixel follows the head
        self.base = np.clip(base, 0, 1)  # (3, H, W) float32
        self.base_u8 = np.ascontiguousarray(
            np.clip(self.base * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        )

        # Control mesh in output pixels.
        verts = avatar.vertices.copy()
        verts[:, 0] = (verts[:, 0] - x0) * scale
        verts[:, 1] = (verts[:, 1] - y0) * scale
        verts[:, 2] *= scale
        self.vertices = verts
        groups = avatar.meta.get("groups", {})
        ring_level = np.zeros(len(verts), np.float32)
        e0, ecount, eyes = groups.get("eye_rings", [mesh.NUM_LANDMARKS, 0, 0])
        ring_level[e0 : e0 + ecount * eyes] = -1
        r0, rcount, rings = groups.get("outer_rings", [e0 + ecount * eyes, 0, 0])
        for k in range(rings):
            ring_level[r0 + k * rcount : r0 + (k + 1) * rcount] = k + 1
        self.face = FaceFrame.from_landmarks(verts)
        self.channel_names, vbases = vertex_bases(verts, self.face, ring_level)
        index = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}
        self._bs_index = np.array([index[n] for n in self.channel_names if n in index], np.int64)
        self._n_bs = len(self._bs_index)

        # Rasterise the mesh on the coarse grid (grid cell j covers output pixels
        # [j*stride, (j+1)*stride), its centre at j*stride + (stride-1)/2).
        gh_full, gw_full = -(-out_h // stride), -(-out_w // stride)
        off = (stride - 1) / 2
        tri_xy = (verts[avatar.triangles][:, :, :2] - off) / stride
        tri_id, bary = _rasterise(tri_xy, np.arange(gw_full), np.arange(gh_full))
        covered = tri_id >= 0
        tri = avatar.triangles[np.where(covered, tri_id, 0)]  # (Gh, Gw, 3)
        depth_pivot = float(groups.get("pivot_depth", 0.0)) * scale
        z = np.where(covered, (bary * verts[tri, 2]).sum(-1), depth_pivot)
        # A slightly flatter head than the mesh says: the side of the face turning towards the
        # camera is a stretch of the photo (its hidden side is not in it), and less depth keeps
        # that stretch from smearing at the face outline at +-20 degrees of yaw.
        z = depth_pivot + DEPTH_SCALE * (z - depth_pivot)
        fields = np.einsum("hwk,chwkd->chwd", bary, vbases[:, tri]) * covered[None, :, :, None]
        w_grid = _area_matrix(out_h, gh_full) @ weight @ _area_matrix(out_w, gw_full).T

        # Only the region where something can move is resampled each frame.
        moving = (w_grid > 0.5 / 255) | (np.abs(fields).sum((0, 3)) > 1e-3)
        if not moving.any():
            raise PortraitError("the avatar's face lies outside the chosen crop")
        rows, cols = np.nonzero(moving.any(1))[0], np.nonzero(moving.any(0))[0]
        gy0, gy1 = max(0, rows[0] - 1), min(gh_full, rows[-1] + 2)
        gx0, gx1 = max(0, cols[0] - 1), min(gw_full, cols[-1] + 2)
        self._grid_box = (gy0, gy1, gx0, gx1)
        self._pix_box = (
            gy0 * stride,
            min(out_h, gy1 * stride),
            gx0 * stride,
            min(out_w, gx1 * stride),
        )
        sl = (slice(gy0, gy1), slice(gx0, gx1))
        gh, gw = gy1 - gy0, gx1 - gx0
        self._gshape = (gh, gw)
        f32 = np.float32
        self._fields = np.ascontiguousarray(
            fields[:, sl[0], sl[1]].transpose(0, 3, 1, 2).reshape(len(self.channel_names), -1),
            f32,
        )  # (K, 2*gh*gw): x displacements of all grid points, then y
        # Each channel moves only part of the face (a blink, a brow): the bounding box of its
        # non-zero part, so a frame with few active channels adds only those boxes.
        self._boxes = []
        for field in self._fields.reshape(len(self.channel_names), 2, gh, gw):
            nz = np.abs(field).max(0) > 0
            rr, cc = np.nonzero(nz.any(1))[0], np.nonzero(nz.any(0))[0]
            if len(rr) == 0:
                self._boxes.append(None)
                continue
            box = (slice(rr[0], rr[-1] + 1), slice(cc[0], cc[-1] + 1))
            self._boxes.append((box, np.ascontiguousarray(field[:, box[0], box[1]])))
        self._box_area = np.array([0 if b is None else b[1].size for b in self._boxes])
        gx = (np.arange(gx0, gx1) * stride + off).astype(f32)
        gy = (np.arange(gy0, gy1) * stride + off).astype(f32)
        self._gxy = np.stack(np.meshgrid(gx, gy, indexing="xy")).astype(f32)  # (2, gh, gw)
        self._gw = np.ascontiguousarray(w_grid[sl], f32).reshape(-1)
        self._gxy_flat = self._gxy.reshape(2, -1)

        # Pivot: behind the face (the head's centre) at the height of the ears.
        oval = verts[list(mesh.FACE_OVAL)]
        ear_y = float(verts[[234, 454], 1].mean())
        self.pivot = np.array([oval[:, 0].mean(), ear_y, depth_pivot], np.float32)
        face_width_px = float(np.ptp(verts[: mesh.NUM_FACE_POINTS, 0]))
        self.pixels_per_metre = face_width_px / FACE_WIDTH_M
        # Head motion of a grid point, relative to the pivot: (R - 1) (p - pivot); the depth part
        # is the same every frame, so its product with the head weight is kept.
        self._rel = (self._gxy_flat - self.pivot[:2, None]).astype(f32)
        self._wz = (self._gw * (z[sl].astype(f32).reshape(-1) - self.pivot[2])).astype(f32)

        # The inverse warp samples the forward field and its Jacobian (6 planes) with zeros
        # outside: a zero border of one cell before and two after lets every sample read its
        # four corners without bounds checks once the coordinates are clamped to [-1, size].
        self._field = np.zeros((gh + 3, gw + 3, 6), f32)
        self._grid_origin = float(gx0 * stride + off), float(gy0 * stride + off)

        # Bilinear sampling of the photo in the final resampling, as a table of per-cell
        # coefficients: value = a + tx (b - a) + ty (c - a) + tx ty (a - b - c + d) for the cell's
        # corners a, b (right), c (below), d; the edge is repeated (grid_sample's border mode).
        # The table is in output units (x 255, + 0.5 to round by truncation), so a sample is
        # four gathers and three multiply-adds, and the uint8 frame one cast. A bilinear sample
        # stays within its corners, so it needs no clamping before the cast.
        edge = np.pad(self.base * 255, ((0, 0), (0, 1), (0, 1)), mode="edge")
        a, b = edge[:, :-1, :-1], edge[:, :-1, 1:]
        c, d = edge[:, 1:, :-1], edge[:, 1:, 1:]
        # One 16-byte record per pixel and channel: a sample is one gather per channel.
        coef = np.stack([a + 0.5, b - a, c - a, a - b - c + d], -1).reshape(3, -1, 4)
        self._coef = np.ascontiguousarray(coef, f32).view(np.dtype((np.void, 16)))[..., 0]
        py0, py1, px0, px1 = self._pix_box
        self._up_rows = _upsample_taps(py1 - py0, gh, stride)
        self._up_cols = _upsample_taps(px1 - px0, gw, stride)
        self._px = np.arange(px0, px1, dtype=f32)
        self._py = np.arange(py0, py1, dtype=f32)[:, None]
        # Scratch buffers reused every frame: fresh multi-megabyte temporaries cost page faults
        # (the allocator hands large blocks back to the system), which doubled the frame time.
        self._scratch = _Scratch(gh * gw, (py1 - py0) * (px1 - px0), (gh, gw))

        # Sparse copies of the contours drawn over the warp: inner lips and eyelids.
        lips = list(mesh.LIPS_INNER_UPPER) + list(mesh.LIPS_INNER_LOWER)
        eyes = []
        for upper, lower in (
            (mesh.EYE_A_UPPER, mesh.EYE_A_LOWER),
            (mesh.EYE_B_UPPER, mesh.EYE_B_LOWER),
        ):
            side = "Left" if verts[list(upper), 0].mean() > self.face.origin[0] else "Right"
            eyes.append((side, list(upper), list(lower)))
        self._eyes = eyes
        ids = lips + [i for _, up, lo in eyes for i in up + lo]
        self._sparse_xy = verts[ids, :2].astype(np.float32)
        self._sparse_z = (depth_pivot + DEPTH_SCALE * (verts[ids, 2] - depth_pivot)).astype(
            np.float32
        )
        self._sparse_bases = vbases[:, ids]  # (K, S, 2)
        self._sparse_w = _sample_points(
            weight[None], self._sparse_xy[:, 0], self._sparse_xy[:, 1], border=False
        )[0]
        n_up = len(mesh.LIPS_INNER_UPPER)
        self._n_lips = 2 * n_up
        rest = self._sparse_xy
        self._rest_lips = (rest[:n_up], rest[n_up : 2 * n_up])
        self._rest_gap = float(np.linalg.norm(rest[n_up // 2] - rest[n_up + n_up // 2]))
        self._mouth_width = float(np.linalg.norm(rest[0] - rest[n_up - 1]))
        self._blink_index = {n: i for i, n in enumerate(self.channel_names)}
        self._mouth_colours(verts)

    # ------------------------------------------------------------------------------------------

    def _crop_resize(self, array: np.ndarray) -> np.ndarray:
        """(H, W, C) float array -> (C, out_h, out_w) float32 of the crop box, antialiased.

        Bicubic when enlarging; when shrinking, an antialiased resize to about the output scale
        followed by bilinear sampling of the exact (fractional) box. Both are separable, so each
        is one matrix per axis.
        """
        x0, y0, bw, bh = self.crop
        h, w = array.shape[:2]
        ix0, iy0 = int(math.floor(x0)), int(math.floor(y0))
        ix1, iy1 = min(w, int(math.ceil(x0 + bw))), min(h, int(math.ceil(y0 + bh)))
        sub = array[iy0:iy1, ix0:ix1].astype(np.float64)
        sw, sh = ix1 - ix0, iy1 - iy0
        # Output pixel centres in the crop's pixel units (pixel centres at k + 0.5).
        xs = (np.arange(self.width) + 0.5) * bw / self.width + x0 - ix0
        ys = (np.arange(self.height) + 0.5) * bh / self.height + y0 - iy0
        if bw / self.width > 1.0:  # antialias first, then sample the exact sub-pixel box
            factor = bw / self.width
            nh, nw = max(1, round(sh / factor)), max(1, round(sw / factor))
            my = _sample_matrix(ys * nh / sh - 0.5, nh, "bilinear") @ _antialias_matrix(sh, nh)
            mx = _sample_matrix(xs * nw / sw - 0.5, nw, "bilinear") @ _antialias_matrix(sw, nw)
        else:
            my = _sample_matrix(ys - 0.5, sh, "bicubic")
            mx = _sample_matrix(xs - 0.5, sw, "bicubic")
        return _separable(my, sub, mx)

    def _mouth_colours(self, verts: np.ndarray) -> None:
        img = self.base.transpose(1, 2, 0)
        h, w = img.shape[:2]

        def sample(ids: Sequence[int]) -> np.ndarray:
            xy = np.round(verts[list(ids), :2]).astype(int)
            xy[:, 0] = xy[:, 0].clip(0, w - 1)
            xy[:, 1] = xy[:, 1].clip(0, h - 1)
            return img[xy[:, 1], xy[:, 0]].mean(0)

        lip = sample(mesh.LIPS_OUTER_UPPER + mesh.LIPS_OUTER_LOWER)
        skin = sample([50, 280, 101, 330, 9, 151])  # cheeks and forehead
        light = float(np.clip(skin.mean() / 0.6, 0.6, 1.2))
        teeth = np.array([0.93, 0.90, 0.84]) * light
        # Teeth visible between the parted lips of the photo are reused as they are.
        self._photo_teeth = None
        upper, lower = self._rest_lips
        inner = np.concatenate([upper, lower[::-1]])
        x0, y0 = np.floor(inner.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(inner.max(0)).astype(int) + 1
        if x1 > x0 and y1 > y0 and self._rest_gap >= 3:
            ys, xs = np.mgrid[y0:y1, x0:x1]
            inside = _inside_polygon(xs.ravel() + 0.0, ys.ravel() + 0.0, inner)
            px = img[y0:y1, x0:x1].reshape(-1, 3)[inside]
            bright = px[px.mean(1) > 0.85 * skin.mean()] if len(px) else px
            if len(px) >= 20 and len(bright) >= 0.3 * len(px):
                teeth = np.clip(bright.mean(0), 0, 1)
                c0, c1 = upper[0], upper[-1]
                length = float(np.linalg.norm(c1 - c0))
                ax = (c1 - c0) / length
                nx = np.array([-ax[1], ax[0]])
                st = lambda p: np.stack([(p - c0) @ ax, (p - c0) @ nx], -1)  # noqa: E731
                self._photo_teeth = (st(upper), st(lower), length, c0, ax, nx)
        # Lashes: the darkest pixels along the upper lids.
        lid_ids = list(mesh.EYE_A_UPPER[1:-1]) + list(mesh.EYE_B_UPPER[1:-1])
        lid = np.stack([sample([i]) for i in lid_ids])
        lash = lid[np.argsort(lid.mean(1))[: max(2, len(lid) // 3)]].mean(0)
        self._lash = (0.8 * lash).astype(np.float32).reshape(3, 1, 1)
        self._cavity = np.clip(0.35 * lip + 0.03, 0, 1).astype(np.float32).reshape(3, 1, 1)
        self._teeth = np.clip(teeth, 0, 1).astype(np.float32).reshape(3, 1, 1)

    # ------------------------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.width, self.height

    def rest(self) -> np.ndarray:
        """The portrait as shown at rest (uint8 (H, W, 3)), i.e. the cropped, resized photo."""
        return self.base_u8.copy()

    def _weights(self, blendshapes: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        bs = np.clip(np.nan_to_num(blendshapes[self._bs_index]), 0.0, 1.0)
        g = np.sin(np.clip(np.nan_to_num(gaze), -0.6, 0.6))
        return np.concatenate([bs, g]).astype(np.float32)

    def _head_params(self, head: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        head = np.nan_to_num(head)
        yaw, pitch, roll = (float(np.clip(a, -0.6, 0.6)) for a in head[:3])
        rot = _rotation(yaw, pitch, roll)
        ppm = self.pixels_per_metre
        # Rig translation: x to the avatar's left (image right), y up, z towards the camera.
        shift = np.array([head[3] * ppm, -head[4] * ppm], np.float32)
        zoom = 1.0 / max(0.5, 1.0 - float(head[5]) / CAMERA_DISTANCE_M)
        return rot, shift, zoom

    def render(
        self,
        frame: Frame | None = None,
        *,
        head: Sequence[float] | np.ndarray | None = None,
        gaze: Sequence[float] | np.ndarray | None = None,
        blendshapes: Sequence[float] | np.ndarray | None = None,
    ) -> np.ndarray:
        """One frame: uint8 (H, W, 3) RGB, a new array.

        Give a :class:`~infp_sdk.Frame`, or the raw arrays: ``head`` (6: yaw, pitch, roll in
        radians, x, y, z in metres), ``gaze`` (4: left yaw, left pitch, right yaw, right pitch in
        radians), ``blendshapes`` (52 ARKit weights in 0..1). Missing parts are at rest.
        """
        if frame is not None:
            head = frame.head if head is None else head
            gaze = frame.gaze if gaze is None else gaze
            blendshapes = frame.blendshapes if blendshapes is None else blendshapes
        head = _vector(head, 6, "head")
        gaze = _vector(gaze, 4, "gaze")
        blendshapes = _vector(blendshapes, NUM_BLENDSHAPES, "blendshapes")
        weights = self._weights(blendshapes, gaze)
        rot, shift, zoom = self._head_params(head)

        back = self._inverse_warp(self._forward(weights, rot, shift, zoom))
        region = self._resample(back)  # (h, w, 3) in output units

        # 4: mouth interior and lash lines.
        sparse = self._sparse_positions(weights, rot, shift, zoom)
        planes = region.transpose(2, 0, 1)
        self._mouth(planes, sparse[: self._n_lips])
        self._lids(planes, sparse[self._n_lips :], weights)
        py0, py1, px0, px1 = self._pix_box
        out = self.base_u8.copy()
        np.copyto(out[py0:py1, px0:px1], region, casting="unsafe")  # truncation = rounding
        return out

    def _forward(
        self, weights: np.ndarray, rot: np.ndarray, shift: np.ndarray, zoom: float
    ) -> np.ndarray:
        """1-2: where each coarse grid point of the photo goes, as a displacement (2, gh*gw)."""
        gh, gw = self._gshape
        n = gh * gw
        ws = self._scratch
        active = np.flatnonzero(weights)
        if 3 * self._box_area[active].sum() < self._fields.size:
            # few channels: add their boxes (the full product reads every field, ~20 MB at 512)
            grid = ws.expr.reshape(2, gh, gw)
            grid[:] = 0
            for k in active:
                if self._boxes[k] is not None:
                    (rows, cols), field = self._boxes[k]
                    grid[:, rows, cols] += weights[k] * field
        else:
            np.dot(weights, self._fields, out=ws.expr)
        expr = ws.expr.reshape(2, n)
        # The head moves point p (around the pivot) to zoom * R p: the displacement is
        # (zoom R - 1) (p - pivot), p = grid point + expression, mixed in by the head weight.
        m = (zoom * rot[:2].astype(np.float64) - np.eye(2, 3)).tolist()
        fwd = ws.forward
        move, tmp = ws.g[0], ws.g[1]
        for k in range(2):
            np.multiply(self._rel[0], m[k][0], out=move)
            np.multiply(self._rel[1], m[k][1], out=tmp)
            move += tmp
            np.multiply(expr[0], m[k][0], out=tmp)
            move += tmp
            np.multiply(expr[1], m[k][1], out=tmp)
            move += tmp
            move += float(shift[k])
            move *= self._gw
            np.multiply(self._wz, m[k][2], out=tmp)
            move += tmp
            np.add(expr[k], move, out=fwd[k])
        return fwd

    def _inverse_warp(self, forward: np.ndarray) -> np.ndarray:
        """3: the source of each grid point, as a displacement (2, gh*gw).

        The source of target x is the y with y + forward(y) = x. Newton steps with the field's
        Jacobian (finite differences on the grid): plain fixed-point steps diverge where the warp
        stretches the image by more than 2x, as in an opening mouth. Points that do not move
        (forward exactly 0) are their own source and are left out.
        """
        gh, gw = self._gshape
        st = float(self.stride)
        ws = self._scratch
        # The six planes fx, fy, dfx/dx, dfy/dx, dfx/dy, dfy/dy, zero-bordered, stored as one
        # record of 6 per cell so that the table below is built by sequential passes.
        field = self._field
        inner = field[1 : gh + 1, 1 : gw + 1]
        fwd = forward.reshape(2, gh, gw)
        for ch in range(2):
            inner[:, :, ch] = fwd[ch]
            np.subtract(fwd[ch, :, 2:], fwd[ch, :, :-2], out=inner[:, 1:-1, 2 + ch])
            np.subtract(fwd[ch, 2:, :], fwd[ch, :-2, :], out=inner[1:-1, :, 4 + ch])
        inner[:, :, 2:] *= 1 / (2 * st)
        # Per-cell bilinear coefficients of the six planes, one 96-byte record per cell, so a
        # sample is one gather: v = a + tx (b - a) + ty (c - a) + tx ty (a - b - c + d).
        coef = ws.field_coef.view(np.float32).reshape(gh + 2, gw + 2, 6, 4)
        a, b = field[:-1, :-1], field[:-1, 1:]
        c, d = field[1:, :-1], field[1:, 1:]
        ba, dc = ws.field_tmp
        coef[..., 0] = a
        np.subtract(b, a, out=ba)
        coef[..., 1] = ba
        np.subtract(c, a, out=coef[..., 2])
        np.subtract(d, c, out=dc)
        np.subtract(dc, ba, out=coef[..., 3])

        back = ws.back
        back[:] = 0
        moving = np.flatnonzero((forward[0] != 0) | (forward[1] != 0))
        n = len(moving)
        parts = max(self._threads if n >= 4096 else 1, -(-n // BAND_PIXELS))
        bounds = np.linspace(0, n, parts + 1).astype(int)
        jobs = [(moving[i:j], i) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]
        self._map(lambda job: self._newton(forward, *job), jobs)
        return back

    def _newton(self, forward: np.ndarray, points: np.ndarray, start: int) -> None:
        """Newton steps for the grid points ``points`` (flat indices), results into the scratch
        ``back``; ``start`` is where this share's slice of the scratch buffers begins."""
        gh, gw = self._gshape
        st = float(self.stride)
        ws = self._scratch
        row = gw + 2
        ox, oy = self._grid_origin
        table = ws.field_coef
        back = ws.back
        x = np.take(self._gxy_flat, points, axis=1)
        y = x - np.take(forward, points, axis=1)
        for it in range(self.iterations):
            n = len(points)
            if n == 0:
                return
            cx, cy, tmp, det = (ws.n[i][start : start + n] for i in range(4))
            k = ws.k[start : start + n]
            cell = ws.cell6[start : start + n]
            f = cell.view(np.float32).reshape(n, 6, 4)
            ok = ws.ok[start : start + n]
            # Grid coordinates of y (cell j's centre at j), clamped into the zero border.
            np.subtract(y[0], ox, out=cx)
            cx *= 1 / st
            np.clip(cx, -1, gw, out=cx)
            np.subtract(y[1], oy, out=cy)
            cy *= 1 / st
            np.clip(cy, -1, gh, out=cy)
            # flat index of the cell, computed exactly in float32 (< 2**24)
            np.floor(cy, out=tmp)
            cy -= tmp  # ty
            tmp *= row
            det[:] = cx
            np.floor(cx, out=cx)
            det -= cx  # tx
            tmp += cx
            tmp += row + 1
            k[:] = tmp
            tx, ty = det, cy
            np.take(table, k, out=cell, mode="clip")
            txy = np.multiply(tx, ty, out=cx)
            v = ws.v[:, start : start + n]
            for ch in range(6):
                out = v[ch]
                np.multiply(f[:, ch, 1], tx, out=out)
                out += f[:, ch, 0]
                np.multiply(f[:, ch, 2], ty, out=tmp)
                out += tmp
                np.multiply(f[:, ch, 3], txy, out=tmp)
                out += tmp
            rx, ry = v[0], v[1]
            rx += y[0]
            rx -= x[0]
            ry += y[1]
            ry -= x[1]
            a, c, b, d = v[2], v[3], v[4], v[5]  # d(y + f)/dy = [[a, b], [c, d]]
            a += 1
            d += 1
            np.multiply(a, d, out=det)
            np.multiply(b, c, out=tmp)
            det -= tmp
            np.greater(det, 0.15, out=ok)  # near a fold: a damped fixed-point step instead
            np.maximum(det, 0.15, out=det)
            np.divide(ok, det, out=det)  # 1/det where ok, else 0
            # step = J^-1 r where ok, r / 2 elsewhere
            np.multiply(d, rx, out=cx)
            np.multiply(b, ry, out=tmp)
            cx -= tmp
            cx *= det
            np.multiply(a, ry, out=cy)
            np.multiply(c, rx, out=tmp)
            cy -= tmp
            cy *= det
            np.logical_not(ok, out=ok)
            np.multiply(rx, ok, out=tmp)
            tmp *= 0.5
            cx += tmp
            np.multiply(ry, ok, out=tmp)
            tmp *= 0.5
            cy += tmp
            y[0] -= cx
            y[1] -= cy
            if it + 2 == self.iterations:
                # Before the last step: points whose step was under a thousandth of a pixel
                # have converged (the next step would move them by about a millionth).
                np.abs(cx, out=cx)
                np.abs(cy, out=cy)
                np.maximum(cx, cy, out=cx)
                keep = np.flatnonzero(cx > NEWTON_TOLERANCE)
                if len(keep) < 0.9 * n:
                    back[:, points] = y - x
                    points = points[keep]
                    x, y = np.take(x, keep, axis=1), np.take(y, keep, axis=1)
        back[:, points] = y - x

    def _map(self, fn: Any, jobs: list) -> None:
        """Run ``fn`` over ``jobs``, on the renderer's threads when it has more than one."""
        if len(jobs) == 1 or self._pool is None:
            for job in jobs:
                fn(job)
        else:
            for _ in self._pool.map(fn, jobs):
                pass

    def _resample(self, back: np.ndarray) -> np.ndarray:
        """The moving region of the frame, (h, w, 3) float32 in output units (x 255 + 0.5): the
        photo sampled at pixel + back, ``back`` upsampled bilinearly from the coarse grid."""
        gh, gw = self._gshape
        ws = self._scratch
        r0, r1, ry = self._up_rows
        c0, c1, cx = self._up_cols
        h, w = len(r0), len(c0)
        grid = back.reshape(2, gh, gw)
        rows = ws.rows[: 2 * h * gw].reshape(2, h, gw)
        rows2 = ws.rows2[: 2 * h * gw].reshape(2, h, gw)
        np.take(grid, r0, axis=1, out=rows, mode="clip")
        np.take(grid, r1, axis=1, out=rows2, mode="clip")
        rows2 -= rows
        rows2 *= ry[:, None]
        rows += rows2
        region = ws.region[: h * w * 3].reshape(h, w, 3)
        # Bands of rows small enough that a band's temporaries stay in the CPU cache: the many
        # passes numpy makes over them then cost far less than over whole-frame arrays.
        bands = max(self._threads, -(-h * w // BAND_PIXELS))
        bounds = np.linspace(0, h, bands + 1).astype(int)
        self._map(
            lambda band: self._resample_rows(rows, region, *band),
            list(zip(bounds[:-1], bounds[1:], strict=True)),
        )
        return region

    def _resample_rows(self, rows: np.ndarray, region: np.ndarray, r0: int, r1: int) -> None:
        """Rows r0..r1 of :meth:`_resample` (each thread takes a band of rows)."""
        c0, c1, cx = self._up_cols
        w = len(c0)
        ws = self._scratch
        x, y, tx, t = (ws.p[i].reshape(-1, w)[r0:r1] for i in range(4))
        i = ws.pk.reshape(-1, w)[r0:r1]
        for pos, tap, edge, limit in (
            (x, rows[0, r0:r1], self._px, self.width),
            (y, rows[1, r0:r1], self._py[r0:r1], self.height),
        ):
            np.take(tap, c0, axis=1, out=pos, mode="clip")
            np.take(tap, c1, axis=1, out=t, mode="clip")
            t -= pos
            t *= cx
            pos += t
            pos += edge
            np.clip(pos, 0, limit - 1, out=pos)
        # flat index of the top-left corner (exact in float32: < 2**24 pixels)
        np.floor(x, out=t)
        x -= t  # tx
        np.floor(y, out=tx)
        y -= tx  # ty
        tx *= self.width
        tx += t
        i[:] = tx
        np.multiply(x, y, out=t)  # tx ty
        acc, tmp = ws.p[4].reshape(-1, w)[r0:r1], ws.p[5].reshape(-1, w)[r0:r1]
        cell = ws.cell.reshape(-1, w)[r0:r1]
        coef = cell.view(np.float32).reshape(r1 - r0, w, 4)
        for ch in range(3):
            np.take(self._coef[ch], i, out=cell, mode="clip")
            np.multiply(coef[..., 1], x, out=acc)
            acc += coef[..., 0]
            np.multiply(coef[..., 2], y, out=tmp)
            acc += tmp
            np.multiply(coef[..., 3], t, out=tmp)
            np.add(acc, tmp, out=region[r0:r1, :, ch])

    def _sparse_positions(
        self, weights: np.ndarray, rot: np.ndarray, shift: np.ndarray, zoom: float
    ) -> np.ndarray:
        """Where the lip and eyelid contour vertices land in this frame (S, 2)."""
        expr = np.tensordot(weights, self._sparse_bases, axes=1)
        src = self._sparse_xy + expr
        p = np.concatenate([src, self._sparse_z[:, None]], 1) - self.pivot
        moved = (p @ rot.T)[:, :2] * zoom + self.pivot[:2] + shift
        return src + self._sparse_w[:, None] * (moved - src)

    def _between(self, upper: np.ndarray, lower: np.ndarray, pad: int = 2) -> Any:
        """Pixel coordinates of the region between two contours that share their end points.

        Returns None when it is empty, else (rows, cols slices into the moving region, s, t,
        t_upper, t_lower, length): s runs along the corner-to-corner axis, t across it (down).
        """
        py0, py1, px0, px1 = self._pix_box
        pts = np.concatenate([upper, lower])
        x_lo, y_lo = np.floor(pts.min(0)).astype(int) - pad
        x_hi, y_hi = np.ceil(pts.max(0)).astype(int) + pad + 1
        x_lo, x_hi = max(x_lo, px0), min(x_hi, px1)
        y_lo, y_hi = max(y_lo, py0), min(y_hi, py1)
        c0, c1 = upper[0], upper[-1]
        length = float(np.linalg.norm(c1 - c0))
        if x_hi <= x_lo or y_hi <= y_lo or length < 2:
            return None
        ax = (c1 - c0) / length
        nx = np.array([-ax[1], ax[0]])
        ys = np.arange(y_lo, y_hi, dtype=np.float32)[:, None] - np.float32(c0[1])
        xs = np.arange(x_lo, x_hi, dtype=np.float32)[None, :] - np.float32(c0[0])
        s = xs * np.float32(ax[0]) + ys * np.float32(ax[1])
        t = xs * np.float32(nx[0]) + ys * np.float32(nx[1])

        def st(p: np.ndarray) -> np.ndarray:
            return np.stack([(p - c0) @ ax, (p - c0) @ nx], -1)

        t_up = _interp_t(s, st(upper))
        t_lo = _interp_t(s, st(lower))
        rows = slice(y_lo - py0, y_hi - py0)
        cols = slice(x_lo - px0, x_hi - px0)
        return rows, cols, s, t, t_up, t_lo, length

    def _mouth(self, region: np.ndarray, lips: np.ndarray) -> None:
        """Open lips: the cavity and teeth, drawn into ``region`` (3, h, w) in output units."""
        n_up = self._n_lips // 2
        upper, lower = lips[:n_up], lips[n_up:]
        gap = float(np.linalg.norm(upper[n_up // 2] - lower[n_up // 2]))
        opening = (gap - self._rest_gap) / (0.06 * self._mouth_width)
        if opening <= 0.02:
            return
        found = self._between(upper, lower)
        if found is None:
            return
        rows, cols, s, t, t_up, t_lo, length = found
        inside = np.clip((t - t_up + 0.7) / 1.4, 0, 1) * np.clip((t_lo - t + 0.7) / 1.4, 0, 1)
        inside = inside * (s > 0) * (s < length)
        span = np.maximum(t_lo - t_up, 1e-3)
        depth = np.clip((t - t_up) / span, 0, 1)
        across = np.clip(s / length, 0, 1)
        centre = np.sin(np.float32(math.pi) * across)
        # Cavity: darkest in the middle, lighter towards the lips and corners.
        colour = self._cavity * (1.0 - 0.5 * centre * np.sin(np.float32(math.pi) * depth))
        d_up = t - t_up
        if self._photo_teeth is not None:
            # The photo shows teeth between the lips: they stay attached to the upper lip
            # instead of stretching with the opening, and the cavity shows below them.
            r_up, r_lo, r_len, r_c0, r_ax, r_nx = self._photo_teeth
            s_r = across * np.float32(r_len)
            tu_r = _interp_t(s_r, r_up)
            tl_r = _interp_t(s_r, r_lo)
            gap_r = np.maximum(tl_r - tu_r, 0)
            t_src = tu_r + np.maximum(d_up, 0)
            teeth_a = np.clip((gap_r - d_up) / 2.0, 0, 1)
            sx = np.float32(r_c0[0]) + s_r * np.float32(r_ax[0]) + t_src * np.float32(r_nx[0])
            sy = np.float32(r_c0[1]) + s_r * np.float32(r_ax[1]) + t_src * np.float32(r_nx[1])
            teeth = _sample_points(self.base, sx, sy, border=True)
            colour = colour * (1 - teeth_a) + teeth * teeth_a
        else:
            # Upper teeth hang from the upper lip; lower teeth show a little above the lower lip.
            tooth_h = np.minimum(0.45 * span, np.float32(0.12 * length))
            upper_t = np.clip((t_up + tooth_h - t) / 1.5, 0, 1)
            lower_h = np.clip(0.3 * span - np.float32(0.05 * length), 0, np.float32(0.07 * length))
            lower_t = np.clip((t - (t_lo - lower_h)) / 1.5, 0, 1) * 0.6 * (lower_h > 0.5)
            lateral = np.clip(1.0 - np.abs(across - 0.5) / 0.38, 0, 1) ** 0.6
            teeth_a = np.clip(np.maximum(upper_t, lower_t) * lateral, 0, 1)
            # Teeth are shaded by the lip above them and towards the corners.
            lip_shadow = 0.8 + 0.2 * np.clip(d_up / np.maximum(tooth_h, 1.0), 0, 1)
            teeth_shade = (0.7 + 0.3 * centre) * lip_shadow
            colour = colour * (1 - teeth_a) + self._teeth * teeth_shade * teeth_a
        alpha = (inside * np.float32(min(1.0, opening)))[None]
        sub = region[:, rows, cols]
        sub *= 1 - alpha
        sub += (colour * 255 + 0.5) * alpha  # the region is in output units

    def _lids(self, region: np.ndarray, contours: np.ndarray, weights: np.ndarray) -> None:
        """Closed or nearly closed eyes: the slit left by the warp becomes a lash line."""
        k = 0
        for side, up, lo in self._eyes:
            upper = contours[k : k + len(up)]
            lower = contours[k + len(up) : k + len(up) + len(lo)]
            k += len(up) + len(lo)
            i = self._blink_index.get(f"eyeBlink{side}")
            blink = float(weights[i]) if i is not None else 0.0
            a = min(1.0, max(0.0, (blink - 0.55) / 0.35))
            if a <= 0:
                continue
            found = self._between(upper, lower, pad=3)
            if found is None:
                continue
            rows, cols, s, t, t_up, t_lo, length = found
            mid = (t_up + t_lo) / 2
            half = (np.abs(t_lo - t_up) / 2 + 1.5) * (
                0.3 + 0.7 * np.sin(np.float32(math.pi) * np.clip(s / length, 0, 1))
            )
            line = np.clip((half - np.abs(t - mid)) / 0.9 + 0.5, 0, 1)
            line = line * (s > 0) * (s < length)
            alpha = (line * np.float32(a))[None]
            sub = region[:, rows, cols]
            sub *= 1 - alpha
            sub += (self._lash * 255 + 0.5) * alpha  # the region is in output units


def _interp_t(s: np.ndarray, chain: np.ndarray) -> np.ndarray:
    """Piecewise-linear t(s) through a lip contour's (s, t) points, at the positions ``s``."""
    order = np.argsort(chain[:, 0])
    xp = np.maximum.accumulate(chain[order, 0]).astype(np.float32)
    fp = chain[order, 1].astype(np.float32)
    idx = np.clip(np.searchsorted(xp, s), 1, len(xp) - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    f0, f1 = fp[idx - 1], fp[idx]
    w = np.clip((s - x0) / np.maximum(x1 - x0, 1e-6), 0, 1)
    return f0 + w * (f1 - f0)


def _inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd test of points (x, y) against a closed polygon (M, 2)."""
    inside = np.zeros(x.shape, bool)
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for ax, ay, bx, by in zip(px, py, qx, qy, strict=True):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < xc)
    return inside


def _vector(value: Any, n: int, name: str) -> np.ndarray:
    if value is None:
        return np.zeros(n, np.float32)
    a = np.asarray(value, dtype=np.float32).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} must have {n} values, got {a.shape[0]}")
    return a
