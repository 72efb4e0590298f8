"""What each rig channel does to the control mesh: per-vertex displacement bases.

Each ARKit blendshape (and each gaze angle) moves the control-mesh vertices along a fixed,
hand-built displacement, linear in its weight; the renderer sums them and then turns the head. The
displacements are written in the face's own frame so they work for any photo: ``u`` runs from the
avatar's right eye to its left eye (image right for an unmirrored photo), ``v`` points down the
face, and the unit is the distance between the eye centres (about 6.3 cm on an adult).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..motion import ARKIT_BLENDSHAPES
from . import mesh

EYEBALL_RADIUS = 0.19
"""Eyeball radius in eye distances (12 mm / 63 mm): how far the iris moves for a gaze angle."""
JAW_DROP = 0.38
"""How far the chin moves down at jawOpen = 1, in eye distances (about 2.4 cm)."""


@dataclass
class FaceFrame:
    """The face's own frame in image pixels: origin between the eyes, unit vectors, eye distance."""

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    iod: float

    @classmethod
    def from_landmarks(cls, pts: np.ndarray) -> FaceFrame:
        a = pts[list(mesh.EYE_A_UPPER + mesh.EYE_A_LOWER), :2].mean(0)
        b = pts[list(mesh.EYE_B_UPPER + mesh.EYE_B_LOWER), :2].mean(0)
        left, right = (a, b) if a[0] > b[0] else (b, a)  # avatar's left = image right
        iod = float(np.linalg.norm(left - right))
        u = (left - right) / max(iod, 1e-6)
        v = np.array([-u[1], u[0]], np.float32)
        return cls((left + right) / 2, u.astype(np.float32), v, iod)

    def to_face(self, xy: np.ndarray) -> np.ndarray:
        d = xy - self.origin
        return np.stack([d @ self.u, d @ self.v], -1) / self.iod

    def to_image(self, duv: np.ndarray) -> np.ndarray:
        """Displacements in face units (..., 2) -> image pixels (..., 2)."""
        return self.iod * (duv[..., :1] * self.u + duv[..., 1:2] * self.v)


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    order = np.argsort(xp)
    return np.interp(x, xp[order], fp[order])


def _gauss(uv: np.ndarray, centre: tuple[float, float] | np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((uv - np.asarray(centre, np.float32)) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma * sigma))


