"""Synthetic two-person conversations with ground-truth motion for both participants.

No dyadic audio-and-face dataset can be downloaded, so the SDK makes its own: two synthetic
voices (espeak-ng, or Festival's diphone and HTS voices) take turns (with pauses, overlaps,
interruptions and backchannels), the procedural :mod:`~infp_sdk.data.teacher` animates both
people from the clean speech, and the audio is then degraded like a real microphone and line
(levels, room reverb, noise, babble and music beds, clipping, compression, telephone band,
lossy codecs, crosstalk) so a model trained on it does not rely on studio-clean input.

The ``test`` split has its own voices (accents, variants and a Festival voice), its own
sentences (templates and words) and an engine, Festival HTS, none of which ``train`` or ``val``
ever use.

    infp-sdk synth -o data/synth --sessions 200 --seconds 30 --split train --workers 2
    infp-sdk synth -o data/test-hts --sessions 20 --split test --engine festival-hts
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, resample
from . import festival
from .dataset import SPLITS, MotionTrack, add_to_manifest, write_session
from .espeak import EspeakError, Synthesizer, Utterance
from .festival import FestivalError
from .teacher import Timeline, phoneme_visemes, sample_manner, tag_phoneme, teach

# ----------------------------------------------------------------------------------------------
# Voices
# ----------------------------------------------------------------------------------------------

# The test split's accents and variants appear nowhere in train/val, so a test voice is new in
# both respects.
VOICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (
        ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan"),
        ("m1", "m2", "m3", "m4", "m6", "f1", "f2", "f3", "Andy", "Annie", "linda", "robert"),
    ),
    "test": (
        ("en-029", "en-gb-x-gbcwmd"),
        ("m5", "m7", "f4", "f5", "Alicia", "paul"),
    ),
}
VOICES["val"] = VOICES["train"]

ENGINES: tuple[str, ...] = ("espeak", "festival", "festival-hts")
"""Synthesis engines: espeak-ng (formant), Festival diphone voices, Festival HTS voices."""

HELD_OUT_ENGINES: tuple[str, ...] = ("festival-hts",)
"""Engines only the test split uses: a test score on them measures an unseen synthesiser."""

# Festival voices by split and engine. The test split's diphone voice is a voice train never
# hears; its HTS voice comes from an engine train never hears.
FESTIVAL_VOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"festival": ("kal_diphone",)},
    "test": {"festival": ("ked_diphone",), "festival-hts": ("cmu_us_slt_arctic_hts",)},
}
FESTIVAL_VOICES["val"] = FESTIVAL_VOICES["train"]

# The chance of each engine for one speaker (renormalised over the engines in use).
ENGINE_WEIGHTS: dict[str, dict[str, float]] = {
    "train": {"espeak": 0.7, "festival": 0.3},
    "test": {"espeak": 0.5, "festival": 0.25, "festival-hts": 0.25},
}
ENGINE_WEIGHTS["val"] = ENGINE_WEIGHTS["train"]

_WARNED: set[tuple[str, str]] = set()


@dataclass
class Voice:
    """One speaker's voice: the engine, the voice name and its settings.

    espeak-ng voices use ``rate`` (words per minute), ``pitch`` and ``pitch_range`` (0-99).
    Festival voices use ``stretch`` (duration factor, above 1 is slower) and, for diphone voices,
    ``f0`` and ``f0_range`` (factors on the voice's F0 mean and spread).
    """

    name: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    engine: str = "espeak"
    stretch: float = 1.0
    f0: float = 1.0
    f0_range: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        if self.engine == "espeak":
            return {
                "engine": self.engine,
                "name": self.name,
                "rate": self.rate,
                "pitch": self.pitch,
                "range": self.pitch_range,
            }
        out: dict[str, Any] = {
            "engine": self.engine,
            "name": self.name,
            "stretch": round(self.stretch, 3),
        }
        if self.engine == "festival":
            out["f0"] = round(self.f0, 3)
            out["f0_range"] = round(self.f0_range, 3)
        return out


def engine_pools(split: str) -> dict[str, list[str]]:
    """Every voice a split may use, by engine (whether or not the engine is installed)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    langs, variants = VOICES[split]
    pools = {"espeak": [f"{lang}+{var}" for lang in langs for var in variants]}
    for engine, names in FESTIVAL_VOICES[split].items():
        pools[engine] = list(names)
    return pools


def voice_pool(split: str, engine: str | None = None) -> list[str]:
    """Every voice name a split may use (espeak's ``language+variant``, Festival's voice names),
    of all its engines or of one."""
    pools = engine_pools(split)
    if engine is not None:
        return list(pools.get(engine, []))
    return [name for names in pools.values() for name in names]


def _engine_ready(engine: str, split: str) -> bool:
    """Whether an engine's voices for ``split`` can be synthesised here."""
    if engine == "espeak":
        return True
    return all(festival.available(v) for v in FESTIVAL_VOICES[split].get(engine, ()))


def split_engines(split: str, engines: Sequence[str] | None = None) -> tuple[str, ...]:
    """The engines a session of ``split`` draws from.

    By default every engine of the split that is installed (a missing Festival is warned about
    once and left out). ``engines`` restricts the choice; asking for an engine the split does not
    use, or one that is not installed, is an error.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    own = tuple(ENGINE_WEIGHTS[split])
    if engines is None:
        ready = []
        for engine in own:
            if _engine_ready(engine, split):
                ready.append(engine)
            elif (split, engine) not in _WARNED:
                _WARNED.add((split, engine))
                warnings.warn(
                    f"{engine} voices for the {split} split are not installed, so its sessions "
                    f"use {', '.join(e for e in own if e != engine)} only: "
                    + "; ".join(
                        f"{v}: {festival.VOICE_PACKAGES.get(v, 'a festvox package')}"
                        for v in FESTIVAL_VOICES[split].get(engine, ())
                    )
                    + f" ({festival.INSTALL_HINT})",
                    stacklevel=3,
                )
        return tuple(ready)
    chosen = tuple(dict.fromkeys(engines))
    for engine in chosen:
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r} must be one of {', '.join(ENGINES)}")
        if engine not in own:
            held = " (held out for the test split)" if engine in HELD_OUT_ENGINES else ""
            raise ValueError(
                f"the {split} split does not use {engine}{held}: pick from {', '.join(own)}"
            )
        if engine != "espeak":
            for voice in FESTIVAL_VOICES[split][engine]:
                festival.require(voice)
    if not chosen:
        raise ValueError("engines must name at least one engine")
    return chosen


def _pick_voices(
    rng: np.random.Generator, split: str, engines: Sequence[str]
) -> tuple[Voice, Voice]:
    """Two voices, each on an engine drawn from ``engines``; never the same voice twice unless
    the engines allow nothing else (e.g. a test set of one HTS voice)."""
    langs, variants = VOICES[split]
    weights = np.array([ENGINE_WEIGHTS[split][e] for e in engines], np.float64)
    used: list[Voice] = []
    for _ in range(2):
        taken = {v.name for v in used}
        taken_variants = {v.name.partition("+")[2] for v in used if v.engine == "espeak"}
        # Engines with a voice left that the other speaker does not already use.
        free = [
            bool(set(variants) - taken_variants)
            if e == "espeak"
            else bool(set(FESTIVAL_VOICES[split][e]) - taken)
            for e in engines
        ]
        w = weights * np.array(free) if any(free) else weights
        cum = np.cumsum(w / w.sum())
        engine = engines[min(int(np.searchsorted(cum, rng.random(), "right")), len(engines) - 1)]
        if engine == "espeak":
            options = [v for v in variants if v not in taken_variants] or list(variants)
            var = options[int(rng.integers(len(options)))]
            lang = langs[int(rng.integers(len(langs)))]
            voice = Voice(
                name=f"{lang}+{var}",
                rate=int(np.clip(rng.normal(168, 18), 130, 215)),
                pitch=int(rng.integers(30, 71)),
                pitch_range=int(rng.integers(30, 81)),
            )
        else:
            pool = FESTIVAL_VOICES[split][engine]
            options = [v for v in pool if v not in taken] or list(pool)
            name = options[int(rng.integers(len(options)))]
            voice = Voice(
                name=name,
                engine=engine,
                stretch=float(np.clip(rng.normal(1.0, 0.08), 0.85, 1.2)),
                f0=float(rng.uniform(0.85, 1.25)) if engine == "festival" else 1.0,
                f0_range=float(rng.uniform(0.6, 1.6)) if engine == "festival" else 1.0,
            )
        used.append(voice)
    return used[0], used[1]


# ----------------------------------------------------------------------------------------------
# Sentences
# ----------------------------------------------------------------------------------------------

# Train and test share no template and no slot word, so no test sentence can occur in train.
# Slot values are "|"-separated; templates name slots in braces.
_BANKS: dict[str, dict[str, Any]] = {
    "train": {
        "templates": (
            "I went to the {place} {when}.",
            "Did you see the {thing} {when}?",
            "We should {activity} {soon}, if you have time.",
            "Honestly, the {thing} was {adj}.",
            "My {person} thinks the {thing} is {adj}.",
            "I'm not sure, but I think the {place} is closed {soon}.",
            "{opener}, I was talking to my {person} about the {thing}.",
            "The {place} near my house is {adj}.",
            "Well, I would rather {activity} than stay at home.",
            "What do you think about the {thing}?",
            "{opener}, my {person} wants to {activity} {soon}.",
            "It was {adj}, to be honest, much more than I expected.",
            "Could we meet at the {place} {soon}?",
            "I keep telling my {person} that the {thing} is {adj}.",
        ),
        "slots": {
            "place": "park|library|market|station|cinema|museum|beach|office|bakery|gym",
            "when": "yesterday|last weekend|this morning|on Monday|last night",
            "soon": "tomorrow|next week|after work|on Saturday|tonight",
            "thing": "new film|concert|football match|weather|train timetable|meeting|book|"
            "exhibition|menu|game",
            "adj": "pretty good|a bit boring|really exciting|surprisingly cheap|too crowded|"
            "quite strange|very funny",
            "person": "brother|neighbour|colleague|friend|sister|manager",
            "activity": "go hiking|cook dinner|learn the guitar|visit the coast|"
            "paint the kitchen|try that new cafe",
            "opener": "Actually|You know|Anyway|So|Funny thing is",
        },
        "fillers": "Oh, yes.|Hmm, maybe.|No way!|I know, right?|That's fair enough.|"
        "Well, it depends.|Oh, really?|Yes, exactly.|I suppose so.|That's true.|"
        "Good question.|Not really.",
    },
    "test": {
        "templates": (
            "Apparently the {thing} at the {place} was {adj}.",
            "Me and my {person} used to {activity} every summer.",
            "Would you ever want to {activity}?",
            "{opener}, the {place} felt {adj} {when}.",
            "Remind me, who told you about the {thing}?",
            "Last time, my {person} said the {place} looked {adj}.",
            "Shall we {activity} together {soon}?",
            "Nobody expected the {thing} to be {adj}.",
            "{opener}, I'd love to {activity} one day.",
            "There was a {thing} at the {place} {when}.",
        ),
        "slots": {
            "place": "harbour|garden centre|airport|bookshop|swimming pool|zoo|town hall",
            "when": "two days ago|over the holidays|at lunchtime|in spring",
            "soon": "on Thursday evening|next month|some time soon|in autumn",
            "thing": "documentary|lecture|street festival|science fair|recipe|parade|puppet show",
            "adj": "absolutely wonderful|rather disappointing|incredibly loud|fairly ordinary|"
            "oddly quiet",
            "person": "cousin|landlord|teacher|uncle|flatmate|grandmother",
            "activity": "go sailing|build a shed|practise yoga|plant tomatoes|climb a volcano",
            "opener": "Believe it or not|To be fair|Mind you|Between us",
        },
        "fillers": "Ah, of course.|Gosh, fancy that.|Absolutely not!|Fair point, I guess.|"
        "Oh, brilliant.|Perhaps, perhaps.|Goodness me.|Quite possibly.",
    },
}
_BANKS["val"] = _BANKS["train"]

# Listener responses: (text shown in meta, text given to espeak). espeak spells "mm-hm" out
# letter by letter, so those go in as phonemes.
BACKCHANNELS: tuple[tuple[str, str], ...] = (
    ("mm-hm", "[[m@m'h@m]]"),
    ("uh-huh", "uh-huh"),
    ("yeah", "yeah"),
    ("right", "right"),
    ("okay", "okay"),
    ("I see", "I see"),
    ("hmm", "[[h'@m]]"),
    ("sure", "sure"),
    ("yep", "yep"),
)
# What Festival is given instead (its lexicons spell "mm-hm" too; festival.LEXICON_ADDITIONS
# teaches it these words).
_FESTIVAL_SPOKEN = {"mm-hm": "mmhmm", "hmm": "hmmm"}

_BANK_CACHE: dict[str, list[str]] = {}


def sentence_bank(split: str) -> list[str]:
    """Every sentence a split's turns draw from (templates x slot words, plus fillers)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    if split not in _BANK_CACHE:
        bank = _BANKS[split]
        out: list[str] = []
        for template in bank["templates"]:
            names = sorted({n for n in bank["slots"] if "{" + n + "}" in template})
            values = [bank["slots"][n].split("|") for n in names]
            for combo in itertools.product(*values):
                text = template.format(**dict(zip(names, combo, strict=True)))
                out.append(text[0].upper() + text[1:])
        out.extend(bank["fillers"].split("|"))
        _BANK_CACHE[split] = out
    return _BANK_CACHE[split]


def _sentence(rng: np.random.Generator, split: str) -> str:
    # Template first, then words: the bank's big templates must not crowd out the small ones.
    bank = _BANKS[split]
    template = bank["templates"][int(rng.integers(len(bank["templates"])))]
    fills = {}
    for name, values in bank["slots"].items():
        if "{" + name + "}" in template:
            options = values.split("|")
            fills[name] = options[int(rng.integers(len(options)))]
    text = template.format(**fills)
    return text[0].upper() + text[1:]


def _turn_text(rng: np.random.Generator, split: str) -> list[str]:
    fillers = _BANKS[split]["fillers"].split("|")
    count = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    sentences = [_sentence(rng, split) for _ in range(count)]
    if rng.random() < 0.25:
        sentences.insert(0, fillers[int(rng.integers(len(fillers)))])
    return sentences


# ----------------------------------------------------------------------------------------------
# Conversation
# ----------------------------------------------------------------------------------------------


@dataclass
class _Placed:
    """An utterance placed on the session clock."""

    speaker: int
    kind: str
    text: str
    start: float
    audio: np.ndarray
    phonemes: list[tuple[float, float, str]]
    words: list[tuple[float, float]]
    interrupted: bool = False
    sentences: list[str] = field(default_factory=list)

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / SAMPLE_RATE

    def cut(self, at: float) -> None:
        """Stop speaking ``at`` seconds into the session, mid-word if need be (30 ms fade)."""
        rel = max(at - self.start, 0.05)
        n = int(rel * SAMPLE_RATE)
        if n >= len(self.audio):
            return
        audio = self.audio[:n].copy()
        fade = min(int(0.03 * SAMPLE_RATE), n)
        audio[n - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
        self.audio = audio
        self.phonemes = [(s, min(e, rel), p) for s, e, p in self.phonemes if s < rel - 0.02]
        self.words = [(s, min(e, rel)) for s, e in self.words if s < rel - 0.02]


class _Speakers:
    """The synthesisers of one session: a fresh espeak-ng (made on first use, so its output
    depends on the session alone) and this process's Festival (whose output never depends on
    what it said before)."""

    def __init__(self) -> None:
        self._espeak: Synthesizer | None = None

    def speak(
        self, text: str, voice: Voice, rng: np.random.Generator, shown: str | None = None
    ) -> Utterance:
        """Synthesise ``text`` (the espeak form; ``shown`` picks Festival's form of a
        backchannel) with small per-utterance variation so a speaker's turns are not carbon
        copies. Phones come back tagged for the teacher and the loudness normalised."""
        if voice.engine == "espeak":
            if self._espeak is None:
                self._espeak = Synthesizer()
            utt = self._espeak.synthesize(
                text,
                voice.name,
                rate=int(voice.rate + rng.integers(-8, 9)),
                pitch=int(np.clip(voice.pitch + rng.integers(-4, 5), 0, 99)),
                pitch_range=voice.pitch_range,
            )
        else:
            # espeak's phoneme input ("[[...]]") means nothing to Festival: say what is shown.
            spoken = _FESTIVAL_SPOKEN.get(shown, shown) if shown is not None else text
            utt = festival.synthesize(
                spoken,
                voice.name,
                stretch=voice.stretch * float(rng.uniform(0.96, 1.04)),
                pitch=voice.f0 * float(rng.uniform(0.97, 1.03)),
                pitch_range=voice.f0_range,
            )
            utt.text = text
        utt.phonemes = [(s, e, tag_phoneme(p, utt.phoneset)) for s, e, p in utt.phonemes]
        utt.audio = _normalise_level(utt.audio)
        return utt

    def close(self) -> None:
        if self._espeak is not None:
            self._espeak.close()
            self._espeak = None

    def __enter__(self) -> _Speakers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Engines differ in loudness (HTS speaks ~8 dB below espeak); every utterance is brought to one
# speech level (RMS over its active 10 ms frames) before the per-utterance gain.
_SPEECH_RMS = 0.1


def _normalise_level(audio: np.ndarray) -> np.ndarray:
    hop = SAMPLE_RATE // 100
    n = len(audio) // hop
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1))
    active = rms > 0.03 * rms.max()
    if not active.any():
        return audio
    level = float(np.sqrt(np.mean(rms[active] ** 2)))
    gain = _SPEECH_RMS / level
    # Never push the peaks past full scale.
    gain = min(gain, 0.95 / (float(np.abs(audio).max()) + 1e-9))
    return (audio * gain).astype(np.float32)


