"""The on-disk dyadic dataset: two audio channels and the motion of each participant.

Layout (see ``docs/dataset.md``)::

    ROOT/manifest.json        {"format": 1, "fps": 25, "sample_rate": 16000,
                               "sessions": [{"id": ..., "split": ..., "seconds": ...}, ...]}
    ROOT/<id>/a.wav, b.wav    16 kHz mono 16-bit PCM, one per participant, same length
    ROOT/<id>/motion.npz      a_head (T,6), a_gaze (T,4), a_blendshapes (T,52), a_vad (T,)
                              and the same with b_; float32; T = floor(seconds * 25)
    ROOT/<id>/meta.json       free-form (generator settings, voices, texts)

Motion follows the conventions of :mod:`infp_sdk.motion`. A session may carry motion for
participant ``a`` only (omit every ``b_`` array); ``*_vad`` may be omitted too, in which case it
is estimated from that participant's audio energy. Each participant with motion becomes one
training :class:`Example` in which their channel is "own" and the other channel is "partner".
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, write_text
from ..audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, AudioFormatError, read_wav, write_wav
from ..motion import FPS, NUM_BLENDSHAPES, rig_to_latent

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
_PARTS = {"head": 6, "gaze": 4, "blendshapes": NUM_BLENDSHAPES}
_DOCS = "see docs/dataset.md"
# Face trackers overshoot a little; values this close to 0..1 are clipped rather than rejected.
_BLENDSHAPE_SLACK = 0.05


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file and the fix."""


@dataclass
class MotionTrack:
    """Raw motion of one participant at 25 fps (units as in :mod:`infp_sdk.motion`)."""

    head: np.ndarray
    """float32 (T, 6): yaw, pitch, roll (rad), x, y, z (m)."""
    gaze: np.ndarray
    """float32 (T, 4): left yaw, left pitch, right yaw, right pitch (rad)."""
    blendshapes: np.ndarray
    """float32 (T, 52): ARKit weights 0..1 in :data:`infp_sdk.motion.ARKIT_BLENDSHAPES` order."""
    vad: np.ndarray | None = None
    """float32 (T,): 1 while this participant speaks, else 0."""

    @property
    def frames(self) -> int:
        return int(self.head.shape[0])

    def latents(self) -> np.ndarray:
        """Normalised rig latents (T, 62) (:func:`infp_sdk.motion.rig_to_latent`)."""
        return rig_to_latent(self.head, self.gaze, self.blendshapes)


@dataclass
class SessionData:
    """One session as read from disk."""

    id: str
    path: Path
    audio_a: np.ndarray
    """float32 16 kHz mono of participant a."""
    audio_b: np.ndarray
    motion_a: MotionTrack
    motion_b: MotionTrack | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.audio_a) / SAMPLE_RATE


@dataclass
class Example:
    """One training example: a participant's motion with their audio ("own") and the other's."""

    own: np.ndarray
    """float32 16 kHz mono: the participant whose motion this is."""
    partner: np.ndarray
    """float32 16 kHz mono: the other participant."""
    latents: np.ndarray
    """float32 (T, 62) rig latents of ``own``'s motion."""
    speaking: np.ndarray
    """float32 (T,): ``own``'s voice activity."""
    session_id: str = ""
    side: str = "a"


def frames_for(seconds: float) -> int:
    """Motion frames in ``seconds`` of audio: ``floor(seconds * 25)``."""
    return int(math.floor(seconds * FPS + 1e-9))


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _coerce_track(motion: Any, name: str) -> MotionTrack:
    if isinstance(motion, MotionTrack):
        return motion
    if isinstance(motion, dict):
        missing = [k for k in ("head", "gaze", "blendshapes") if k not in motion]
        if missing:
            raise DatasetError(f"{name} lacks {', '.join(missing)}: pass a MotionTrack or a dict")
        return MotionTrack(
            head=motion["head"],
            gaze=motion["gaze"],
            blendshapes=motion["blendshapes"],
            vad=motion.get("vad"),
        )
    raise DatasetError(f"{name} must be a MotionTrack or a dict, got {type(motion).__name__}")


def _check_audio(audio: Any, name: str) -> np.ndarray:
    arr = np.asarray(audio)
    if arr.ndim != 1:
        raise DatasetError(
            f"{name} must be 1-D mono audio at {SAMPLE_RATE} Hz, got shape {arr.shape}: mix to "
            "mono and resample with infp_sdk.audio.to_mono_16k(audio, rate)"
        )
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DatasetError(f"{name} contains NaN or Inf samples: clean it with np.nan_to_num")
    return arr