def vertex_bases(
    pts: np.ndarray, frame: FaceFrame, ring_level: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Displacement bases for the vertices ``pts`` (N, >=2) in image pixels.

    Returns (names, bases (K, N, 2)): the blendshape names that move anything, then
    ``gaze_left_yaw``, ``gaze_left_pitch``, ``gaze_right_yaw``, ``gaze_right_pitch`` (per unit of
    sin(angle)). ``ring_level`` (N,) is 0 on the face and 1, 2, 3 on the rings prepare added
    around it: the first ring (forehead, neck under the chin) keeps a third of the motion.
    """
    uv = frame.to_face(pts[:, :2])
    U, V = uv[:, 0], uv[:, 1]
    n = len(pts)
    B: dict[str, np.ndarray] = {}

    def add(name: str, du: np.ndarray | float, dv: np.ndarray | float, w: np.ndarray) -> None:
        d = np.zeros((n, 2), np.float32)
        d[:, 0] = du * w
        d[:, 1] = dv * w
        B[name] = B.get(name, 0) + d

    # --- mouth -------------------------------------------------------------------------------
    iu, il = list(mesh.LIPS_INNER_UPPER), list(mesh.LIPS_INNER_LOWER)
    ou, ol = list(mesh.LIPS_OUTER_UPPER), list(mesh.LIPS_OUTER_LOWER)
    slit_u = (uv[iu, 0] + uv[il, 0]) / 2
    slit_v = (uv[iu, 1] + uv[il, 1]) / 2
    corners = uv[[mesh.LIPS_OUTER_UPPER[0], mesh.LIPS_OUTER_UPPER[-1]]]
    c_lo, c_hi = float(corners[:, 0].min()), float(corners[:, 0].max())
    corner_v = float(corners[:, 1].mean())
    mouth_w = c_hi - c_lo
    v_slit = _interp(U, slit_u, slit_v)
    inside = (U >= c_lo) & (U <= c_hi)
    beyond = np.maximum(c_lo - U, U - c_hi).clip(0)
    # m: how much a vertex belongs to the lower jaw (1 = lower lip and chin, 0 = upper lip, nose)
    m_in = (V > v_slit).astype(np.float32)
    m_out = np.clip(0.5 + (V - corner_v) / (0.25 + 0.8 * beyond), 0, 1)
    m_out *= np.clip(1 - beyond / 0.55, 0, 1)
    m = np.where(inside, m_in, m_out)
    m[il + ol] = 1.0
    m[iu + ou] = 0.0
    m[[iu[0], iu[-1], ou[0], ou[-1]]] = 0.5
    below = V - v_slit
    # Lip bodies: the lower lip from the slit to 0.3 below, the upper lip to 0.25 above.
    taper = np.clip(1 - beyond / 0.12, 0, 1)
    lower_lip = m * np.clip(1 - below / 0.3, 0, 1) * (below > -0.02) * taper
    upper_lip = (1 - m) * np.clip(1 + below / 0.25, 0, 1) * (below < 0.02) * taper
    outer_lower = m * np.clip(1 - np.abs(below - 0.16) / 0.14, 0, 1) * taper
    outer_upper = (1 - m) * np.clip(1 - np.abs(below + 0.13) / 0.12, 0, 1) * taper
    mouth_centre = np.array([(c_lo + c_hi) / 2, corner_v], np.float32)
    side_l = np.clip(0.5 + (U - mouth_centre[0]) / (0.6 * mouth_w), 0, 1)  # avatar's left = +u
    side = {"Left": side_l, "Right": 1 - side_l}
    corner_of = {"Left": (c_hi, corner_v), "Right": (c_lo, corner_v)}
    sign = {"Left": 1.0, "Right": -1.0}

    # The lower lip opens in an arc: full drop in the middle, little at the corners; the chin
    # below drops as a whole.
    across = np.clip(np.abs(U - (c_lo + c_hi) / 2) / (0.5 * mouth_w), 0, 1)
    arc = np.sqrt(np.clip(1 - across**2, 0, 1))
    jaw = m * (arc + (1 - arc) * np.clip(below / 0.45, 0, 1))
    add("jawOpen", 0.0, JAW_DROP, jaw)
    add("jawForward", 0.0, 0.03, m)
    add("mouthClose", 0.0, -0.35, lower_lip)
    add("mouthFunnel", 0.0, -0.04, upper_lip)
    add("mouthFunnel", 0.0, 0.07, lower_lip)
    mouth_zone = _gauss(uv, mouth_centre, 0.32)
    add("mouthFunnel", -0.10 * (U - mouth_centre[0]) / (0.5 * mouth_w), 0.0, mouth_zone)
    add("mouthPucker", -0.16 * (U - mouth_centre[0]) / (0.5 * mouth_w), 0.0, mouth_zone)
    add("mouthRollLower", 0.0, -0.06, outer_lower)
    add("mouthRollUpper", 0.0, 0.05, outer_upper)
    add("mouthShrugLower", 0.0, -0.05, lower_lip)
    add("mouthShrugUpper", 0.0, -0.04, upper_lip)
    add("mouthLeft", 0.09, 0.0, mouth_zone)
    add("mouthRight", -0.09, 0.0, mouth_zone)
    for s in ("Left", "Right"):
        c = corner_of[s]
        near = _gauss(uv, c, 0.2)
        cheek = _gauss(uv, (sign[s] * 0.5, 0.5), 0.22)
        add(f"jaw{s}", sign[s] * 0.10, 0.0, m)
        add(f"mouthSmile{s}", sign[s] * 0.10, -0.09, near)
        add(f"mouthSmile{s}", 0.0, -0.04, cheek)
        add(f"mouthFrown{s}", 0.0, 0.08, near)
        add(f"mouthStretch{s}", sign[s] * 0.08, 0.03, near)
        add(f"mouthDimple{s}", sign[s] * 0.05, 0.0, _gauss(uv, c, 0.12))
        add(f"mouthPress{s}", 0.0, -0.03, outer_lower * side[s])
        add(f"mouthPress{s}", 0.0, 0.03, outer_upper * side[s])
        add(f"mouthLowerDown{s}", 0.0, 0.10, lower_lip * side[s])
        add(f"mouthUpperUp{s}", 0.0, -0.07, upper_lip * side[s])
        add(f"cheekSquint{s}", 0.0, -0.05, cheek)
        add(f"noseSneer{s}", 0.0, -0.05, _gauss(uv, (sign[s] * 0.15, 0.58), 0.12))
    for centre in (0.55, -0.55):
        add("cheekPuff", np.sign(centre) * 0.07, 0.0, _gauss(uv, (centre, 0.8), 0.22))

    # --- eyes and brows ----------------------------------------------------------------------
    eyes = {}
    for upper, lower, iris in (
        (mesh.EYE_A_UPPER, mesh.EYE_A_LOWER, mesh.IRIS_A),
        (mesh.EYE_B_UPPER, mesh.EYE_B_LOWER, mesh.IRIS_B),
    ):
        s = "Left" if uv[list(upper), 0].mean() > 0 else "Right"
        eyes[s] = (list(upper), list(lower), iris[0])
    brows = {}
    for brow in (mesh.BROW_A, mesh.BROW_B):
        s = "Left" if uv[list(brow), 0].mean() > 0 else "Right"
        brows[s] = uv[list(brow)]
    interior_mask = np.zeros(n, bool)
    eye_ring_ids = np.nonzero(ring_level < 0)[0]  # eye-ring vertices are marked -1
    for s, (upper, lower, iris) in eyes.items():
        uu, vu = uv[upper, 0], uv[upper, 1]
        ul, vl = uv[lower, 0], uv[lower, 1]
        e_lo, e_hi = float(min(uu.min(), ul.min())), float(max(uu.max(), ul.max()))
        eye_h = float(np.max(vl - _interp(ul, uu, vu)))
        eye_h = max(eye_h, 0.05)
        v_up = _interp(U, uu, vu)
        v_lo = _interp(U, ul, vl)
        lateral = np.clip(1 - np.maximum(e_lo - U, U - e_hi).clip(0) / 0.12, 0, 1)
        ring_near = np.linalg.norm(pts[eye_ring_ids, :2] - pts[iris, :2], axis=1)
        this_ring = eye_ring_ids[ring_near < 3 * frame.iod * 0.2]
        interior = np.zeros(n, bool)
        interior[list(set(upper) | set(lower) | {iris}) + list(this_ring)] = True
        interior_mask |= interior
        above = (~interior) & (V < v_up) & (V > v_up - 0.6)
        under = (~interior) & (V > v_lo) & (V < v_lo + 0.4)
        # Blink: the opening squashes onto a line 80 % of the way down; the lid skin above
        # follows, fading towards the brow; the skin below follows a little.
        meet = v_up + 0.8 * (v_lo - v_up)
        d_blink = np.where(interior, meet - V, 0.0)
        fall_up = np.clip(1 - (v_up - V) / 0.32, 0, 1) ** 1.5 * lateral
        d_blink = np.where(above, (meet - v_up) * fall_up, d_blink)
        fall_lo = np.clip(1 - (V - v_lo) / 0.15, 0, 1) * lateral
        d_blink = np.where(under, (meet - v_lo) * fall_lo, d_blink)
        add(f"eyeBlink{s}", 0.0, d_blink, np.ones(n, np.float32))
        # Wide: the upper lid goes up by a quarter of the opening; squint: the lower lid comes up.
        frac = np.clip((v_lo - V) / np.maximum(v_lo - v_up, 1e-3), 0, 1)
        wide = np.where(interior, -0.25 * eye_h * frac, 0.0)
        wide = np.where(above, -0.25 * eye_h * fall_up, wide)
        add(f"eyeWide{s}", 0.0, wide, np.ones(n, np.float32))
        squint = np.where(interior, -0.2 * eye_h * (1 - frac), 0.0)
        squint = np.where(under, -0.2 * eye_h * fall_lo, squint)
        add(f"eyeSquint{s}", 0.0, squint, np.ones(n, np.float32))
        # Brows: only the skin above the upper lid moves.
        over_eye = np.clip((v_up - V - 0.03) / 0.2, 0, 1)
        bu = brows[s]
        inner = bu[np.argmin(np.abs(bu[:, 0]))]
        outer = bu[np.argmax(np.abs(bu[:, 0]))]
        mid = bu.mean(0)
        add(f"browDown{s}", -np.sign(mid[0]) * 0.03, 0.08, _gauss(uv, mid, 0.28) * over_eye)
        add("browInnerUp", 0.0, -0.10, _gauss(uv, inner, 0.2) * over_eye)
        add(f"browOuterUp{s}", 0.0, -0.09, _gauss(uv, outer, 0.22) * over_eye)
        # Gaze: the iris disc moves; the lids and the skin stay.
        iris_disc = np.zeros(n, np.float32)
        iris_disc[[iris, *this_ring]] = 1.0
        key = "left" if s == "Left" else "right"
        add(f"gaze_{key}_yaw", EYEBALL_RADIUS, 0.0, iris_disc)
        add(f"gaze_{key}_pitch", 0.0, EYEBALL_RADIUS, iris_disc)

    keep = np.select([ring_level == 1, ring_level >= 2], [0.35, 0.0], 1.0).astype(np.float32)
    names = [nm for nm in ARKIT_BLENDSHAPES if nm in B] + [
        f"gaze_{e}_{a}" for e in ("left", "right") for a in ("yaw", "pitch")
    ]
    bases = np.stack([frame.to_image(B[nm] * keep[:, None]) for nm in names]).astype(np.float32)
    return names, bases
