"""Metrics for conversational motion: pure NumPy, one function per metric.

Every definition is stated in the docstring of its function and collected in
``docs/evaluation.md``. Conventions:

* Motion runs at :data:`infp_sdk.motion.FPS` = 25 frames per second; "frame" below means a 40 ms
  motion frame, and frame ``i`` of an audio track is samples ``[640 i, 640 (i + 1))``.
* Functions that pool over several examples accept either one sequence (a NumPy array) or a
  list/tuple of sequences, one per example; sequences are never concatenated across examples
  where that would create false neighbours in time (lags, peaks, beats).
* A metric that is undefined on its input (no frames to average, a constant signal in a
  correlation) is ``nan``, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..audio import SAMPLES_PER_MOTION_FRAME
from ..motion import ARKIT_BLENDSHAPES, FPS, RIG_HEAD, latent_to_rig

Sequences = np.ndarray | Sequence[np.ndarray]
"""One array, or one array per example."""

NAN = float("nan")
_BS = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}


def _seqs(x: Sequences) -> list[np.ndarray]:
    """An array is one sequence; a list or tuple holds one sequence per example."""
    if isinstance(x, np.ndarray):
        return [x]
    return [np.asarray(v) for v in x]


def _paired(*args: Sequences) -> list[list[np.ndarray]]:
    lists = [_seqs(a) for a in args]
    n = len(lists[0])
    for other in lists[1:]:
        if len(other) != n:
            raise ValueError(f"got {n} sequences in one argument but {len(other)} in another")
    for group in zip(*lists, strict=True):
        lengths = {len(v) for v in group}
        if len(lengths) != 1:
            raise ValueError(f"sequences of one example differ in length: {sorted(lengths)}")
    return lists


# ----------------------------------------------------------------------------------------------
# Signal helpers
# ----------------------------------------------------------------------------------------------


def frame_loudness_db(
    audio: np.ndarray, frames: int | None = None, floor_db: float = -80.0
) -> np.ndarray:
    """Loudness of 16 kHz audio per motion frame: ``10 log10(mean(x^2))`` in dBFS, float32 (T,).

    Frame ``i`` is samples ``[640 i, 640 (i + 1))`` (the frame RMS in dB); missing samples count
    as silence, and values are floored at ``floor_db`` so silence is finite. ``frames``
    defaults to ``len(audio) // 640``.
    """
    hop = SAMPLES_PER_MOTION_FRAME
    audio = np.asarray(audio, np.float64).reshape(-1)
    frames = len(audio) // hop if frames is None else int(frames)
    x = np.zeros(frames * hop)
    n = min(len(audio), len(x))
    x[:n] = audio[:n]
    power = np.mean(x.reshape(frames, hop) ** 2, axis=1)
    return np.maximum(10.0 * np.log10(power + 1e-12), floor_db).astype(np.float32)


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """``x`` (T,) or (T, D) convolved along time with a Gaussian of ``sigma`` frames.

    The ends are padded by repeating the edge values; ``sigma <= 0`` returns a float copy.
    """
    x = np.asarray(x, np.float64)
    if sigma <= 0 or len(x) == 0:
        return x.copy()
    radius = max(1, int(math.ceil(3.0 * sigma)))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    pad = [(radius, radius)] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x, pad, mode="edge")
    if x.ndim == 1:
        return np.convolve(padded, kernel, mode="valid")
    return np.stack(
        [np.convolve(padded[:, d], kernel, mode="valid") for d in range(x.shape[1])], axis=1
    )


def local_maxima(x: np.ndarray) -> np.ndarray:
    """Indices of the local maxima of a 1-D signal.

    A maximum is a sample (or a flat run of equal samples, reported at its middle, rounded
    down) that is higher than both neighbours; the first and last samples never are.
    """
    x = np.asarray(x, np.float64)
    peaks = []
    i, n = 1, len(x)
    while i < n - 1:
        if x[i - 1] < x[i]:
            j = i
            while j + 1 < n and x[j + 1] == x[i]:
                j += 1
            if j + 1 < n and x[j + 1] < x[i]:
                peaks.append((i + j) // 2)
            i = j + 1
        else:
            i += 1
    return np.asarray(peaks, dtype=np.int64)


def peak_prominences(x: np.ndarray, peaks: np.ndarray, wlen: int | None = None) -> np.ndarray:
    """Prominence of each peak: how far it stands above the higher of its two bases.

    From the peak, walk left while the signal does not exceed the peak height, staying within
    ``wlen // 2`` samples (the whole signal if ``wlen`` is None); the left base is the lowest
    value met. Likewise to the right. Prominence = peak height - max(left base, right base).
    (The same definition as ``scipy.signal.peak_prominences``.)
    """
    x = np.asarray(x, np.float64)
    half = len(x) if wlen is None else int(wlen) // 2
    out = np.zeros(len(peaks))
    for k, p in enumerate(np.asarray(peaks, np.int64)):
        height = x[p]
        lo, hi = max(0, p - half), min(len(x) - 1, p + half)
        left, i = height, p
        while i >= lo and x[i] <= height:
            left = min(left, x[i])
            i -= 1
        right, i = height, p
        while i <= hi and x[i] <= height:
            right = min(right, x[i])
            i += 1
        out[k] = height - max(left, right)
    return out


def _suppress_close(indices: np.ndarray, strength: np.ndarray, distance: int) -> np.ndarray:
    """Keep the strongest of any events closer than ``distance`` frames (greedy, by strength)."""
    kept: list[int] = []
    for k in np.argsort(-np.asarray(strength), kind="stable"):
        idx = int(indices[k])
        if all(abs(idx - other) >= distance for other in kept):
            kept.append(idx)
    return np.asarray(sorted(kept), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Rig features
# ----------------------------------------------------------------------------------------------


def pose_features(latents: np.ndarray) -> np.ndarray:
    """Head pose (T, 6) in normalised rig units: yaw, pitch, roll / 0.3 rad; x, y, z / 0.03 m.

    These are the head dimensions of the rig latent itself (:mod:`infp_sdk.motion`), so angles
    and translations weigh about equally in FD, Var, SID and beat detection.
    """
    return np.asarray(latents, np.float64)[..., RIG_HEAD]


def expression_features(latents: np.ndarray) -> np.ndarray:
    """The 52 ARKit blendshape weights (T, 52), clipped to 0..1 as an engine shows them."""
    return latent_to_rig(latents)[2].astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Turn-taking
# ----------------------------------------------------------------------------------------------


def speaking_accuracy(
    speaking: Sequences, own_vad: Sequences, partner_vad: Sequences, threshold: float = 0.5
) -> dict[str, float]:
    """How well the ``speaking`` output tells who is talking.

    Frames where exactly one participant talks (``own_vad > 0.5`` xor ``partner_vad > 0.5``) are
    scored; frames where both or neither talk are left out. The prediction is "own" when
    ``speaking > threshold``. Returns ``accuracy`` (share of scored frames predicted right),
    ``balanced_accuracy`` (mean of the hit rates on own-only and on partner-only frames, so a
    constant output scores 0.5) and ``frames`` (frames scored). Pooled over all examples.
    """
    speak_l, own_l, partner_l = _paired(speaking, own_vad, partner_vad)
    pred = np.concatenate([np.asarray(s) > threshold for s in speak_l]) if speak_l else []
    own = np.concatenate([np.asarray(o) > 0.5 for o in own_l]) if own_l else []
    partner = np.concatenate([np.asarray(p) > 0.5 for p in partner_l]) if partner_l else []
    pred, own, partner = (np.asarray(v, bool) for v in (pred, own, partner))
    scored = own ^ partner
    if not scored.any():
        return {"accuracy": NAN, "balanced_accuracy": NAN, "frames": 0}
    correct = pred[scored] == own[scored]
    groups = ((own & ~partner, True), (partner & ~own, False))
    rates = [float(np.mean(pred[m] == want)) for m, want in groups if m.any()]
    return {
        "accuracy": float(np.mean(correct)),
        "balanced_accuracy": float(np.mean(rates)),
        "frames": int(scored.sum()),
    }


# ----------------------------------------------------------------------------------------------
# Mouth
# ----------------------------------------------------------------------------------------------


def _pooled_std(values: list[np.ndarray]) -> float:
    """Square root of the within-sequence variance pooled over sequences (frame-weighted)."""
    ss, n = 0.0, 0
    for v in values:
        v = np.asarray(v, np.float64)
        if len(v) >= 2:
            ss += float(np.sum((v - v.mean()) ** 2))
            n += len(v)
    return math.sqrt(ss / n) if n else NAN


def lip_activity(jaw: Sequences, own_vad: Sequences, partner_vad: Sequences) -> dict[str, float]:
    """Lip activity ratio: std of jawOpen during own-only speech / during partner-only speech.

    ``own_std`` is the standard deviation of jawOpen over frames where only the own side talks,
    ``partner_std`` over frames where only the partner talks; each is the within-example
    variance pooled over examples (so a per-example offset of the resting jaw does not count as
    activity). ``ratio = own_std / partner_std``: large when the mouth articulates while
    talking and rests while listening; about 1 when it moves the same either way (a model that
    lip-syncs the partner). ``inf`` when the jaw moves only while talking, ``nan`` when either
    set of frames is empty or the jaw never moves.
    """
    jaw_l, own_l, partner_l = _paired(jaw, own_vad, partner_vad)
    own_vals, partner_vals = [], []
    for j, o, p in zip(jaw_l, own_l, partner_l, strict=True):
        o, p = np.asarray(o) > 0.5, np.asarray(p) > 0.5
        own_vals.append(np.asarray(j)[o & ~p])
        partner_vals.append(np.asarray(j)[p & ~o])
    own_std, partner_std = _pooled_std(own_vals), _pooled_std(partner_vals)
    if math.isnan(own_std) or math.isnan(partner_std):
        ratio = NAN
    elif partner_std > 0:
        ratio = own_std / partner_std
    else:
        ratio = math.inf if own_std > 0 else NAN
    return {"own_std": own_std, "partner_std": partner_std, "ratio": ratio}


def correlation_by_lag(
    x: Sequences, y: Sequences, mask: Sequences | None = None, max_lag: int = 4
) -> dict[int, float]:
    """Pearson r of ``x[t]`` with ``y[t - lag]`` for every lag in ``-max_lag..max_lag``.

    A positive lag means ``x`` follows ``y`` ``lag`` frames later. Only frames ``t`` with
    ``mask[t]`` (if given) and ``t - lag`` inside the sequence count. With several examples,
    r is computed in each and averaged weighted by its number of frames, so level differences
    between recordings do not inflate or deflate it; examples with fewer than 3 frames or a
    constant side are skipped, and a lag with none left is ``nan``.
    """
    if mask is None:
        x_l, y_l = _paired(x, y)
        m_l = [np.ones(len(v), bool) for v in x_l]
    else:
        x_l, y_l, m_l = _paired(x, y, mask)
    out: dict[int, float] = {}
    for lag in range(-max_lag, max_lag + 1):
        total_w, total = 0, 0.0
        for xs, ys, ms in zip(x_l, y_l, m_l, strict=True):
            xs, ys, ms = np.asarray(xs, np.float64), np.asarray(ys, np.float64), np.asarray(ms)
            t = np.arange(max(0, lag), min(len(xs), len(xs) + lag))
            t = t[ms[t].astype(bool)]
            if len(t) < 3:
                continue
            a, b = xs[t], ys[t - lag]
            a, b = a - a.mean(), b - b.mean()
            denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
            if denom <= 1e-12:
                continue
            total += len(t) * float(np.dot(a, b)) / denom
            total_w += len(t)
        out[lag] = total / total_w if total_w else NAN
    return out


def lagged_correlation(
    x: Sequences, y: Sequences, mask: Sequences | None = None, max_lag: int = 4
) -> tuple[float, int]:
    """``(r, lag)``: the highest r of :func:`correlation_by_lag` and its lag.

    Ties go to the smaller ``|lag|``. ``(nan, 0)`` when r is undefined at every lag.
    """
    by_lag = correlation_by_lag(x, y, mask, max_lag)
    best_r, best_lag = NAN, 0
    for lag in sorted(by_lag, key=lambda v: (abs(v), v)):
        r = by_lag[lag]
        if not math.isnan(r) and (math.isnan(best_r) or r > best_r + 1e-12):
            best_r, best_lag = r, lag
    return best_r, best_lag


def lip_sync(
    jaw: Sequences,
    loudness_db: Sequences,
    own_vad: Sequences,
    teacher_jaw: Sequences | None = None,
    max_lag: int = 4,
) -> dict[str, float]:
    """Lip sync: jawOpen against the own voice's loudness, and against the teacher's jawOpen.

    Over the frames where the own side talks (``own_vad > 0.5``), ``loudness_r`` is the Pearson
    correlation of jawOpen with the own track's frame loudness in dB
    (:func:`frame_loudness_db`) at the best lag within ``+-max_lag`` frames, and
    ``loudness_lag`` that lag (positive: the jaw follows the voice). ``teacher_r`` and
    ``teacher_lag`` compare with the teacher's jawOpen the same way (positive: the model is
    late). See :func:`correlation_by_lag` for the pooling over examples.
    """
    talking = [np.asarray(v) > 0.5 for v in _seqs(own_vad)]
    r, lag = lagged_correlation(jaw, loudness_db, talking, max_lag)
    out = {"loudness_r": r, "loudness_lag": float(lag) if not math.isnan(r) else NAN}
    if teacher_jaw is not None:
        r, lag = lagged_correlation(jaw, teacher_jaw, talking, max_lag)
        out.update(teacher_r=r, teacher_lag=float(lag) if not math.isnan(r) else NAN)
    return out


def frame_rms(audio: np.ndarray, frames: int) -> np.ndarray:
    """Root-mean-square amplitude of 16 kHz audio in each motion frame, float32 (T,)."""
    hop = SAMPLES_PER_MOTION_FRAME
    x = np.zeros(frames * hop, np.float64)
    n = min(len(audio), len(x))
    x[:n] = np.asarray(audio[:n], np.float64)
    return np.sqrt(np.mean(x.reshape(frames, hop) ** 2, axis=1)).astype(np.float32)


def inside_turns(
    own_vad: np.ndarray, partner_vad: np.ndarray, margin: int = 8, bridge: int = 5
) -> np.ndarray:
    """Frames well inside the own side's turns: bool (T,).

    A turn is a run of own voice activity, with pauses up to ``bridge`` frames (a breath
    between words) joined; its first and last ``margin`` frames (0.32 s at 25 fps) are left out,
    as are frames where the partner talks too. These are the frames where the mouth should say
    the syllables, not open or close for who is talking.
    """
    talking = np.asarray(own_vad) > 0.5
    n = len(talking)
    idx = np.flatnonzero(talking)
    out = np.zeros(n, bool)
    if len(idx) == 0:
        return out
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > bridge + 1:
            runs.append((start, prev + 1))
            start = i
        prev = i
    runs.append((start, prev + 1))
    for lo, hi in runs:
        if hi - lo > 2 * margin:
            out[lo + margin : hi - margin] = True
    return out & ~(np.asarray(partner_vad) > 0.5)


def lip_opening(blendshapes: np.ndarray) -> np.ndarray:
    """How far apart the lips are, from ARKit weights (T, 52) -> (T,).

    The jaw opens the lips unless mouthClose holds them together; the lip raisers and
    depressors part them further.
    """
    jaw, close = blendshapes[:, _BS["jawOpen"]], blendshapes[:, _BS["mouthClose"]]
    parting = (
        blendshapes[:, _BS["mouthLowerDownLeft"]]
        + blendshapes[:, _BS["mouthLowerDownRight"]]
        + blendshapes[:, _BS["mouthUpperUpLeft"]]
        + blendshapes[:, _BS["mouthUpperUpRight"]]
    ) / 4
    return np.clip(jaw - close, 0.0, None) + parting


def rounding(blendshapes: np.ndarray) -> np.ndarray:
    """Lip rounding (T,): mouthFunnel + mouthPucker."""
    return blendshapes[:, _BS["mouthFunnel"]] + blendshapes[:, _BS["mouthPucker"]]


BILABIAL_VISEMES = ("PP",)
ROUNDED_VISEMES = ("U", "O", "W")
CLOSED_LIPS = 0.08


def phoneme_frames(
    phonemes: list[tuple[float, float, str]], visemes: tuple[str, ...], mask: np.ndarray
) -> list[np.ndarray]:
    """For each phoneme whose viseme is in ``visemes`` and whose centre frame is in ``mask``:
    the frames it spans, widened by one frame each side (the lips close around the sound)."""
    n = len(mask)
    out = []
    for start, end, viseme in phonemes:
        if viseme.split("+")[0] not in visemes:
            continue
        centre = int((start + end) / 2 * FPS)
        if not 0 <= centre < n or not mask[centre]:
            continue
        lo, hi = max(int(start * FPS) - 1, 0), min(int(math.ceil(end * FPS)) + 1, n)
        out.append(np.arange(lo, max(hi, lo + 1)))
    return out


def articulation(
    blendshapes: Sequences,
    teacher_blendshapes: Sequences,
    rms: Sequences,
    mask: Sequences,
    phonemes: list[list[tuple[float, float, str]] | None] | None = None,
    channels: tuple[str, ...] = (
        "jawOpen",
        "mouthClose",
        "mouthFunnel",
        "mouthPucker",
        "mouthStretchLeft",
        "mouthLowerDownLeft",
        "mouthUpperUpLeft",
        "mouthRollLower",
        "mouthSmileLeft",
    ),
    max_lag: int = 4,
) -> dict[str, float]:
    """Syllable-level lip sync over the frames of ``mask`` (:func:`inside_turns`).

    - ``jaw_rms_r``: jawOpen against the own voice's frame RMS, best lag within ``+-max_lag``
      (positive: the jaw follows the voice);
    - ``teacher_r_<channel>``: each mouth channel against the teacher's, at lag 0 (the teacher is
      aligned with the audio: a late mouth is an error);
    - ``jaw_spread``: std of jawOpen over those frames, pooled within examples; ``jaw_spread_ratio``
      the same over the teacher's;
    - with ``phonemes`` (per example: (start s, end s, viseme)): ``bilabial_closure``, the share
      of /p b m/ whose frames bring the lips together (:func:`lip_opening` below
      ``CLOSED_LIPS``), and ``rounding``, the mean of the highest :func:`rounding` over each
      /u o w/, each with its ``_teacher`` value and ``_ratio`` to it.
    """
    bs_l, tb_l, rms_l, m_l = _paired(blendshapes, teacher_blendshapes, rms, mask)
    m_l = [np.asarray(m, bool) for m in m_l]
    out: dict[str, float] = {}
    jaw = [b[:, _BS["jawOpen"]] for b in bs_l]
    teacher_jaw = [b[:, _BS["jawOpen"]] for b in tb_l]
    r, lag = lagged_correlation(jaw, rms_l, m_l, max_lag)
    out["jaw_rms_r"], out["jaw_rms_lag"] = r, float(lag) if not math.isnan(r) else NAN
    for name in channels:
        ch = _BS[name]
        r = correlation_by_lag([b[:, ch] for b in bs_l], [b[:, ch] for b in tb_l], m_l, 0)[0]
        out[f"teacher_r_{name}"] = r
    spread = _pooled_std([j[m] for j, m in zip(jaw, m_l, strict=True) if m.sum() > 1])
    teacher_spread = _pooled_std(
        [j[m] for j, m in zip(teacher_jaw, m_l, strict=True) if m.sum() > 1]
    )
    out["jaw_spread"] = spread
    out["jaw_spread_ratio"] = spread / teacher_spread if teacher_spread > 0 else NAN
    if phonemes is not None and any(p for p in phonemes):
        closed = {"model": [], "teacher": []}
        rounded = {"model": [], "teacher": []}
        for b, tb, m, ph in zip(bs_l, tb_l, m_l, phonemes, strict=True):
            if not ph:
                continue
            for key, src in (("model", b), ("teacher", tb)):
                opening, round_ = lip_opening(src), rounding(src)
                for frames in phoneme_frames(ph, BILABIAL_VISEMES, m):
                    closed[key].append(float(opening[frames].min() < CLOSED_LIPS))
                for frames in phoneme_frames(ph, ROUNDED_VISEMES, m):
                    rounded[key].append(float(round_[frames].max()))
        for name, values in (("bilabial_closure", closed), ("rounding", rounded)):
            model_v = float(np.mean(values["model"])) if values["model"] else NAN
            teacher_v = float(np.mean(values["teacher"])) if values["teacher"] else NAN
            out[name] = model_v
            out[f"{name}_teacher"] = teacher_v
            out[f"{name}_ratio"] = model_v / teacher_v if teacher_v > 0 else NAN
            out[f"{name}_count"] = float(len(values["model"]))
    return out


# ----------------------------------------------------------------------------------------------
# Head
# ----------------------------------------------------------------------------------------------


def detect_nods(
    pitch: np.ndarray,
    fps: float = FPS,
    min_prominence: float = 0.02,
    window_s: float = 1.5,
    min_interval_s: float = 0.3,
    smooth_s: float = 0.06,
) -> np.ndarray:
    """Frames at which nods peak, from a head pitch curve (rad, + = chin down).

    A nod takes the chin down and back up, so it is a peak of pitch. The curve is first smoothed
    with a Gaussian of ``smooth_s`` seconds (sampling jitter is not a nod). A nod is a local
    maximum whose prominence (:func:`peak_prominences`) measured within a window of
    ``window_s`` seconds centred on it is at least ``min_prominence`` rad: the head must drop
    and come back by that much within 0.75 s on each side, so slow drifts and posture changes
    are not nods. Of peaks closer than ``min_interval_s`` the more prominent one is kept (a
    real nod lasts at least about 0.3 s). Defaults: 0.02 rad (1.1 degrees), a 1.5 s window,
    0.3 s apart.
    """
    p = gaussian_smooth(np.asarray(pitch, np.float64), smooth_s * fps)
    peaks = local_maxima(p)
    if len(peaks) == 0:
        return peaks
    half = int(round(window_s * fps / 2))
    prom = peak_prominences(p, peaks, wlen=2 * half + 1)
    keep = prom >= min_prominence
    return _suppress_close(peaks[keep], prom[keep], max(1, int(round(min_interval_s * fps))))


def nods_per_minute(
    pitch: Sequences, listening: Sequences, fps: float = FPS, **nod_options: float
) -> dict[str, float]:
    """Nods per minute of listening.

    Nods are found with :func:`detect_nods` (``nod_options`` go to it) on each example's whole
    pitch curve; a nod counts when its peak frame is a listening frame (``listening > 0.5``;
    the report uses "the own side is not talking"). ``per_minute`` = counted nods / listening
    minutes, pooled over examples; ``nan`` without listening frames.
    """
    pitch_l, listen_l = _paired(pitch, listening)
    nods, frames = 0, 0
    for p, lst in zip(pitch_l, listen_l, strict=True):
        lst = np.asarray(lst) > 0.5
        peaks = detect_nods(p, fps=fps, **nod_options)
        nods += int(lst[peaks].sum()) if len(peaks) else 0
        frames += int(lst.sum())
    minutes = frames / fps / 60.0
    return {
        "nods": float(nods),
        "minutes": minutes,
        "per_minute": nods / minutes if minutes > 0 else NAN,
    }


# ----------------------------------------------------------------------------------------------
# Distributions: FD, Var, SID
# ----------------------------------------------------------------------------------------------


def _rows(x: Sequences) -> np.ndarray:
    """Stack (T, D) sequences into one (N, D) array of frames."""
    parts = [np.asarray(v, np.float64) for v in _seqs(x)]
    parts = [v.reshape(len(v), -1) for v in parts]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 0))


def gaussian_fit(x: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (divided by N) of the frames of ``x``."""
    rows = _rows(x)
    if len(rows) == 0:
        raise ValueError("cannot fit a Gaussian to zero frames")
    mu = rows.mean(axis=0)
    centred = rows - mu
    return mu, centred.T @ centred / len(rows)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_gaussians(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    ``|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1^1/2 cov2 cov1^1/2)^1/2)``, computed with
    symmetric eigendecompositions (the same value as the usual ``sqrtm(cov1 @ cov2)`` form).
    """
    root1 = _sqrt_psd(np.asarray(cov1, np.float64))
    middle = root1 @ np.asarray(cov2, np.float64) @ root1
    w = np.linalg.eigvalsh((middle + middle.T) / 2)
    cross = float(np.sum(np.sqrt(np.clip(w, 0, None))))
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    fd = float(diff @ diff) + float(np.trace(cov1)) + float(np.trace(cov2)) - 2.0 * cross
    return max(fd, 0.0)


def frechet_distance(x: Sequences, y: Sequences) -> float:
    """FD between Gaussian fits of the per-frame features of ``x`` and ``y`` (each (T, D)).

    Frames are pooled over examples; time order plays no part. Units are the features' units
    squared (a pure shift of every frame by ``s`` gives ``|s|^2``).
    """
    return frechet_distance_gaussians(*gaussian_fit(x), *gaussian_fit(y))


def temporal_variance(x: Sequences) -> float:
    """Var: the variance over time of each feature dimension, averaged over dimensions.

    Computed within each example (so differences between recordings do not count) and
    averaged over examples weighted by their frames. A still face scores 0.
    """
    total, frames = 0.0, 0
    for v in _seqs(x):
        v = np.asarray(v, np.float64).reshape(len(v), -1)
        if len(v) >= 2:
            total += len(v) * float(v.var(axis=0).mean())
            frames += len(v)
    return total / frames if frames else NAN


def _sq_dists(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return np.maximum(d, 0.0)


def assign_clusters(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center (squared Euclidean distance) of each row of ``x``."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return np.argmin(_sq_dists(x, np.asarray(centers, np.float64)), axis=1)


def kmeans(
    x: Sequences, k: int, seed: int = 0, iters: int = 100, max_points: int = 20_000
) -> np.ndarray:
    """k-means centers (k, D) of the frames of ``x``: k-means++ seeding, then Lloyd iterations.

    Deterministic for a given ``seed``. At most ``max_points`` frames (a seeded random subset)
    are used. Iterations stop when no assignment changes; an empty cluster keeps its center.
    """
    rows = _rows(x)
    if len(rows) == 0:
        raise ValueError("k-means needs at least one frame")
    rng = np.random.default_rng(seed)
    if len(rows) > max_points:
        rows = rows[rng.choice(len(rows), max_points, replace=False)]
    centers = np.empty((k, rows.shape[1]))
    centers[0] = rows[rng.integers(len(rows))]
    nearest = _sq_dists(rows, centers[:1])[:, 0]
    for c in range(1, k):
        total = nearest.sum()
        idx = rng.choice(len(rows), p=nearest / total) if total > 0 else rng.integers(len(rows))
        centers[c] = rows[idx]
        nearest = np.minimum(nearest, _sq_dists(rows, centers[c : c + 1])[:, 0])
    labels = None
    for _ in range(iters):
        new = assign_clusters(rows, centers)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = rows[labels == c]
            if len(members):
                centers[c] = members.mean(axis=0)
    return centers


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    """Entropy in bits of the histogram of ``labels`` over ``k`` clusters (0 .. log2 k)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=k).astype(np.float64)
    if counts.sum() == 0:
        return NAN
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def sid(x: Sequences, centers: np.ndarray) -> float:
    """SID (diversity): entropy in bits of which ground-truth k-means cluster each frame is in.

    ``centers`` come from :func:`kmeans` fitted on the ground truth (the report uses k = 40 for
    expression, 20 for pose). A prediction spread over the clusters as evenly as possible
    scores ``log2 k``; one that stays in one cluster (a still face) scores 0.
    """
    centers = np.asarray(centers)
    return cluster_entropy(assign_clusters(_rows(x), centers), len(centers))