def _plan(
    tts: _Speakers,
    rng: np.random.Generator,
    split: str,
    seconds: float,
    voices: tuple[Voice, Voice],
    overlaps: bool,
    interruptions: bool,
    backchannels: bool,
) -> list[_Placed]:
    placed: list[_Placed] = []
    speaker = int(rng.integers(2))
    cursor = float(rng.uniform(0.2, 1.0))
    while cursor < seconds - 0.6:
        sentences = _turn_text(rng, split)
        text = " ".join(sentences)
        utt = tts.speak(text, voices[speaker], rng)
        turn = _Placed(
            speaker, "turn", text, cursor, utt.audio, utt.phonemes, utt.words, False, sentences
        )
        duration = turn.end - turn.start
        r = rng.random()
        switch = rng.random() > 0.08  # now and then the same person goes on after a pause
        if interruptions and switch and duration > 2.5 and r < 0.15:
            # The listener breaks in; the speaker notices and stops a beat later.
            barge_in = turn.start + duration * rng.uniform(0.45, 0.8)
            turn.cut(barge_in + rng.uniform(0.25, 0.6))
            turn.interrupted = True
            next_start = barge_in
        elif overlaps and switch and r < 0.35:
            next_start = turn.end - rng.uniform(0.1, 0.5)
        else:
            next_start = turn.end + float(np.clip(rng.lognormal(np.log(0.45), 0.5), 0.1, 1.8))
        placed.append(turn)
        listener = 1 - speaker
        if backchannels and duration > 1.6:
            placed.extend(
                _backchannels(tts, rng, turn, listener, voices[listener], next_start, switch)
            )
        if switch:
            speaker = listener
        cursor = next_start
    return placed


