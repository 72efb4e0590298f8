"""Portrait preparation: find the face, fit the dense mesh, segment the head, build the avatar.

This is the only part of the face package that needs the ``face`` extra (MediaPipe's legacy face
mesh and selfie segmentation, Apache-2.0, models shipped inside the wheel; OpenCV comes with it).
Everything it finds is stored in the :class:`~infp_sdk.face.avatar.Avatar`, so rendering a
prepared avatar needs neither.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import mesh
from .avatar import AVATAR_FORMAT, AVATAR_VERSION, Avatar, file_sha256
from .image import MAX_SIDE, PortraitError, load_image

MIN_FACE_WIDTH = 64
"""Faces narrower than this (pixels, after downscaling) are refused: too few pixels to animate."""


def _require_mediapipe() -> Any:
    try:
        import cv2  # noqa: F401  (OpenCV comes with mediapipe)
        import mediapipe as mp
    except ImportError as e:
        raise ImportError(
            "preparing a portrait needs the face extra: pip install 'infp-sdk[face]' "
            f"(MediaPipe face mesh; {e}). A prepared .avatar renders without it."
        ) from None
    return mp


def prepare(image: Any, *, max_side: int = MAX_SIDE, source: str | None = None) -> Avatar:
    """Prepare a portrait for rendering: ``image`` -> :class:`Avatar`.

    ``image`` is a path, a numpy array or a PIL image (RGB, RGBA, grayscale; EXIF rotation is
    applied; images longer than ``max_side`` are downscaled). Raises :class:`PortraitError` when no
    face is found, the face is too small, or the file is not an image; with several faces the
    largest is used and a ``UserWarning`` says so.
    """
    sha = None
    if isinstance(image, (str, os.PathLike)):
        source = source or Path(image).name
        if Path(image).is_file():
            sha = file_sha256(image)
    rgb = load_image(image, max_side=max_side)
    mp = _require_mediapipe()
    faces = _detect_faces(mp, rgb)
    if not faces:
        raise PortraitError(
            f"no face found in the portrait{f' {source}' if source else ''}: use a photo with "
            "one face looking roughly at the camera, well lit, not cut off by the frame"
        )
    widths = [float(np.ptp(f[: mesh.NUM_FACE_POINTS, 0])) for f in faces]
    best = int(np.argmax(widths))
    if len(faces) > 1:
        warnings.warn(
            f"{len(faces)} faces found in the portrait; animating the largest "
            f"({widths[best]:.0f} px wide). Crop the photo to one face to choose another.",
            UserWarning,
            stacklevel=2,
        )
    points = faces[best]
    face_width = widths[best]
    if face_width < MIN_FACE_WIDTH:
        raise PortraitError(
            f"the face is only {face_width:.0f} px wide (at least {MIN_FACE_WIDTH}, ideally 200 or "
            "more, are needed): use a closer or higher-resolution photo, or crop it around the face"
        )
    person = _segment_person(mp, rgb)
    vertices, triangles, groups = build_mesh(points)
    head_weight = head_weight_map(rgb.shape[:2], points, person)
    xy = points[: mesh.NUM_FACE_POINTS, :2]
    meta = {
        "source": source,
        "source_sha256": sha,
        "detector": f"mediapipe {getattr(mp, '__version__', '?')} face_mesh (refined, 478 points)",
        "faces_found": len(faces),
        "face_box": [float(v) for v in (*xy.min(0), *xy.max(0))],
        "face_width": face_width,
        "groups": groups,
    }
    avatar = Avatar(rgb, vertices, triangles, head_weight, meta)
    avatar.validate("the prepared portrait")
    return avatar


# ----------------------------------------------------------------------------------------------
# Detection
# ----------------------------------------------------------------------------------------------


def _detect_faces(mp: Any, rgb: np.ndarray) -> list[np.ndarray]:
    """All faces as (478, 3) arrays: x, y, z in image pixels (z away from the camera)."""
    h, w = rgb.shape[:2]
    faces = _face_mesh(mp, rgb)
    if faces:
        return faces
    # The face mesh's own detector is a short-range one: a small face in a large photo, or a face
    # filling the whole frame, can escape it. Find boxes with the full-range detector, then fit
    # the mesh on a crop around each.
    found = []
    with mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    ) as detector:
        result = detector.process(rgb)
    for det in result.detections or []:
        box = det.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        half = 1.2 * max(box.width * w, box.height * h)
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            continue
        for face in _face_mesh(mp, np.ascontiguousarray(rgb[y0:y1, x0:x1]), max_faces=1):
            face[:, 0] += x0
            face[:, 1] += y0
            found.append(face)
    if not found:
        # A face that fills the frame: give the detector some margin.
        pad = max(h, w) // 3
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        for face in _face_mesh(mp, padded):
            face[:, :2] -= pad
            found.append(face)
    return found


def _face_mesh(mp: Any, rgb: np.ndarray, max_faces: int = 5) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True,
        max_num_faces=max_faces,
        refine_landmarks=True,
        min_detection_confidence=0.5,
    ) as fm:
        result = fm.process(rgb)
    faces = []
    for lms in result.multi_face_landmarks or []:
        # MediaPipe gives x, y normalised by the image size and z on the scale of x.
        pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lms.landmark], np.float32)
        if len(pts) == mesh.NUM_LANDMARKS:
            faces.append(pts)
    return faces


def _segment_person(mp: Any, rgb: np.ndarray) -> np.ndarray | None:
    """Person-vs-background probability (H, W) in 0..1, or None if segmentation failed."""
    try:
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
            mask = seg.process(rgb).segmentation_mask
    except Exception:  # noqa: BLE001  (segmentation only refines the head region)
        return None
    if mask is None or mask.shape != rgb.shape[:2]:
        return None
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Control mesh
# ----------------------------------------------------------------------------------------------


def _tessellation() -> np.ndarray:
    """MediaPipe's face-mesh triangles, recovered from its edge list (the 3-cliques)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    tris = set()
    for a, b in FACEMESH_TESSELATION:
        for c in neighbours[a] & neighbours[b]:
            tris.add(tuple(sorted((a, b, c))))
    return np.array(sorted(tris), np.int32)


