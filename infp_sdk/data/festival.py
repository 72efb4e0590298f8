"""Text to speech with phone timings through the Festival speech synthesis system.

A second family of voices for the synthetic conversations, so a model trained on them does not
learn the sound of one synthesiser. Festival's diphone voices (``kal_diphone``, ``ked_diphone``)
concatenate recorded speech; its HTS voices (``cmu_us_slt_arctic_hts``) are statistical
parametric. Both report every phone (Festival's ``radio`` phone set: ``aa``, ``ae``, ``hh``,
``pau``, ...) with its end time, which is what the teacher animates the mouth from.

The module keeps one ``festival --pipe`` process per Python process and sends it Scheme: a
process starts in about 0.2 s and then synthesises a sentence in a few milliseconds (diphone)
or a few hundred (HTS). Festival's output depends only on the request (the voice and its
settings are set again for every utterance), never on what the process said before, so the
shared process keeps synthesis reproducible.

    from infp_sdk.data.festival import synthesize
    utt = synthesize("Shall we go, then?", "kal_diphone", stretch=1.1, pitch=1.2)
    utt.audio, utt.phonemes, utt.words          # 16 kHz float32, (start, end, phone), (start, end)
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, read_wav, resample
from .espeak import Utterance

PHONESET = "radio"
"""The phone set of Festival's English voices; :class:`Utterance` ``phoneset`` says so."""

INSTALL_HINT = "install Festival: apt-get install festival (or your system's festival package)"

# Debian/Ubuntu packages of the voices the SDK uses.
VOICE_PACKAGES: dict[str, str] = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
# Other names people use for the same voices (the kdlpc package installs "ked").
ALIASES: dict[str, str] = {"kdl_diphone": "ked_diphone"}

# Words the lexicons lack, as Festival would otherwise spell them out letter by letter
# ("hmm" -> "aitch em em"): name -> syllables of (phones, stress).
LEXICON_ADDITIONS: dict[str, str] = {
    "mmhmm": "(((ax m) 0) ((hh ax m) 1))",
    "hmmm": "(((hh ax m) 1))",
}

_TIMEOUT_S = 60.0
_VOICE_NAME = re.compile(r"^[A-Za-z0-9_]+$")

# Defined once per process. Voice functions reset Duration_Stretch and int_lr_params, so the
# helpers scale whatever the voice just set.
_PRELUDE = """
(define (infp_stretch x)
  (let ((d (Parameter.get 'Duration_Stretch)))
    (Parameter.set 'Duration_Stretch (* x (if d d 1.0)))))
(define (infp_scale_param params name x)
  (let ((p (assoc name params)))
    (if p (cons (list name (* x (cadr p))) (remove p params)) params)))
(define (infp_pitch mean_x std_x)
  (if (and (symbol-bound? 'int_lr_params) int_lr_params)
      (set! int_lr_params
            (infp_scale_param (infp_scale_param int_lr_params 'target_f0_mean mean_x)
                              'target_f0_std std_x))))
(define (infp_lex)
  %s)
(format t "VOICES %%l\\n" (voice.list))
(format t "END\\n")
(fflush nil)
"""


class FestivalError(RuntimeError):
    """Festival or one of its voices is missing, or it refused a request; says what to do."""


def engine_of(voice: str) -> str:
    """The engine label of a Festival voice: ``festival-hts`` for HTS voices, else ``festival``."""
    return "festival-hts" if _canonical(voice).endswith("_hts") else "festival"


def _canonical(voice: str) -> str:
    return ALIASES.get(voice, voice)


def _voice_hint(voice: str) -> str:
    package = VOICE_PACKAGES.get(voice)
    if package:
        return f"install it: apt-get install {package}"
    return "install the festvox package that provides it (apt-cache search festvox)"


