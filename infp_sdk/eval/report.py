"""Evaluate models on a dataset split: every metric, a table, a session plot and ``infp-sdk eval``.

:func:`evaluate` runs each model once over every example of a split (both sides of each
session), scores it against the teacher motion stored in the dataset with the metrics of
:mod:`infp_sdk.eval.metrics`, and always adds two reference rows: ``teacher`` (the ground truth
scored against itself: the ceiling, and what the behavioural numbers look like for the motion
the model learns from) and ``static`` (the mean training pose held still: the floor). See
``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, write_text
from ..audio import SAMPLE_RATE
from ..data.dataset import SPLITS, energy_vad, list_sessions, read_session
from ..motion import FPS, RIG_DIM, blendshape_index, latent_to_rig, rig_to_latent
from ..runtime.backend import HopModel, is_torch_model
from . import metrics as M

TEACHER = "teacher"
STATIC = "static"
MAX_LAG = 4
SID_K_EXPRESSION = 40
SID_K_POSE = 20
PLOT_BROW = "browInnerUp"

_JAW = blendshape_index("jawOpen")
_BROW = blendshape_index(PLOT_BROW)


@dataclass
class EvalExample:
    """One side of one session, as the evaluation sees it."""

    session_id: str
    side: str
    own: np.ndarray
    """float32 16 kHz: the voice of the side whose motion is scored."""
    partner: np.ndarray
    """float32 16 kHz: the other side's voice."""
    latents: np.ndarray
    """float32 (T, 62): the teacher's motion of the own side (the ground truth)."""
    own_vad: np.ndarray
    """float32 (T,): 1 while the own side talks."""
    partner_vad: np.ndarray
    """float32 (T,): 1 while the partner talks."""
    engine: str = "unknown"
    """The own voice's speech engine (from the session's meta), for per-engine scores."""
    phonemes: list[tuple[float, float, str]] | None = None
    """The own voice's phonemes as (start s, end s, viseme), when the dataset records them."""

    @property
    def frames(self) -> int:
        return int(self.latents.shape[0])

    def loudness_db(self) -> np.ndarray:
        """Own-voice frame loudness (dB), one value per motion frame."""
        return M.frame_loudness_db(self.own, self.frames)


def load_examples(
    root: str | Path, split: str = "test", max_sessions: int | None = None
) -> list[EvalExample]:
    """The examples of a split: each side with motion of the first ``max_sessions`` sessions.

    The partner's voice activity is the partner track's ``vad`` (estimated from the partner's
    audio with :func:`infp_sdk.data.dataset.energy_vad` when the dataset has none).
    """
    folders = list_sessions(root, split)
    if max_sessions is not None:
        folders = folders[: max(0, int(max_sessions))]
    out: list[EvalExample] = []
    for folder in folders:
        s = read_session(folder)
        sides = (
            ("a", s.audio_a, s.audio_b, s.motion_a, s.motion_b),
            ("b", s.audio_b, s.audio_a, s.motion_b, s.motion_a),
        )
        for side, own, partner, track, other in sides:
            if track is None:
                continue
            frames = track.frames
            own_vad = track.vad if track.vad is not None else energy_vad(own, frames)
            if other is not None and other.vad is not None:
                partner_vad = other.vad
            else:
                partner_vad = energy_vad(partner, frames)
            voice = s.meta.get("voices", {}).get(side, {})
            phonemes = s.meta.get("phonemes", {}).get(side)
            out.append(
                EvalExample(
                    session_id=s.id,
                    side=side,
                    own=own,
                    partner=partner,
                    latents=track.latents().astype(np.float32),
                    own_vad=np.asarray(own_vad, np.float32)[:frames],
                    partner_vad=np.asarray(partner_vad, np.float32)[:frames],
                    engine=str(voice.get("engine", "espeak-ng")) if voice else "unknown",
                    phonemes=(
                        [(float(p[0]), float(p[1]), str(p[-1])) for p in phonemes]
                        if phonemes
                        else None
                    ),
                )
            )
    return out


