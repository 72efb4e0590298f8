"""The portrait renderer: rig (head pose, gaze, 52 blendshapes) -> RGB frame, in torch.

How a frame is made (all shapes fixed at construction, so the per-frame work is a handful of
tensor operations on a coarse grid plus one full-resolution resampling):

1. Expression: the blendshape and gaze weights mix precomputed dense displacement fields
   (one per channel, rasterised once from the control mesh with barycentric weights) into one
   2-D field, on a grid at half the output resolution covering only the moving region.
2. Head pose: every grid point carries a depth (from the face mesh, falling back to the head's
   centre on the rings around it); the points are turned by yaw, pitch and roll around a pivot
   behind the face at ear height, projected orthographically, shifted and scaled by the head
   translation, and mixed in by the head weight (1 on the head, fading down the neck and into a
   band of background, 0 beyond), so the background stays exactly still.
3. The forward field (where each source point goes) is inverted by a few fixed-point steps
   (source = target - displacement(source)), upsampled, and the portrait is resampled with
   ``grid_sample``; only the moving region is resampled, the rest is copied.
4. Mouth: where the lips have parted further than in the photo, a cavity with a hint of upper and
   lower teeth is drawn between the inner lip contours.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..motion import ARKIT_BLENDSHAPES, NUM_BLENDSHAPES, Frame
from . import mesh
from .avatar import Avatar
from .image import PortraitError
from .shapes import FaceFrame, vertex_bases

DEFAULT_SIZE = 512
FACE_CROP = 2.6
"""The ``crop="face"`` box is this many face heights (brow-to-chin mesh) tall."""
FACE_WIDTH_M = 0.14
"""Width of the face mesh in metres: converts the rig's head translation into pixels."""
DEPTH_SCALE = 0.75
"""Depth relief used for head rotation, relative to the face mesh's (see ``Renderer``)."""
CAMERA_DISTANCE_M = 0.6
"""Distance from camera to face assumed for the rig's z translation (perspective scale)."""


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


