"""Sinks: fps conversion, pacing, VMC and Live Link Face packets read back by independent parsers,
the virtual camera against a fake pyvirtualcam.Camera."""

from __future__ import annotations

import math
import socket
import struct
import time

import numpy as np
import pytest

from infp_sdk.io.livelink import LiveLinkFaceSink
from infp_sdk.io.publisher import NoImageError
from infp_sdk.io.sinks import FrameResampler, Output, PlayoutClock
from infp_sdk.io.vmc import VMCSink, unity_head_rotation
from infp_sdk.motion import ARKIT_BLENDSHAPES, FPS, Frame, rig_to_latent


def make_frame(index: int, seed: int = 0, image=None) -> Frame:
    rng = np.random.default_rng(seed + index)
    head = np.concatenate([rng.uniform(-0.3, 0.3, 3), rng.uniform(-0.01, 0.01, 3)])
    gaze = rng.uniform(-0.3, 0.3, 4)
    shapes = rng.uniform(0, 1, 52)
    frame = Frame.from_rig_latent(index, rig_to_latent(head, gaze, shapes), rng.uniform())
    frame.image = image
    return frame


def udp_listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


# ----------------------------------------------------------------------------------------------
# fps conversion and pacing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [30, 60])
def test_resampler_interpolates_on_the_media_clock(fps):
    frames = [make_frame(i) for i in range(50)]  # 2 s at 25 fps
    r = FrameResampler(fps)
    out = [o for f in frames for o in r.push(f)]
    assert [o.index for o in out] == list(range(len(out)))
    assert abs(len(out) - 2 * fps) <= 1
    for o in out[2:]:
        assert o.t == pytest.approx((o.index + 0.5) / fps)
        i = int(math.floor(o.t * FPS - 0.5))  # input frames i and i+1 bracket o.t
        a, b = frames[i], frames[i + 1]
        w = (o.t - a.t) / (b.t - a.t)
        np.testing.assert_allclose(o.blendshapes, a.blendshapes * (1 - w) + b.blendshapes * w,
                                   atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(o.head, a.head * (1 - w) + b.head * w, atol=1e-6)
    # a reset (index back to 0) starts the output clock over
    assert [o.index for o in r.push(make_frame(0))] == [0]


def test_resampler_at_25_fps_passes_frames_through():
    f = make_frame(3)
    assert FrameResampler(25).push(f) == [f]


def test_output_paces_a_burst_evenly():
    """Frames arriving in one burst (a hop) leave one every 1/fps seconds."""
    times = []

    class Recorder:
        def send(self, frame):
            times.append(time.monotonic())

        def close(self):
            pass

    clock = PlayoutClock(margin=0.02)
    out = Output(Recorder(), 50, clock)
    start = time.monotonic()
    burst = [make_frame(i) for i in range(10)]
    for f in burst:  # all 10 frames (400 ms of media) arrive at once
        clock.observe(f.t - 0.4 + (time.monotonic() - start), time.monotonic())
    clock.offset = start + 0.05 - burst[0].t  # first frame due in 50 ms
    for f in burst:
        out.put(f)
    time.sleep(0.7)
    out.close()
    gaps = np.diff(times)
    assert len(times) >= 18  # 10 frames at 25 fps -> ~19 at 50 fps
    assert np.all(np.abs(gaps - 0.02) < 0.012), gaps


# ----------------------------------------------------------------------------------------------
# VMC (OSC): decoded by python-osc's own parser
# ----------------------------------------------------------------------------------------------


def test_vmc_bundle_decodes_with_python_osc():
    from pythonosc.osc_bundle import OscBundle
    from pythonosc.osc_message import OscMessage

    listener = udp_listener()
    sink = VMCSink("127.0.0.1", listener.getsockname()[1])
    frame = make_frame(7)
    sink.send(frame)
    data, _ = listener.recvfrom(65536)
    sink.close()
    listener.close()
    assert OscBundle.dgram_is_bundle(data)
    messages = [m for m in OscBundle(data)]
    assert all(isinstance(m, OscMessage) for m in messages)
    blend = [m for m in messages if m.address == "/VMC/Ext/Blend/Val"]
    assert [m.params[0] for m in blend] == list(ARKIT_BLENDSHAPES)
    np.testing.assert_allclose([m.params[1] for m in blend], frame.blendshapes, atol=1e-6)
    addresses = [m.address for m in messages]
    assert addresses.index("/VMC/Ext/Blend/Apply") > addresses.index("/VMC/Ext/Blend/Val")
    head = next(m for m in messages if m.address == "/VMC/Ext/Bone/Pos")
    assert head.params[0] == "Head" and len(head.params) == 8
    q = np.array(head.params[4:])
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-6)
    assert next(m for m in messages if m.address == "/VMC/Ext/T").params[0] == pytest.approx(
        frame.t
    )


