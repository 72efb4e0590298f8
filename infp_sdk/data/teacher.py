"""The procedural teacher: ground-truth conversational motion for synthetic dialogues.

Given when each participant speaks (phonemes, words, utterances) and their clean audio, the
teacher produces 25 fps head pose, gaze and ARKit blendshapes for both of them: visemes with
coarticulation while a participant speaks, listening behaviour (nods and brow raises at the
partner's phrase ends, smiles, gaze shifts) while they do not, blinks and idle drift throughout.
Each participant gets a :class:`Manner` so the data has style variety. Everything random comes
from the ``rng`` passed in, so a seed reproduces the motion exactly. ``docs/teacher.md`` explains
the model and its limits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME
from ..motion import ARKIT_BLENDSHAPES, FPS, NUM_BLENDSHAPES
from .dataset import MotionTrack, frames_for

# Visemes are blended on a finer grid and box-averaged into frames, so phonemes shorter than a
# frame still leave their mark instead of being sampled or skipped.
_SUB = 4
_FINE_RATE = FPS * _SUB
_IDX = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}
_MAX_ANGLE = 0.45


# ----------------------------------------------------------------------------------------------
# Inputs and manner
# ----------------------------------------------------------------------------------------------


@dataclass
class Timeline:
    """What one participant says and when, in seconds from the start of the session."""

    phonemes: list[tuple[float, float, str]] = field(default_factory=list)
    """(start, end, phone): an espeak mnemonic (those starting with ``_`` are pauses) or a
    Festival phone tagged with its phone set, ``radio:aa`` (:func:`tag_phoneme`)."""
    words: list[tuple[float, float]] = field(default_factory=list)
    """(start, end) of each word."""
    utterances: list[tuple[float, float, str]] = field(default_factory=list)
    """(start, end, kind) with kind ``turn`` or ``backchannel``."""
    audio: np.ndarray | None = None
    """This participant's clean 16 kHz audio (loudness and pitch); None to go without."""

    def speech_spans(self, bridge: float = 0.4) -> list[tuple[float, float]]:
        """Word spans merged across gaps shorter than ``bridge`` seconds."""
        spans: list[list[float]] = []
        for start, end in sorted(self.words):
            if spans and start - spans[-1][1] < bridge:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        return [(s, e) for s, e in spans]

    def vad(self, frames: int) -> np.ndarray:
        """Voice activity per frame (T,): 1 where a frame centre lies in a speech span.

        Spans start 0.1 s early because the lips and jaw move before the voice starts; pauses
        shorter than 0.4 s (between sentences of a turn) count as speech.
        """
        t = (np.arange(frames) + 0.5) / FPS
        out = np.zeros(frames, np.float32)
        for start, end in self.speech_spans():
            out[(t >= start - 0.1) & (t < end + 0.04)] = 1.0
        return out

    def phrase_ends(self, min_pause: float = 0.15) -> list[float]:
        """Ends of phrases inside turns: word ends followed by at least ``min_pause`` of silence.

        Backchannels are not phrases a listener answers, so words inside a ``backchannel``
        utterance are skipped (when utterances are given).
        """
        words = sorted(self.words)
        backchannels = [(s, e) for s, e, kind in self.utterances if kind == "backchannel"]
        ends = []
        for i, (start, end) in enumerate(words):
            if any(s - 1e-3 <= start <= e + 1e-3 for s, e in backchannels):
                continue
            nxt = words[i + 1][0] if i + 1 < len(words) else np.inf
            if nxt - end >= min_pause:
                ends.append(end)
        return ends