def _stitch(inner: list[int], outer: list[int], pts: np.ndarray, centre: np.ndarray) -> list:
    """Triangles between two closed loops of vertices around ``centre``, matched by angle."""

    def order(loop: list[int]) -> tuple[list[int], np.ndarray]:
        d = pts[loop] - centre
        ang = np.arctan2(d[:, 1], d[:, 0])
        idx = np.argsort(ang)
        return [loop[i] for i in idx], ang[idx]

    a, aa = order(inner)
    b, ba = order(outer)
    # Walk both loops once around, always advancing the one whose next vertex comes first.
    aa = np.concatenate([aa, aa[:1] + 2 * math.pi])
    ba = np.concatenate([ba, ba[:1] + 2 * math.pi])
    i = j = 0
    tris = []
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and aa[i + 1] <= ba[j + 1]):
            tris.append((a[i % len(a)], a[(i + 1) % len(a)], b[j % len(b)]))
            i += 1
        else:
            tris.append((a[i % len(a)], b[j % len(b)], b[(j + 1) % len(b)]))
            j += 1
    return tris


def _ray_to_polygon(centre: np.ndarray, direction: np.ndarray, poly: np.ndarray) -> float:
    """Distance from ``centre`` along ``direction`` to the closed polygon ``poly`` (M, 2)."""
    best = math.inf
    for k in range(len(poly)):
        p, q = poly[k], poly[(k + 1) % len(poly)]
        e = q - p
        den = direction[0] * (-e[1]) - direction[1] * (-e[0])
        if abs(den) < 1e-9:
            continue
        r = p - centre
        t = (r[0] * (-e[1]) - r[1] * (-e[0])) / den
        s = (direction[0] * r[1] - direction[1] * r[0]) / den
        if t > 0 and -1e-6 <= s <= 1 + 1e-6:
            best = min(best, t)
    return best if math.isfinite(best) else 0.0