def _rotate(q, v):
    """Rotate v by unit quaternion q = (x, y, z, w)."""
    x, y, z, w = q
    u = np.array([x, y, z])
    v = np.asarray(v, float)
    return v + 2 * np.cross(u, np.cross(u, v) + w * v)


def test_vmc_head_rotation_follows_unity_axes():
    fwd, up = (0, 0, 1), (0, 1, 0)
    # +yaw (ours: turn to the avatar's left) -> forward swings to -X in Unity (avatar's left)
    assert _rotate(unity_head_rotation(0.5, 0, 0), fwd)[0] < -0.4
    # +pitch (chin down) -> forward tips to -Y
    assert _rotate(unity_head_rotation(0, 0.5, 0), fwd)[1] < -0.4
    # +roll (towards the avatar's right shoulder) -> the top of the head moves to +X
    assert _rotate(unity_head_rotation(0, 0, 0.5), up)[0] > 0.4


# ----------------------------------------------------------------------------------------------
# Live Link Face: read back with a struct reader written from the documented layout
# ----------------------------------------------------------------------------------------------


def read_live_link(packet: bytes) -> dict:
    """Reader for the layout in docs/live.md (independent of the sink's code)."""
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, packet, pos)
        pos += struct.calcsize(fmt)
        return values

    (version,) = take(">B")
    (n,) = take(">i")
    device = packet[pos : pos + n].decode()
    pos += n
    (n,) = take(">i")
    subject = packet[pos : pos + n].decode()
    pos += n
    frame, subframe, num, den = take(">ifii")
    (count,) = take(">B")
    values = take(f">{count}f")
    assert pos == len(packet), "trailing bytes"
    return dict(version=version, device=device, subject=subject, frame=frame,
                subframe=subframe, rate=(num, den), values=values)  # fmt: skip


def test_live_link_face_packet_reads_back():
    listener = udp_listener()
    sink = LiveLinkFaceSink("127.0.0.1", listener.getsockname()[1], subject="ava", fps=60)
    frame = make_frame(42)
    sink.send(frame)
    data, _ = listener.recvfrom(4096)
    sink.close()
    listener.close()
    p = read_live_link(data)
    assert p["version"] == 6 and p["subject"] == "ava" and p["device"] == "infp-sdk"
    assert p["frame"] == 42 and p["subframe"] == 0.0 and p["rate"] == (60, 1)
    values = np.array(p["values"])
    assert len(values) == 61
    np.testing.assert_allclose(values[:52], frame.blendshapes, atol=1e-6)
    yaw, pitch, roll = frame.head[:3]
    np.testing.assert_allclose(values[52:55], np.array([yaw, pitch, roll]) / np.pi, atol=1e-6)
    lyaw, lpitch, ryaw, rpitch = frame.gaze
    np.testing.assert_allclose(values[55:61], np.array([lyaw, lpitch, 0, ryaw, rpitch, 0]) / np.pi,
                               atol=1e-6)  # fmt: skip


def test_udp_sinks_carry_on_without_a_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens on this port now
    for sink in (VMCSink("127.0.0.1", port), LiveLinkFaceSink("127.0.0.1", port)):
        for i in range(5):
            sink.send(make_frame(i))
        sink.close()


# ----------------------------------------------------------------------------------------------
# Virtual camera: a fake pyvirtualcam.Camera (the one hardware boundary)
# ----------------------------------------------------------------------------------------------


class FakeCamera:
    """Stands in for pyvirtualcam.Camera: checks what pyvirtualcam checks, records the rest."""

    instances: list = []

    def __init__(self, width, height, fps, *, fmt, device=None, backend=None, **kw):
        import pyvirtualcam

        self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
        self.device = device or "/dev/video-fake"
        self.expected = pyvirtualcam.camera.FrameShapes[fmt](width, height)
        self.sent: list[tuple[float, np.ndarray]] = []
        self.closed = False
        FakeCamera.instances.append(self)

    def send(self, frame):
        assert frame.dtype == np.uint8
        if isinstance(self.expected, int):
            assert frame.size == self.expected
        else:
            assert frame.shape == self.expected
        self.sent.append((time.monotonic(), frame.copy()))

    def close(self):
        self.closed = True


@pytest.fixture
def fake_camera(monkeypatch):
    import pyvirtualcam

    FakeCamera.instances = []
    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    return FakeCamera