@dataclass
class Manner:
    """A participant's style; drawn per participant by :func:`sample_manner`."""

    head_amp: float = 1.0
    """Scale of head sway and prosodic head motion (0.5..1.6)."""
    nod_rate: float = 0.6
    """Chance of nodding at each of the partner's phrase ends (0.3..0.9)."""
    nod_amp: float = 0.07
    """Pitch amplitude of a listening nod in radians (0.04..0.12)."""
    smile: float = 0.4
    """Smile tendency 0..1."""
    expressiveness: float = 1.0
    """Scale of brow motion and emphasis (0.6..1.4)."""
    articulation: float = 1.0
    """Scale of mouth opening (0.8..1.2)."""
    blink_interval: float = 3.5
    """Mean seconds between spontaneous blinks (2.5..5)."""
    gaze_aversion: float = 0.4
    """Share of speaking time spent looking away from the partner (0.2..0.7)."""
    posture: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Resting yaw, pitch, roll in radians."""

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (list(v) if isinstance(v, tuple) else round(v, 4)) for k, v in asdict(self).items()
        }


def sample_manner(rng: np.random.Generator) -> Manner:
    """Draw a random :class:`Manner`."""
    return Manner(
        head_amp=float(rng.uniform(0.5, 1.6)),
        nod_rate=float(rng.uniform(0.3, 0.9)),
        nod_amp=float(rng.uniform(0.04, 0.12)),
        smile=float(rng.beta(2.0, 2.5)),
        expressiveness=float(rng.uniform(0.6, 1.4)),
        articulation=float(rng.uniform(0.8, 1.2)),
        blink_interval=float(rng.uniform(2.5, 5.0)),
        gaze_aversion=float(rng.uniform(0.2, 0.7)),
        posture=(
            float(rng.normal(0, 0.03)),
            float(rng.normal(0, 0.03)),
            float(rng.normal(0, 0.025)),
        ),
    )


# ----------------------------------------------------------------------------------------------
# Visemes
# ----------------------------------------------------------------------------------------------

_SYMMETRIC = (
    "mouthStretch",
    "mouthSmile",
    "mouthPress",
    "mouthLowerDown",
    "mouthUpperUp",
    "mouthFrown",
    "mouthDimple",
    "eyeSquint",
    "cheekSquint",
    "browOuterUp",
    "browDown",
)

# Viseme -> (targets, dominance strength, dominance spread in s). Lip closures and lip-teeth
# contacts must happen whatever the neighbours are, so they dominate strongly and narrowly;
# tongue consonants leave the lips to the vowels around them, so they dominate weakly.
_VISEMES: dict[str, tuple[dict[str, float], float, float]] = {
    "rest": ({"jawOpen": 0.02, "mouthClose": 0.02}, 1.0, 0.08),
    "PP": (
        {
            "jawOpen": 0.05,
            "mouthClose": 0.06,
            "mouthPress": 0.35,
            "mouthRollLower": 0.12,
            "mouthRollUpper": 0.08,
        },
        6.0,
        0.035,
    ),
    "FF": (
        {"jawOpen": 0.09, "mouthRollLower": 0.5, "mouthUpperUp": 0.2, "mouthShrugUpper": 0.1},
        3.0,
        0.04,
    ),
    "TH": ({"jawOpen": 0.18, "tongueOut": 0.4, "mouthLowerDown": 0.1}, 1.5, 0.04),
    "DD": ({"jawOpen": 0.16, "mouthLowerDown": 0.12, "mouthStretch": 0.08}, 0.7, 0.04),
    "kk": ({"jawOpen": 0.22, "mouthStretch": 0.1, "mouthLowerDown": 0.1}, 0.6, 0.04),
    "CH": (
        {
            "jawOpen": 0.12,
            "mouthFunnel": 0.5,
            "mouthPucker": 0.2,
            "mouthUpperUp": 0.2,
            "mouthLowerDown": 0.2,
        },
        2.0,
        0.05,
    ),
    "SS": (
        {
            "jawOpen": 0.07,
            "mouthStretch": 0.3,
            "mouthSmile": 0.12,
            "mouthUpperUp": 0.1,
            "mouthLowerDown": 0.12,
        },
        1.2,
        0.04,
    ),
    "RR": ({"jawOpen": 0.14, "mouthPucker": 0.3, "mouthFunnel": 0.3}, 1.2, 0.05),
    "W": ({"jawOpen": 0.07, "mouthPucker": 0.7, "mouthFunnel": 0.25}, 2.5, 0.06),
    "aa": (
        {"jawOpen": 0.6, "mouthLowerDown": 0.35, "mouthUpperUp": 0.12, "mouthStretch": 0.08},
        1.0,
        0.06,
    ),
    "ae": (
        {
            "jawOpen": 0.45,
            "mouthStretch": 0.22,
            "mouthLowerDown": 0.3,
            "mouthUpperUp": 0.15,
            "mouthSmile": 0.08,
        },
        1.0,
        0.06,
    ),
    "E": (
        {"jawOpen": 0.35, "mouthStretch": 0.2, "mouthLowerDown": 0.25, "mouthSmile": 0.08},
        1.0,
        0.06,
    ),
    "@": ({"jawOpen": 0.25, "mouthLowerDown": 0.12}, 0.5, 0.05),
    "ER": ({"jawOpen": 0.22, "mouthFunnel": 0.25, "mouthPucker": 0.15}, 0.9, 0.06),
    "I": (
        {
            "jawOpen": 0.16,
            "mouthStretch": 0.35,
            "mouthSmile": 0.25,
            "mouthUpperUp": 0.1,
            "mouthLowerDown": 0.1,
        },
        1.0,
        0.06,
    ),
    "O": (
        {"jawOpen": 0.45, "mouthFunnel": 0.5, "mouthPucker": 0.25, "mouthLowerDown": 0.1},
        1.0,
        0.06,
    ),
    "U": ({"jawOpen": 0.16, "mouthPucker": 0.65, "mouthFunnel": 0.35}, 1.2, 0.06),
    "h": ({"jawOpen": 0.2, "mouthLowerDown": 0.05}, 0.2, 0.03),
    "neutral": ({"jawOpen": 0.15}, 0.3, 0.04),
}

# espeak-ng English mnemonics -> one viseme, or two for diphthongs (first half, second half).
_PHONEME_VISEMES: dict[str, tuple[str, ...]] = {}
for _names, _vis in (
    ("p b m", ("PP",)),
    ("f v", ("FF",)),
    ("T D", ("TH",)),
    ("t d n l L t# n- l- d#", ("DD",)),
    ("k g N x", ("kk",)),
    ("tS dZ S Z", ("CH",)),
    ("s z", ("SS",)),
    ("r R r- IR", ("RR",)),
    ("w W", ("W",)),
    ("j i i: I I2 I#", ("I",)),
    ("h", ("h",)),
    ("? ", ("neutral",)),
    ("a a# V", ("ae",)),
    ("A: A aa A@ A#", ("aa",)),
    ("e E e# E2 E#", ("E",)),
    ("@ @2 @5 @#", ("@",)),
    ("3: 3", ("ER",)),
    ("0 O: O O@ o@ o", ("O",)),
    ("u: U u U#", ("U",)),
    ("aI aI@ aI3", ("aa", "I")),
    ("aU aU@", ("aa", "U")),
    ("eI", ("E", "I")),
    ("oU oU#", ("O", "U")),
    ("OI", ("O", "I")),
    ("i@ i@3", ("I", "@")),
    ("e@", ("E", "@")),
    ("U@", ("U", "@")),
    ("@L", ("@", "DD")),
):
    for _n in _names.split():
        _PHONEME_VISEMES[_n] = _vis


def _targets(weights: dict[str, float]) -> np.ndarray:
    vec = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, value in weights.items():
        if name in _SYMMETRIC:
            vec[_IDX[name + "Left"]] = value
            vec[_IDX[name + "Right"]] = value
        else:
            vec[_IDX[name]] = value
    return vec


_VISEME_VECTORS = {name: _targets(spec[0]) for name, spec in _VISEMES.items()}
# Shapes that open the mouth grow with loudness and articulation; closures do not.
_OPENING = np.zeros(NUM_BLENDSHAPES, np.float32)
for _name in ("jawOpen", "mouthFunnel", "mouthPucker", "tongueOut"):
    _OPENING[_IDX[_name]] = 1.0
for _name in ("mouthLowerDown", "mouthUpperUp", "mouthStretch"):
    _OPENING[_IDX[_name + "Left"]] = _OPENING[_IDX[_name + "Right"]] = 1.0


# Festival's "radio" phone set (ARPAbet-like, lower case; its diphone and HTS voices share it).
# ARPAbet's stress digits (``aa1``) and upper case are accepted too.
_RADIO_VISEMES: dict[str, tuple[str, ...]] = {}
for _names, _vis in (
    ("pau h# brth sil ssil", ("rest",)),
    ("p b m em", ("PP",)),
    ("f v", ("FF",)),
    ("th dh", ("TH",)),
    ("t d n l dx nx", ("DD",)),
    ("k g ng", ("kk",)),
    ("ch jh sh zh", ("CH",)),
    ("s z", ("SS",)),
    ("r", ("RR",)),
    ("w", ("W",)),
    ("y ih iy ix", ("I",)),
    ("hh hv", ("h",)),
    ("ae ah", ("ae",)),
    ("aa", ("aa",)),
    ("eh", ("E",)),
    ("ax", ("@",)),
    ("er axr", ("ER",)),
    ("ao", ("O",)),
    ("uh uw ux", ("U",)),
    ("ay", ("aa", "I")),
    ("aw", ("aa", "U")),
    ("ey", ("E", "I")),
    ("ow", ("O", "U")),
    ("oy", ("O", "I")),
    ("el en", ("@", "DD")),
):
    for _n in _names.split():
        _RADIO_VISEMES[_n] = _vis

PHONESETS: tuple[str, ...] = ("espeak", "radio")
"""Phone sets :func:`phoneme_visemes` knows: espeak-ng's mnemonics and Festival's ``radio``."""


def tag_phoneme(phone: str, phoneset: str = "espeak") -> str:
    """The name a :class:`Timeline` uses for ``phone`` of ``phoneset``.

    espeak mnemonics stay as they are; other phone sets get their name as a prefix
    (``radio:aa``), so a Festival ``aa`` is never read as the espeak ``aa``.
    """
    if phoneset == "espeak":
        return phone
    if phoneset not in PHONESETS:
        raise ValueError(f"unknown phone set {phoneset!r}: use one of {', '.join(PHONESETS)}")
    return f"{phoneset}:{phone}"


def phoneme_visemes(mnemonic: str, phoneset: str | None = None) -> tuple[str, ...]:
    """The viseme(s) of a phone: one, two for a diphthong, ``rest`` for pauses.

    ``mnemonic`` is an espeak-ng mnemonic (``aI``, ``_:``) or a tagged phone of another phone
    set (``radio:ay``, see :func:`tag_phoneme`); ``phoneset`` names the set of an untagged phone
    instead. Unknown phones give ``neutral``.
    """
    if phoneset is None and mnemonic.startswith("radio:"):
        phoneset, mnemonic = "radio", mnemonic[len("radio:") :]
    if phoneset == "radio":
        name = mnemonic.lower().rstrip("0123456789")
        return _RADIO_VISEMES.get(name, ("neutral",))
    if phoneset not in (None, "espeak"):
        raise ValueError(f"unknown phone set {phoneset!r}: use one of {', '.join(PHONESETS)}")
    if not mnemonic or mnemonic.startswith("_"):
        return ("rest",)
    name = mnemonic.strip("'`,%=")
    if name in _PHONEME_VISEMES:
        return _PHONEME_VISEMES[name]
    # Strip espeak's variant marks (I2, t#, n-, t[) before giving up; keep "0", a vowel.
    stripped = name.rstrip("#0123456789-[;!") or name
    for candidate in (stripped, stripped[:2], stripped[:1]):
        if candidate in _PHONEME_VISEMES:
            return _PHONEME_VISEMES[candidate]
    return ("neutral",)


def _mouth(phonemes: list[tuple[float, float, str]], frames: int, lead: float) -> np.ndarray:
    """Dominance-blended viseme targets (T, 52) on the frame grid.

    Each viseme segment has a plateau over its middle and exponential-power tails; the tail
    before the segment is wider, and the whole function is shifted ``lead`` seconds earlier, so
    the lips anticipate the sound as real articulators do. A small constant pull towards rest
    closes the mouth in pauses.
    """
    n = frames * _SUB
    t = (np.arange(n) + 0.5) / _FINE_RATE
    rest = _VISEME_VECTORS["rest"]
    eps = 0.03
    num = np.repeat((eps * rest)[None, :], n, axis=0)
    den = np.full(n, eps, np.float32)
    # Explicit rest before and after each stretch of speech, so an utterance-initial vowel does
    # not pull the jaw open long before the voice starts.
    segments: list[tuple[float, float, str]] = []
    prev_end = -np.inf
    for start, end, mnemonic in sorted(phonemes):
        if start - prev_end > 0.01:
            if np.isfinite(prev_end):
                segments.append((prev_end, min(prev_end + 0.2, start), "_"))
            segments.append((max(prev_end, start - 0.2), start, "_"))
        segments.append((start, end, mnemonic))
        prev_end = max(prev_end, end)
    if np.isfinite(prev_end):
        segments.append((prev_end, prev_end + 0.2, "_"))
    for start, end, mnemonic in segments:
        visemes = phoneme_visemes(mnemonic)
        if len(visemes) == 1:
            parts = [(start, end, visemes[0])]
        else:
            mid = start + 0.55 * (end - start)
            parts = [(start, mid, visemes[0]), (mid, end, visemes[1])]
        for s, e, vis in parts:
            _, alpha, spread = _VISEMES[vis]
            s, e = s - lead, e - lead
            centre, half = 0.5 * (s + e), 0.5 * max(e - s, 1e-3)
            core = 0.35 * half
            lo = max(int((s - 6 * spread) * _FINE_RATE), 0)
            hi = min(int((e + 4 * spread) * _FINE_RATE) + 1, n)
            if hi <= lo:
                continue
            tt = t[lo:hi]
            before = np.clip(centre - core - tt, 0.0, None) / (1.6 * spread)
            after = np.clip(tt - centre - core, 0.0, None) / spread
            dom = alpha * np.exp(-((before + after) ** 1.5))
            num[lo:hi] += dom[:, None] * _VISEME_VECTORS[vis][None, :]
            den[lo:hi] += dom
    fine = num / den[:, None]
    return fine.reshape(frames, _SUB, NUM_BLENDSHAPES).mean(axis=1)


# ----------------------------------------------------------------------------------------------
# Signal helpers
# ----------------------------------------------------------------------------------------------


def _frame_times(frames: int) -> np.ndarray:
    return (np.arange(frames) + 0.5) / FPS


def _smooth(x: np.ndarray, sigma_s: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along time with edge padding."""
    x = np.asarray(x, np.float32)
    sigma = sigma_s * FPS
    if sigma <= 0 or x.shape[0] == 0:
        return x.copy()
    radius = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    flat = x.reshape(x.shape[0], -1)
    padded = np.pad(flat, ((radius, radius), (0, 0)), mode="edge")
    out = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(flat.shape[1])], 1)
    return out.reshape(x.shape).astype(np.float32)