def _fit_frames(arr: np.ndarray, frames: int) -> np.ndarray:
    """Crop or edge-pad by the one frame of rounding slack the format allows."""
    if arr.shape[0] >= frames:
        return arr[:frames]
    pad = [(0, frames - arr.shape[0])] + [(0, 0)] * (arr.ndim - 1)
    return np.pad(arr, pad, mode="edge")


def _check_track(track: MotionTrack, side: str, frames: int, where: str) -> dict[str, np.ndarray]:
    """Validate one participant's motion; returns the float32 arrays keyed ``<side>_<part>``."""
    out: dict[str, np.ndarray] = {}
    parts = {"head": track.head, "gaze": track.gaze, "blendshapes": track.blendshapes}
    if track.vad is not None:
        parts["vad"] = track.vad
    for part, value in parts.items():
        key = f"{side}_{part}"
        arr = np.asarray(value, dtype=np.float32)
        width = _PARTS.get(part)
        expected = (arr.shape[0], width) if width else (arr.shape[0],)
        if arr.ndim != len(expected) or arr.shape != expected:
            shape = f"(T, {width})" if width else "(T,)"
            raise DatasetError(f"{where}: {key} has shape {arr.shape}, expected {shape}; {_DOCS}")
        if abs(arr.shape[0] - frames) > 1:
            raise DatasetError(
                f"{where}: {key} has {arr.shape[0]} frames but the audio lasts "
                f"{frames / FPS:.2f} s = {frames} frames at {FPS} fps (T = floor(seconds * 25), "
                "one frame of slack allowed): resample the motion to 25 fps or trim the audio"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argmax(bad.reshape(arr.shape[0], -1).any(axis=1)))
            raise DatasetError(
                f"{where}: {key} contains NaN or Inf (first at frame {row}): fill tracking "
                "dropouts (e.g. interpolate) before writing"
            )
        if part == "blendshapes":
            lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
            if lo < -_BLENDSHAPE_SLACK or hi > 1 + _BLENDSHAPE_SLACK:
                raise DatasetError(
                    f"{where}: {key} spans {lo:.3f}..{hi:.3f} but ARKit weights are 0..1: "
                    "rescale them (percent values? divide by 100)"
                )
            arr = np.clip(arr, 0.0, 1.0)
        out[key] = _fit_frames(arr, frames)
    return out


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays sneak into metadata easily; store them as plain numbers/lists.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"meta value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _write_json_atomic(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, default=_json_default))


