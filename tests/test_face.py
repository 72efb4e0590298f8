"""The portrait: prepare, the .avatar bundle, the renderer, checked by an independent detector."""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image
from test_face_checker import PORTRAIT, measure

from infp_sdk.face import (
    Avatar,
    PortraitError,
    Renderer,
    load_avatar,
    load_portrait,
    prepare,
    sibling_avatar,
)
from infp_sdk.face.avatar import AVATAR_VERSION
from infp_sdk.motion import Frame, blendshape_index, rig_to_latent

pytest.importorskip("mediapipe", reason="preparing portraits needs the face extra")

SHIPPED = PORTRAIT.with_suffix(".avatar")


def weights(**named: float) -> np.ndarray:
    b = np.zeros(52, np.float32)
    for name, value in named.items():
        b[blendshape_index(name)] = value
    return b


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(PORTRAIT).convert("RGB"))


@pytest.fixture(scope="module")
def avatar(photo) -> Avatar:
    return prepare(photo)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return load_portrait(PORTRAIT)


@pytest.fixture(scope="module")
def rest(renderer):
    m = measure(renderer.render())
    assert m is not None, "the checker must find the face at rest"
    return m


# ---------------------------------------------------------------------------------------------
# prepare and the bundle
# ---------------------------------------------------------------------------------------------


def test_prepare_finds_the_face_mesh(avatar, photo):
    assert avatar.image.shape == photo.shape
    assert avatar.meta["faces_found"] == 1
    assert len(avatar.vertices) > 478 and avatar.triangles.max() < len(avatar.vertices)
    x0, y0, x1, y1 = avatar.meta["face_box"]
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # the astronaut's face
    # head weights: the face moves fully, the corners of the photo stay still
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    assert avatar.head_weight[cy, cx] == 255
    assert avatar.head_weight[5, 5] == 0 and avatar.head_weight[-5, -5] == 0


def test_avatar_round_trip(avatar, tmp_path):
    path = avatar.save(tmp_path / "a.avatar")
    back = load_avatar(path)
    for name in ("image", "vertices", "triangles", "head_weight"):
        np.testing.assert_array_equal(getattr(back, name), getattr(avatar, name))
    assert back.meta["groups"] == avatar.meta["groups"]
    with zipfile.ZipFile(path) as z:
        header = json.loads(z.read("avatar.json"))
    assert header["format"] == "infp-avatar" and header["version"] == AVATAR_VERSION


def test_shipped_avatar_matches_the_shipped_photo(photo):
    shipped = sibling_avatar(PORTRAIT)
    assert shipped is not None, "examples/portrait/astronaut.avatar is stale: run infp-sdk prepare"
    np.testing.assert_array_equal(shipped.image, photo)
    assert SHIPPED.stat().st_size < 1_500_000


def test_input_kinds(photo, avatar, tmp_path):
    ref = np.array(avatar.meta["face_box"])
    # RGBA, grayscale, PIL
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    for image in (rgba, gray, Image.fromarray(photo)):
        got = prepare(image)
        assert np.abs(np.array(got.meta["face_box"]) - ref).max() < 6
    # EXIF rotation: pixels stored sideways, the orientation tag says how to show them
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(photo, 1)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    path = tmp_path / "sideways.jpg"
    sideways.save(path, exif=exif, quality=95)
    got = prepare(path)
    assert got.image.shape == photo.shape
    assert np.abs(np.array(got.meta["face_box"]) - ref).max() < 8
    # large images are downscaled
    big = np.asarray(Image.fromarray(photo).resize((2048, 2048)))
    got = prepare(big)
    assert got.image.shape == (1024, 1024, 3)
    assert np.abs(np.array(got.meta["face_box"]) / 2 - ref).max() < 6


