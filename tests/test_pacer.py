"""The clock under both voice-agent adapters, on simulated time (no framework needed).

Each step of the simulated clock waits until the agent has made every frame its audio allows
(`wait_idle`), so no frame is ever late and what is measured is the pacer's own timing: where
each sample of the voice and each video frame come out, and what that frame shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, random_model

from infp_sdk import Agent
from infp_sdk.audio import read_wav, resample
from infp_sdk.face import load_portrait
from infp_sdk.runtime.pacer import AudioOut, MarkerOut, Pacer, VideoOut

PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"


@pytest.fixture(scope="module")
def renderer():
    return load_portrait(PORTRAIT, size=48)


@pytest.fixture(scope="module")
def model():
    return random_model()


def bot_voice(rate: int) -> np.ndarray:
    own, sr = read_wav(ROOT / "examples" / "conversation" / "own.wav")
    x = own[int(3.9 * sr) : int(5.9 * sr), 0]
    x = resample(x, sr, rate) if rate != sr else x
    return np.round(x * 32767).astype(np.int16)


def simulate(pacer, agent, seconds, step=0.005, events=()):
    """Step the pacer on a simulated clock; ``events``: (time, callable) run at that time.
    Returns [(time, output)]."""
    pending = sorted(events, key=lambda e: e[0])
    out = []
    pacer.start(0.0)
    for now in np.arange(0.0, seconds, step):
        while pending and pending[0][0] <= now:
            pending.pop(0)[1]()
        got = pacer.step(now)
        agent.wait_idle()
        out += [(now, o) for o in got + pacer.step(now)]
    return out


def offsets(out, step):
    """Per 1 ms of voice: (centre of the agent frame on screen when it plays) - (its time)."""
    shown = []  # (time sent, media centre shown)
    for now, o in out:
        if isinstance(o, VideoOut):
            shown.append((now, (o.source + 0.5) / 25))
    sent = np.array([s for s, _ in shown])
    centre = np.array([c for _, c in shown])
    result = []
    for now, o in out:
        if isinstance(o, AudioOut):
            for s in np.arange(0, len(o.samples) / o.sample_rate, 0.001):
                k = np.searchsorted(sent, now + s, side="right") - 1
                result.append(centre[k] - (o.t + s))
    return np.array(result)


@pytest.mark.parametrize("fps", [25, 30, 60])
def test_voice_and_face_leave_together(model, renderer, fps):
    rate, delay, step = 24000, 0.2, 0.005
    voice = bot_voice(rate)
    with Agent(renderer, model=model, hop=1) as agent:
        pacer = Pacer(agent, sample_rate=rate, size=(48, 48), fps=fps, delay=delay)
        events = [(0.5, lambda: pacer.push_own(voice.tobytes(), rate))]
        out = simulate(pacer, agent, 3.0, step, events)
    audio = [(now, o) for now, o in out if isinstance(o, AudioOut)]
    video = [(now, o) for now, o in out if isinstance(o, VideoOut)]
    # the voice comes back whole, `delay` after it was queued (less up to one push of the clock)
    assert np.concatenate([o.samples[:, 0] for _, o in audio]).tobytes() == voice.tobytes()
    assert delay - pacer.tick - step <= audio[0][0] - 0.5 <= delay + step
    for now, o in audio:  # each span leaves `delay` after its media time
        assert 0 <= now - (o.t + delay) < step
    # video at `fps` from the start, none late
    assert len(video) == pytest.approx((3.0 - delay) * fps, abs=2)
    assert pacer.stats["late_frames"] == 0 and pacer.stats["missing_frames"] == 0
    assert all(o.image.shape == (48, 48, 3) for _, o in video)
    # the frame on screen while a sample plays shows it: within half an output frame plus half
    # an agent frame (20 ms at 25 fps, 37 at 30, 28 at 60), and never more than 40 ms
    off = np.abs(offsets(out, step))
    assert off.max() <= 0.5 / fps + 0.02 + step + 1e-6
    assert off.max() <= 0.040


def test_markers_keep_their_place_and_interrupt_drops_the_voice(model, renderer):
    rate = 16000
    voice = bot_voice(rate)
    with Agent(renderer, model=model, hop=1) as agent:
        pacer = Pacer(agent, sample_rate=rate, size=(48, 48), delay=0.2)
        assert not pacer.mark("before anything")  # nothing to wait for: pass it on at once
        dropped: list = []

        def speak():
            assert pacer.mark("start") is False
            pacer.push_own(voice[: rate // 2], rate)
            assert pacer.mark("middle")
            pacer.push_own(voice[rate // 2 :], rate)
            assert pacer.mark("end", interruptible=False)
            assert pacer.mark("after end")

        events = [(0.1, speak), (0.9, lambda: dropped.extend(pacer.interrupt()))]
        out = simulate(pacer, agent, 1.5, events=events)
    markers = [(now, o.item) for now, o in out if isinstance(o, MarkerOut)]
    audio = [(now, o) for now, o in out if isinstance(o, AudioOut)]
    assert [m for _, m in markers] == ["middle"]
    # "middle" came out right after the first half second of voice
    order = [o for _, o in out if isinstance(o, (AudioOut, MarkerOut))]
    middle = next(i for i, o in enumerate(order) if isinstance(o, MarkerOut))
    assert sum(len(o.samples) for o in order[:middle]) == rate // 2
    # the interruption at 0.9 s: the voice stopped; the uninterruptible marker is handed back
    assert max(now for now, _ in audio) < 0.9
    assert dropped == ["end"]
    assert not pacer.pending


def test_the_partner_is_heard_and_other_rates_are_resampled(model, renderer):
    rate = 48000
    with Agent(renderer, model=model, hop=1) as agent:
        pacer = Pacer(agent, sample_rate=rate, size=(48, 48), delay=0.2)
        pushed = []
        agent_push = agent.push

        def spy(own=None, partner=None, sample_rate=16000, channels=None):
            pushed.append((own, partner, sample_rate))
            agent_push(own=own, partner=partner, sample_rate=sample_rate, channels=channels)

        agent.push = spy
        tone = (np.sin(np.arange(1600) / 3) * 8000).astype(np.int16)  # 0.1 s at 16 kHz
        pacer.start(0.0)
        for i in range(10):  # the partner's mic, every 20 ms, as bytes at 16 kHz
            pacer.push_partner(tone[i * 320 : (i + 1) * 320].tobytes(), 16000, now=i * 0.02)
            pacer.step(i * 0.02 + 0.019)
        pacer.push_own(bot_voice(24000), 24000)  # TTS at another rate than the output
        pacer.end_own()
        pacer.step(0.3)
    assert all(r == rate for _, _, r in pushed)
    partner = np.concatenate([p for _, p, _ in pushed])
    own = np.concatenate([o for o, _, _ in pushed])
    assert len(partner) == len(own)  # the same span of both, every time
    # the tone arrives 40 ms (the jitter buffer) late, at the timeline's rate
    start = np.argmax(np.abs(partner) > 0.05)
    assert start / rate == pytest.approx(0.04, abs=0.003)
    assert np.abs(partner).max() == pytest.approx(8000 / 32768, rel=0.05)
    # the voice queued at 24 kHz comes back at 48 kHz, all of it
    queued = sum(len(a.pcm) for a in pacer._own) + sum(
        len(e.audio) for e in pacer._line if e.audio is not None
    )
    assert abs(queued - 2 * len(bot_voice(24000))) <= 2