def _backchannels(
    tts: _Speakers,
    rng: np.random.Generator,
    turn: _Placed,
    listener: int,
    voice: Voice,
    next_start: float,
    listener_speaks_next: bool,
) -> list[_Placed]:
    """Short listener responses, placed just after the speaker's phrase ends."""
    latest = turn.end - 0.3
    if listener_speaks_next:
        latest = min(latest, next_start - 0.5)
    ends = [
        turn.start + e
        for (_, e), (s_next, _) in zip(turn.words[:-1], turn.words[1:], strict=True)
        if s_next - e >= 0.12
    ]
    candidates = [e for e in ends if turn.start + 0.8 <= e <= latest]
    if not candidates and latest - turn.start > 1.5:
        candidates = [float(rng.uniform(turn.start + 0.8, latest))]
    out: list[_Placed] = []
    free_from = -1.0
    for at in candidates:
        if rng.random() > 0.55 or at < free_from:
            continue
        shown, spoken = BACKCHANNELS[int(rng.integers(len(BACKCHANNELS)))]
        utt = tts.speak(spoken, voice, rng, shown=shown)
        start = at + float(rng.uniform(0.05, 0.3))
        bc = _Placed(
            listener, "backchannel", shown, start, utt.audio * 0.7, utt.phonemes, utt.words
        )
        if listener_speaks_next and bc.end > next_start - 0.15:
            continue
        out.append(bc)
        free_from = bc.end + 1.0
    return out


