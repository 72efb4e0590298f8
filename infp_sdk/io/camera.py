"""Virtual camera sink: rendered frames as a webcam for Zoom, Meet, Teams, OBS (pyvirtualcam).

The camera needs a steady stream, so the sink keeps the newest frame and a thread hands it to the
camera every 1/fps seconds (repeating the last frame when none is new, skipping frames that
came faster than the camera's rate). The hardware boundary is ``pyvirtualcam.Camera``; frames
are converted here to the chosen pixel format, so what reaches the camera is exactly the bytes
the backend will show.

Backends: OBS Studio's virtual camera (Windows, macOS), Unity Capture (Windows), v4l2loopback
(Linux). Needs ``pip install 'infp-sdk[camera]'``.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from ..motion import FPS, Frame
from ..shutdown import stop_at_exit
from .publisher import NO_IMAGE_HINT, NoImageError
from .sinks import require

PIXEL_FORMATS = ("rgb", "bgr", "rgba", "gray", "i420", "nv12", "yuyv", "uyvy")


class VirtualCameraError(RuntimeError):
    """No virtual camera backend could be opened; the message says how to install one."""


def backend_help() -> str:
    """How to get a virtual camera backend on this platform."""
    if sys.platform.startswith("linux"):
        return (
            "on Linux install v4l2loopback and load it: sudo apt install v4l2loopback-dkms && "
            "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=infp "
            "(then pass device=/dev/videoN if you have several)"
        )
    if sys.platform == "darwin":
        return (
            "on macOS install OBS Studio 26.1+ and start its virtual camera once "
            "(Start Virtual Camera), then stop it so this program can use it"
        )
    return (
        "on Windows install OBS Studio 26+ (its virtual camera is registered at install) "
        "or Unity Capture"
    )


# ----------------------------------------------------------------------------------------------
# Pixel formats
# ----------------------------------------------------------------------------------------------


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an RGB image to fit (width, height) keeping its aspect, black bars around
    (nearest neighbour: cheap, and the portrait is usually rendered at the camera's size)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    rows = np.minimum((np.arange(nh) + 0.5) / scale, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(nw) + 0.5) / scale, w - 1).astype(np.int64)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top : top + nh, left : left + nw] = img[rows][:, cols]
    return out


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range ('studio swing', what webcams send): Y 16..235, U/V 16..240."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, u, v


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def to_pixel_format(rgb: np.ndarray, fmt: str) -> np.ndarray:
    """Convert uint8 RGB (H, W, 3) to the array pyvirtualcam expects for ``fmt``.

    rgb/bgr (H, W, 3), rgba (H, W, 4), gray (H, W) = BT.601 luma (full range);
    i420: Y plane, U plane, V plane (chroma 2x2-averaged), flat; nv12: Y plane then interleaved
    U, V; yuyv: Y0 U Y1 V per pixel pair; uyvy: U Y0 V Y1 — all flat uint8, BT.601 limited range.
    """
    fmt = fmt.lower()
    h, w = rgb.shape[:2]
    if fmt == "rgb":
        return np.ascontiguousarray(rgb)
    if fmt == "bgr":
        return np.ascontiguousarray(rgb[..., ::-1])
    if fmt == "rgba":
        return np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    if fmt == "gray":
        x = rgb.astype(np.float32)
        return _u8(0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])
    if fmt not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel format {fmt!r}: choose one of {', '.join(PIXEL_FORMATS)}")
    if h % 2 or w % 2:
        raise ValueError(f"{fmt} needs an even width and height, got {w}x{h}")
    y, u, v = rgb_to_yuv(rgb)
    if fmt in ("i420", "nv12"):
        u2 = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        v2 = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        if fmt == "i420":
            chroma = np.concatenate([_u8(u2).ravel(), _u8(v2).ravel()])
        else:
            chroma = np.stack([_u8(u2), _u8(v2)], axis=-1).ravel()
        return np.concatenate([_u8(y).ravel(), chroma])
    # 4:2:2 packed: one U and one V per horizontal pair of pixels
    u2 = u.reshape(h, w // 2, 2).mean(axis=2)
    v2 = v.reshape(h, w // 2, 2).mean(axis=2)
    y0, y1 = y[:, 0::2], y[:, 1::2]
    order = (y0, u2, y1, v2) if fmt == "yuyv" else (u2, y0, v2, y1)
    return _u8(np.stack(order, axis=-1)).ravel()


# ----------------------------------------------------------------------------------------------
# The sink
# ----------------------------------------------------------------------------------------------


class VirtualCameraSink:
    """Shows frames' images on a virtual camera at a steady ``fps``.

    Args:
        width, height: the camera's size; images of another size are scaled to fit.
        fps: the camera's rate (frames are repeated or skipped to hold it).
        fmt: pixel format sent to the backend (see :data:`PIXEL_FORMATS`); "rgb" lets
            pyvirtualcam convert to the device's native format.
        device, backend: passed to pyvirtualcam (e.g. "/dev/video10", "obs", "v4l2loopback").
    """

    def __init__(
        self,
        width: int = 512,
        height: int = 512,
        fps: float = FPS,
        *,
        fmt: str = "rgb",
        device: str | None = None,
        backend: str | None = None,
    ):
        pyvirtualcam = require("pyvirtualcam", "camera", "the virtual camera sink")
        fmt = fmt.lower()
        if fmt not in PIXEL_FORMATS:
            raise ValueError(
                f"unknown pixel format {fmt!r}: choose one of {', '.join(PIXEL_FORMATS)}"
            )
        if fmt in ("i420", "nv12", "yuyv", "uyvy") and (width % 2 or height % 2):
            raise ValueError(f"{fmt} needs an even width and height, got {width}x{height}")
        self.width, self.height, self.fps, self.fmt = int(width), int(height), float(fps), fmt
        self._pyvirtualcam, self._backend = pyvirtualcam, backend
        self._camera = self._open_camera(device)
        self.device = getattr(self._camera, "device", device)
        self.reopened = 0  # times the camera was opened again after it failed
        self.sent = 0  # frames handed to the camera
        self.repeated = 0  # ticks with no new frame (the last one was sent again)
        self.skipped = 0  # frames replaced by a newer one before the camera took them
        self.late = 0  # ticks missed because the thread ran late (the schedule was restarted)
        self.error: BaseException | None = None
        self._latest: np.ndarray | None = None
        self._fresh = False
        self._lock = threading.Lock()
        self._thread = self._start_thread()
        self._cancel_stop_at_exit = stop_at_exit(self, VirtualCameraSink.close)

    def _open_camera(self, device: str | None):
        try:
            return self._pyvirtualcam.Camera(
                width=self.width,
                height=self.height,
                fps=self.fps,
                fmt=getattr(self._pyvirtualcam.PixelFormat, self.fmt.upper()),
                device=device,
                backend=self._backend,
            )
        except RuntimeError as e:
            raise VirtualCameraError(
                f"no virtual camera could be opened ({e}). {backend_help()}"
            ) from None

    def _start_thread(self) -> threading.Thread:
        """Start ticking with a fresh stop event (each thread keeps the one it started with)."""
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(self._stop,), name="infp-camera", daemon=True
        )
        thread.start()
        return thread

    def reopen(self) -> None:
        """Open the camera again after it failed (its device was removed, say); raises
        :class:`VirtualCameraError` while it cannot be opened. :class:`Output` calls this."""
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            self._camera.close()
        except Exception:  # the device is gone already; nothing to release
            pass
        self._camera = self._open_camera(self.device)
        self.error = None
        self.reopened += 1
        self._thread = self._start_thread()

    def send(self, frame: Frame) -> None:
        """Make ``frame``'s image the one the camera shows next."""
        if self.error is not None:
            raise RuntimeError(f"the virtual camera failed: {self.error}") from self.error
        if frame.image is None:
            raise NoImageError(f"virtual camera: {NO_IMAGE_HINT}")
        data = to_pixel_format(fit(frame.image, self.width, self.height), self.fmt)
        with self._lock:
            if self._fresh:
                self.skipped += 1
            self._latest, self._fresh = data, True

    def _run(self, stop: threading.Event) -> None:
        period = 1.0 / self.fps
        next_tick = time.monotonic()
        while not stop.is_set():
            with self._lock:
                data, fresh = self._latest, self._fresh
                self._fresh = False
            if data is not None:
                try:
                    self._camera.send(data)
                except Exception as e:  # device gone: report on the next send()
                    self.error = e
                    return
                self.sent += 1
                if not fresh:
                    self.repeated += 1
            next_tick += period
            wait = next_tick - time.monotonic()
            if wait < -period:  # more than a tick behind: restart the schedule, don't burst
                self.late += 1
                next_tick = time.monotonic()
            elif wait > 0:
                stop.wait(wait)

    def close(self) -> None:
        """Stop the camera thread and close the device (also done at exit if forgotten)."""
        self._stop.set()
        self._thread.join(timeout=2)
        self._cancel_stop_at_exit()
        self._camera.close()