def _noise(rng: np.random.Generator, frames: int, cutoff_hz: float, dims: int = 1) -> np.ndarray:
    """Band-limited Gaussian noise (T, dims) with unit standard deviation."""
    n = max(frames, 2)
    pad = int(2 * FPS / max(cutoff_hz, 1e-3))
    spec = np.fft.rfft(rng.standard_normal((n + pad, dims)), axis=0)
    f = np.fft.rfftfreq(n + pad, 1.0 / FPS)
    spec *= np.exp(-0.5 * (f / cutoff_hz) ** 2)[:, None]
    x = np.fft.irfft(spec, n=n + pad, axis=0)[pad // 2 : pad // 2 + n]
    x /= x.std(axis=0, keepdims=True) + 1e-9
    return x[:frames].astype(np.float32)


def _pulse(t: np.ndarray, onset: float, duration: float) -> np.ndarray:
    """A smooth 0..1..0 bump (sin^2) starting at ``onset`` and lasting ``duration``."""
    u = (t - onset) / duration
    return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)


def _envelope(t: np.ndarray, start: float, attack: float, hold: float, release: float):
    """Raised-cosine attack, flat hold, raised-cosine release."""
    up = np.clip((t - start) / attack, 0, 1)
    down = np.clip((t - start - attack - hold) / release, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * up) - (0.5 - 0.5 * np.cos(np.pi * down))