# ----------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return y[: len(x)].astype(np.float32)


def _room(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """An exponentially decaying noise impulse response after a unit direct path."""
    rt60 = float(rng.uniform(0.15, 0.6))
    drr_db = float(rng.uniform(2.0, 12.0))
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    # A few ms of pre-delay before the first reflections.
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32), {"rt60": round(rt60, 3), "drr_db": round(drr_db, 2)}


def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec /= np.sqrt(np.maximum(f, 30.0))
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def _frame_power(x: np.ndarray, hop: int) -> np.ndarray:
    m = -(-len(x) // hop)
    padded = np.zeros(m * hop, np.float64)
    padded[: len(x)] = x
    return np.mean(padded.reshape(m, hop) ** 2, axis=1)


def _speech_db(power: np.ndarray) -> float:
    """Speech level in dB: the mean power of the frames within 40 dB of the loudest."""
    db = 10 * np.log10(power + 1e-12)
    active = db > db.max() - 40
    return float(10 * np.log10(np.mean(power[active]) + 1e-12))


# --- background beds ---------------------------------------------------------------------------

_BABBLE_CACHE: dict[str, list[np.ndarray]] = {}
_BABBLE_SEED = 0xBAB


def _babble_material(split: str) -> list[np.ndarray]:
    """Six talkers of the split's own voices and sentences (three sentences each, unit RMS),
    made once per process; the same for every session of a split on a given installation."""
    if split not in _BABBLE_CACHE:
        rng = np.random.default_rng([_BABBLE_SEED, _SPLIT_CODE[split]])
        engines = split_engines(split)
        talkers = []
        with _Speakers() as tts:
            for _ in range(3):
                for voice in _pick_voices(rng, split, engines):
                    text = " ".join(_sentence(rng, split) for _ in range(3))
                    audio = tts.speak(text, voice, rng).audio
                    loud = np.flatnonzero(np.abs(audio) > 0.01)
                    if len(loud):
                        audio = audio[loud[0] : loud[-1] + 1]
                    talkers.append((audio / (audio.std() + 1e-9)).astype(np.float32))
        _BABBLE_CACHE[split] = talkers
    return _BABBLE_CACHE[split]


def _babble(rng: np.random.Generator, n: int, split: str) -> tuple[np.ndarray, int]:
    """Several people talking at once in the background: 3 to 6 synthetic talkers, each
    looped from a random point. Returns (unit-RMS bed, number of talkers)."""
    material = _babble_material(split)
    count = int(rng.integers(3, 7))
    picks = rng.choice(len(material), size=min(count, len(material)), replace=False)
    bed = np.zeros(n, np.float64)
    for i in picks:
        talker = material[int(i)]
        offset = int(rng.integers(len(talker)))
        bed += np.resize(np.roll(talker, -offset), n) * 10 ** (rng.uniform(-4, 4) / 20)
    return (bed / (bed.std() + 1e-12)).astype(np.float32), len(picks)


def _music(rng: np.random.Generator, n: int) -> np.ndarray:
    """A synthetic music bed (unit RMS): a chord progression of decaying harmonic tones over a
    bass line, sometimes with a hi-hat on the beat."""
    sr = SAMPLE_RATE
    beat = float(rng.uniform(0.35, 0.7))
    root = int(rng.integers(45, 57))  # MIDI note of the key
    minor = rng.random() < 0.4
    scale = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    degrees = rng.choice(7, size=4)
    out = np.zeros(n, np.float64)
    t0 = 0
    chord_i = 0
    bright = float(rng.uniform(1.0, 2.5))
    while t0 < n:
        length = int(beat * sr * int(rng.choice([2, 4])))
        seg = min(length, n - t0)
        t = np.arange(seg) / sr
        degree = int(degrees[chord_i % len(degrees)])
        notes = [
            root + scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4)
        ]
        if rng.random() < 0.5:
            notes.append(notes[0] + 12)
        decay = float(rng.uniform(0.4, 1.5))
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / decay)
        for note in notes + [notes[0] - 12]:
            f = 440.0 * 2 ** ((note - 69) / 12)
            phase = rng.uniform(0, 2 * np.pi)
            for k in range(1, 5):
                if k * f < sr / 2:
                    out[t0 : t0 + seg] += env * np.sin(2 * np.pi * k * f * t + phase) / k**bright
        chord_i += 1
        t0 += length
    if rng.random() < 0.5:
        hat = np.diff(rng.standard_normal(int(0.04 * sr) + 1)) * np.exp(
            -np.arange(int(0.04 * sr)) / (0.008 * sr)
        )
        step = int(beat * sr)
        for start in range(0, n, step):
            seg = min(len(hat), n - start)
            out[start : start + seg] += 0.3 * hat[:seg]
    return (out / (out.std() + 1e-12)).astype(np.float32)


