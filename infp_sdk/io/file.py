"""mp4 file sink: rendered frames to a video file through :class:`infp_sdk.io.video.VideoWriter`."""

from __future__ import annotations

from pathlib import Path

from ..motion import FPS, Frame
from .publisher import NO_IMAGE_HINT, NoImageError


class VideoFileSink:
    """Writes frames' images to an mp4 file (opened on the first frame, at its size; later frames
    of another size are scaled to fit).

    Args:
        path: the output file.
        fps: the rate the frames arrive at (25, or the rate of an ``Output`` that converts).
    """

    def __init__(self, path: str | Path, fps: float = FPS):
        try:
            from .video import VideoWriter
        except ImportError as e:
            raise ImportError(f"the mp4 sink needs infp_sdk.io.video.VideoWriter: {e}") from None
        self._writer_cls = VideoWriter
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self.written = 0

    def send(self, frame: Frame) -> None:
        if frame.image is None:
            raise NoImageError(f"mp4 file: {NO_IMAGE_HINT}")
        if self._writer is None:
            h, w = frame.image.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = (w, h)
            self._writer = self._writer_cls(self.path, fps=self.fps, size=(w, h))
        image = frame.image
        if image.shape[:2] != (self._size[1], self._size[0]):
            from .camera import fit

            image = fit(image, *self._size)  # the writer takes one size: letterbox the rest
        self._writer.write(image)
        self.written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
