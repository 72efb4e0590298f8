"""Regenerate the bundled dyadic conversation (examples/conversation/*.wav) with espeak-ng.

Two speakers with different voices take turns; each has its own track (the agent's "own" voice and
its "partner"), silent while the other talks except for short backchannels. Needs the espeak-ng
command (Debian: apt-get install espeak-ng).

    python examples/make_conversation.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from infp_sdk.audio import SAMPLE_RATE, read_wav, to_mono_16k, write_wav

# (speaker, text, pause in seconds before the turn); "own" is the agent, "partner" the other side.
SCRIPT = [
    ("partner", "Hi. I heard you started on the new project.", 0.3),
    ("own", "Yes, I did. It is going well, thanks.", 0.5),
    ("partner", "What is the hardest part so far?", 0.4),
    ("own", "Keeping it fast on a small laptop.", 0.5),
    ("partner", "Do you enjoy it?", 0.4),
    ("own", "I really do.", 0.4),
]
BACKCHANNELS = [  # (speaker, text, turn index it overlaps, seconds into that turn)
    ("partner", "mm hm", 3, 1.0),
    ("own", "yeah", 2, 1.0),
]
VOICES = {"own": ("en-us+m3", 175, 50), "partner": ("en-gb+f3", 165, 60)}  # voice, wpm, pitch


def speak(text: str, speaker: str) -> np.ndarray:
    voice, rate, pitch = VOICES[speaker]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turn.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text],
            check=True,
        )
        audio, rate_hz = read_wav(path)
    return to_mono_16k(audio, rate_hz) * 0.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent / "conversation"
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    out_dir = parser.parse_args().out
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed: apt-get install espeak-ng")
    tracks = {"own": [], "partner": []}
    cursor = 0
    turn_starts = []
    for speaker, text, pause in SCRIPT:
        cursor += int(pause * SAMPLE_RATE)
        audio = speak(text, speaker)
        tracks[speaker].append((cursor, audio))
        turn_starts.append(cursor)
        cursor += len(audio)
    for speaker, text, turn, offset in BACKCHANNELS:
        start = turn_starts[turn] + int(offset * SAMPLE_RATE)
        tracks[speaker].append((start, speak(text, speaker) * 0.6))
    total = cursor + int(0.5 * SAMPLE_RATE)
    out_dir.mkdir(parents=True, exist_ok=True)
    for speaker, pieces in tracks.items():
        signal = np.zeros(total, dtype=np.float32)
        for start, audio in pieces:
            signal[start : start + len(audio)] += audio[: total - start]
        write_wav(out_dir / f"{speaker}.wav", signal, SAMPLE_RATE)
    print(f"wrote {out_dir}/own.wav and partner.wav, {total / SAMPLE_RATE:.1f} s each")


if __name__ == "__main__":
    main()