# ----------------------------------------------------------------------------------------------
# Beat alignment
# ----------------------------------------------------------------------------------------------


def motion_beats(features: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Motion beats: frames where the motion momentarily slows down.

    The speed is the Euclidean norm of the central-difference velocity of ``features`` (T, D)
    (the report uses the head pose, :func:`pose_features`), smoothed with a Gaussian of
    ``sigma`` frames; beats are its local minima. A still signal has none.
    """
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    if len(f) < 3:
        return np.zeros(0, np.int64)
    speed = np.linalg.norm(np.gradient(f, axis=0), axis=1)
    return local_maxima(-gaussian_smooth(speed, sigma))


def audio_beats(
    loudness_db: np.ndarray,
    sigma: float = 1.0,
    min_rise_db: float = 3.0,
    range_db: float = 30.0,
    min_interval: int = 5,
) -> np.ndarray:
    """Audio beats: onsets of the own track's energy envelope (frames).

    The envelope is the frame loudness in dB (:func:`frame_loudness_db`) smoothed with a
    Gaussian of ``sigma`` frames; its onset strength at frame t is the rise
    ``max(env[t] - env[t-1], 0)``. Onsets are local maxima of the onset strength that rise at
    least ``min_rise_db`` dB per frame and reach a level within ``range_db`` dB of the track's
    95th-percentile loudness (so noise-floor flicker and crosstalk are not beats); of onsets
    closer than ``min_interval`` frames (0.2 s) the stronger is kept.
    """
    env = gaussian_smooth(np.asarray(loudness_db, np.float64), sigma)
    if len(env) < 3:
        return np.zeros(0, np.int64)
    flux = np.concatenate([[0.0], np.maximum(np.diff(env), 0.0)])
    cand = local_maxima(flux)
    level = np.percentile(env, 95) - range_db
    cand = cand[(flux[cand] >= min_rise_db) & (env[cand] >= level)]
    return _suppress_close(cand, flux[cand], min_interval)


def beat_align(
    audio_beat_frames: Sequences, motion_beat_frames: Sequences, sigma: float = 3.0
) -> float:
    """Beat Align: mean over audio beats of ``exp(-d^2 / (2 sigma^2))`` = ``exp(-d^2 / 18)``.

    ``d`` is the distance in frames from the audio beat to the nearest motion beat of the same
    example (an example without motion beats scores 0 on its audio beats). 1 when every audio
    beat has a motion beat on it; about 0.6 at 3 frames (120 ms) off. ``nan`` with no audio
    beats at all.
    """
    audio_l, motion_l = _seqs(audio_beat_frames), _seqs(motion_beat_frames)
    if len(audio_l) != len(motion_l):
        raise ValueError(f"{len(audio_l)} audio beat lists but {len(motion_l)} motion beat lists")
    scores = []
    for a, m in zip(audio_l, motion_l, strict=True):
        a, m = np.asarray(a, np.float64), np.asarray(m, np.float64)
        if len(a) == 0:
            continue
        if len(m) == 0:
            scores.append(np.zeros(len(a)))
            continue
        d = np.min(np.abs(a[:, None] - m[None, :]), axis=1)
        scores.append(np.exp(-(d**2) / (2.0 * sigma**2)))
    return float(np.concatenate(scores).mean()) if scores else NAN


def beat_align_chance(
    audio_beat_frames: Sequences,
    motion_beat_frames: Sequences,
    frames: Sequence[int] | int,
    sigma: float = 3.0,
    shifts: int = 20,
    seed: int = 0,
) -> float:
    """Beat Align of the same motion beats moved away from the audio: the score by chance.

    Each example's motion beats are shifted circularly (modulo its ``frames``) by ``shifts``
    random offsets of at least one second, which keeps their number and rhythm but breaks any
    tie to the audio; the result is the mean :func:`beat_align` over the shifts. Dense motion
    beats (jitter) score high here too, so compare :func:`beat_align` with this value.
    """
    audio_l, motion_l = _seqs(audio_beat_frames), _seqs(motion_beat_frames)
    lengths = [int(frames)] * len(audio_l) if isinstance(frames, int) else [int(f) for f in frames]
    if not len(audio_l) == len(motion_l) == len(lengths):
        raise ValueError("one audio beat list, motion beat list and length per example")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(shifts):
        moved = []
        for m, n in zip(motion_l, lengths, strict=True):
            lo = min(int(FPS), max(n // 2, 1))
            offset = int(rng.integers(lo, max(n - lo, lo + 1)))
            moved.append(np.sort((np.asarray(m, np.int64) + offset) % max(n, 1)))
        scores.append(beat_align(audio_l, moved, sigma))
    return float(np.mean(scores)) if scores else NAN