def _scheme_string(text: str) -> str:
    text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Synthesizer:
    """A Festival process answering synthesis requests; see :func:`synthesize`.

    Use it as a context manager or call :meth:`close`. Most code wants the per-process shared
    instance that :func:`synthesize` uses (:func:`shared`).
    """

    def __init__(self, command: str = "festival") -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.pid = os.getpid()
        exe = shutil.which(command)
        if exe is None:
            raise FestivalError(f"the {command!r} program was not found: {INSTALL_HINT}")
        self._tmp = tempfile.mkdtemp(prefix="infp-festival-")
        self._counter = 0
        # Voices whose lexicon has LEXICON_ADDITIONS (they stay for the life of the process).
        self._lex_done: set[str] = set()
        try:
            self._proc = subprocess.Popen(
                [exe, "--pipe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise FestivalError(f"cannot start {exe} ({exc}): {INSTALL_HINT}") from exc
        threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True).start()
        lex = " ".join(
            f'(lex.add.entry \'("{word}" nil {syl}))' for word, syl in LEXICON_ADDITIONS.items()
        )
        lines, _ = self._exchange(_PRELUDE % (lex or "t"), ok_marker=False)
        listed = [ln for ln in lines if ln.startswith("VOICES ")]
        if not listed:
            self.close()
            detail = " ".join(lines)[-300:]
            raise FestivalError(f"festival did not start properly ({detail}): {INSTALL_HINT}")
        self.voices = tuple(sorted(listed[-1][len("VOICES ") :].strip("() \n").split()))
        """The voices this Festival has (``voice.list``)."""

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _exchange(self, script: str, ok_marker: bool = True) -> tuple[list[str], bool]:
        """Send ``script`` and collect its output up to the end marker; (lines, ok seen)."""
        if self._proc is None or self._proc.stdin is None:
            raise FestivalError("this festival Synthesizer is closed: create a new one")
        try:
            self._proc.stdin.write(script)
            if ok_marker:
                self._proc.stdin.write('\n(format t "END\\n")\n(fflush nil)\n')
            self._proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise FestivalError(f"the festival process died ({exc})") from exc
        lines: list[str] = []
        ok = False
        while True:
            try:
                line = self._lines.get(timeout=_TIMEOUT_S)
            except queue.Empty:
                self.close()
                raise FestivalError(f"festival did not answer within {_TIMEOUT_S:.0f} s") from None
            if line is None:
                tail = " ".join(lines)[-300:]
                self.close()
                raise FestivalError(f"the festival process exited ({tail})")
            if line == "END":
                return lines, ok
            if line == "OK":
                ok = True
            else:
                lines.append(line)

    def synthesize(
        self,
        text: str,
        voice: str = "kal_diphone",
        stretch: float = 1.0,
        pitch: float = 1.0,
        pitch_range: float = 1.0,
    ) -> Utterance:
        """Speak ``text`` and return 16 kHz audio with phone and word timings.

        Args:
            text: What to say (plain English text).
            voice: A Festival voice (``kal_diphone``, ``ked_diphone``,
                ``cmu_us_slt_arctic_hts``, or another of :attr:`voices`).
            stretch: Duration factor over the voice's own (above 1 is slower). Diphone voices
                use Festival's ``Duration_Stretch``; HTS voices the engine's speed (``-r``).
            pitch: Factor on the voice's mean F0 (diphone voices; HTS voices ignore it).
            pitch_range: Factor on the voice's F0 spread (diphone voices; HTS ignores it).

        Raises:
            FestivalError: When the voice is not installed (naming its package) or Festival
                fails.
        """
        name = _canonical(voice)
        if not _VOICE_NAME.match(name) or name not in self.voices:
            raise FestivalError(
                f"festival has no voice {voice!r} (it has {', '.join(self.voices) or 'none'}): "
                f"{_voice_hint(name)}"
            )
        stretch = float(np.clip(stretch, 0.5, 2.0))
        with self._lock:
            self._counter += 1
            wav = os.path.join(self._tmp, f"u{self._counter % 4}.wav")
            if name.endswith("_hts"):
                # HTS ignores Duration_Stretch; its engine takes a speed factor instead.
                base = f"infp_base_{name}"
                select = (
                    f"(defvar {base} nil)"
                    f"(if (not {base}) (begin (voice_{name}) "
                    f"(set! {base} {name}::hts_engine_params)))"
                    f"(set! {name}::hts_engine_params "
                    f'(append {base} (list (list "-r" {1.0 / stretch:.4f}))))'
                    f"(voice_{name})"
                )
            else:
                select = (
                    f"(voice_{name})(infp_stretch {stretch:.4f})"
                    f"(infp_pitch {float(pitch):.4f} {float(pitch_range):.4f})"
                )
            lex = "" if name in self._lex_done else "(infp_lex)"
            script = (
                f"(begin {select}{lex}"
                f"(set! utt (Utterance Text {_scheme_string(text)}))"
                "(utt.synth utt)"
                f"(utt.save.wave utt {_scheme_string(wav)} 'riff)"
                '(mapcar (lambda (s) (format t "S %s %f\\n" (item.name s) '
                '(item.feat s "end"))) (utt.relation.items utt \'Segment))'
                '(mapcar (lambda (w) (format t "W %f %f\\n" (item.feat w "word_start") '
                '(item.feat w "word_end"))) (utt.relation.items utt \'Word))'
                '(format t "OK\\n"))'
            )
            lines, ok = self._exchange(script)
            if ok:
                self._lex_done.add(name)
            if not ok:
                detail = " ".join(ln for ln in lines if not ln.startswith(("S ", "W ")))
                raise FestivalError(f"festival failed on {text!r} with {name}: {detail[-300:]}")
            try:
                raw, rate = read_wav(wav)
            finally:
                if os.path.exists(wav):
                    os.unlink(wav)
        audio = raw[:, 0] if raw.ndim == 2 else raw
        if rate != SAMPLE_RATE:
            audio = resample(audio, rate, SAMPLE_RATE)
        audio = np.ascontiguousarray(audio, np.float32)
        segments, words = [], []
        for line in lines:
            parts = line.split()
            if parts[:1] == ["S"] and len(parts) == 3:
                segments.append((parts[1], float(parts[2])))
            elif parts[:1] == ["W"] and len(parts) == 3:
                words.append((float(parts[1]), float(parts[2])))
        phonemes, spans = _timings(segments, words, len(audio) / SAMPLE_RATE)
        return Utterance(
            audio=audio, phonemes=phonemes, words=spans, text=text, voice=name, phoneset=PHONESET
        )

    def phones(self, voice: str = "kal_diphone") -> list[str]:
        """Every phone of ``voice``'s phone set (what its utterances can contain)."""
        name = _canonical(voice)
        if not _VOICE_NAME.match(name) or name not in self.voices:
            raise FestivalError(f"festival has no voice {voice!r}: {_voice_hint(name)}")
        with self._lock:
            lines, ok = self._exchange(
                f'(begin (voice_{name}) (format t "P %l\\n" (mapcar car (cadr (assoc \'phones '
                '(PhoneSet.description \'(phones)))))) (format t "OK\\n"))'
            )
        listed = [ln for ln in lines if ln.startswith("P (")]
        if not ok or not listed:
            raise FestivalError(f"festival could not list the phones of {name}: {lines[-3:]}")
        return listed[-1][3:].strip("()").split()

    def close(self) -> None:
        """Stop the Festival process."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(getattr(self, "_tmp", ""), ignore_errors=True)

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _timings(
    segments: list[tuple[str, float]], words: list[tuple[float, float]], total: float
) -> tuple[list[tuple[float, float, str]], list[tuple[float, float]]]:
    """Festival's end-only segment times -> (start, end, phone) spans covering ``[0, total]``.

    A segment starts where the previous one ended. Trailing audio past the last segment (the
    waveform is a few milliseconds longer) joins a final pause.
    """
    phonemes: list[tuple[float, float, str]] = []
    prev = 0.0
    for name, end in segments:
        end = min(end, total)
        if end > prev:
            phonemes.append((prev, end, name))
            prev = end
    if total > prev:
        if phonemes and phonemes[-1][2] == "pau":
            phonemes[-1] = (phonemes[-1][0], total, "pau")
        else:
            phonemes.append((prev, total, "pau"))
    spans = [(s, min(e, total)) for s, e in words if min(e, total) > s]
    return phonemes, spans


_SHARED: Synthesizer | None = None
_SHARED_LOCK = threading.Lock()
_VOICES_CACHE: tuple[str, ...] | None = None


def shared() -> Synthesizer:
    """This process's Festival (started on first use, restarted in a forked child)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED.pid != os.getpid() or _SHARED._proc is None:
            _SHARED = Synthesizer()
        return _SHARED


def _close_shared() -> None:
    if _SHARED is not None and _SHARED.pid == os.getpid():
        _SHARED.close()


atexit.register(_close_shared)


def synthesize(
    text: str,
    voice: str = "kal_diphone",
    stretch: float = 1.0,
    pitch: float = 1.0,
    pitch_range: float = 1.0,
) -> Utterance:
    """Speak ``text`` with Festival; see :meth:`Synthesizer.synthesize`.

    Phone names are Festival's (``hh``, ``ax``, ``pau``); the utterance's ``phoneset`` is
    ``"radio"`` so the teacher maps them with the right table.
    """
    return shared().synthesize(text, voice, stretch, pitch, pitch_range)


def list_voices() -> list[str]:
    """The installed Festival voices; empty when Festival itself is missing."""
    global _VOICES_CACHE
    if _VOICES_CACHE is None:
        try:
            _VOICES_CACHE = shared().voices
        except FestivalError:
            _VOICES_CACHE = ()
    return list(_VOICES_CACHE)


def available(voice: str | None = None) -> bool:
    """Whether Festival runs and has a voice (``voice``, when given)."""
    voices = list_voices()
    return bool(voices) if voice is None else _canonical(voice) in voices


def require(voice: str) -> None:
    """Raise :class:`FestivalError` naming the package to install unless ``voice`` is usable."""
    if shutil.which("festival") is None:
        raise FestivalError(f"the 'festival' program was not found: {INSTALL_HINT}")
    if not available(voice):
        raise FestivalError(f"festival has no voice {voice!r}: {_voice_hint(_canonical(voice))}")
