"""Files are whole or absent: write to a temporary name next to the target, rename when complete.

``with atomic_path("out.mp4") as tmp: write(tmp)`` hands out a temporary path in the target's
folder, ``.out.mp4.partial-<pid>-<random>.mp4`` (the target's extension is kept, so tools that
pick a format by extension, ffmpeg, matplotlib, NumPy, still do). When the block ends normally the
temporary is flushed to disk (fsync) and renamed over the target with :func:`os.replace`, which is
atomic on one file system; when it raises, the temporary is removed and the target is untouched.

A process killed outright (SIGKILL, power loss) cannot remove its temporary. The next write to the
same target removes such leftovers: temporaries of that target whose process is no longer running.
Temporaries of a writer that is still running are left alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

_MARK = ".partial-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its files
    return True


def temp_prefix(path: Path) -> str:
    """The name every temporary of ``path`` starts with: ``.NAME.partial-``."""
    return f".{path.name}{_MARK}"


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporaries of ``path`` left by processes that are no longer running."""
    path = Path(path)
    prefix = temp_prefix(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            stale.append(entry)
    return stale


def remove(path: Path) -> None:
    """Remove a file or folder if it exists; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _fsync(path: Path) -> None:
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync(child)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # e.g. folders cannot be opened on Windows
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicPath:
    """A temporary path for ``target``; :meth:`commit` renames it into place, :meth:`discard`
    removes it. For writers that live longer than one ``with`` block (a video writer)."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in stale_temporaries(self.target):
            remove(leftover)
        token = secrets.token_hex(4)
        name = f"{temp_prefix(self.target)}{os.getpid()}-{token}{self.target.suffix}"
        self.tmp = self.target.with_name(name)
        self.done = False

    def commit(self) -> Path:
        """fsync the temporary, rename it over the target, fsync the folder; returns the target."""
        if self.done:
            return self.target
        if not self.tmp.exists():
            raise FileNotFoundError(f"nothing was written to {self.tmp} for {self.target}")
        _fsync(self.tmp)
        os.replace(self.tmp, self.target)
        self.done = True
        _fsync(self.target.parent)
        return self.target

    def discard(self) -> None:
        """Remove the temporary (the target is untouched)."""
        if not self.done:
            remove(self.tmp)
            self.done = True


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it into place if the block succeeds,
    remove it if the block raises (any exception, ``KeyboardInterrupt`` included)."""
    pending = AtomicPath(target)
    try:
        yield pending.tmp
    except BaseException:
        pending.discard()
        raise
    try:
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` whole or not at all."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` whole or not at all."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)
