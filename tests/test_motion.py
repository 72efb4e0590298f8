"""The motion contract: blendshape names and orders, the rig vector, Frame."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infp_sdk import (
    ARKIT_BLENDSHAPES,
    MEDIAPIPE_BLENDSHAPES,
    UNITY_BLENDSHAPES,
    Frame,
    blendshape_index,
    from_arkit_order,
    to_arkit_order,
)
from infp_sdk.motion import RIG_DIM, frame_time, latent_to_rig, rig_to_latent


def test_arkit_order_is_unreals():
    assert len(ARKIT_BLENDSHAPES) == 52 and len(set(ARKIT_BLENDSHAPES)) == 52
    expected = {0: "eyeBlinkLeft", 7: "eyeBlinkRight", 14: "jawForward", 17: "jawOpen",
                18: "mouthClose", 23: "mouthSmileLeft", 41: "browDownLeft", 43: "browInnerUp",
                46: "cheekPuff", 49: "noseSneerLeft", 51: "tongueOut"}  # fmt: skip
    for i, name in expected.items():
        assert ARKIT_BLENDSHAPES[i] == name


@pytest.mark.parametrize(
    "spelling, name",
    [("eyeBlink_L", "eyeBlinkLeft"), ("EYEBLINKRIGHT", "eyeBlinkRight"),
     ("JawOpen", "jawOpen"), ("blendShape.mouthSmile_R", "mouthSmileRight"),
     ("mouthSmileLeft", "mouthSmileLeft")],
)  # fmt: skip
def test_name_spellings(spelling, name):
    assert blendshape_index(spelling) == ARKIT_BLENDSHAPES.index(name)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown blendshape name 'jawWobble'"):
        blendshape_index("jawWobble")


def test_other_orders_map_onto_ours():
    ours = np.linspace(0, 1, 52, dtype=np.float32)
    unity = from_arkit_order(ours, UNITY_BLENDSHAPES)
    assert UNITY_BLENDSHAPES[0] == "BrowDownLeft" and len(UNITY_BLENDSHAPES) == 52
    np.testing.assert_array_equal(to_arkit_order(unity, UNITY_BLENDSHAPES), ours)

    mp = from_arkit_order(ours, MEDIAPIPE_BLENDSHAPES)
    assert MEDIAPIPE_BLENDSHAPES[0] == "_neutral" and MEDIAPIPE_BLENDSHAPES[25] == "jawOpen"
    back = to_arkit_order(mp, MEDIAPIPE_BLENDSHAPES)
    tongue = ARKIT_BLENDSHAPES.index("tongueOut")
    assert back[tongue] == 0  # MediaPipe has no tongueOut
    np.testing.assert_array_equal(np.delete(back, tongue), np.delete(ours, tongue))

    by_name = to_arkit_order({"jawOpen": 0.7, "eyeBlink_L": 0.2, "_neutral": 1.0})
    assert by_name[17] == pytest.approx(0.7) and by_name[0] == pytest.approx(0.2)
    with pytest.raises(KeyError):
        to_arkit_order({"_neutral": 1.0}, strict=True)
    with pytest.raises(ValueError, match="weights but"):
        to_arkit_order([0.1, 0.2], ["jawOpen"])


def test_rig_round_trip_and_ranges():
    rng = np.random.default_rng(0)
    head = rng.normal(0, 0.2, (5, 6)).astype(np.float32)
    gaze = rng.normal(0, 0.2, (5, 4)).astype(np.float32)
    blend = rng.uniform(0, 1, (5, 52)).astype(np.float32)
    latent = rig_to_latent(head, gaze, blend)
    assert latent.shape == (5, RIG_DIM) and latent.dtype == np.float32
    h, g, b = latent_to_rig(latent)
    np.testing.assert_allclose(h, head, atol=1e-6)
    np.testing.assert_allclose(g, gaze, atol=1e-6)
    np.testing.assert_allclose(b, blend, atol=1e-6)
    _, _, clipped = latent_to_rig(np.full(RIG_DIM, 5.0, np.float32))
    assert clipped.max() == 1.0
    with pytest.raises(ValueError, match="not the rig"):
        latent_to_rig(np.zeros(16))


def test_frame_fields_and_json():
    latent = rig_to_latent(np.zeros(6), np.zeros(4), np.full(52, 0.25))
    frame = Frame.from_rig_latent(3, latent, speaking=0.9)
    assert frame.t == pytest.approx(frame_time(3)) == pytest.approx(0.14)
    assert frame.blendshape("jaw_open") == pytest.approx(0.25)
    assert frame.blendshapes.dtype == np.float32 and frame.image is None
    d = json.loads(json.dumps(frame.to_dict()))
    assert set(d) == {"index", "t", "speaking", "head", "gaze", "blendshapes", "latent"}
    assert len(d["blendshapes"]) == 52 and len(d["head"]) == 6 and len(d["gaze"]) == 4