def static_baseline(
    root: str | Path, fallback: list[EvalExample] | None = None
) -> tuple[np.ndarray, float, str]:
    """``(mean latent (62,), share of own speech, source)`` of the static baseline.

    The mean is over every frame of every side of the ``train`` sessions of ``root`` (read from
    their ``motion.npz``), and the speaking value is the share of frames in which that side
    talks. Without train sessions, the ``fallback`` examples (the evaluated split) are used and
    ``source`` says so.
    """
    total = np.zeros(RIG_DIM)
    frames, speech, vad_frames = 0, 0.0, 0
    try:
        folders = list_sessions(root, "train")
    except ValueError:
        folders = []
    for folder in folders:
        path = Path(folder) / "motion.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as npz:
            for side in ("a", "b"):
                if f"{side}_head" not in npz.files:
                    continue
                latents = rig_to_latent(
                    npz[f"{side}_head"],
                    npz[f"{side}_gaze"],
                    np.clip(npz[f"{side}_blendshapes"], 0.0, 1.0),
                )
                total += latents.sum(axis=0)
                frames += len(latents)
                if f"{side}_vad" in npz.files:
                    vad = npz[f"{side}_vad"]
                    speech += float((vad > 0.5).sum())
                    vad_frames += len(vad)
    if frames:
        share = speech / vad_frames if vad_frames else 0.5
        return (total / frames).astype(np.float32), share, "train"
    if not fallback:
        raise ValueError(f"{root} has no train sessions and no examples to take a mean from")
    stacked = np.concatenate([ex.latents for ex in fallback])
    vad = np.concatenate([ex.own_vad for ex in fallback])
    return stacked.mean(axis=0).astype(np.float32), float(np.mean(vad > 0.5)), "evaluated split"


def _fit_length(x: np.ndarray, frames: int) -> np.ndarray:
    if len(x) >= frames:
        return x[:frames]
    if len(x) == 0:
        raise ValueError("the model produced no frames")
    pad = [(0, frames - len(x))] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad, mode="edge")