def test_two_faces_use_the_largest_and_warn(photo):
    small = np.asarray(Image.fromarray(photo).resize((320, 320)))
    canvas = np.full((512, 512 + 320, 3), 200, np.uint8)
    canvas[:, :512] = photo
    canvas[96:416, 512:] = small
    with pytest.warns(UserWarning, match="2 faces"):
        got = prepare(canvas)
    assert got.meta["faces_found"] == 2
    assert got.meta["face_box"][2] < 512  # the big face on the left


def test_bad_inputs_say_what_to_do(photo, tmp_path):
    blank = np.tile(np.linspace(0, 255, 400, dtype=np.uint8)[None, :, None], (300, 1, 3))
    with pytest.raises(PortraitError, match="no face found"):
        prepare(blank)
    tiny = np.asarray(Image.fromarray(photo).resize((180, 180)))  # face about 32 px wide
    with pytest.raises(PortraitError, match="(only .* px wide|no face found)"):
        prepare(tiny)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(PORTRAIT.read_bytes()[:2000])
    with pytest.raises(PortraitError, match="not a readable image"):
        prepare(corrupt)
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    with pytest.raises(PortraitError, match="not a readable image"):
        prepare(text)
    with pytest.raises(PortraitError, match="cannot read a portrait"):
        prepare(42)
    with pytest.raises(PortraitError, match="shape"):
        prepare(np.zeros((10, 10, 7), np.uint8))
    with pytest.raises(FileNotFoundError):
        load_portrait(tmp_path / "missing.jpg")
    assert issubclass(PortraitError, ValueError)


def test_tiny_face_is_refused_as_too_small(photo, monkeypatch):
    # Whether MediaPipe still sees a very small face varies; the size check itself must hold.
    import infp_sdk.face.portrait as prep

    monkeypatch.setattr(prep, "MIN_FACE_WIDTH", 200)
    with pytest.raises(PortraitError, match="only 92 px wide"):
        prep.prepare(photo)


def test_corrupt_avatars(avatar, tmp_path):
    junk = tmp_path / "junk.avatar"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(PortraitError, match="infp-sdk prepare"):
        load_avatar(junk)
    path = avatar.save(tmp_path / "ok.avatar")
    # a member missing
    partial = tmp_path / "partial.avatar"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(partial, "w") as dst:
        for item in src.namelist():
            if item != "triangles.npy":
                dst.writestr(item, src.read(item))
    with pytest.raises(PortraitError, match="lacks triangles.npy"):
        load_avatar(partial)
    # a newer format version
    newer = tmp_path / "newer.avatar"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "avatar.json":
                data = json.dumps({**json.loads(data), "version": AVATAR_VERSION + 1}).encode()
            dst.writestr(item, data)
    with pytest.raises(PortraitError, match="upgrade infp-sdk"):
        load_avatar(newer)
    # a pickled array is refused, not executed
    pickled = tmp_path / "pickled.avatar"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(pickled, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "vertices.npy":
                buf = io.BytesIO()
                np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            dst.writestr(item, data)
    with pytest.raises(PortraitError):
        load_avatar(pickled)


# ---------------------------------------------------------------------------------------------
# the renderer, measured by the independent checker
# ---------------------------------------------------------------------------------------------


def test_rest_is_the_photo(renderer):
    img = renderer.render()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, renderer.rest())


def test_mouth_follows_jaw_open(renderer, rest):
    sweep = np.linspace(0.0, 1.0, 6)
    opening = []
    for j in sweep:
        m = measure(renderer.render(blendshapes=weights(jawOpen=j)))
        assert m is not None
        opening.append(m.mouth)
    corr = np.corrcoef(sweep, opening)[0, 1]
    assert corr >= 0.8, (corr, opening)
    assert opening[-1] > rest.mouth + 0.2  # opens by at least a fifth of the eye distance


def test_eyes_close_on_blink(renderer, rest):
    closed = measure(renderer.render(blendshapes=weights(eyeBlinkLeft=1, eyeBlinkRight=1)))
    assert closed is not None
    assert closed.eyes < 0.6 * rest.eyes, (closed.eyes, rest.eyes)


