"""Text to speech with phoneme timings through espeak-ng's C library (ctypes, no build step).

The synthetic conversations need more than audio: the teacher animates the mouth from the
phonemes and their times. espeak-ng reports both through its synthesis callback, so this module
binds ``libespeak-ng.so.1`` directly instead of shelling out to the ``espeak-ng`` command.

espeak-ng keeps its voice and parameters in process-global state and is not re-entrant, so every
call holds :data:`_LOCK`; use worker *processes* (as :func:`infp_sdk.data.synth.build_dataset`
does) for parallel synthesis. It also carries a little state from one call to the next, so the
same call can come out a few samples different; :class:`Synthesizer` runs espeak-ng in a freshly
forked child to make a sequence of calls reproducible.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, resample

INSTALL_HINT = "install espeak-ng: apt-get install espeak-ng (or your system's espeak-ng package)"

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
# Without this flag espeak-ng calls exit() when its data directory is missing, taking Python down.
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_AUTO = 0
# Lets text carry espeak phoneme input in [[...]] (used for "mm-hm", which espeak would spell).
_PHONEME_INPUT = 0x100
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4


class EspeakError(RuntimeError):
    """espeak-ng is missing or refused a request; the message says what to do."""


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``; ``languages`` is a run of (priority byte, NUL-terminated name)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT``: six 32-bit fields, a pointer (8-aligned on 64-bit) and an 8-byte union."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Utterance:
    """One synthesised text: 16 kHz audio and what the synthesiser said when.

    Times are seconds from the start of ``audio``. ``phonemes`` covers the whole audio, pauses
    included (espeak mnemonics starting with ``_``, Festival's ``pau``); ``words`` spans each
    word's non-pause phonemes.
    """

    audio: np.ndarray
    """float32 mono at 16 kHz."""
    phonemes: list[tuple[float, float, str]] = field(default_factory=list)
    """(start_s, end_s, phone): an espeak mnemonic such as ``aI`` or ``_:``, or a Festival phone
    such as ``ay`` or ``pau`` (see ``phoneset``)."""
    words: list[tuple[float, float]] = field(default_factory=list)
    """(start_s, end_s) of each spoken word."""
    text: str = ""
    voice: str = ""
    phoneset: str = "espeak"
    """Whose phone names ``phonemes`` uses: ``espeak`` here, ``radio`` for Festival voices."""

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class _Engine:
    """The loaded library and the per-process synthesis state (only touched under the lock)."""

    def __init__(self, path: str | None = None) -> None:
        name = path or ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise EspeakError(f"cannot load the espeak-ng library ({exc}): {INSTALL_HINT}") from exc
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(
                f"espeak_Initialize failed (returned {rate}); its voice data may be missing: "
                f"{INSTALL_HINT}"
            )
        self.lib = lib
        self.rate = rate
        self.pid = os.getpid()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        # Keep a reference: the C side holds only the raw pointer.
        self._callback = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()

    def _list_voices(self) -> dict[str, str]:
        """Language code -> voice identifier, e.g. ``en-gb`` -> ``gmw/en`` (mbrola excluded)."""
        table: dict[str, str] = {}
        entries = self.lib.espeak_ListVoices(None)
        i = 0
        while entries[i]:
            voice = entries[i].contents
            addr = voice.languages
            if addr and voice.identifier:
                # The first language is the voice's own; later ones are fallbacks.
                if ctypes.c_ubyte.from_address(addr).value:
                    code = ctypes.string_at(addr + 1).decode("latin-1")
                    table.setdefault(code, voice.identifier.decode("latin-1"))
            i += 1
        return table

    def set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return
        # Names such as "en-gb" are language codes, not voice names: go through the identifier.
        base, plus, variant = voice.partition("+")
        ident = self.voices.get(base.lower())
        if ident is None or self.lib.espeak_SetVoiceByName((ident + plus + variant).encode()):
            raise EspeakError(
                f"espeak-ng has no voice {voice!r}: pick one of list_voices() "
                "(optionally with a variant, e.g. 'en-us+m3')"
            )

    def _on_audio(self, wav: Any, numsamples: int, events: Any) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, (numsamples,)).copy())
        if events:
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == _EVENT_PHONEME:
                    raw = bytes(ev.id.string).split(b"\0", 1)[0]
                    self._events.append((_EVENT_PHONEME, ev.audio_position, raw.decode("latin-1")))
                elif ev.type == _EVENT_WORD:
                    self._events.append((_EVENT_WORD, ev.audio_position, ""))
                i += 1
        return 0

    def run(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
    ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        self.set_voice(voice)
        for param, value in (
            (_PARAM_RATE, int(np.clip(rate, 80, 450))),
            (_PARAM_VOLUME, 100),
            (_PARAM_PITCH, int(np.clip(pitch, 0, 99))),
            (_PARAM_RANGE, int(np.clip(pitch_range, 0, 99))),
        ):
            self.lib.espeak_SetParameter(param, value, 0)
        self._chunks, self._events = [], []
        data = ctypes.create_string_buffer(text.encode("utf-8"))
        status = self.lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_AUTO | _PHONEME_INPUT, None, None
        )
        if status != 0:
            raise EspeakError(f"espeak_Synth failed with status {status} for text {text!r}")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    # A forked child inherits a copy of the parent's engine; espeak's state is plain memory, so
    # the copy works, but re-registering keeps the callback bound to this process's objects.
    if _ENGINE is None or _ENGINE.pid != os.getpid():
        _ENGINE = _Engine()
    return _ENGINE


def available() -> bool:
    """Whether the espeak-ng library can be loaded and initialised."""
    try:
        with _LOCK:
            _engine()
    except EspeakError:
        return False
    return True


def synthesize(
    text: str,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
) -> Utterance:
    """Speak ``text`` with espeak-ng and return 16 kHz audio with phoneme and word timings.

    Args:
        text: What to say (UTF-8; espeak's ``[[...]]`` phoneme input works too).
        voice: An espeak-ng voice name or language code, optionally with a variant
            (``"en-gb+f2"``).
        rate: Words per minute (80-450).
        pitch: Base pitch 0-99 (50 is the voice's default).
        pitch_range: Intonation range 0-99 (0 is monotone).

    Raises:
        EspeakError: When the library is missing or the voice is unknown.

    espeak-ng carries some state from one call to the next (the phase of the glottal pulse,
    its noise generator), so repeating a call can give audio that differs by a few samples and
    timings by a millisecond. Use :class:`Synthesizer` where output must be reproducible.
    """
    with _LOCK:
        engine = _engine()
        raw, events = engine.run(text, voice, rate, pitch, pitch_range)
        native = engine.rate
    return _utterance(raw, events, native, text, voice)


def _utterance(
    raw: np.ndarray, events: list[tuple[int, int, str]], native: int, text: str, voice: str
) -> Utterance:
    audio = resample(raw.astype(np.float32) / 32768.0, native, SAMPLE_RATE).astype(np.float32)
    phonemes, words = _timings(events, len(audio) / SAMPLE_RATE)
    return Utterance(audio=audio, phonemes=phonemes, words=words, text=text, voice=voice)


def _loaded_library_path() -> str | None:
    """The file of the espeak-ng library mapped into this process, if any (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "libespeak-ng" in os.path.basename(path) and os.path.isfile(path):
                    return path
    except OSError:
        pass
    return None


def _serve(conn: Any) -> None:
    """Child side of :class:`Synthesizer`: a pristine espeak-ng answering requests on ``conn``."""
    global _ENGINE
    try:
        inherited = _loaded_library_path()
        if inherited is None:
            engine = _Engine()  # never loaded here, so its state is fresh
        else:
            # The parent already used espeak-ng and we inherited its state. A copy of the file is
            # a separate library to the dynamic loader, with its own freshly initialised state.
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    private = os.path.join(tmp, "libespeak-ng-private.so")
                    shutil.copyfile(inherited, private)
                    engine = _Engine(private)
            except (OSError, EspeakError):
                # e.g. a noexec temp directory: still works, only not reproducible to the sample.
                engine = _Engine()
        # Noise in some voices comes from libc's rand(); start every child from the same seed.
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.srand(1)
        _ENGINE = engine
        conn.send(("ready", engine.rate))
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", str(exc)))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            raw, events = engine.run(*request)
            conn.send(("ok", raw, list(events)))
        except Exception as exc:
            conn.send(("error", str(exc)))


class Synthesizer:
    """espeak-ng in a child process that starts from pristine state: reproducible output.

    The same sequence of :meth:`synthesize` calls on a new ``Synthesizer`` always gives the same
    audio and timings, whatever this process synthesised before. Use it as a context manager
    (or call :meth:`close`). Where ``fork`` is unavailable it falls back to the in-process
    engine, which is not reproducible to the sample.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = 0
        self._rate = 0
        self._in_process = not hasattr(os, "fork")
        if self._in_process:
            return
        parent, child = multiprocessing.Pipe()
        # A bare fork rather than multiprocessing.Process: it also works inside daemonic pool
        # workers, and the child needs nothing but this module's state.
        pid = os.fork()
        if pid == 0:
            try:
                parent.close()
                _serve(child)
            finally:
                os._exit(0)
        child.close()
        self._pid = pid
        self._conn = parent
        try:
            status = self._conn.recv()
        except EOFError:
            status = ("error", "the espeak-ng child process died while starting")
        if status[0] != "ready":
            self.close()
            raise EspeakError(f"{status[1]}")
        self._rate = int(status[1])

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
    ) -> Utterance:
        """Like :func:`synthesize`, in this synthesizer's child process."""
        if self._in_process:
            return synthesize(text, voice, rate, pitch, pitch_range)
        if self._conn is None:
            raise EspeakError("this Synthesizer is closed: create a new one")
        with self._lock:
            self._conn.send((text, voice, rate, pitch, pitch_range))
            reply = self._conn.recv()
        if reply[0] != "ok":
            raise EspeakError(reply[1])
        return _utterance(reply[1], reply[2], self._rate, text, voice)

    def close(self) -> None:
        """Stop the child process."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._pid:
            pid, self._pid = self._pid, 0
            deadline = time.monotonic() + 5.0
            while True:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.001)

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _timings(
    events: list[tuple[int, int, str]], total: float
) -> tuple[list[tuple[float, float, str]], list[tuple[float, float]]]:
    """Turn espeak's start-only events into (start, end) spans.

    A phoneme lasts until the next phoneme starts. Word events can fire a little before their
    first phoneme, so each phoneme belongs to the latest word event at or before its start and a
    word spans its own non-pause phonemes.
    """
    starts = [(ms / 1000.0, name) for kind, ms, name in events if kind == _EVENT_PHONEME]
    word_starts = sorted(ms / 1000.0 for kind, ms, _ in events if kind == _EVENT_WORD)
    phonemes: list[tuple[float, float, str]] = []
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        end = min(max(end, start), total)
        if end > start:
            phonemes.append((start, end, name))
    spans: dict[int, list[float]] = {}
    for start, end, name in phonemes:
        if name.startswith("_"):
            continue
        owner = int(np.searchsorted(word_starts, start + 1e-6)) - 1
        span = spans.setdefault(owner, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    words = [(s, e) for _, (s, e) in sorted(spans.items())]
    return phonemes, words


def list_voices() -> list[str]:
    """Language codes of the installed espeak-ng voices (e.g. ``en-us``, ``en-gb-scotland``).

    Any of them takes a variant suffix such as ``+m3`` or ``+f2``. mbrola voices, which need
    separately installed databases, are not listed.
    """
    with _LOCK:
        return sorted(_engine().voices)