def build_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Landmarks (478, 3) -> (vertices, triangles, vertex groups) of the control mesh.

    The face mesh leaves the eyes and the mouth open; they are closed here (the mouth by a strip
    between the inner lips, each eye by a disc that follows the iris and a ring to the lids), and
    three rings of points around the face outline carry the motion into the forehead, hair and neck.
    """
    pts = np.asarray(points, np.float32).copy()
    tris = [tuple(t) for t in _tessellation()]

    # Mouth: a strip between the inner lip contours (corners shared).
    up, lo = mesh.LIPS_INNER_UPPER, mesh.LIPS_INNER_LOWER
    for i in range(len(up) - 1):
        for t in ((up[i], up[i + 1], lo[i + 1]), (up[i], lo[i], lo[i + 1])):
            if len(set(t)) == 3:
                tris.append(t)

    # Eyes: a ring of points around the iris centre, kept inside the lids.
    extra = []
    start = len(pts)
    for upper, lower, iris in (
        (mesh.EYE_A_UPPER, mesh.EYE_A_LOWER, mesh.IRIS_A),
        (mesh.EYE_B_UPPER, mesh.EYE_B_LOWER, mesh.IRIS_B),
    ):
        contour = list(upper) + list(lower[-2:0:-1])
        poly = pts[contour, :2]
        centre = pts[iris[0], :2]
        r_iris = float(np.mean(np.linalg.norm(pts[list(iris[1:]), :2] - centre, axis=1)))
        ring = []
        for j in range(mesh.EYE_RING_POINTS):
            theta = 2 * math.pi * j / mesh.EYE_RING_POINTS
            d = np.array([math.cos(theta), math.sin(theta)], np.float32)
            rho = min(0.8 * r_iris, 0.7 * _ray_to_polygon(centre, d, poly))
            ring.append(start + len(extra))
            extra.append([*(centre + rho * d), pts[iris[0], 2]])
        ext = np.concatenate([pts, np.array(extra, np.float32)])
        for j in range(len(ring)):
            tris.append((iris[0], ring[j], ring[(j + 1) % len(ring)]))
        tris += _stitch(ring, contour, ext[:, :2], centre)

    # Rings around the face outline. Depth goes back towards the head's centre so that a turn of
    # the head turns the hair around the face instead of sliding it.
    oval = list(mesh.FACE_OVAL)
    face_xy = pts[: mesh.NUM_FACE_POINTS, :2]
    face_width = float(np.ptp(face_xy[:, 0]))
    centre2 = pts[oval, :2].mean(0)
    z_oval = pts[oval, 2]
    z_pivot = float(pts[mesh.NOSE_TIP, 2] + 0.5 * face_width)
    ring_start = start + len(extra)
    prev = oval
    for k, s in enumerate(mesh.OUTER_RING_SCALES):
        ring = []
        blend = min(1.0, 0.6 * (k + 1))
        for v, z in zip(oval, z_oval, strict=True):
            ring.append(start + len(extra))
            extra.append([*(centre2 + s * (pts[v, :2] - centre2)), z + blend * (z_pivot - z)])
        n = len(oval)
        for i in range(n):
            a, b = prev[i], prev[(i + 1) % n]
            c, d = ring[i], ring[(i + 1) % n]
            tris += [(a, b, d), (a, d, c)]
        prev = ring
    vertices = np.concatenate([pts, np.array(extra, np.float32)])
    groups = {
        "landmarks": mesh.NUM_LANDMARKS,
        "eye_rings": [start, mesh.EYE_RING_POINTS, 2],
        "outer_rings": [ring_start, len(oval), len(mesh.OUTER_RING_SCALES)],
        "pivot_depth": z_pivot,
    }
    return vertices, np.array(tris, np.int32), groups


# ----------------------------------------------------------------------------------------------
# Head weight
# ----------------------------------------------------------------------------------------------


def head_weight_map(
    shape: tuple[int, int], points: np.ndarray, person: np.ndarray | None
) -> np.ndarray:
    """uint8 (H, W): 255 on the head and hair, fading down the neck and into the background.

    The head is the face outline plus the person's silhouette above the chin (hair); the neck
    follows less and less down to about two thirds of a face height below the chin; a band of
    background around the head (half a face width) stretches so the background stays put beyond.
    """
    import cv2

    h, w = shape
    xy = points[: mesh.NUM_FACE_POINTS, :2]
    face_w = float(np.ptp(xy[:, 0]))
    face_h = float(np.ptp(xy[:, 1]))
    cx = float(points[mesh.FACE_OVAL, 0].mean())
    chin_y = float(points[mesh.CHIN, 1])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(points[list(mesh.FACE_OVAL), :2]).astype(np.int32)], 1)
    oval = cv2.dilate(oval, np.ones((3, 3), np.uint8), iterations=max(1, int(0.04 * face_w)))
    head = oval.astype(np.float32)
    # How much of the head motion reaches a row: all above the chin, fading down the neck.
    neck = np.clip(1.0 - (yy - chin_y) / (0.65 * face_h), 0.0, 1.0)
    if person is not None:
        near = (np.abs(xx - cx) < 1.4 * face_w) & (yy < chin_y + 0.9 * face_h)
        silhouette = (person > 0.5) & near
        head = np.maximum(head, silhouette.astype(np.float32) * neck)
    else:
        # No segmentation: an ellipse around the face stands in for head and hair.
        ell = ((xx - cx) / (0.75 * face_w)) ** 2
        ell = ell + ((yy - (chin_y - 0.55 * face_h)) / (0.8 * face_h)) ** 2
        head = np.maximum(head, (ell < 1.0).astype(np.float32) * neck)
    core = (head > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(1 - core, cv2.DIST_L2, 5)
    band = np.clip(1.0 - dist / (0.5 * face_w), 0.0, 1.0) * neck
    weight = np.maximum(head, band * band * (3 - 2 * band))
    sigma = max(1.0, 0.06 * face_w)
    weight = cv2.GaussianBlur(weight, (0, 0), sigma)
    return np.round(np.clip(weight, 0.0, 1.0) * 255).astype(np.uint8)


__all__ = ["AVATAR_FORMAT", "AVATAR_VERSION", "MIN_FACE_WIDTH", "build_mesh", "prepare"]
