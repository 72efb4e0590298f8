"""The demo bot of ``infp-sdk serve``: it takes turns with the person at the microphone.

No speech recognition and no language model: the bot knows *when* to speak, not what. It listens
to the partner's voice with an energy detector (:class:`TurnDetector`), answers with the next of a
few canned lines spoken by espeak-ng (:func:`speak`) once the person has stopped talking, and
stops as soon as the person talks over it (barge-in). That is enough to see the face listen,
take the turn, talk and yield, which is what the page is for.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

REPLIES = (
    "Hello! I am listening. Say something, and I will answer when you stop.",
    "I see. That is interesting. Tell me a little more about it, if you like.",
    "Right, I understand. And what happened after that?",
    "That makes sense to me. Go on, I am listening.",
    "Really? I did not expect that. What do you think about it now?",
)
"""What the bot says, in turn; the first line greets the person when they connect."""

VOICE = "en-us"
WORDS_PER_MINUTE = 165


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak_path() -> str:
    """The espeak-ng executable; raises :class:`SpeechError` naming the fix when absent."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechError(
            "the demo bot speaks with espeak-ng, which is not installed: "
            "apt-get install espeak-ng (Debian, Ubuntu), brew install espeak-ng (macOS)"
        )
    return path


def speak(text: str, voice: str = VOICE, rate: int = WORDS_PER_MINUTE) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: int16 mono samples and their sample rate. Blocks (about
    0.1 s for a sentence); run it in a thread from an event loop."""
    cmd = [espeak_path(), "--stdout", "-v", voice, "-s", str(int(rate)), text]
    done = subprocess.run(cmd, capture_output=True, timeout=30)
    if done.returncode != 0 or not done.stdout:
        raise SpeechError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()}")
    # espeak-ng writes the WAV to a pipe, so its header's sizes are left at their maximum
    # (0x7FFFFFFF); reading the frames stops at the end of the data all the same
    with wave.open(io.BytesIO(done.stdout)) as w:
        rate_hz, width = w.getframerate(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    if width != 2:
        raise SpeechError(f"espeak-ng wrote {8 * width}-bit audio; expected 16-bit")
    return np.frombuffer(data[: len(data) // 2 * 2], np.int16), rate_hz


@dataclass
class TurnEvent:
    """What the detector concluded from the audio so far: ``"end_of_turn"`` (the person spoke,
    then went quiet) or ``"barge_in"`` (the person has been talking over the bot)."""

    kind: str
    t: float


class TurnDetector:
    """Speech or not, 20 ms at a time, from the loudness of the partner's audio.

    A frame is speech when it is ``margin_db`` above the noise floor (tracked from the quiet
    frames) and above ``floor_db``. The person's turn ends after ``min_speech`` s of speech
    followed by ``end_silence`` s without; they barge in after ``barge_in`` s of speech while
    the bot talks. Pure and cheap: feed it :meth:`process` with each chunk as it arrives.
    """

    FRAME_S = 0.02

    def __init__(
        self,
        *,
        floor_db: float = -48.0,
        margin_db: float = 12.0,
        min_speech: float = 0.3,
        end_silence: float = 0.7,
        barge_in: float = 0.3,
    ):
        self.floor_db, self.margin_db = floor_db, margin_db
        self.min_speech, self.end_silence, self.barge_in = min_speech, end_silence, barge_in
        self.noise_db = floor_db
        self.t = 0.0
        self.speech_run = 0.0  # seconds of speech in the current run (bridging short gaps)
        self.silence_run = 0.0
        self.turn_speech = 0.0  # seconds of speech since the last end of turn
        self._rest = np.zeros(0, np.float32)
        self._rate = 0

    @property
    def speaking(self) -> bool:
        """Whether the person is talking now."""
        return self.speech_run > 0 and self.silence_run < 0.2

    def process(self, mono: np.ndarray, sample_rate: int, bot_speaking: bool) -> list[TurnEvent]:
        """Feed float32 mono samples; returns the events they complete."""
        if sample_rate != self._rate:
            self._rate, self._rest = sample_rate, np.zeros(0, np.float32)
        x = np.concatenate([self._rest, np.asarray(mono, np.float32)])
        n = int(round(self.FRAME_S * sample_rate))
        whole = len(x) // n * n
        self._rest = x[whole:]
        events: list[TurnEvent] = []
        for frame in x[:whole].reshape(-1, n):
            level = 10 * np.log10(float(np.mean(frame * frame)) + 1e-12)
            self.t += self.FRAME_S
            speech = level > max(self.floor_db, self.noise_db + self.margin_db)
            if speech:
                self.silence_run = 0.0
                self.speech_run += self.FRAME_S
                self.turn_speech += self.FRAME_S
                if bot_speaking and self.speech_run >= self.barge_in:
                    events.append(TurnEvent("barge_in", self.t))
                    self.speech_run = 0.0
            else:  # the noise floor follows quiet frames quickly down and slowly up
                step = 0.2 if level < self.noise_db else 0.01
                self.noise_db += step * (max(level, -90.0) - self.noise_db)
                self.silence_run += self.FRAME_S
                if self.silence_run >= 0.2:
                    self.speech_run = 0.0
                if self.turn_speech >= self.min_speech and self.silence_run >= self.end_silence:
                    events.append(TurnEvent("end_of_turn", self.t))
                    self.turn_speech = 0.0
        return events

    def reset_turn(self) -> None:
        """Forget the speech counted towards the person's turn (the bot answered)."""
        self.turn_speech = 0.0
