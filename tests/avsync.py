"""What the voice-agent adapters' tests share: the two voices, and how voice-to-face sync and
mouth movement are measured on what an adapter sends out."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import ROOT

from infp_sdk.audio import read_wav, resample

CONVERSATION = ROOT / "examples" / "conversation"
PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"


def voices(rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(the user's turn, the bot's turn) of the bundled conversation, int16 at ``rate``: the
    partner talks from 0.3 s to 3.0 s; the own voice's first turn is 3.9 s to 6.7 s."""
    own, sr = read_wav(CONVERSATION / "own.wav")
    partner, _ = read_wav(CONVERSATION / "partner.wav")
    user = partner[: int(2.4 * sr), 0]
    bot = own[int(3.9 * sr) : int(6.7 * sr), 0]

    def pcm(x):
        x = resample(x, sr, rate) if rate != sr else x
        return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)

    return pcm(user), pcm(bot)


@dataclass
class Sent:
    """Something an adapter sent: when (monotonic s), and its media time (s)."""

    sent: float
    t: float


@dataclass
class SentVideo(Sent):
    source: int  # the agent frame it shows
    late: bool
    jaw: float  # its jawOpen


@dataclass
class SentAudio(Sent):
    samples: np.ndarray  # int16 mono
    rate: int


def av_offsets(video: list[SentVideo], audio: list[SentAudio]) -> tuple[np.ndarray, float]:
    """For every 5 ms of the voice sent: the media time on screen when it plays (the centre of
    the agent frame in the image sent last before it) minus its own media time; and the
    fraction of images that were late.

    A sink plays a chunk from the moment it gets it, so a sample ``s`` seconds into a chunk
    plays ``s`` after the chunk was sent. A late image (its agent frame was not ready in time,
    so an older one is shown again: a busy machine; the adapters count them) is left out of the
    offsets and counted instead.
    """
    sent = np.array([v.sent for v in video])
    shows = np.array([(v.source + 0.5) / 25 for v in video])
    late = np.array([v.late for v in video])
    offsets = []
    for chunk in audio:
        for s in np.arange(0, len(chunk.samples) / chunk.rate, 0.005):
            k = np.searchsorted(sent, chunk.sent + s, side="right") - 1
            if k >= 0 and not late[k]:
                offsets.append(shows[k] - (chunk.t + s))
    return np.array(offsets), float(late.mean())


def voiced(audio: list[SentAudio], level: float = 0.05):
    """A test of media times: inside a loud chunk of the voice sent."""
    spans = []
    for chunk in audio:
        x = chunk.samples.astype(np.float32) / 32768
        if np.sqrt((x**2).mean()) > level:
            spans.append((chunk.t, chunk.t + len(x) / chunk.rate))

    def inside(t):
        return np.array([any(a <= x < b for a, b in spans) for x in t], bool)

    return inside


def fps_of(video: list[SentVideo]) -> float:
    sent = [v.sent for v in video]
    return (len(sent) - 1) / (sent[-1] - sent[0])


def infp_threads() -> list[str]:
    """The SDK's threads still alive (engine, renderer, ...)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("infp")]


class BreaksAfter:
    """A renderer that fails at its ``n``-th frame (a stand-in for a broken GPU, say)."""

    def __init__(self, renderer, n: int):
        self.renderer, self.n = renderer, n

    def render(self, frame):
        self.n -= 1
        if self.n < 0:
            raise RuntimeError("the renderer broke")
        return self.renderer.render(frame)


def check_conversation(video: list[SentVideo], voice: list[SentAudio], fps: float) -> dict:
    """The checks of a conversation where the user talks from media time 0.3 s until the bot's
    answer starts: frames at ``fps``; voice and face in step within 40 ms; the mouth moving
    with the bot's voice and at rest while only the user talks. Returns what it measured."""
    sent = np.array([v.sent for v in video])
    assert abs(fps_of(video) - fps) < 1.0
    assert np.median(np.diff(sent)) == pytest.approx(1 / fps, abs=0.005)

    offsets, late = av_offsets(video, voice)
    assert late <= 0.1, f"{late:.0%} of the frames were late"
    # By construction the offset is at most half an image plus half an agent frame (37 ms at
    # 30 fps; test_pacer checks that bound exactly on simulated time). Here the
    # event loop's wake-ups on a busy machine come on top, a few ms now and then.
    off = np.abs(offsets)
    assert np.percentile(off, 99) <= 0.040 and off.max() <= 0.050, (
        np.percentile(off, 99),
        off.max(),
    )

    jaw = np.array([v.jaw for v in video])
    t = np.array([v.t for v in video])
    talking = jaw[voiced(voice)(t)]
    # until the bot's voice starts (less 0.15 s: the mouth opens a little before the sound)
    listening = jaw[(t > 0.5) & (t < voice[0].t - 0.15)]
    assert talking.max() > 0.2 and talking.mean() > 0.1
    assert listening.max() < 0.05
    return {
        "offset_p50_ms": float(np.median(np.abs(offsets)) * 1000),
        "offset_max_ms": float(np.abs(offsets).max() * 1000),
        "late": late,
        "jaw_talking": float(talking.mean()),
        "jaw_listening": float(listening.mean()),
    }


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def motion_received(subscriber) -> list:
    """The motion messages a MotionSubscriber has queued up (it stops at a 0.5 s gap)."""
    from infp_sdk.io.protocol import Motion

    out = []
    while (m := subscriber.recv(0.5)) is not None:
        if isinstance(m, Motion):
            out.append(m)
    subscriber.close()
    return out