# --- microphone and line ------------------------------------------------------------------------


def _clip(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """An overdriven input: the loudest peaks hit full scale and are cut off."""
    drive_db = float(rng.uniform(3.0, 12.0))
    limit = float(np.abs(x).max(initial=0.0)) * 10 ** (-drive_db / 20)
    if limit <= 0:
        return x, {"drive_db": round(drive_db, 1), "fraction": 0.0}
    fraction = float(np.mean(np.abs(x) > limit))
    info = {"drive_db": round(drive_db, 1), "fraction": round(fraction, 4)}
    return np.clip(x, -limit, limit), info


def _dynamics(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A compressor (fast, on the peaks) or an automatic gain control (slow, on the level,
    holding its gain in pauses), as phones and conferencing software apply them."""
    hop = SAMPLE_RATE // 200  # 5 ms
    power = _frame_power(x, hop)
    level = 10 * np.log10(power + 1e-12)
    speech = _speech_db(power)
    gains = np.zeros(len(level))
    if rng.random() < 0.5:
        threshold = speech + float(rng.uniform(-8.0, 0.0))
        ratio = float(rng.uniform(2.0, 4.0))
        attack = float(rng.uniform(0.003, 0.02))
        release = float(rng.uniform(0.05, 0.3))
        a_att, a_rel = np.exp(-hop / SAMPLE_RATE / attack), np.exp(-hop / SAMPLE_RATE / release)
        target = -np.maximum(level - threshold, 0.0) * (1 - 1 / ratio)
        g = 0.0
        for i, want in enumerate(target):
            a = a_att if want < g else a_rel
            g = a * g + (1 - a) * want
            gains[i] = g
        makeup = 0.5 * (1 - 1 / ratio) * max(speech - threshold, 0.0)
        gains += makeup
        info = {
            "kind": "compressor",
            "threshold_db": round(threshold - speech, 1),
            "ratio": round(ratio, 2),
            "attack_ms": round(attack * 1000, 1),
            "release_ms": round(release * 1000, 1),
        }
    else:
        target_db = speech + float(rng.uniform(-6.0, 10.0))
        max_gain = float(rng.uniform(6.0, 18.0))
        gate = speech - float(rng.uniform(10.0, 18.0))
        tc = float(rng.uniform(0.3, 1.5))
        a = np.exp(-hop / SAMPLE_RATE / tc)
        est = speech + float(rng.uniform(-10.0, 10.0))  # where the AGC starts from
        for i, lv in enumerate(level):
            if lv > gate:
                est = a * est + (1 - a) * lv
            gains[i] = np.clip(target_db - est, -max_gain, max_gain)
        info = {
            "kind": "agc",
            "target_db": round(target_db - speech, 1),
            "max_gain_db": round(max_gain, 1),
            "time_constant_s": round(tc, 2),
        }
    centres = (np.arange(len(gains)) + 0.5) * hop
    gain = 10 ** (np.interp(np.arange(len(x)), centres, gains) / 20)
    return (x * gain).astype(np.float32), info


def _band_limit(x: np.ndarray, lo_hz: float, hi_hz: float, edge_hz: float = 100.0) -> np.ndarray:
    """Zero-phase band-pass (raised-cosine edges ``edge_hz`` wide): no delay, no ringing shift."""
    n = len(x)
    size = 1 << max(n - 1, 1).bit_length()
    f = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    lo = np.clip((f - (lo_hz - edge_hz / 2)) / edge_hz, 0, 1)
    hi = np.clip(((hi_hz + edge_hz / 2) - f) / edge_hz, 0, 1)
    mask = (0.5 - 0.5 * np.cos(np.pi * lo)) * (0.5 - 0.5 * np.cos(np.pi * hi))
    return np.fft.irfft(np.fft.rfft(x, size) * mask, size)[:n].astype(np.float32)


def _telephone(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    if rng.random() < 0.5:
        lo, hi = float(rng.uniform(250, 350)), float(rng.uniform(3200, 3500))
        return _band_limit(x, lo, hi), {"kind": "telephone", "lo_hz": round(lo), "hi_hz": round(hi)}
    # Through an 8 kHz link: everything above 4 kHz is gone.
    down = resample(x, SAMPLE_RATE, 8000)
    return resample(down, 8000, SAMPLE_RATE)[: len(x)].astype(np.float32), {"kind": "8k"}


# Codec -> (ffmpeg encoder, encoder arguments given kbit/s).
CODECS: dict[str, str] = {"opus": "libopus", "mp3": "libmp3lame", "amr-nb": "libopencore_amrnb"}
_AMR_KBPS = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)
_CODECS_FOUND: tuple[str, ...] | None = None


def available_codecs() -> tuple[str, ...]:
    """The lossy codecs of :data:`CODECS` this machine's ffmpeg can encode (none without
    ffmpeg)."""
    global _CODECS_FOUND
    if _CODECS_FOUND is None:
        exe = shutil.which("ffmpeg")
        found: list[str] = []
        if exe is not None:
            try:
                listing = subprocess.run(
                    [exe, "-hide_banner", "-encoders"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                ).stdout
            except (OSError, subprocess.SubprocessError):
                listing = ""
            names = {line.split()[1] for line in listing.splitlines() if len(line.split()) > 1}
            found = [codec for codec, encoder in CODECS.items() if encoder in names]
        _CODECS_FOUND = tuple(found)
    return _CODECS_FOUND


def _codec_args(codec: str, kbps: float) -> list[str]:
    if codec == "opus":
        return ["-c:a", "libopus", "-b:a", f"{kbps:g}k", "-application", "voip", "-f", "ogg"]
    if codec == "mp3":
        return ["-c:a", "libmp3lame", "-b:a", f"{kbps:g}k", "-f", "mp3"]
    if codec == "amr-nb":
        return ["-ar", "8000", "-c:a", "libopencore_amrnb", "-b:a", f"{kbps:g}k", "-f", "amr"]
    raise ValueError(f"codec {codec!r} must be one of {', '.join(CODECS)}")


def _lag(ref: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """The delay of ``y`` behind ``ref`` in samples (the cross-correlation peak within
    ``+-max_lag``)."""
    size = 1 << (len(ref) + len(y)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([corr[: max_lag + 1], corr[size - max_lag :]])
    return int(lags[int(np.argmax(values))])


def codec_roundtrip(x: np.ndarray, codec: str, kbps: float) -> tuple[np.ndarray, int]:
    """Encode 16 kHz ``x`` with a lossy codec and decode it again, through ffmpeg.

    The result has ``len(x)`` samples and is aligned with ``x``: the codec's delay (encoder
    priming, resampling filters) is measured by cross-correlation and taken out. Returns
    ``(audio, delay removed in samples)``.

    Raises:
        RuntimeError: ffmpeg is missing or failed (``available_codecs()`` lists what works).
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg was not found: apt-get install ffmpeg")
    x = np.asarray(x, np.float32)
    base = [exe, "-nostdin", "-hide_banner", "-loglevel", "error"]
    exact = ["-flags", "+bitexact", "-fflags", "+bitexact"]
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1"]
    try:
        encoded = subprocess.run(
            [*base, *raw, "-i", "pipe:0", *_codec_args(codec, kbps), *exact, "pipe:1"],
            input=np.clip(x, -1, 1).astype("<f4").tobytes(),
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
        decoded = subprocess.run(
            [*base, "-i", "pipe:0", *raw, *exact, "pipe:1"],
            input=encoded,
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise RuntimeError(f"ffmpeg {codec} round trip failed: {detail}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"ffmpeg {codec} round trip failed: {exc}") from exc
    y = np.frombuffer(decoded, "<f4").astype(np.float32)
    if not len(y):
        raise RuntimeError(f"ffmpeg's {codec} decoder returned no audio")
    if not np.any(x):
        return _fit(y, len(x)), 0
    lag = _lag(x, y, int(0.1 * SAMPLE_RATE))
    shifted = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), y])
    return _fit(shifted, len(x)), lag


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[: min(n, len(y))] = y[:n]
    return out