def write_session(
    root: str | os.PathLike,
    id: str,
    audio_a: np.ndarray,
    audio_b: np.ndarray,
    motion_a: MotionTrack | dict,
    motion_b: MotionTrack | dict | None,
    meta: dict[str, Any] | None = None,
    split: str = "train",
    *,
    update_manifest: bool = True,
) -> Path:
    """Write one session under ``root/<id>/`` and (by default) add it to ``manifest.json``.

    Args:
        root: Dataset directory (created if needed).
        id: Session name; a directory name without path separators.
        audio_a, audio_b: float32 mono at 16 kHz, equal length (one motion frame of slack; the
            longer one is trimmed).
        motion_a: Participant a's motion (:class:`MotionTrack` or a dict with ``head``, ``gaze``,
            ``blendshapes`` and optional ``vad``), ``floor(seconds * 25)`` frames (+-1).
        motion_b: Participant b's motion, or None for one-sided data.
        meta: JSON-serialisable notes stored as ``meta.json``.
        split: ``train``, ``val`` or ``test``.
        update_manifest: Set False when several processes write at once; then call
            :func:`add_to_manifest` from one process.

    Returns:
        The session directory.
    """
    if not id or os.sep in id or (os.altsep and os.altsep in id) or id in (".", ".."):
        raise DatasetError(f"session id {id!r} must be a plain directory name")
    if split not in SPLITS:
        raise DatasetError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    where = f"session {id}"
    a = _check_audio(audio_a, f"{where}: audio_a")
    b = _check_audio(audio_b, f"{where}: audio_b")
    if abs(len(a) - len(b)) > SAMPLES_PER_MOTION_FRAME:
        raise DatasetError(
            f"{where}: audio_a has {len(a)} samples and audio_b {len(b)}; both channels must "
            "cover the same time (pad the shorter with silence)"
        )
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    seconds = n / SAMPLE_RATE
    frames = frames_for(seconds)
    arrays = _check_track(_coerce_track(motion_a, "motion_a"), "a", frames, where)
    if motion_b is not None:
        arrays.update(_check_track(_coerce_track(motion_b, "motion_b"), "b", frames, where))
    try:
        meta_text = json.dumps({"split": split, **(meta or {})}, indent=1, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: meta cannot be stored as JSON ({exc})") from exc
    folder = Path(root) / id
    folder.mkdir(parents=True, exist_ok=True)
    # each file whole or absent; the manifest, which is what readers list, is updated last
    for name, channel in (("a.wav", a), ("b.wav", b)):
        with atomic_path(folder / name) as tmp:
            write_wav(tmp, channel, SAMPLE_RATE)
    with atomic_path(folder / "motion.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    write_text(folder / "meta.json", meta_text)
    if update_manifest:
        add_to_manifest(root, [{"id": id, "split": split, "seconds": round(seconds, 4)}])
    return folder


def add_to_manifest(root: str | os.PathLike, entries: list[dict[str, Any]]) -> None:
    """Add or replace ``{"id", "split", "seconds"}`` entries in ``root/manifest.json``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / MANIFEST
    manifest = _read_manifest(root) if path.exists() else _empty_manifest()
    by_id = {s["id"]: s for s in manifest["sessions"]}
    for entry in entries:
        by_id[entry["id"]] = {
            "id": entry["id"],
            "split": entry["split"],
            "seconds": float(entry["seconds"]),
        }
    manifest["sessions"] = sorted(by_id.values(), key=lambda s: s["id"])
    _write_json_atomic(path, manifest)


def _empty_manifest() -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "fps": FPS, "sample_rate": SAMPLE_RATE, "sessions": []}


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(
            f"{path} not found: a dataset root needs a manifest.json listing its sessions; "
            "write sessions with infp_sdk.data.dataset.write_session or generate data with "
            f"`infp-sdk synth -o {root}` ({_DOCS})"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sessions"), list):
        raise DatasetError(f"{path} must be an object with a 'sessions' list; {_DOCS}")
    if manifest.get("format") != FORMAT_VERSION:
        raise DatasetError(
            f"{path} has format {manifest.get('format')!r}; this SDK reads format {FORMAT_VERSION}"
        )
    if manifest.get("fps", FPS) != FPS or manifest.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise DatasetError(
            f"{path} declares fps={manifest.get('fps')} and sample_rate="
            f"{manifest.get('sample_rate')}; the format needs fps={FPS} and "
            f"sample_rate={SAMPLE_RATE}: resample motion and audio first"
        )
    for i, entry in enumerate(manifest["sessions"]):
        if not isinstance(entry, dict) or "id" not in entry or "split" not in entry:
            raise DatasetError(f"{path}: sessions[{i}] needs at least 'id' and 'split'")
    return manifest


def list_sessions(root: str | os.PathLike, split: str | None = None) -> list[Path]:
    """Session directories listed in ``root/manifest.json``, optionally of one split."""
    root = Path(root)
    if split is not None and split not in SPLITS:
        raise DatasetError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    manifest = _read_manifest(root)
    return [root / s["id"] for s in manifest["sessions"] if split is None or s["split"] == split]


def _load_wav(path: Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(
            f"{where}: missing file {path.name} ({path}); every session needs a.wav, b.wav "
            f"and motion.npz ({_DOCS})"
        )
    try:
        audio, rate = read_wav(path)
    except AudioFormatError as exc:
        raise DatasetError(f"{where}: {exc}") from exc
    if rate != SAMPLE_RATE:
        raise DatasetError(
            f"{where}: {path.name} is {rate} Hz but the format needs {SAMPLE_RATE} Hz: convert "
            f"it with `ffmpeg -i {path.name} -ar {SAMPLE_RATE} -ac 1 -c:a pcm_s16le out.wav`"
        )
    if audio.shape[1] != 1:
        raise DatasetError(
            f"{where}: {path.name} has {audio.shape[1]} channels but the format needs mono, "
            "one file per participant: split or mix it with ffmpeg (-ac 1)"
        )
    return np.ascontiguousarray(audio[:, 0])


def energy_vad(audio: np.ndarray, frames: int) -> np.ndarray:
    """A simple voice-activity estimate (T,) from frame energy, for data that lacks ``*_vad``.

    A frame is active when its energy is within 30 dB of the loud end of the recording and
    above an absolute floor; short gaps (< 0.3 s) are bridged.
    """
    if frames <= 0:
        return np.zeros(0, np.float32)
    hop = SAMPLES_PER_MOTION_FRAME
    x = np.zeros(frames * hop, np.float32)
    x[: min(len(audio), len(x))] = audio[: len(x)]
    db = 10 * np.log10(np.mean(x.reshape(frames, hop) ** 2, axis=1) + 1e-10)
    active = (db > np.percentile(db, 95) - 30) & (db > -55)
    # Bridge gaps between words so a phrase reads as one stretch of speech.
    gap = int(0.3 * FPS)
    idx = np.flatnonzero(active)
    for lo, hi in zip(idx[:-1], idx[1:], strict=True):
        if 1 < hi - lo <= gap:
            active[lo:hi] = True
    return active.astype(np.float32)


def read_session(path: str | os.PathLike) -> SessionData:
    """Read and validate one session directory (``a.wav``, ``b.wav``, ``motion.npz``, meta)."""
    folder = Path(path)
    where = f"session {folder}"
    if not folder.is_dir():
        raise DatasetError(f"{where} does not exist: check the id in manifest.json")
    a = _load_wav(folder / "a.wav", where)
    b = _load_wav(folder / "b.wav", where)
    if abs(len(a) - len(b)) > SAMPLES_PER_MOTION_FRAME:
        raise DatasetError(
            f"{where}: a.wav lasts {len(a) / SAMPLE_RATE:.3f} s but b.wav "
            f"{len(b) / SAMPLE_RATE:.3f} s; both channels must cover the same time (pad the "
            "shorter one with silence)"
        )
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    frames = frames_for(n / SAMPLE_RATE)
    motion_path = folder / "motion.npz"
    if not motion_path.is_file():
        raise DatasetError(
            f"{where}: missing file motion.npz; it holds a_head, a_gaze, a_blendshapes "
            f"(and optionally b_*, *_vad) ({_DOCS})"
        )
    try:
        with np.load(motion_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{where}: cannot read motion.npz ({exc})") from exc
    tracks: dict[str, MotionTrack | None] = {}
    for side, audio in (("a", a), ("b", b)):
        present = [p for p in _PARTS if f"{side}_{p}" in arrays]
        if side == "b" and not present:
            tracks[side] = None
            continue
        missing = [f"{side}_{p}" for p in _PARTS if f"{side}_{p}" not in arrays]
        if missing:
            raise DatasetError(
                f"{where}: motion.npz lacks {', '.join(missing)} (it has "
                f"{', '.join(sorted(arrays)) or 'nothing'}); write all of head, gaze and "
                f"blendshapes for a participant, or none of the b_ arrays for one-sided data"
            )
        vad = arrays.get(f"{side}_vad")
        track = MotionTrack(
            head=arrays[f"{side}_head"],
            gaze=arrays[f"{side}_gaze"],
            blendshapes=arrays[f"{side}_blendshapes"],
            vad=vad,
        )
        checked = _check_track(track, side, frames, f"{where}: motion.npz")
        vad = checked.get(f"{side}_vad")
        tracks[side] = MotionTrack(
            head=checked[f"{side}_head"],
            gaze=checked[f"{side}_gaze"],
            blendshapes=checked[f"{side}_blendshapes"],
            vad=energy_vad(audio, frames) if vad is None else vad,
        )
    meta: dict[str, Any] = {}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: meta.json is not valid JSON ({exc})") from exc
    motion_a = tracks["a"]
    assert motion_a is not None
    return SessionData(
        id=folder.name,
        path=folder,
        audio_a=a,
        audio_b=b,
        motion_a=motion_a,
        motion_b=tracks["b"],
        meta=meta,
    )


def session_examples(session: SessionData) -> list[Example]:
    """The examples of one session: side a, and side b when it has motion."""
    out = []
    for side, own, partner, track in (
        ("a", session.audio_a, session.audio_b, session.motion_a),
        ("b", session.audio_b, session.audio_a, session.motion_b),
    ):
        if track is None:
            continue
        vad = track.vad if track.vad is not None else energy_vad(own, track.frames)
        out.append(
            Example(
                own=own,
                partner=partner,
                latents=track.latents().astype(np.float32),
                speaking=np.asarray(vad, np.float32),
                session_id=session.id,
                side=side,
            )
        )
    return out


def examples(root: str | os.PathLike, split: str | None = "train") -> list[Example]:
    """Every training example of a split (both sides of each two-sided session).

    Pass each to :meth:`infp_sdk.data.windows.Session.from_audio` as
    ``Session.from_audio(ex.own, ex.partner, ex.latents, ex.speaking)``.
    """
    out: list[Example] = []
    for folder in list_sessions(root, split):
        out.extend(session_examples(read_session(folder)))
    return out
