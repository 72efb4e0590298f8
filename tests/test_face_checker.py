"""An independent check of rendered pictures: dlib's 68-point landmarks (test-only).

The renderer is built from MediaPipe's face mesh; measuring its frames with the same detector
would let its own biases pass for success. dlib's HOG face detector and 68-point shape predictor
(from dlib-bin and face-recognition-models) are a different detector trained on different data.
Their model's training data is licensed for non-commercial use only, so they stay in the tests
and are never a dependency of the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"

dlib = pytest.importorskip("dlib", reason="the face checks need dlib-bin (pip install -e .[dev])")


def _predictor_path() -> str:
    # Located without importing face_recognition_models, which needs pkg_resources (gone from
    # recent setuptools) only to build this very path.
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the face checks need face-recognition-models (pip install -e .[dev])")
    path = Path(next(iter(spec.submodule_search_locations)))
    return str(path / "models" / "shape_predictor_68_face_landmarks.dat")


@lru_cache(maxsize=1)
def _models():
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(_predictor_path())


@dataclass
class Measure:
    """Facts about one face, in units of the distance between the eye centres."""

    points: np.ndarray  # (68, 2)
    mouth: float  # inner-lip opening
    eyes: float  # mean eye aspect ratio (height / width)
    yaw: float  # nose tip right of the face's middle, / half face width
    pitch: float  # nose tip below the temple line, / eye distance


def measure(rgb: np.ndarray) -> Measure | None:
    """Landmarks of the largest face in an RGB image, or None when dlib finds no face."""
    detector, predictor = _models()
    img = np.ascontiguousarray(rgb)
    boxes = detector(img, 0) or detector(img, 1)  # upsample only for small faces (slow)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: b.width() * b.height())
    shape = predictor(img, box)
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)
    right_eye, left_eye = p[36:42].mean(0), p[42:48].mean(0)
    iod = float(np.linalg.norm(left_eye - right_eye))

    def ear(e: np.ndarray) -> float:
        return (np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (
            2 * np.linalg.norm(e[0] - e[3])
        )

    mid = (p[0] + p[16]) / 2
    half_width = np.linalg.norm(p[16] - p[0]) / 2
    return Measure(
        points=p,
        mouth=float(np.linalg.norm(p[66] - p[62]) / iod),
        eyes=float((ear(p[36:42]) + ear(p[42:48])) / 2),
        yaw=float((p[30, 0] - mid[0]) / half_width),
        pitch=float((p[30, 1] - mid[1]) / iod),
    )


def test_checker_finds_the_bundled_portrait():
    from PIL import Image

    m = measure(np.asarray(Image.open(PORTRAIT).convert("RGB")))
    assert m is not None
    assert 0.15 < m.eyes < 0.5  # open eyes
    assert abs(m.yaw) < 0.2  # roughly frontal