def _prosody(audio: np.ndarray | None, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame energy (dB) and F0 (Hz, NaN when unvoiced) of clean 16 kHz audio."""
    if audio is None or frames == 0:
        return np.full(frames, -100.0, np.float32), np.full(frames, np.nan, np.float32)
    hop, win = SAMPLES_PER_MOTION_FRAME, 1024
    x = np.zeros(frames * hop + win, np.float32)
    m = min(len(audio), frames * hop)
    x[win // 2 : win // 2 + m] = audio[:m]
    energy = 10 * np.log10(
        np.mean(x[win // 2 : win // 2 + frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-10
    )
    # Frame centre i*hop + hop/2 in the audio is index i*hop + hop/2 + win/2 in x, so the window
    # starting at i*hop + hop/2 is centred on it.
    starts = np.arange(frames) * hop + hop // 2
    idx = starts[:, None] + np.arange(win)[None, :]
    seg = x[idx] * np.hanning(win)[None, :].astype(np.float32)
    spec = np.fft.rfft(seg, n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    norm = ac[:, lo:hi] / (ac[:, :1] + 1e-9)
    # The Hann window tapers long lags; undo that bias so low voices are not judged unvoiced.
    lags = np.arange(lo, hi)
    norm = norm / np.clip(1 - lags / win, 0.3, 1)[None, :]
    best = np.argmax(norm, axis=1)
    peak = norm[np.arange(frames), best]
    f0 = SAMPLE_RATE / (lo + best).astype(np.float32)
    voiced = (peak > 0.45) & (energy > energy.max() - 35)
    return energy.astype(np.float32), np.where(voiced, f0, np.nan).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# One participant
# ----------------------------------------------------------------------------------------------


def _teach_one(
    own: Timeline,
    partner: Timeline,
    frames: int,
    manner: Manner,
    rng: np.random.Generator,
) -> MotionTrack:
    t = _frame_times(frames)
    seconds = frames / FPS
    vad = own.vad(frames)
    partner_vad = partner.vad(frames)
    # Speaking weight for cross-fading the two behaviours: smooth, so turn changes never jump.
    speaking = np.clip(_smooth(vad, 0.2), 0, 1)
    listening = 1.0 - speaking

    energy, f0 = _prosody(own.audio, frames)
    talk = vad > 0.5
    ref_db = float(np.median(energy[talk])) if talk.any() else 0.0
    gain = np.where(talk, np.clip(1.0 + (energy - ref_db) / 25.0, 0.6, 1.3), 1.0)
    gain = _smooth(gain, 0.06)
    log_f0 = np.log(f0)
    voiced = np.isfinite(log_f0)
    if voiced.sum() > 3:
        f0_z = (log_f0 - np.nanmean(log_f0)) / (np.nanstd(log_f0) + 1e-6)
        f0_z = np.interp(t, t[voiced], f0_z[voiced]).astype(np.float32) * (vad > 0)
    else:
        f0_z = np.zeros(frames, np.float32)
    if talk.any():
        e_z = np.where(talk, (energy - ref_db) / (energy[talk].std() + 1e-6), 0.0)
    else:
        e_z = np.zeros(frames)

    bs = np.zeros((frames, NUM_BLENDSHAPES), np.float32)
    expr = np.zeros((frames, NUM_BLENDSHAPES), np.float32)  # brows and smiles, added at the end
    head = np.zeros((frames, 6), np.float32)
    gaze = np.zeros((frames, 4), np.float32)

    # --- mouth ------------------------------------------------------------------------------
    lead = float(rng.uniform(0.04, 0.08))
    mouth = _mouth(own.phonemes, frames, lead)
    scale = 1.0 + (gain * manner.articulation - 1.0)[:, None] * _OPENING[None, :]
    mouth = mouth * scale
    # Resting lips breathe a little; listeners sometimes press their lips while thinking.
    mouth[:, _IDX["jawOpen"]] += 0.012 * _noise(rng, frames, 0.15)[:, 0] * listening
    press = np.zeros(frames, np.float32)
    for _ in range(rng.poisson(seconds / 25.0)):
        start = rng.uniform(0, seconds)
        press += 0.25 * _envelope(t, start, 0.3, rng.uniform(0.3, 1.5), 0.4)
    press *= listening
    mouth[:, _IDX["mouthPressLeft"]] += press
    mouth[:, _IDX["mouthPressRight"]] += press
    mouth[:, _IDX["mouthRollLower"]] += 0.3 * press
    # Pressed lips often come with a raised chin.
    mouth[:, _IDX["mouthShrugLower"]] += 0.5 * press
    # Nobody's mouth is perfectly symmetric: a slow sideways drift, larger while talking.
    side = _noise(rng, frames, 0.2, 2) * (0.5 + speaking)[:, None]
    mouth[:, _IDX["mouthLeft"]] += np.clip(0.04 * side[:, 0], 0, None)
    mouth[:, _IDX["mouthRight"]] += np.clip(-0.04 * side[:, 0], 0, None)
    mouth[:, _IDX["jawLeft"]] += np.clip(0.02 * side[:, 1], 0, None)
    mouth[:, _IDX["jawRight"]] += np.clip(-0.02 * side[:, 1], 0, None)
    mouth[:, _IDX["jawForward"]] += 0.06 * mouth[:, _IDX["jawOpen"]]
    bs += mouth

    # --- head: idle drift, posture, speaking sway and prosody -------------------------------
    drift = _noise(rng, frames, 0.06, 6)
    head[:, 0] += 0.03 * manner.head_amp * drift[:, 0] + manner.posture[0]
    head[:, 1] += 0.02 * manner.head_amp * drift[:, 1] + manner.posture[1]
    head[:, 2] += 0.015 * manner.head_amp * drift[:, 2] + manner.posture[2]
    head[:, 3:] += np.array([0.004, 0.003, 0.005], np.float32) * drift[:, 3:]
    energy_env = _smooth(np.clip(e_z + 1.0, 0, 3) * vad, 0.3)
    sway = _noise(rng, frames, 0.45, 3)
    sway_amp = np.array([0.035, 0.02, 0.02], np.float32) * manner.head_amp
    head[:, :3] += sway * sway_amp * (speaking * (0.4 + 0.4 * energy_env))[:, None]
    # High pitch lifts the chin (negative pitch) a little.
    head[:, 1] -= 0.02 * manner.head_amp * _smooth(f0_z, 0.25)

    pitch_events = np.zeros(frames, np.float32)
    # Nods on prominent words: loud, high and long words within each utterance.
    words = sorted(own.words)
    if words:
        scores = []
        for s, e in words:
            sel = (t >= s) & (t < e)
            if not sel.any():
                scores.append(-np.inf)
                continue
            scores.append(float(e_z[sel].mean() + 0.7 * f0_z[sel].mean() + 2.0 * (e - s - 0.25)))
        finite = [s for s in scores if np.isfinite(s)]
        threshold = np.quantile(finite, 0.6) if finite else np.inf
        last = -10.0
        for (s, _e), score in zip(words, scores, strict=True):
            if score < threshold or s - last < 0.6 or rng.random() > 0.8:
                continue
            amp = manner.head_amp * rng.uniform(0.02, 0.045)
            onset = s - rng.uniform(0.0, 0.08)
            dur = rng.uniform(0.3, 0.5)
            pitch_events += amp * _pulse(t, onset, dur)
            pitch_events -= 0.3 * amp * _pulse(t, onset + dur * 0.8, dur)
            last = s
            if rng.random() < 0.35 * manner.expressiveness:
                _brow_raise(expr, t, onset, rng.uniform(0.2, 0.45) * manner.expressiveness, rng)
    for s, e, kind in own.utterances:
        if kind != "turn":
            continue
        # Turn-final settling: the head comes down a little as a turn ends.
        if e - s > 1.0:
            pitch_events += 0.025 * manner.head_amp * _pulse(t, e - 0.3, 0.7)
        # Thinking at the start of a turn: a brief frown of concentration.
        if rng.random() < 0.3 * manner.expressiveness:
            _frown(expr, t, s - rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.35), rng)

    # --- listening: nods, brow raises and smiles at the partner's phrase ends ---------------
    for end in partner.phrase_ends():
        if end >= seconds or np.interp(end, t, vad) > 0.5:
            continue
        if rng.random() > manner.nod_rate:
            continue
        onset = end + rng.uniform(0.05, 0.35)
        amp = manner.nod_amp * rng.uniform(0.6, 1.2)
        period = rng.uniform(0.4, 0.6)
        repeats = 1 + (rng.random() < 0.35) + (rng.random() < 0.1)
        for k in range(repeats):
            pitch_events += amp * (0.75**k) * _pulse(t, onset + k * period, period)
        if rng.random() < 0.35 * manner.expressiveness:
            _brow_raise(expr, t, onset - 0.05, rng.uniform(0.2, 0.5) * manner.expressiveness, rng)
        if rng.random() < 0.4 * manner.smile:
            _smile(expr, t, onset, rng.uniform(0.2, 0.6) * manner.smile + 0.1, rng)
    # A few nods that answer nothing, so nodding is a tendency and not a rule.
    listen_time = float((1 - vad).sum()) / FPS
    for _ in range(rng.poisson(listen_time / 30.0)):
        onset = rng.uniform(0, seconds)
        if np.interp(onset, t, vad) < 0.5:
            pitch_events += 0.6 * manner.nod_amp * _pulse(t, onset, rng.uniform(0.4, 0.6))
    # Occasional smiles of their own, fewer while talking.
    for _ in range(rng.poisson(seconds * manner.smile / 20.0)):
        start, amp, keep = rng.uniform(0, seconds), rng.uniform(0.1, 0.5), rng.random()
        if np.interp(start, t, vad) < 0.5 or keep < 0.5:
            _smile(expr, t, start, amp * manner.smile, rng)
    head[:, 1] += pitch_events
    bs += expr
    # Listeners tilt their head a little to their favourite side while the partner talks.
    tilt = float(rng.choice([-1, 1])) * rng.uniform(0.0, 0.05)
    head[:, 2] += tilt * _smooth(listening * (partner_vad > 0), 0.6)

    # --- gaze ---------------------------------------------------------------------------------
    # Fixation targets are directions in the world (0 = the partner, straight ahead).
    target_yaw, target_pitch, shifts = _gaze_path(own, partner_vad, vad, frames, manner, rng)
    # The head follows large gaze shifts a little.
    follow = _smooth(np.stack([target_yaw, target_pitch], 1), 0.3)
    head[:, 0] += 0.25 * follow[:, 0]
    head[:, 1] += 0.15 * follow[:, 1]
    head[:, :3] = _MAX_ANGLE * np.tanh(head[:, :3] / _MAX_ANGLE)
    # The eyes counter-rotate against most head motion (vestibulo-ocular reflex), so a nodding
    # listener keeps looking at the speaker.
    eye_yaw = target_yaw - 0.8 * head[:, 0]
    eye_pitch = target_pitch - 0.8 * head[:, 1]
    # Eyes converge on a partner about a metre away.
    converge = 0.03
    gaze[:, 0] = eye_yaw - converge
    gaze[:, 1] = eye_pitch
    gaze[:, 2] = eye_yaw + converge
    gaze[:, 3] = eye_pitch
    gaze = np.clip(gaze, -0.6, 0.6)
    _eye_look(bs, gaze)

    # --- blinks -------------------------------------------------------------------------------
    blink = _blinks(own, shifts, frames, manner, rng)
    # The upper lids follow the eyes down.
    lid = np.clip(blink + 0.3 * np.clip(eye_pitch, 0, None), 0, 1)
    bs[:, _IDX["eyeBlinkLeft"]] += lid
    bs[:, _IDX["eyeBlinkRight"]] += lid

    # Head translation follows rotation (the neck pivots below the head).
    head[:, 3] += 0.02 * head[:, 0]
    head[:, 4] -= 0.03 * (head[:, 1] - manner.posture[1])
    return MotionTrack(
        head=head.astype(np.float32),
        gaze=gaze.astype(np.float32),
        blendshapes=np.clip(bs, 0.0, 1.0).astype(np.float32),
        vad=vad.astype(np.float32),
    )


def _raise(expr: np.ndarray, name: str, value: np.ndarray) -> None:
    # Overlapping expressions take the stronger one instead of adding up to a grimace.
    np.maximum(expr[:, _IDX[name]], value, out=expr[:, _IDX[name]])


def _brow_raise(
    expr: np.ndarray, t: np.ndarray, start: float, amp: float, rng: np.random.Generator
) -> None:
    env = amp * _envelope(t, start, 0.12, rng.uniform(0.1, 0.5), 0.35)
    _raise(expr, "browInnerUp", env)
    _raise(expr, "browOuterUpLeft", 0.8 * env)
    _raise(expr, "browOuterUpRight", 0.8 * env)
    _raise(expr, "eyeWideLeft", 0.2 * env)
    _raise(expr, "eyeWideRight", 0.2 * env)


def _frown(
    expr: np.ndarray, t: np.ndarray, start: float, amp: float, rng: np.random.Generator
) -> None:
    env = amp * _envelope(t, start, 0.2, rng.uniform(0.3, 1.2), 0.5)
    _raise(expr, "browDownLeft", env)
    _raise(expr, "browDownRight", env)
    _raise(expr, "noseSneerLeft", 0.15 * env)
    _raise(expr, "noseSneerRight", 0.15 * env)
    _raise(expr, "mouthFrownLeft", 0.3 * env)
    _raise(expr, "mouthFrownRight", 0.3 * env)


def _smile(
    expr: np.ndarray, t: np.ndarray, start: float, amp: float, rng: np.random.Generator
) -> None:
    env = amp * _envelope(t, start, rng.uniform(0.25, 0.5), rng.uniform(0.5, 2.5), 0.8)
    skew = rng.uniform(-0.1, 0.1)
    _raise(expr, "mouthSmileLeft", env * (1 + skew))
    _raise(expr, "mouthSmileRight", env * (1 - skew))
    # Genuine smiles reach the eyes.
    for name in ("cheekSquintLeft", "cheekSquintRight", "eyeSquintLeft", "eyeSquintRight"):
        _raise(expr, name, 0.4 * env)
    _raise(expr, "mouthDimpleLeft", 0.15 * env)
    _raise(expr, "mouthDimpleRight", 0.15 * env)


def _eye_look(bs: np.ndarray, gaze: np.ndarray) -> None:
    """ARKit eye-look shapes consistent with the gaze angles (full weight at ~0.6 rad)."""
    full = 0.6
    for side, yaw, pitch in (("Left", gaze[:, 0], gaze[:, 1]), ("Right", gaze[:, 2], gaze[:, 3])):
        # +yaw turns towards the avatar's left: the left eye looks out, the right eye in.
        outward = yaw if side == "Left" else -yaw
        bs[:, _IDX[f"eyeLookOut{side}"]] += np.clip(outward / full, 0, 1)
        bs[:, _IDX[f"eyeLookIn{side}"]] += np.clip(-outward / full, 0, 1)
        bs[:, _IDX[f"eyeLookDown{side}"]] += np.clip(pitch / full, 0, 1)
        bs[:, _IDX[f"eyeLookUp{side}"]] += np.clip(-pitch / full, 0, 1)


def _gaze_path(
    own: Timeline,
    partner_vad: np.ndarray,
    vad: np.ndarray,
    frames: int,
    manner: Manner,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Fixations on the partner or away from them, with quick saccades between.

    Speakers look away more (especially as a turn starts) and come back towards the end of a
    turn; listeners mostly look at the speaker. Returns yaw, pitch (T,) and the times of large
    shifts (blinks like to accompany them).
    """
    seconds = frames / FPS
    turn_starts = [s for s, _, kind in own.utterances if kind == "turn"]
    turn_ends = [e for _, e, kind in own.utterances if kind == "turn"]
    fine_n = frames * _SUB
    yaw = np.zeros(fine_n, np.float32)
    pitch = np.zeros(fine_n, np.float32)
    shifts: list[float] = []
    away_side = float(rng.choice([-1.0, 1.0]))
    now = 0.0
    prev = (0.0, 0.0)
    while now < seconds:
        i = min(int(now * FPS), frames - 1)
        talking = vad[i] > 0.5
        near_start = any(0 <= now - s < 1.0 for s in turn_starts)
        near_end = any(0 <= e - now < 1.0 for e in turn_ends)
        if talking:
            p_away = manner.gaze_aversion * (1.6 if near_start else 0.4 if near_end else 1.0)
            duration = rng.uniform(0.5, 2.2)
        else:
            p_away = 0.12 if partner_vad[i] > 0.5 else 0.3
            duration = rng.uniform(1.2, 4.5)
        if rng.random() < min(p_away, 0.95):
            # Looking away: mostly to a preferred side, often up or down (thinking).
            side = away_side if rng.random() < 0.7 else -away_side
            target = (side * rng.uniform(0.12, 0.32), rng.uniform(-0.2, 0.18))
        else:
            target = (rng.normal(0, 0.02), rng.normal(0, 0.015))
        lo, hi = int(now * _FINE_RATE), min(int((now + duration) * _FINE_RATE), fine_n)
        yaw[lo:hi], pitch[lo:hi] = target
        if abs(target[0] - prev[0]) + abs(target[1] - prev[1]) > 0.15:
            shifts.append(now)
        prev = target
        now += duration
    # Micro-saccades keep a fixation alive.
    jitter = rng.normal(0, 0.006, (int(seconds * 3) + 2, 2))
    idx = np.minimum((np.arange(fine_n) / _FINE_RATE * 3).astype(int), len(jitter) - 1)
    yaw += jitter[idx, 0]
    pitch += jitter[idx, 1]
    # A saccade takes ~50 ms: a 5-sample box at 100 Hz, then frame averaging.
    box = np.ones(5, np.float32) / 5
    yaw = np.convolve(np.pad(yaw, 2, mode="edge"), box, mode="valid")
    pitch = np.convolve(np.pad(pitch, 2, mode="edge"), box, mode="valid")
    return (
        yaw.reshape(frames, _SUB).mean(1),
        pitch.reshape(frames, _SUB).mean(1),
        shifts,
    )


def _blinks(
    own: Timeline,
    shifts: list[float],
    frames: int,
    manner: Manner,
    rng: np.random.Generator,
) -> np.ndarray:
    """Eyelid closure (T,): spontaneous blinks plus blinks at turn ends and gaze shifts."""
    seconds = frames / FPS
    times: list[float] = []
    now = rng.uniform(0, manner.blink_interval)
    while now < seconds:
        times.append(now)
        # Gamma intervals: regular-ish but with the occasional long stare or quick double.
        now += max(0.5, rng.gamma(3.0, manner.blink_interval / 3.0))
    for s, e, kind in own.utterances:
        if kind == "turn" and rng.random() < 0.6:
            times.append(e + rng.uniform(0.0, 0.3))
        if kind == "turn" and rng.random() < 0.3:
            times.append(s + rng.uniform(-0.2, 0.1))
    times.extend(s + 0.02 for s in shifts if rng.random() < 0.3)
    kept: list[float] = []
    for time in sorted(times):
        if 0 <= time < seconds and (not kept or time - kept[-1] > 0.45):
            kept.append(time)
    fine = (np.arange(frames * _SUB) + 0.5) / _FINE_RATE
    lid = np.zeros_like(fine)
    for time in kept:
        close, hold, opening = (
            rng.uniform(0.035, 0.05),
            rng.uniform(0.01, 0.03),
            rng.uniform(0.055, 0.08),
        )
        u = fine - time
        shape = np.where(
            u < 0,
            0.0,
            np.where(
                u < close,
                u / close,
                np.where(u < close + hold, 1.0, 1.0 - (u - close - hold) / opening),
            ),
        )
        lid = np.maximum(lid, np.clip(shape, 0, 1))
    return lid.reshape(frames, _SUB).mean(1).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------


def teach(
    timeline_a: Timeline,
    timeline_b: Timeline,
    seconds: float,
    rng: np.random.Generator,
    manner_a: Manner | None = None,
    manner_b: Manner | None = None,
) -> tuple[MotionTrack, MotionTrack]:
    """Motion of both participants of a conversation, ``floor(seconds * 25)`` frames each.

    Args:
        timeline_a, timeline_b: What each participant says and when (with clean audio for
            loudness and pitch when available).
        seconds: Session length.
        rng: Source of all randomness; the same generator state gives the same motion.
        manner_a, manner_b: Styles; drawn with :func:`sample_manner` when None.

    Returns:
        ``(motion_a, motion_b)`` with head (T, 6), gaze (T, 4), blendshapes (T, 52) in 0..1 and
        vad (T,), in the units of :mod:`infp_sdk.motion`.
    """
    frames = frames_for(seconds)
    manner_a = manner_a if manner_a is not None else sample_manner(rng)
    manner_b = manner_b if manner_b is not None else sample_manner(rng)
    seed_a, seed_b = rng.integers(0, 2**63 - 1, size=2)
    motion_a = _teach_one(
        timeline_a, timeline_b, frames, manner_a, np.random.default_rng(int(seed_a))
    )
    motion_b = _teach_one(
        timeline_b, timeline_a, frames, manner_b, np.random.default_rng(int(seed_b))
    )
    return motion_a, motion_b
