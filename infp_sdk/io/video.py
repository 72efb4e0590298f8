"""mp4 writing: raw RGB frames piped into an ``ffmpeg`` process (H.264, yuv420p, AAC audio)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np

from .._atomic import AtomicPath

FFMPEG_HINT = (
    "writing mp4 needs the ffmpeg program: install it with your package manager "
    "(Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) or "
    "pip install imageio-ffmpeg"
)


def find_ffmpeg() -> str:
    """Path of an ``ffmpeg`` executable: on PATH, else the one imageio-ffmpeg ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001  (any failure means: not available)
        raise FileNotFoundError(FFMPEG_HINT) from None


class VideoWriter:
    """Write RGB frames to an H.264 mp4, optionally with a mono audio track (AAC).

    ``with VideoWriter("out.mp4", fps=25, size=(512, 512), audio=pcm) as video:
    video.write(rgb)``. Frames are uint8 (H, W, 3) RGB of exactly ``size`` = (width, height);
    odd sizes are padded by one pixel (H.264 with yuv420p needs even sides). ``audio`` is float
    in -1..1 (or int16) at ``audio_rate``; the file ends with the shorter of video and audio.

    ffmpeg writes a temporary file next to ``path`` (same extension); :meth:`close` renames it
    to ``path`` once ffmpeg has exited cleanly, so ``path`` is either a whole video or absent.
    An exception inside the ``with`` block, or a failed ffmpeg, removes the temporary.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float = 25,
        size: tuple[int, int] = (512, 512),
        audio: np.ndarray | None = None,
        audio_rate: int = 16000,
        *,
        crf: int = 20,
        preset: str = "veryfast",
    ):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = fps
        self.frames = 0
        self._audio_file: str | None = None
        self._proc = None
        ffmpeg = find_ffmpeg()
        w, h = self.size
        cmd = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
            "-i", "pipe:0",
        ]  # fmt: skip
        if audio is not None:
            pcm = np.asarray(audio)
            if pcm.dtype != np.int16:
                pcm = (np.clip(np.asarray(pcm, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
            fd, self._audio_file = tempfile.mkstemp(suffix=".s16le")
            with os.fdopen(fd, "wb") as f:
                f.write(pcm.reshape(-1).astype("<i2").tobytes())
            cmd += ["-f", "s16le", "-ar", str(int(audio_rate)), "-ac", "1",
                    "-i", self._audio_file]  # fmt: skip
        pad = [] if w % 2 == 0 and h % 2 == 0 else ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        cmd += [
            *pad, "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        ]  # fmt: skip
        if audio is not None:
            cmd += ["-c:a", "aac", "-b:a", "128k", "-shortest"]
        self._out = AtomicPath(self.path)  # ffmpeg writes .NAME.partial-*.mp4, renamed on close
        cmd.append(str(self._out.tmp))  # the temporary keeps the extension
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except BaseException:
            self._out.discard()
            self._drop_audio_file()
            raise

    def _drop_audio_file(self) -> None:
        if self._audio_file:
            Path(self._audio_file).unlink(missing_ok=True)
            self._audio_file = None

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame: uint8 (H, W, 3) RGB of the writer's size."""
        a = np.asarray(rgb)
        w, h = self.size
        if a.shape != (h, w, 3):
            raise ValueError(f"frame must be ({h}, {w}, 3) RGB, got {a.shape}")
        if a.dtype != np.uint8:
            a = np.clip(a, 0, 255).astype(np.uint8)
        if self._proc.stdin is None or self._proc.poll() is not None:
            raise RuntimeError(f"ffmpeg stopped early: {self._stderr()}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(a).tobytes())
        except BrokenPipeError:
            raise RuntimeError(f"ffmpeg stopped early: {self._stderr()}") from None
        self.frames += 1

    def _stderr(self) -> str:
        try:
            return (self._proc.stderr.read() or b"").decode(errors="replace").strip()[-2000:]
        except Exception:  # noqa: BLE001
            return ""

    def close(self) -> None:
        """Finish the file (waits for ffmpeg); raises if ffmpeg failed."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            self._out.discard()
            raise
        finally:
            self._drop_audio_file()
        if code != 0:
            self._out.discard()
            raise RuntimeError(f"ffmpeg failed writing {self.path} (exit {code}): {err.strip()}")
        try:
            self._out.commit()
        except BaseException:
            self._out.discard()
            raise

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            self._drop_audio_file()
            self._out.discard()
            return
        self.close()