def predict(
    model: Any,
    example: EvalExample,
    seed: int = 0,
    hop: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(latents (T, 62), speaking (T,))`` of one ``generate_motion`` call on an example."""
    from ..runtime.generator import generate_motion

    motion = generate_motion(
        model,
        example.own,
        example.partner,
        seed=seed,
        hop=hop,
        steps=steps,
        cfg_scale=cfg_scale,
    )
    return (
        _fit_length(np.asarray(motion.latents, np.float32), example.frames),
        _fit_length(np.asarray(motion.speaking, np.float32), example.frames),
    )


def score(
    predictions: list[tuple[np.ndarray, np.ndarray]],
    examples: list[EvalExample],
    centers_pose: np.ndarray,
    centers_expression: np.ndarray,
    loudness: list[np.ndarray] | None = None,
    audio_beats: list[np.ndarray] | None = None,
) -> dict[str, float]:
    """Every metric of one row: ``predictions[i] = (latents, speaking)`` for ``examples[i]``.

    ``centers_*`` are k-means centers fitted on the ground truth (:func:`infp_sdk.eval.metrics.
    kmeans`); ``loudness`` and ``audio_beats`` may be passed to avoid recomputing them per row.
    """
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    if loudness is None:
        loudness = [ex.loudness_db() for ex in examples]
    if audio_beats is None:
        audio_beats = [M.audio_beats(v) for v in loudness]
    latents = [p[0] for p in predictions]
    speaking = [p[1] for p in predictions]
    own_vad = [ex.own_vad for ex in examples]
    partner_vad = [ex.partner_vad for ex in examples]
    rigs = [latent_to_rig(v) for v in latents]
    jaw = [r[2][:, _JAW] for r in rigs]
    teacher_jaw = [latent_to_rig(ex.latents)[2][:, _JAW] for ex in examples]
    pitch = [r[0][:, 1] for r in rigs]
    pose = [M.pose_features(v) for v in latents]
    expression = [M.expression_features(v) for v in latents]
    gt_pose = [M.pose_features(ex.latents) for ex in examples]
    gt_expression = [M.expression_features(ex.latents) for ex in examples]

    motion_beats = [M.motion_beats(p) for p in pose]
    spk = M.speaking_accuracy(speaking, own_vad, partner_vad)
    lips = M.lip_activity(jaw, own_vad, partner_vad)
    sync = M.lip_sync(jaw, loudness, own_vad, teacher_jaw, max_lag=MAX_LAG)
    nods = M.nods_per_minute(pitch, [1.0 - v for v in own_vad])
    art = score_articulation(predictions, examples)
    return {
        **art,
        "speaking_accuracy": spk["accuracy"],
        "speaking_balanced_accuracy": spk["balanced_accuracy"],
        "lip_ratio": lips["ratio"],
        "lip_own_std": lips["own_std"],
        "lip_partner_std": lips["partner_std"],
        "lipsync_loudness_r": sync["loudness_r"],
        "lipsync_loudness_lag": sync["loudness_lag"],
        "lipsync_teacher_r": sync["teacher_r"],
        "lipsync_teacher_lag": sync["teacher_lag"],
        "nods_per_minute": nods["per_minute"],
        "fd_pose": M.frechet_distance(pose, gt_pose),
        "fd_expression": M.frechet_distance(expression, gt_expression),
        "var_pose": M.temporal_variance(pose),
        "var_expression": M.temporal_variance(expression),
        "sid_pose": M.sid(pose, centers_pose),
        "sid_expression": M.sid(expression, centers_expression),
        "beat_align": M.beat_align(audio_beats, motion_beats),
        "beat_align_chance": M.beat_align_chance(
            audio_beats, motion_beats, [ex.frames for ex in examples]
        ),
    }


def score_articulation(
    predictions: list[tuple[np.ndarray, np.ndarray]], examples: list[EvalExample]
) -> dict[str, float]:
    """The syllable-level metrics (:func:`infp_sdk.eval.metrics.articulation`) inside own turns."""
    return M.articulation(
        [latent_to_rig(p[0])[2] for p in predictions],
        [latent_to_rig(ex.latents)[2] for ex in examples],
        [M.frame_rms(ex.own, ex.frames) for ex in examples],
        [M.inside_turns(ex.own_vad, ex.partner_vad) for ex in examples],
        [ex.phonemes for ex in examples],
        max_lag=MAX_LAG,
    )


def _resolve_models(models: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for name, model in models.items():
        if isinstance(model, str) and model in (TEACHER, STATIC):
            resolved[name] = model
        elif isinstance(model, (str, Path)):
            from ..model.checkpoint import load_model

            resolved[name] = load_model(model)
        elif isinstance(model, HopModel) or is_torch_model(model):
            resolved[name] = model
        else:
            raise TypeError(
                f"model {name!r} must be a model (an INFPModel or one from load_hop_model), a "
                "checkpoint path, 'teacher' or 'static'; "
                f"got {type(model).__name__}"
            )
    values = [v for v in resolved.values() if isinstance(v, str)]
    for ref in (TEACHER, STATIC):
        if ref not in values:
            if ref in resolved:
                raise ValueError(f"the name {ref!r} is reserved for the {ref} row")
            resolved[ref] = ref
    return resolved


def evaluate(
    models: Mapping[str, Any],
    root: str | Path,
    split: str = "test",
    max_sessions: int | None = None,
    seed: int = 0,
    *,
    plot: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    hop: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
) -> dict[str, Any]:
    """Score models on a dataset split against the teacher motion.

    Args:
        models: Row name -> a model (an ``INFPModel`` or a ``HopModel``), a checkpoint path,
            ``"teacher"`` (the ground truth itself) or ``"static"`` (the mean training motion,
            constant, with speaking = the share of own speech in training). Teacher and static
            rows are added when absent.
        root: Dataset folder (``docs/dataset.md``).
        split: ``train``, ``val`` or ``test``.
        max_sessions: Use only the first N sessions of the split (each gives one example per
            side with motion).
        seed: Noise seed of every ``generate_motion`` call and of k-means.
        plot: Where to save :func:`plot_session` of the first example (skipped when None).
        log: Called with a line of progress per model.
        hop: Frames per generation step for every model (default: each model's window); short
            hops are what a low-latency stream uses.
        steps: Solver steps for every model (default: each model's own); fewer is cheaper.
        cfg_scale: Classifier-free guidance scale for every model (default: each model's own).

    Returns:
        A JSON-ready dict: ``split``, ``root``, ``sessions``, ``examples``, ``minutes``,
        ``seed``, ``static_source``, ``settings`` and ``metrics`` (row name -> metric name ->
        value, ``nan`` where undefined; see ``docs/evaluation.md`` for every key), with each
        model's generation time in ``seconds`` and real-time factor ``rtf``.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    resolved = _resolve_models(models)
    examples = load_examples(root, split, max_sessions)
    if not examples:
        raise ValueError(f"{root} has no {split} sessions with motion to evaluate")
    mean_latent, speech_share, static_source = static_baseline(root, examples)
    loudness = [ex.loudness_db() for ex in examples]
    beats = [M.audio_beats(v) for v in loudness]
    centers_pose = M.kmeans([M.pose_features(ex.latents) for ex in examples], SID_K_POSE, seed)
    centers_expr = M.kmeans(
        [M.expression_features(ex.latents) for ex in examples], SID_K_EXPRESSION, seed
    )
    total_seconds = sum(len(ex.own) for ex in examples) / SAMPLE_RATE
    rows: dict[str, dict[str, float]] = {}
    by_engine: dict[str, dict[str, dict[str, float]]] = {}
    engines = sorted({ex.engine for ex in examples})
    first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, model in resolved.items():
        started = time.perf_counter()
        if isinstance(model, str) and model == TEACHER:
            preds = [(ex.latents, ex.own_vad) for ex in examples]
        elif isinstance(model, str) and model == STATIC:
            preds = [
                (np.tile(mean_latent, (ex.frames, 1)), np.full(ex.frames, speech_share, np.float32))
                for ex in examples
            ]
        else:
            preds = [predict(model, ex, seed, hop, steps, cfg_scale) for ex in examples]
        elapsed = time.perf_counter() - started
        row = score(preds, examples, centers_pose, centers_expr, loudness, beats)
        if not isinstance(model, str):
            row["seconds"] = elapsed
            row["rtf"] = elapsed / max(total_seconds, 1e-9)
            first[name] = preds[0]
        rows[name] = row
        if len(engines) > 1:
            by_engine[name] = {
                engine: score_articulation(
                    [p for p, ex in zip(preds, examples, strict=True) if ex.engine == engine],
                    [ex for ex in examples if ex.engine == engine],
                )
                for engine in engines
            }
        if log is not None:
            log(f"{name}: scored {len(examples)} examples in {elapsed:.1f} s")
    if plot is not None:
        ex = examples[0]
        plot_session(plot, ex, {**first, TEACHER: (ex.latents, ex.own_vad)})
    return {
        "split": split,
        "root": str(root),
        "sessions": len({ex.session_id for ex in examples}),
        "examples": len(examples),
        "minutes": total_seconds / 60.0,
        "seed": seed,
        "ground_truth": TEACHER,
        "static_source": static_source,
        "settings": {
            "max_lag": MAX_LAG,
            "sid_k_pose": SID_K_POSE,
            "sid_k_expression": SID_K_EXPRESSION,
            "nod_min_prominence_rad": 0.02,
            "nod_window_s": 1.5,
            "nod_min_interval_s": 0.3,
            "beat_sigma_frames": 3.0,
            "hop_frames": hop,
            "solver_steps": steps,
            "cfg_scale": cfg_scale,
        },
        "metrics": rows,
        "engines": {e: sum(ex.engine == e for ex in examples) for e in engines},
        "articulation_by_engine": by_engine,
    }


# ----------------------------------------------------------------------------------------------
# Table and JSON
# ----------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _fmt_lag(r: Any, lag: Any) -> str:
    if r is None or lag is None or (isinstance(r, float) and math.isnan(r)):
        return "-"
    return f"{r:.2f} ({int(lag):+d})"


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]

    def join(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return [join(header), "  ".join("-" * w for w in widths), *(join(line) for line in lines)]


def _articulation_line(name: str, m: Mapping[str, Any]) -> list[str]:
    return [
        name,
        _fmt_lag(m.get("jaw_rms_r"), m.get("jaw_rms_lag")),
        _fmt(m.get("teacher_r_jawOpen")),
        _fmt(m.get("teacher_r_mouthClose")),
        _fmt(m.get("teacher_r_mouthFunnel")),
        _fmt(m.get("teacher_r_mouthPucker")),
        _fmt(m.get("teacher_r_mouthStretchLeft")),
        _fmt(m.get("jaw_spread_ratio")),
        _fmt(m.get("bilabial_closure")),
        _fmt(m.get("bilabial_closure_ratio")),
        _fmt(m.get("rounding_ratio")),
    ]


ARTICULATION_HEADER = [
    "row",
    "jaw~RMS (lag)",
    "r jaw",
    "r close",
    "r funnel",
    "r pucker",
    "r stretch",
    "jaw spread",
    "/p b m/ shut",
    "vs teacher",
    "round /u o w/",
]


def format_table(results: Mapping[str, Any]) -> str:
    """Plain-text tables of :func:`evaluate`'s results: articulation, behaviour, distributions.

    Articulation (inside own turns): jawOpen against the own voice's RMS, each mouth channel
    against the teacher's, jaw spread against the teacher's, /p b m/ closures and /u o w/
    rounding against the teacher's; then the same per voice engine when the split has several.
    Behaviour: speaking-state accuracy (plain and balanced), lip activity ratio, lip-sync r
    (best lag) against loudness and against the teacher's jaw, nods per listening minute, and
    Beat Align with its chance level. Distributions: FD, Var and SID for pose and expression,
    and each model's real-time factor. ``-`` marks undefined.
    """
    rows: Mapping[str, Mapping[str, Any]] = results["metrics"]
    head = (
        f"{results.get('split', '?')} split: {results.get('sessions', '?')} sessions, "
        f"{results.get('examples', '?')} examples, {results.get('minutes', 0.0):.1f} min; "
        f"ground truth = teacher; static = mean of {results.get('static_source', 'train')} motion"
    )
    behaviour = [
        [
            name,
            _fmt(m.get("speaking_accuracy")),
            _fmt(m.get("speaking_balanced_accuracy")),
            _fmt(m.get("lip_ratio"), 1),
            _fmt_lag(m.get("lipsync_loudness_r"), m.get("lipsync_loudness_lag")),
            _fmt_lag(m.get("lipsync_teacher_r"), m.get("lipsync_teacher_lag")),
            _fmt(m.get("nods_per_minute"), 1),
            _fmt(m.get("beat_align")),
            _fmt(m.get("beat_align_chance")),
        ]
        for name, m in rows.items()
    ]
    distribution = [
        [
            name,
            _fmt(m.get("fd_pose"), 3),
            _fmt(m.get("fd_expression"), 3),
            _fmt(m.get("var_pose"), 4),
            _fmt(m.get("var_expression"), 4),
            _fmt(m.get("sid_pose")),
            _fmt(m.get("sid_expression")),
            _fmt(m.get("rtf")),
        ]
        for name, m in rows.items()
    ]
    lines = [head, ""]
    lines += _table(ARTICULATION_HEADER, [_articulation_line(name, m) for name, m in rows.items()])
    lines.append("")
    by_engine = results.get("articulation_by_engine") or {}
    if by_engine:
        per_engine = [
            _articulation_line(f"{name} / {engine}", m)
            for name, engines in by_engine.items()
            for engine, m in engines.items()
        ]
        lines += _table(ARTICULATION_HEADER, per_engine)
        lines.append("")
    behaviour_header = ["row", "spk acc", "spk bal", "lip ratio", "r loud (lag)"]
    behaviour_header += ["r teacher (lag)", "nods/min", "BA", "BA chance"]
    lines += _table(behaviour_header, behaviour)
    lines.append("")
    lines += _table(
        ["row", "FD pose", "FD expr", "Var pose", "Var expr", "SID pose", "SID expr", "RTF"],
        distribution,
    )
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def save_json(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write results as JSON (``nan`` becomes ``null``); returns the path."""
    path = Path(path)
    write_text(path, json.dumps(_jsonable(results), indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# Plot
# ----------------------------------------------------------------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges where ``mask`` is true."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def plot_session(
    path: str | Path,
    example: EvalExample,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    seconds: float | None = 30.0,
    start: float = 0.0,
    title: str | None = None,
) -> Path:
    """Save a PNG of one example: both voices on top, then model and teacher curves.

    Panels, top to bottom: the loudness envelopes (dB) of the own and the partner track;
    jawOpen; head pitch (degrees, up = chin down); head yaw (degrees); browInnerUp; and
    ``speaking`` (the teacher's is the own voice activity). Own-only speech is shaded blue,
    partner-only speech orange, overlap grey, across every panel. ``predictions`` maps a row
    name to ``(latents, speaking)``; the row named ``teacher`` is drawn in black. Shows
    ``seconds`` from ``start`` (None: to the end). Needs matplotlib.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev/train extra
        raise ImportError("plot_session needs matplotlib: pip install 'infp-sdk[train]'") from exc
    lo = max(0, int(round(start * FPS)))
    hi = example.frames if seconds is None else min(example.frames, lo + int(seconds * FPS))
    t = (np.arange(lo, hi) + 0.5) / FPS
    own_vad = example.own_vad[lo:hi] > 0.5
    partner_vad = example.partner_vad[lo:hi] > 0.5
    own_db = M.frame_loudness_db(example.own, example.frames)[lo:hi]
    partner_db = M.frame_loudness_db(example.partner, example.frames)[lo:hi]

    fig = Figure(figsize=(14, 12), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(6, 1, sharex=True)
    names = ["voices (dB)", "jawOpen", "head pitch (deg)", "head yaw (deg)", PLOT_BROW, "speaking"]
    for ax, label in zip(axes, names, strict=True):
        for mask, color in (
            (own_vad & ~partner_vad, "tab:blue"),
            (partner_vad & ~own_vad, "tab:orange"),
            (own_vad & partner_vad, "0.5"),
        ):
            for a, b in _runs(mask):
                ax.axvspan(t[a] - 0.5 / FPS, t[b - 1] + 0.5 / FPS, color=color, alpha=0.12, lw=0)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].plot(t, own_db, color="tab:blue", lw=0.8, label="own voice")
    axes[0].plot(t, partner_db, color="tab:orange", lw=0.8, label="partner voice")
    axes[0].legend(loc="upper right", fontsize=8)

    palette = iter(["tab:red", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive"])
    order = sorted(predictions, key=lambda n: n == TEACHER)  # teacher drawn last, on top
    for name in order:
        latents, speaking = predictions[name]
        head, _, shapes = latent_to_rig(np.asarray(latents)[lo:hi])
        color = "black" if name == TEACHER else next(palette, "tab:gray")
        style = {"color": color, "lw": 1.0 if name == TEACHER else 1.2, "label": name}
        axes[1].plot(t, shapes[:, _JAW], **style)
        axes[2].plot(t, np.degrees(head[:, 1]), **style)
        axes[3].plot(t, np.degrees(head[:, 0]), **style)
        axes[4].plot(t, shapes[:, _BROW], **style)
        axes[5].plot(t, np.asarray(speaking)[lo:hi], **style)
    axes[5].axhline(0.5, color="0.4", lw=0.6, ls="--")
    axes[5].set_ylim(-0.05, 1.05)
    axes[1].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s); shaded: blue own speech, orange partner speech, grey both")
    fig.suptitle(title or f"session {example.session_id}, side {example.side} (own)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:  # the temporary keeps the extension: same image format
        fig.savefig(tmp)
    return path


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..bench import load_backend

    def load_model(path: str):
        return load_backend(path, args.backend, args.threads)[0]

    models: dict[str, Any] = {"model": load_model(args.model)}
    for item in args.compare or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--compare takes NAME=PATH, got {item!r}")
        if name in models or name in (TEACHER, STATIC):
            raise ValueError(f"--compare name {name!r} is already taken; pick another")
        models[name] = load_model(path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = evaluate(
        models,
        args.data,
        split=args.split,
        max_sessions=args.sessions,
        seed=args.seed,
        plot=None if args.no_plot else out / "session.png",
        log=lambda line: print(line, file=sys.stderr),
        hop=args.hop,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
    )
    print(format_table(results))
    save_json(results, out / "eval.json")
    written = "eval.json" if args.no_plot else "eval.json and session.png"
    print(f"\nwrote {written} to {out}")
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an ``argparse`` subparsers object; returns its parser.

    The handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    parser = subparsers.add_parser(
        "eval",
        help="score models against the teacher motion of a dataset split",
        description="Run a model (and others to compare) over every example of a dataset "
        "split, score turn-taking, lip sync, nods, FD, Var, SID and Beat Align against the "
        "teacher motion, print a table with teacher and static rows, and write eval.json and "
        "session.png to --out (docs/evaluation.md).",
    )
    parser.add_argument("--data", required=True, help="dataset folder with manifest.json")
    parser.add_argument("--split", choices=list(SPLITS), default="test")
    parser.add_argument("--model", default="default", help="checkpoint path or bundled name")
    parser.add_argument(
        "--compare",
        nargs="+",
        action="extend",
        metavar="NAME=PATH",
        help="more checkpoints to score as rows NAME",
    )
    parser.add_argument("--sessions", type=int, help="use only the first N sessions")
    parser.add_argument("--out", default="eval", help="output folder (default: ./eval)")
    parser.add_argument("--seed", type=int, default=0, help="noise and k-means seed")
    parser.add_argument("--threads", type=int, help="CPU threads of the model")
    parser.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="run the models in torch (default) or onnxruntime (same frames to about 1e-4, "
        "faster at small hops)",
    )
    parser.add_argument("--hop", type=int, help="frames per generation step (default: window)")
    parser.add_argument(
        "--steps", type=int, help="solver steps (default: the model's; fewer is cheaper)"
    )
    parser.add_argument(
        "--cfg-scale", type=float, help="guidance scale (default: the model's; 1 = none)"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip session.png")
    parser.set_defaults(func=_cmd_eval)
    return parser
