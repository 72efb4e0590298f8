"""Synthetic two-person conversations with ground-truth motion for both participants.

No dyadic audio-and-face dataset can be downloaded, so the SDK makes its own: two espeak-ng
voices take turns (with pauses, overlaps, interruptions and backchannels), the procedural
:mod:`~infp_sdk.data.teacher` animates both people from the clean speech, and the audio is then
degraded (level differences, room reverb, background noise, crosstalk) so a model trained on it
does not rely on studio-clean input.

The ``test`` split has its own voices (accents and variants) and its own sentences (templates
and words), none of which ``train`` or ``val`` ever use.

    infp-sdk synth -o data/synth --sessions 200 --seconds 30 --split train --workers 2
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from .dataset import SPLITS, MotionTrack, add_to_manifest, write_session
from .espeak import EspeakError, Synthesizer
from .teacher import Timeline, sample_manner, teach

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


@dataclass
class Voice:
    """An espeak-ng voice with its speaking rate (wpm), base pitch and pitch range (0-99)."""

    name: str
    rate: int
    pitch: int
    pitch_range: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rate": self.rate,
            "pitch": self.pitch,
            "range": self.pitch_range,
        }


def voice_pool(split: str) -> list[str]:
    """Every voice name (``language+variant``) a split may use."""
    langs, variants = VOICES[split]
    return [f"{lang}+{var}" for lang in langs for var in variants]


def _pick_voices(rng: np.random.Generator, split: str) -> tuple[Voice, Voice]:
    langs, variants = VOICES[split]
    var = rng.choice(len(variants), size=2, replace=False)
    lang = rng.choice(len(langs), size=2, replace=len(langs) < 2)
    voices = []
    for k in range(2):
        voices.append(
            Voice(
                name=f"{langs[lang[k]]}+{variants[var[k]]}",
                rate=int(np.clip(rng.normal(168, 18), 130, 215)),
                pitch=int(rng.integers(30, 71)),
                pitch_range=int(rng.integers(30, 81)),
            )
        )
    return voices[0], voices[1]


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


def _speak(tts: Synthesizer, text: str, voice: Voice, rng: np.random.Generator) -> Any:
    # Small per-utterance variation so one speaker's turns are not carbon copies.
    return tts.synthesize(
        text,
        voice.name,
        rate=int(voice.rate + rng.integers(-8, 9)),
        pitch=int(np.clip(voice.pitch + rng.integers(-4, 5), 0, 99)),
        pitch_range=voice.pitch_range,
    )


def _plan(
    tts: Synthesizer,
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
        utt = _speak(tts, text, voices[speaker], rng)
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
    tts: Synthesizer,
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
        utt = _speak(tts, spoken, voice, rng)
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


def _augment(
    clean: list[np.ndarray], rng: np.random.Generator, crosstalk: bool
) -> tuple[list[np.ndarray], dict[str, Any]]:
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
        level_db = float(rng.uniform(-12, 0))
        x *= 10 ** (level_db / 20)
        info["level_db"] = round(level_db, 1)
        if rng.random() < 0.7:
            active = np.abs(x) > 1e-3
            speech_rms = float(np.sqrt(np.mean(x[active] ** 2))) if active.any() else 0.05
            snr_db = float(rng.uniform(15, 40))
            x += _pink_noise(rng, n) * speech_rms * 10 ** (-snr_db / 20)
            info["snr_db"] = round(snr_db, 1)
        peak = float(np.abs(x).max(initial=0.0))
        if peak > 0.98:
            x *= 0.98 / peak
        out.append(x.astype(np.float32))
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


def session_id(seed: int, split: str) -> str:
    return f"{split}-{seed:06d}"


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
) -> SynthSession:
    """Generate one conversation of ``seconds`` between two random voices of ``split``.

    The same ``(seed, split)`` always gives the same session. ``augment`` degrades the saved
    audio (levels, reverb, noise, and ``crosstalk`` leakage); the teacher always sees the clean
    speech.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    if seconds < 2.0:
        raise ValueError(f"seconds={seconds} is too short for a conversation; use at least 2")
    rng = np.random.default_rng([int(seed), _SPLIT_CODE[split]])
    voices = _pick_voices(rng, split)
    # A fresh espeak-ng per session: its output then depends on the seed alone.
    with Synthesizer() as tts:
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
        audio, aug = _augment(clean, rng, crosstalk)
    else:
        audio, aug = [c.copy() for c in clean], {}
    meta = {
        "generator": "infp_sdk.data.synth",
        "seed": int(seed),
        "split": split,
        "seconds": seconds,
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
    }
    return SynthSession(
        id=session_id(seed, split),
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
    **options: bool,
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
            f"wrote {sessions} {split} sessions ({sessions * seconds / 60:.1f} min of audio) to "
            f"{out} in {total:.1f} s"
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
    except EspeakError as exc:
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
        description="Generate dyadic training data: two espeak-ng voices take turns (pauses, "
        "overlaps, interruptions, backchannels) and a procedural teacher animates both; "
        "written in the dataset format of docs/dataset.md. The test split uses held-out "
        "voices and sentences.",
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
    parser.set_defaults(func=_cmd_synth)
    return parser