class Renderer:
    """Animates one portrait from the rig. Build with :func:`load_portrait`.

    ``render(frame)`` returns uint8 (H, W, 3) RGB. The renderer keeps no per-frame state, so frames
    can be rendered in any order; it is not safe to call from two threads at once.
    """

    def __init__(
        self,
        avatar: Avatar,
        size: int | tuple[int, int] = DEFAULT_SIZE,
        crop: str | float = "face",
        device: str | torch.device | None = None,
        *,
        stride: int = 2,
        iterations: int = 3,
    ):
        avatar.validate()
        out_w, out_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if out_w < 16 or out_h < 16 or out_w > 4096 or out_h > 4096:
            raise ValueError(f"output size must be 16..4096 pixels a side, got {out_w}x{out_h}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.avatar = avatar
        self.width, self.height = out_w, out_h
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
        weight = torch.where(weight < 0.5 / 255, torch.zeros_like(weight), weight.clamp(max=1))
        self.base = base.clamp(0, 1).to(self.device)  # (3, H, W)
        self.base_u8 = (
            (self.base * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
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
        w_grid = F.interpolate(weight[None, None], size=(gh_full, gw_full), mode="area")[
            0, 0
        ].numpy()

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
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        self._fields = (
            t(fields[:, sl[0], sl[1]].transpose(0, 3, 1, 2))
            .reshape(len(self.channel_names), -1)
            .to(self.device)
        )  # (K, 2*gh*gw)
        gx = (np.arange(gx0, gx1) * stride + off).astype(np.float32)
        gy = (np.arange(gy0, gy1) * stride + off).astype(np.float32)
        self._gshape = (gh, gw)
        self._gxy = torch.stack(torch.meshgrid(t(gx), t(gy), indexing="xy")).to(self.device)
        self._gz = t(z[sl]).to(self.device)
        self._gw = t(w_grid[sl]).to(self.device)
        # Normalised coordinates (grid_sample, align_corners=False) of the coarse grid and of the
        # output pixels of the moving region.
        self._norm_scale = torch.tensor(
            [2.0 / (gw * stride), 2.0 / (gh * stride)], dtype=torch.float32, device=self.device
        ).view(2, 1, 1)
        self._norm_origin = torch.tensor(
            [gx0 * stride - 0.5, gy0 * stride - 0.5], dtype=torch.float32, device=self.device
        ).view(2, 1, 1)
        py0, py1, px0, px1 = self._pix_box
        pxs = torch.arange(px0, px1, dtype=torch.float32, device=self.device)
        pys = torch.arange(py0, py1, dtype=torch.float32, device=self.device)
        self._pxy = torch.stack(torch.meshgrid(pxs, pys, indexing="xy"))  # (2, h, w)
        self._full_norm = torch.tensor(
            [2.0 / out_w, 2.0 / out_h], dtype=torch.float32, device=self.device
        ).view(2, 1, 1)

        # Pivot: behind the face (the head's centre) at the height of the ears.
        oval = verts[list(mesh.FACE_OVAL)]
        ear_y = float(verts[[234, 454], 1].mean())
        self.pivot = np.array([oval[:, 0].mean(), ear_y, depth_pivot], np.float32)
        self._pivot_t = torch.as_tensor(self.pivot, device=self.device).view(3, 1)
        face_width_px = float(np.ptp(verts[: mesh.NUM_FACE_POINTS, 0]))
        self.pixels_per_metre = face_width_px / FACE_WIDTH_M

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
        grid = torch.as_tensor(self._sparse_xy, dtype=torch.float32).view(1, 1, -1, 2)
        grid = (grid + 0.5) * torch.tensor([2.0 / out_w, 2.0 / out_h]) - 1
        self._sparse_w = F.grid_sample(weight[None, None], grid, align_corners=False)[0, 0, 0]
        self._sparse_w = self._sparse_w.numpy()
        n_up = len(mesh.LIPS_INNER_UPPER)
        self._n_lips = 2 * n_up
        rest = self._sparse_xy
        self._rest_lips = (rest[:n_up], rest[n_up : 2 * n_up])
        self._rest_gap = float(np.linalg.norm(rest[n_up // 2] - rest[n_up + n_up // 2]))
        self._mouth_width = float(np.linalg.norm(rest[0] - rest[n_up - 1]))
        self._blink_index = {n: i for i, n in enumerate(self.channel_names)}
        self._mouth_colours(verts)

    # ------------------------------------------------------------------------------------------

    def _crop_resize(self, array: np.ndarray) -> torch.Tensor:
        """(H, W, C) float array -> (C, out_h, out_w) tensor of the crop box, antialiased."""
        x0, y0, bw, bh = self.crop
        h, w = array.shape[:2]
        ix0, iy0 = int(math.floor(x0)), int(math.floor(y0))
        ix1, iy1 = min(w, int(math.ceil(x0 + bw))), min(h, int(math.ceil(y0 + bh)))
        sub = torch.from_numpy(np.ascontiguousarray(array[iy0:iy1, ix0:ix1])).permute(2, 0, 1)
        # Resample the exact (fractional) box: an affine grid over the integer-aligned crop.
        sw, sh = ix1 - ix0, iy1 - iy0
        down = bw / self.width > 1.0
        if down:  # antialias first, then sample the exact sub-pixel box
            factor = bw / self.width
            sub = F.interpolate(
                sub[None],
                size=(max(1, round(sh / factor)), max(1, round(sw / factor))),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
        xs = (torch.arange(self.width, dtype=torch.float32) + 0.5) * bw / self.width + x0 - ix0
        ys = (torch.arange(self.height, dtype=torch.float32) + 0.5) * bh / self.height + y0 - iy0
        grid = torch.stack(torch.meshgrid(xs / sw * 2 - 1, ys / sh * 2 - 1, indexing="xy"), -1)
        mode = "bilinear" if down else "bicubic"
        out = F.grid_sample(
            sub[None], grid[None], mode=mode, padding_mode="border", align_corners=False
        )
        return out[0]

    def _mouth_colours(self, verts: np.ndarray) -> None:
        img = self.base.permute(1, 2, 0).cpu().numpy()
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
        self._lash = torch.tensor(0.8 * lash, dtype=torch.float32).to(self.device).view(3, 1, 1)
        self._cavity = torch.tensor(np.clip(0.35 * lip + 0.03, 0, 1), dtype=torch.float32)
        self._teeth = torch.tensor(np.clip(teeth, 0, 1), dtype=torch.float32)
        self._cavity = self._cavity.to(self.device).view(3, 1, 1)
        self._teeth = self._teeth.to(self.device).view(3, 1, 1)

    # ------------------------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.width, self.height

    def rest(self) -> np.ndarray:
        """The portrait as shown at rest (uint8 (H, W, 3)), i.e. the cropped, resized photo."""
        return self.base_u8.cpu().numpy()

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
        """One frame: uint8 (H, W, 3) RGB.

        Give a :class:`~infp_sdk.Frame`, or the raw arrays: ``head`` (6: yaw, pitch, roll in
        radians, x, y, z in metres), ``gaze`` (4: left yaw, left pitch, right yaw, right pitch in
        radians), ``blendshapes`` (52 ARKit weights in 0..1). Missing parts are at rest.
        """
        return (
            self.render_tensor(frame, head=head, gaze=gaze, blendshapes=blendshapes).cpu().numpy()
        )

    @torch.no_grad()
    def render_tensor(
        self,
        frame: Frame | None = None,
        *,
        head: Any = None,
        gaze: Any = None,
        blendshapes: Any = None,
    ) -> torch.Tensor:
        """Like :meth:`render` but returns the uint8 (H, W, 3) tensor on the renderer's device."""
        if frame is not None:
            head = frame.head if head is None else head
            gaze = frame.gaze if gaze is None else gaze
            blendshapes = frame.blendshapes if blendshapes is None else blendshapes
        head = _vector(head, 6, "head")
        gaze = _vector(gaze, 4, "gaze")
        blendshapes = _vector(blendshapes, NUM_BLENDSHAPES, "blendshapes")
        weights = self._weights(blendshapes, gaze)
        rot, shift, zoom = self._head_params(head)
        dev = self.device

        # 1-2: forward displacement on the coarse grid.
        gh, gw = self._gshape
        w_t = torch.from_numpy(weights).to(dev)
        expr = (w_t @ self._fields).view(2, gh, gw)
        src = self._gxy + expr
        p = torch.cat([src, self._gz[None]]).view(3, -1) - self._pivot_t
        q = torch.from_numpy(rot).to(dev) @ p
        moved = (q[:2] * zoom + self._pivot_t[:2]).view(2, gh, gw)
        moved = moved + torch.from_numpy(shift).to(dev).view(2, 1, 1)
        forward = expr + self._gw * (moved - src)

        # 3: invert it: the source of target x is the y with y + forward(y) = x. Newton steps
        # with the field's Jacobian (finite differences on the grid): plain fixed-point steps
        # diverge where the warp stretches the image by more than 2x, as in an opening mouth.
        st = float(self.stride)
        jx = torch.zeros_like(forward)
        jy = torch.zeros_like(forward)
        jx[:, :, 1:-1] = (forward[:, :, 2:] - forward[:, :, :-2]) / (2 * st)
        jy[:, 1:-1, :] = (forward[:, 2:, :] - forward[:, :-2, :]) / (2 * st)
        field = torch.cat([forward, jx, jy])[None]  # fx, fy, dfx/dx, dfy/dx, dfx/dy, dfy/dy
        x = self._gxy
        y = x - forward
        for _ in range(self.iterations):
            norm = ((y - self._norm_origin) * self._norm_scale - 1).permute(1, 2, 0)[None]
            f = F.grid_sample(
                field, norm, mode="bilinear", padding_mode="zeros", align_corners=False
            )[0]
            rx = y[0] + f[0] - x[0]
            ry = y[1] + f[1] - x[1]
            a, c = 1 + f[2], f[3]  # d(y + f)/dy as [[a, b], [c, d]]
            b, d = f[4], 1 + f[5]
            det = a * d - b * c
            ok = det > 0.15  # near a fold, fall back to a damped fixed-point step
            inv = torch.where(ok, 1.0 / det.clamp(min=0.15), torch.zeros_like(det))
            step_x = torch.where(ok, (d * rx - b * ry) * inv, 0.5 * rx)
            step_y = torch.where(ok, (a * ry - c * rx) * inv, 0.5 * ry)
            y = y - torch.stack([step_x, step_y])
        back = (y - x)[None]
        py0, py1, px0, px1 = self._pix_box
        back = F.interpolate(back, scale_factor=self.stride, mode="bilinear", align_corners=False)[
            :, :, : py1 - py0, : px1 - px0
        ]
        pos = self._pxy + back[0]
        norm = ((pos + 0.5) * self._full_norm - 1).permute(1, 2, 0)[None]
        region = F.grid_sample(
            self.base[None], norm, mode="bilinear", padding_mode="border", align_corners=False
        )[0]

        # 4: mouth interior and lash lines.
        sparse = self._sparse_positions(weights, rot, shift, zoom)
        self._mouth(region, sparse[: self._n_lips])
        self._lids(region, sparse[self._n_lips :], weights)
        out = self.base_u8.clone()
        out[py0:py1, px0:px1] = (region * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
        return out

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
        dev = self.device
        ys = torch.arange(y_lo, y_hi, dtype=torch.float32, device=dev)[:, None] - float(c0[1])
        xs = torch.arange(x_lo, x_hi, dtype=torch.float32, device=dev)[None, :] - float(c0[0])
        s = xs * float(ax[0]) + ys * float(ax[1])
        t = xs * float(nx[0]) + ys * float(nx[1])

        def st(p: np.ndarray) -> np.ndarray:
            return np.stack([(p - c0) @ ax, (p - c0) @ nx], -1)

        t_up = _interp_t(s, st(upper), dev)
        t_lo = _interp_t(s, st(lower), dev)
        rows = slice(y_lo - py0, y_hi - py0)
        cols = slice(x_lo - px0, x_hi - px0)
        return rows, cols, s, t, t_up, t_lo, length

    def _mouth(self, region: torch.Tensor, lips: np.ndarray) -> None:
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
        inside = ((t - t_up + 0.7) / 1.4).clamp(0, 1) * ((t_lo - t + 0.7) / 1.4).clamp(0, 1)
        inside = inside * (s > 0) * (s < length)
        span = (t_lo - t_up).clamp(min=1e-3)
        depth = ((t - t_up) / span).clamp(0, 1)
        across = (s / length).clamp(0, 1)
        centre = torch.sin(math.pi * across)
        # Cavity: darkest in the middle, lighter towards the lips and corners.
        colour = self._cavity * (1.0 - 0.5 * centre * torch.sin(math.pi * depth))
        d_up = t - t_up
        if self._photo_teeth is not None:
            # The photo shows teeth between the lips: they stay attached to the upper lip
            # instead of stretching with the opening, and the cavity shows below them.
            r_up, r_lo, r_len, r_c0, r_ax, r_nx = self._photo_teeth
            s_r = across * r_len
            tu_r = _interp_t(s_r, r_up, self.device)
            tl_r = _interp_t(s_r, r_lo, self.device)
            gap_r = (tl_r - tu_r).clamp(min=0)
            t_src = tu_r + d_up.clamp(min=0)
            teeth_a = ((gap_r - d_up) / 2.0).clamp(0, 1)
            sx = float(r_c0[0]) + s_r * float(r_ax[0]) + t_src * float(r_nx[0])
            sy = float(r_c0[1]) + s_r * float(r_ax[1]) + t_src * float(r_nx[1])
            norm = torch.stack(
                [
                    (sx + 0.5) * self._full_norm[0, 0, 0] - 1,
                    (sy + 0.5) * self._full_norm[1, 0, 0] - 1,
                ],
                -1,
            )
            teeth = F.grid_sample(
                self.base[None],
                norm[None],
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )[0]
            colour = colour * (1 - teeth_a) + teeth * teeth_a
        else:
            # Upper teeth hang from the upper lip; lower teeth show a little above the lower lip.
            tooth_h = torch.clamp(0.45 * span, max=0.12 * length)
            upper_t = ((t_up + tooth_h - t) / 1.5).clamp(0, 1)
            lower_h = torch.clamp(0.3 * span - 0.05 * length, min=0, max=0.07 * length)
            lower_t = ((t - (t_lo - lower_h)) / 1.5).clamp(0, 1) * 0.6 * (lower_h > 0.5)
            lateral = (1.0 - ((across - 0.5).abs() / 0.38)).clamp(0, 1) ** 0.6
            teeth_a = (torch.maximum(upper_t, lower_t) * lateral).clamp(0, 1)
            # Teeth are shaded by the lip above them and towards the corners.
            lip_shadow = 0.8 + 0.2 * (d_up / tooth_h.clamp(min=1.0)).clamp(0, 1)
            teeth_shade = (0.7 + 0.3 * centre) * lip_shadow
            colour = colour * (1 - teeth_a) + self._teeth * teeth_shade * teeth_a
        alpha = (inside * min(1.0, opening))[None]
        sub = region[:, rows, cols]
        sub.mul_(1 - alpha).add_(colour * alpha)

    def _lids(self, region: torch.Tensor, contours: np.ndarray, weights: np.ndarray) -> None:
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
            half = ((t_lo - t_up).abs() / 2 + 1.5) * (
                0.3 + 0.7 * torch.sin(math.pi * (s / length).clamp(0, 1))
            )
            line = ((half - (t - mid).abs()) / 0.9 + 0.5).clamp(0, 1)
            line = line * (s > 0) * (s < length)
            alpha = (line * a)[None]
            sub = region[:, rows, cols]
            sub.mul_(1 - alpha).add_(self._lash * alpha)


def _interp_t(s: torch.Tensor, chain: np.ndarray, dev: torch.device) -> torch.Tensor:
    """Piecewise-linear t(s) through a lip contour's (s, t) points, at the positions ``s``."""
    order = np.argsort(chain[:, 0])
    xs = np.maximum.accumulate(chain[order, 0])
    ts = chain[order, 1]
    xp = torch.as_tensor(xs, dtype=torch.float32, device=dev)
    fp = torch.as_tensor(ts, dtype=torch.float32, device=dev)
    idx = torch.searchsorted(xp, s.contiguous()).clamp(1, len(xp) - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    f0, f1 = fp[idx - 1], fp[idx]
    w = ((s - x0) / (x1 - x0).clamp(min=1e-6)).clamp(0, 1)
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


def default_threads() -> int:
    """Torch CPU threads worth using for rendering (all cores, at most 4)."""
    return max(1, min(4, os.cpu_count() or 1))