def bt601(r, g, b):
    """Reference BT.601 limited-range conversion, written out separately from the sink's."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


# 4x4 image: 2x2 blocks of one colour each, so every chroma sample has one known colour
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 100, 50)]


def quad_image() -> np.ndarray:
    img = np.zeros((4, 4, 3), np.uint8)
    for k, c in enumerate(COLOURS):
        img[(k // 2) * 2 : (k // 2) * 2 + 2, (k % 2) * 2 : (k % 2) * 2 + 2] = c
    return img


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "rgba", "gray", "i420", "nv12", "yuyv", "uyvy"])
def test_virtual_camera_byte_layout(fake_camera, fmt):
    from infp_sdk.io.camera import VirtualCameraSink

    sink = VirtualCameraSink(4, 4, fps=50, fmt=fmt)
    img = quad_image()
    sink.send(make_frame(0, image=img))
    deadline = time.monotonic() + 2
    cam = fake_camera.instances[0]
    while not cam.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.close()
    assert cam.closed
    data = cam.sent[0][1].ravel()
    yuv = [bt601(*c) for c in COLOURS]  # per 2x2 block: (y, u, v)
    if fmt == "rgb":
        assert data.tolist() == img.ravel().tolist()
    elif fmt == "bgr":
        assert data.tolist() == img[..., ::-1].ravel().tolist()
    elif fmt == "rgba":
        assert data.reshape(4, 4, 4)[..., :3].tolist() == img.tolist()
        assert (data.reshape(4, 4, 4)[..., 3] == 255).all()
    elif fmt == "gray":
        r, g, b = COLOURS[0]
        assert data[0] == round(0.299 * r + 0.587 * g + 0.114 * b)
    elif fmt in ("i420", "nv12"):
        y_plane = data[:16].reshape(4, 4)
        for k, (y, _, _) in enumerate(yuv):
            assert (
                y_plane[(k // 2) * 2 : (k // 2) * 2 + 2, (k % 2) * 2 : (k % 2) * 2 + 2] == y
            ).all()
        if fmt == "i420":  # U plane (2x2) then V plane (2x2)
            assert data[16:20].tolist() == [u for _, u, _ in yuv]
            assert data[20:24].tolist() == [v for _, _, v in yuv]
        else:  # interleaved U V per 2x2 block
            assert data[16:24].tolist() == [x for _, u, v in yuv for x in (u, v)]
    else:  # packed 4:2:2, row 0 = blocks 0 and 1
        row0 = data[:8].tolist()
        (y0, u0, v0), (y1, u1, v1) = yuv[0], yuv[1]
        if fmt == "yuyv":
            assert row0 == [y0, u0, y0, v0, y1, u1, y1, v1]
        else:
            assert row0 == [u0, y0, v0, y0, u1, y1, v1, y1]


def test_virtual_camera_paces_repeats_and_fits(fake_camera):
    from infp_sdk.io.camera import VirtualCameraSink

    sink = VirtualCameraSink(64, 32, fps=50, fmt="rgb")
    cam = fake_camera.instances[0]
    sink.send(make_frame(0, image=np.full((20, 20, 3), 200, np.uint8)))  # square into 64x32
    time.sleep(0.5)
    sink.close()
    times = np.array([t for t, _ in cam.sent])
    assert 20 <= len(times) <= 27  # ~25 ticks in 0.5 s at 50 fps
    assert np.median(np.diff(times)) == pytest.approx(0.02, abs=0.004)
    assert sink.repeated == len(times) - 1  # one frame given, the rest are repeats
    img = cam.sent[0][1]
    assert img.shape == (32, 64, 3)
    assert (img[:, 16:48] == 200).all() and (img[:, :16] == 0).all() and (img[:, 48:] == 0).all()


def test_virtual_camera_errors_are_clear(fake_camera, monkeypatch):
    import pyvirtualcam

    from infp_sdk.io.camera import VirtualCameraError, VirtualCameraSink

    sink = VirtualCameraSink(8, 8)
    with pytest.raises(NoImageError, match="portrait"):
        sink.send(make_frame(0))
    sink.close()

    def no_backend(*a, **k):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found")

    monkeypatch.setattr(pyvirtualcam, "Camera", no_backend)
    with pytest.raises(VirtualCameraError) as e:
        VirtualCameraSink(8, 8)
    msg = str(e.value)
    assert "install" in msg and ("v4l2loopback" in msg or "OBS" in msg)


def test_a_removed_virtual_camera_is_reopened_when_it_returns(fake_camera, monkeypatch):
    import pyvirtualcam

    from infp_sdk.io.camera import VirtualCameraSink

    monkeypatch.setattr("infp_sdk.io.sinks.RETRY_PAUSES_S", (0.05,))
    out = Output(VirtualCameraSink(8, 8, fps=50), name="virtualcam")
    image = np.zeros((8, 8, 3), np.uint8)
    out.put(make_frame(0, image=image))
    first = fake_camera.instances[0]
    assert wait_until(lambda: first.sent)

    def removed(*a, **k):
        raise RuntimeError("device /dev/video-fake not found")

    first.send = removed  # unplugged: the camera's thread fails on its next tick ...
    monkeypatch.setattr(pyvirtualcam, "Camera", removed)  # ... and it cannot be opened
    # the camera's thread fails on its next tick; the send after that reports it
    assert wait_until(lambda: out.put(make_frame(1, image=image)) or out.state == "retrying")
    assert wait_until(lambda: out.failures >= 3)  # reopening fails while it is gone
    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)  # plugged back in
    assert wait_until(lambda: out.state == "ok")
    out.put(make_frame(2, image=image))
    second = fake_camera.instances[-1]
    assert second is not first and wait_until(lambda: second.sent)
    assert out.sink.reopened == 1 and first.closed
    out.close()
    assert second.closed


def test_missing_optional_package_names_the_extra(monkeypatch):
    import sys

    from infp_sdk.io.sinks import MissingExtraError

    for name in ("pythonosc", "pythonosc.osc_message_builder", "pythonosc.osc_bundle_builder"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails

    with pytest.raises(MissingExtraError, match=r"infp-sdk\[vmc\]"):
        VMCSink()


class Recording:
    """A sink that keeps what it was sent."""

    def __init__(self):
        self.frames: list[int] = []

    def send(self, frame):
        self.frames.append(frame.index)

    def close(self):
        pass


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_failing_sink_without_reopen_is_dropped_and_the_others_carry_on():
    class DiskFull:
        def send(self, frame):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    broken, healthy = Output(DiskFull(), name="mp4"), Output(Recording(), name="zmq")
    broken.put(make_frame(0))
    assert wait_until(lambda: broken.state == "dropped")
    for i in range(1, 6):
        broken.put(make_frame(i))  # never raises
        healthy.put(make_frame(i))
    assert wait_until(lambda: len(healthy.sink.frames) == 5)
    assert healthy.state == "ok" and healthy.health() == "zmq ok"
    assert broken.failures == 1 and broken.dropped == 5
    assert "mp4 dropped (OSError" in broken.health() and "No space left" in broken.health()
    broken.close()
    healthy.close()


def test_a_sink_with_reopen_is_retried_until_it_comes_back(monkeypatch):
    monkeypatch.setattr("infp_sdk.io.sinks.RETRY_PAUSES_S", (0.05,))

    class Flaky(Recording):
        """Fails on frame 2; reopening fails twice more before it works."""

        def __init__(self):
            super().__init__()
            self.reopen_attempts = 0

        def send(self, frame):
            if frame.index == 2 and not self.reopen_attempts:
                raise ConnectionError("device removed")
            super().send(frame)

        def reopen(self):
            self.reopen_attempts += 1
            if self.reopen_attempts < 3:
                raise ConnectionError("still gone")

    out = Output(Flaky(), name="camera")
    for i in range(3):
        out.put(make_frame(i))
    assert wait_until(lambda: out.state == "retrying")
    assert "camera retrying (ConnectionError" in out.health()
    assert wait_until(lambda: out.state == "ok")
    out.put(make_frame(3))
    assert wait_until(lambda: out.sink.frames[-1:] == [3])
    assert out.sink.frames[:2] == [0, 1] and out.sink.reopen_attempts == 3
    assert out.failures == 3 and out.recoveries == 1 and out.error is None
    assert out.health() == "camera ok (recovered 1x)"
    out.close()


def test_frames_without_image_are_counted_by_the_publisher():
    from infp_sdk.io import MotionPublisher

    with MotionPublisher("tcp://127.0.0.1:*", frame_format="jpeg") as pub:
        pub.publish(make_frame(0))
        assert pub.stats["no_image"] == 1 and pub.stats["motion"] == 1


def test_mp4_sink_writes_every_frame(tmp_path):
    import shutil
    import subprocess

    from infp_sdk.io.file import VideoFileSink

    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg is not installed")
    out = Output(VideoFileSink(tmp_path / "out.mp4", fps=30), fps=30)
    rng = np.random.default_rng(0)
    for i in range(25):  # 1 s at 25 fps -> about 30 frames at 30 fps
        size = (32, 32) if i % 5 == 4 else (64, 48)  # another size now and then: letterboxed
        out.put(make_frame(i, image=rng.integers(0, 255, (*size, 3), dtype=np.uint8)))
    time.sleep(0.5)
    out.close()
    assert out.error is None
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,width,height", "-of", "csv=p=0", str(tmp_path / "out.mp4")],
        capture_output=True, text=True,
    )  # fmt: skip
    width, height, count = (int(v) for v in probe.stdout.strip().split(","))
    assert (width, height) == (48, 64) and count == out.sent and 28 <= count <= 30
    with pytest.raises(NoImageError):
        VideoFileSink(tmp_path / "x.mp4").send(make_frame(0))