@pytest.mark.parametrize("angle", [-0.3, 0.3])
def test_head_yaw_and_pitch_follow_the_command(renderer, rest, angle):
    yawed = measure(renderer.render(head=[angle, 0, 0, 0, 0, 0]))
    pitched = measure(renderer.render(head=[0, angle, 0, 0, 0, 0]))
    assert yawed is not None and pitched is not None
    # the nose moves towards the avatar's left (image right) for +yaw, down for +pitch
    d_yaw = yawed.yaw - rest.yaw
    d_pitch = pitched.pitch - rest.pitch
    assert np.sign(d_yaw) == np.sign(angle) and 0.3 < abs(d_yaw) / abs(np.sin(angle)) < 3
    assert np.sign(d_pitch) == np.sign(angle) and 0.3 < abs(d_pitch) / abs(np.sin(angle)) < 3


def test_background_far_from_the_head_stays_still(renderer):
    img = renderer.render(
        head=[0.35, -0.25, 0.25, 0.02, 0.02, 0.02],
        gaze=[0.3, 0.2, 0.3, 0.2],
        blendshapes=weights(jawOpen=1, mouthSmileLeft=1, browInnerUp=1, eyeBlinkLeft=1),
    )
    changed = np.abs(img.astype(int) - renderer.rest().astype(int)).max(-1) > 0
    assert changed.any()
    # "far" = more than 16 px (3 % of the frame) from any pixel that follows the head
    from scipy import ndimage

    near = ndimage.distance_transform_edt(renderer.head_weight == 0) <= 16
    assert (~near).sum() > 5000  # there is background to check
    assert not changed[~near].any()


def test_render_accepts_frames_and_raw_arrays(renderer):
    head = np.array([0.1, -0.05, 0.02, 0.0, 0.0, 0.0], np.float32)
    gaze = np.array([0.1, 0.0, 0.1, 0.0], np.float32)
    bs = weights(jawOpen=0.4, eyeBlinkLeft=0.3)
    frame = Frame.from_rig_latent(0, rig_to_latent(head, gaze, bs), 1.0)
    np.testing.assert_array_equal(
        renderer.render(frame), renderer.render(head=head, gaze=gaze, blendshapes=bs)
    )
    with pytest.raises(ValueError, match="52 values"):
        renderer.render(blendshapes=np.zeros(51))


def test_sizes_and_crops():
    r = load_portrait(SHIPPED, size=(320, 240), crop="full")
    img = r.render(head=[0.2, 0, 0, 0, 0, 0])
    assert img.shape == (240, 320, 3)
    r = load_portrait(load_avatar(SHIPPED), size=128, crop=4.0)
    assert r.render().shape == (128, 128, 3)
    with pytest.raises(ValueError, match="crop"):
        load_portrait(SHIPPED, crop="shoulders")
    with pytest.raises(ValueError, match="size"):
        load_portrait(SHIPPED, size=4)


def test_loading_an_avatar_is_quick():
    import time

    start = time.perf_counter()
    load_portrait(SHIPPED)
    assert time.perf_counter() - start < 3.0  # typically well under a second


def test_prepare_command(tmp_path, capsys):
    from infp_sdk.cli import main

    out = tmp_path / "me.avatar"
    assert main(["prepare", str(PORTRAIT), "-o", str(out)]) == 0
    assert load_avatar(out).meta["faces_found"] == 1
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert main(["prepare", str(bad), "-o", str(tmp_path / "bad.avatar")]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_photo_path_ignores_a_stale_avatar(tmp_path, photo):
    img = tmp_path / "p.png"
    Image.fromarray(photo).save(img)
    stale = prepare(photo)
    stale.meta["source_sha256"] = "0" * 64
    stale.save(tmp_path / "p.avatar")
    assert sibling_avatar(img) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_portrait(img, size=64).render().shape == (64, 64, 3)