def _codec(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any] | None]:
    """A lossy speech/music codec round trip, as a call or a recording app would apply."""
    u, v = rng.random(), rng.random()  # drawn whatever is installed: the seed decides the rest
    found = available_codecs()
    if not found:
        return x, None
    codec = found[min(int(u * len(found)), len(found) - 1)]
    if codec == "opus":
        kbps: float = float(12 + int(v * 13))
    elif codec == "mp3":
        kbps = float((16, 24, 32, 48)[min(int(v * 4), 3)])
    else:
        kbps = _AMR_KBPS[min(int(v * len(_AMR_KBPS)), len(_AMR_KBPS) - 1)]
    try:
        y, lag = codec_roundtrip(x, codec, kbps)
    except RuntimeError as exc:
        warnings.warn(f"skipping the {codec} augmentation: {exc}", stacklevel=2)
        return x, None
    return y, {"name": codec, "kbps": kbps, "delay_ms": round(1000 * lag / SAMPLE_RATE, 2)}


def _augment(
    clean: list[np.ndarray], rng: np.random.Generator, crosstalk: bool, split: str = "train"
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Degrade each channel as a real microphone and line would; every step is recorded.

    In order: crosstalk, room reverb, a background bed (pink noise, babble or music), a level
    change, clipping, compression or AGC, band-limiting (telephone band or an 8 kHz link) and a
    lossy codec (Opus, MP3, AMR-NB as ffmpeg has them). Nothing moves in time: the filters are
    zero-phase and codec delays are taken out, so the motion stays in sync with the audio.
    """
    n = len(clean[0])
    out, settings = [], []
    for k in range(2):
        x = clean[k].copy()
        info: dict[str, Any] = {}
        if crosstalk and rng.random() < 0.5:
            # The other speaker leaks in quietly and a few milliseconds late.
            leak_db = float(rng.uniform(-32, -20))
            delay = int(rng.uniform(0.001, 0.01) * SAMPLE_RATE)
            other = np.zeros(n, np.float32)
            other[delay:] = clean[1 - k][: n - delay]
            x += 10 ** (leak_db / 20) * other
            info["crosstalk_db"] = round(leak_db, 1)
        if rng.random() < 0.6:
            ir, room = _room(rng)
            x = _fft_convolve(x, ir)
            info["reverb"] = room
        if rng.random() < 0.7:
            active = np.abs(x) > 1e-3
            speech_rms = float(np.sqrt(np.mean(x[active] ** 2))) if active.any() else 0.05
            r = rng.random()
            if r < 0.5:
                kind, snr_db, bed = "pink", float(rng.uniform(15, 40)), _pink_noise(rng, n)
            elif r < 0.75:
                kind, snr_db = "babble", float(rng.uniform(12, 30))
                bed, info["babble_talkers"] = _babble(rng, n, split)
            else:
                kind, snr_db, bed = "music", float(rng.uniform(12, 30)), _music(rng, n)
            x += bed * speech_rms * 10 ** (-snr_db / 20)
            info["noise"] = kind
            info["snr_db"] = round(snr_db, 1)
        level_db = float(rng.uniform(-12, 0))
        x *= 10 ** (level_db / 20)
        info["level_db"] = round(level_db, 1)
        if rng.random() < 0.08:
            x, info["clip"] = _clip(x, rng)
        if rng.random() < 0.3:
            x, info["dynamics"] = _dynamics(x, rng)
        peak = float(np.abs(x).max(initial=0.0))
        if peak > 0.98:
            x *= 0.98 / peak
        if rng.random() < 0.2:
            x, info["band"] = _telephone(x, rng)
        if rng.random() < 0.3:
            x, codec = _codec(x, rng)
            if codec is not None:
                info["codec"] = codec
        peak = float(np.abs(x).max(initial=0.0))
        if peak > 0.98:
            x *= 0.98 / peak
        out.append(np.asarray(x, np.float32))
        settings.append(info)
    return out, {"a": settings[0], "b": settings[1]}


# ----------------------------------------------------------------------------------------------
# Sessions
# ----------------------------------------------------------------------------------------------


@dataclass
class SynthSession:
    """One generated conversation: both channels, both participants' motion and metadata."""

    id: str
    split: str
    seed: int
    seconds: float
    audio_a: np.ndarray
    audio_b: np.ndarray
    motion_a: MotionTrack
    motion_b: MotionTrack
    meta: dict[str, Any] = field(default_factory=dict)
    timelines: tuple[Timeline, Timeline] | None = field(default=None, repr=False)
    """What each participant said when (with clean audio), as the teacher saw it."""

    def save(self, root: str | os.PathLike, update_manifest: bool = True) -> Path:
        """Write in the dataset format (:func:`infp_sdk.data.dataset.write_session`)."""
        return write_session(
            root,
            self.id,
            self.audio_a,
            self.audio_b,
            self.motion_a,
            self.motion_b,
            self.meta,
            self.split,
            update_manifest=update_manifest,
        )


_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def session_id(seed: int, split: str, engines: Sequence[str] | None = None) -> str:
    """``<split>-<seed>``, or ``<split>-<engines>-<seed>`` for a session restricted to some of
    its split's engines (so such a set can share a folder with the ordinary one)."""
    if engines is None or list(dict.fromkeys(engines)) == list(ENGINE_WEIGHTS[split]):
        return f"{split}-{seed:06d}"
    return f"{split}-{'+'.join(dict.fromkeys(engines))}-{seed:06d}"


def generate_session(
    seed: int,
    split: str = "train",
    seconds: float = 30.0,
    *,
    overlaps: bool = True,
    interruptions: bool = True,
    backchannels: bool = True,
    augment: bool = True,
    crosstalk: bool = True,
    engines: Sequence[str] | None = None,
) -> SynthSession:
    """Generate one conversation of ``seconds`` between two random voices of ``split``.

    Each speaker draws an engine (espeak-ng, Festival diphone, Festival HTS: see
    :data:`ENGINE_WEIGHTS`) and a voice of the split. ``engines`` restricts both speakers to
    those engines (e.g. ``["festival-hts"]`` for a test set of the unseen engine only).

    The same ``(seed, split, engines)`` always gives the same session (on the same installation:
    a missing Festival leaves its voices out). ``augment`` degrades the saved audio (levels,
    reverb, noise beds, clipping, compression, band-limiting, codecs and ``crosstalk``
    leakage); the teacher always sees the clean speech.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    if seconds < 2.0:
        raise ValueError(f"seconds={seconds} is too short for a conversation; use at least 2")
    pool = split_engines(split, engines)
    rng = np.random.default_rng([int(seed), _SPLIT_CODE[split]])
    voices = _pick_voices(rng, split, pool)
    with _Speakers() as tts:
        placed = _plan(tts, rng, split, seconds, voices, overlaps, interruptions, backchannels)
    n = int(round(seconds * SAMPLE_RATE))
    clean = [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    timelines = [Timeline(), Timeline()]
    records = []
    for utt in sorted(placed, key=lambda u: u.start):
        lo = int(round(utt.start * SAMPLE_RATE))
        if lo >= n:
            continue
        gain = 10 ** (rng.uniform(-2, 2) / 20) * 0.8
        piece = utt.audio[: n - lo] * gain
        clean[utt.speaker][lo : lo + len(piece)] += piece
        tl = timelines[utt.speaker]
        tl.phonemes.extend(
            (utt.start + s, min(utt.start + e, seconds), p)
            for s, e, p in utt.phonemes
            if utt.start + s < seconds
        )
        tl.words.extend(
            (utt.start + s, min(utt.start + e, seconds))
            for s, e in utt.words
            if utt.start + s < seconds
        )
        end = min(utt.end, seconds)
        tl.utterances.append((utt.start, end, utt.kind))
        records.append(
            {
                "speaker": "ab"[utt.speaker],
                "kind": utt.kind,
                "text": utt.text,
                "start": round(utt.start, 3),
                "end": round(end, 3),
                "interrupted": utt.interrupted or utt.end > seconds,
                "sentences": utt.sentences,
            }
        )
    for k in range(2):
        timelines[k].audio = clean[k]
    manners = (sample_manner(rng), sample_manner(rng))
    motion_a, motion_b = teach(timelines[0], timelines[1], seconds, rng, *manners)
    if augment:
        audio, aug = _augment(clean, rng, crosstalk, split)
    else:
        audio, aug = [c.copy() for c in clean], {}
    meta = {
        "generator": "infp_sdk.data.synth",
        "seed": int(seed),
        "split": split,
        "seconds": seconds,
        "engines": list(pool),
        "voices": {"a": voices[0].to_dict(), "b": voices[1].to_dict()},
        "manners": {"a": manners[0].to_dict(), "b": manners[1].to_dict()},
        "options": {
            "overlaps": overlaps,
            "interruptions": interruptions,
            "backchannels": backchannels,
            "augment": augment,
            "crosstalk": crosstalk,
        },
        "augmentation": aug,
        "utterances": records,
        # What each participant said when, as the teacher animated it: [start, end, phone,
        # viseme] on the session clock (diphthongs give two visemes joined by "+").
        "phonemes": {side: _phoneme_records(tl) for side, tl in zip("ab", timelines, strict=True)},
    }
    return SynthSession(
        id=session_id(seed, split, engines),
        split=split,
        seed=int(seed),
        seconds=seconds,
        audio_a=audio[0],
        audio_b=audio[1],
        motion_a=motion_a,
        motion_b=motion_b,
        meta=meta,
        timelines=(timelines[0], timelines[1]),
    )


def _phoneme_records(timeline: Timeline) -> list[list[Any]]:
    return [
        [round(s, 3), round(e, 3), p, "+".join(phoneme_visemes(p))]
        for s, e, p in sorted(timeline.phonemes)
        if round(e, 3) > round(s, 3)
    ]


def _work(job: tuple[str, int, str, float, dict[str, Any]]) -> dict[str, Any]:
    out_dir, seed, split, seconds, options = job
    started = time.perf_counter()
    session = generate_session(seed, split, seconds, **options)
    session.save(out_dir, update_manifest=False)
    return {
        "id": session.id,
        "split": split,
        "seconds": round(len(session.audio_a) / SAMPLE_RATE, 4),
        "elapsed": time.perf_counter() - started,
    }


def build_dataset(
    out_dir: str | os.PathLike,
    sessions: int,
    seconds: float = 30.0,
    seed: int = 0,
    split: str = "train",
    workers: int = 1,
    progress: bool = True,
    **options: Any,
) -> list[Path]:
    """Generate ``sessions`` conversations with seeds ``seed .. seed + sessions - 1`` into
    ``out_dir`` and list them in its ``manifest.json`` (merged with any sessions already there).

    ``workers > 1`` generates in that many processes. ``options`` go to
    :func:`generate_session`. Returns the session directories.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    if sessions < 1:
        raise ValueError(f"sessions must be at least 1, got {sessions}")
    engines = split_engines(split, options.get("engines"))  # fails here, before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), seed + i, split, float(seconds), dict(options)) for i in range(sessions)]
    started = time.perf_counter()
    done: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []

    def record(result: dict[str, Any]) -> None:
        done.append(result)
        pending.append(result)
        if progress:
            rate = (time.perf_counter() - started) / len(done)
            print(
                f"[{len(done)}/{sessions}] {result['id']} ({result['seconds']:.0f} s) in "
                f"{result['elapsed']:.1f} s; ~{rate * (sessions - len(done)):.0f} s left",
                flush=True,
            )
        # Keep the manifest current so an interrupted run still leaves a usable dataset.
        if len(pending) >= 20:
            add_to_manifest(out, pending)
            pending.clear()

    if workers <= 1:
        for job in jobs:
            record(_work(job))
    else:
        # spawn: espeak-ng's global state and torch's threads are not fork-safe to share.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes=workers) as pool:
            for result in pool.imap_unordered(_work, jobs):
                record(result)
    if pending:
        add_to_manifest(out, pending)
    if progress:
        total = time.perf_counter() - started
        print(
            f"wrote {sessions} {split} sessions ({sessions * seconds / 60:.1f} min of audio, "
            f"{', '.join(engines)}) to {out} in {total:.1f} s"
        )
    return [out / r["id"] for r in sorted(done, key=lambda r: r["id"])]


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def _cmd_synth(args: argparse.Namespace) -> int:
    options = {
        "overlaps": not args.no_overlaps,
        "interruptions": not args.no_overlaps,
        "backchannels": not args.no_backchannels,
        "augment": not args.no_augment,
        "crosstalk": not args.no_crosstalk,
        "engines": args.engine,
    }
    try:
        build_dataset(
            args.out,
            args.sessions,
            seconds=args.seconds,
            seed=args.seed,
            split=args.split,
            workers=args.workers,
            **options,
        )
    except (EspeakError, FestivalError, ValueError) as exc:
        print(f"infp-sdk synth: error: {exc}", file=sys.stderr)
        return 2
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``synth`` subcommand to an ``argparse`` subparsers object; returns its parser.

    The handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic two-person conversations with teacher motion",
        description="Generate dyadic training data: two synthetic voices (espeak-ng or "
        "Festival) take turns (pauses, overlaps, interruptions, backchannels) and a procedural "
        "teacher animates both; the saved audio is degraded like a real microphone and line. "
        "Written in the dataset format of docs/dataset.md. The test split uses held-out "
        "voices, sentences and an engine (Festival HTS) that train never hears.",
    )
    parser.add_argument("-o", "--out", required=True, help="dataset folder (manifest is merged)")
    parser.add_argument("--sessions", type=int, default=10, help="number of conversations")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first session")
    parser.add_argument("--split", choices=list(SPLITS), default="train")
    parser.add_argument("--workers", type=int, default=1, help="processes to generate with")
    parser.add_argument("--no-overlaps", action="store_true", help="no overlaps/interruptions")
    parser.add_argument("--no-backchannels", action="store_true")
    parser.add_argument("--no-augment", action="store_true", help="save clean audio")
    parser.add_argument("--no-crosstalk", action="store_true")
    parser.add_argument(
        "--engine",
        action="append",
        choices=list(ENGINES),
        help="only voices of this engine for both speakers (repeat for several); e.g. "
        "--split test --engine festival-hts for a per-engine test set. Default: every "
        "installed engine of the split",
    )
    parser.set_defaults(func=_cmd_synth)
    return parser
