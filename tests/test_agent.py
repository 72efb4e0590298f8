"""The streaming Agent: chunking, threads, clocks, control, bad input."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import torch
from conftest import random_model

from infp_sdk.audio import AudioFormatError, resample
from infp_sdk.motion import FPS
from infp_sdk.runtime.agent import Agent, AgentClosedError
from infp_sdk.runtime.generator import generate_motion


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    n = 16000 * 3 + 300
    env = (np.sin(np.arange(n) / 1600) > 0).astype(np.float32)
    own = (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
    partner = (rng.standard_normal(n) * 0.1 * (1 - env)).astype(np.float32)
    return own, partner


def push_in_chunks(agent, own, partner, chunk):
    for i in range(0, len(own), chunk):
        agent.push(own=own[i : i + chunk], partner=partner[i : i + chunk])


def latents(frames):
    return np.stack([f.latent for f in frames])


@pytest.mark.parametrize("chunk_ms", [10, 37, 1000])
def test_chunk_size_does_not_change_the_frames(model, audio, chunk_ms):
    own, partner = audio
    reference = generate_motion(model, own, partner, seed=5)
    with Agent(model=model, seed=5) as agent:
        push_in_chunks(agent, own, partner, 16 * chunk_ms)
        agent.flush()
        frames = agent.pull()
    assert [f.index for f in frames] == list(range(len(reference.latents)))
    np.testing.assert_allclose(latents(frames), reference.latents, atol=1e-5)
    np.testing.assert_allclose([f.speaking for f in frames], reference.speaking, atol=1e-5)


def test_media_clock_and_frame_fields(model, audio):
    own, partner = audio
    with Agent(model=model) as agent:
        agent.push(own=own, partner=partner)
        agent.flush()
        frames = agent.pull()
    assert len(frames) == len(own) // 640
    for f in frames[:30]:
        assert f.t == pytest.approx((f.index + 0.5) / FPS)
        assert f.blendshapes.shape == (52,) and f.head.shape == (6,) and f.gaze.shape == (4,)
        assert 0.0 <= f.speaking <= 1.0 and f.image is None


def test_push_from_one_thread_while_another_pulls(model, audio):
    own, partner = audio
    received = []
    with Agent(model=model, seed=1) as agent:

        def consume():
            received.extend(agent.frames(timeout=10))

        consumer = threading.Thread(target=consume)
        consumer.start()
        push_in_chunks(agent, own, partner, 320)  # 20 ms, as an audio callback would
        agent.flush()
        agent.close()
        consumer.join(timeout=30)
    assert [f.index for f in received] == list(range(len(own) // 640))
    np.testing.assert_allclose(
        latents(received), generate_motion(model, own, partner, seed=1).latents, atol=1e-5
    )


def test_async_iterator(model, audio):
    own, partner = audio

    async def main():
        agent = Agent(model=model)
        agent.push(own=own[:16000], partner=partner[:16000])
        agent.flush()
        got = []
        async for frame in agent:
            got.append(frame)
            if len(got) == 25:
                break
        agent.close()
        return got

    assert [f.index for f in asyncio.run(main())] == list(range(25))


def test_missing_channel_is_silence(model, audio):
    own, _ = audio
    with Agent(model=model) as a, Agent(model=model) as b:
        a.push(own=own[:16000])
        b.push(own=own[:16000], partner=np.zeros(16000, np.float32))
        a.flush()
        b.flush()
        np.testing.assert_allclose(latents(a.pull()), latents(b.pull()), atol=1e-6)


def test_reset_restarts_the_clock(model, audio):
    own, partner = audio
    with Agent(model=model, seed=2) as agent:
        agent.push(own=own[:16000], partner=partner[:16000])
        agent.flush()
        first = agent.pull()
        agent.reset()
        agent.push(own=own[:16000], partner=partner[:16000])
        agent.flush()
        again = agent.pull()
    assert again[0].index == 0 and again[0].t == pytest.approx(0.02)
    np.testing.assert_allclose(latents(first), latents(again), atol=1e-6)


def test_interrupt_silences_own_audio_not_yet_generated(model, audio):
    own, partner = audio
    with Agent(model=model, seed=3) as agent:
        agent.push(own=own[:16000], partner=partner[:16000])
        agent.pull()  # let the worker run
        agent.push(own=own[16000:24000], partner=partner[16000:24000])
        # wait until the worker has consumed everything pushed
        assert agent.wait_idle(timeout=30)
        cut = agent.frames_generated  # first frame not generated yet
        agent.interrupt()
        agent.push(partner=partner[24000:32000])
        agent.flush()
        frames = agent.pull()
    silenced = own[:32000].copy()
    silenced[cut * 640 :] = 0
    expected = generate_motion(model, silenced, partner[:32000], seed=3).latents[cut:]
    uninterrupted = generate_motion(model, own[:32000], partner[:32000], seed=3).latents[cut:]
    got = latents(frames)[-len(expected) :]
    # the mel frames straddling the cut differ slightly (interrupt silences features, not samples)
    error = np.abs(got - expected).mean()
    assert error < 0.2 * np.abs(uninterrupted - expected).mean()


def test_bad_chunk_is_rejected_and_loses_nothing(model, audio):
    own, partner = audio
    with Agent(model=model, seed=4) as agent:
        agent.push(own=own[:8000], partner=partner[:8000])
        bad = own[8000:9000].copy()
        bad[10] = np.nan
        with pytest.raises(AudioFormatError, match="NaN"):
            agent.push(own=bad)
        with pytest.raises(AudioFormatError):
            agent.push(own=np.zeros(100, np.complex64))
        with pytest.raises(AudioFormatError):
            agent.push(own=np.zeros(100, np.float32), sample_rate=100)
        agent.push(own=np.zeros(0, np.float32))  # empty chunks are fine
        agent.push(own=own[8000:16000], partner=partner[8000:16000])
        agent.flush()
        frames = agent.pull()
    np.testing.assert_allclose(
        latents(frames), generate_motion(model, own[:16000], partner[:16000], seed=4).latents,
        atol=1e-5,
    )  # fmt: skip


def test_onnxruntime_backend_gives_the_same_frames(model, audio):
    pytest.importorskip("onnxruntime")
    own, partner = audio
    with Agent(model=model, backend="onnxruntime", seed=6) as agent:
        push_in_chunks(agent, own, partner, 592)
        agent.flush()
        frames = agent.pull()
    reference = generate_motion(model, own, partner, seed=6).latents
    np.testing.assert_allclose(latents(frames), reference, atol=1e-4)


def test_int16_and_other_rates(model):
    t = np.arange(48000) / 48000
    pcm = (np.sin(2 * np.pi * 200 * t) * 8000).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1).reshape(-1)  # interleaved
    with Agent(model=model) as agent:
        agent.push(own=stereo, sample_rate=48000, channels=2)
        agent.flush()
        assert len(agent.pull()) == 25


@pytest.mark.parametrize("chunk_ms", [10, 37, 1000])
def test_chunk_size_does_not_change_the_frames_at_48khz(model, audio, chunk_ms):
    own, partner = audio
    own48, partner48 = (resample(x, 16000, 48000) for x in (own, partner))
    reference = generate_motion(
        model, resample(own48, 48000, 16000), resample(partner48, 48000, 16000), seed=6
    )
    with Agent(model=model, seed=6) as agent:
        chunk = 48 * chunk_ms
        for i in range(0, len(own48), chunk):
            agent.push(own=own48[i : i + chunk], partner=partner48[i : i + chunk],
                       sample_rate=48000)  # fmt: skip
        agent.flush()
        frames = agent.pull()
    np.testing.assert_allclose(latents(frames), reference.latents, atol=1e-4)


def test_a_sample_rate_change_is_an_error_and_the_stream_goes_on(model, audio):
    own, partner = audio
    own48 = resample(own[:16000], 16000, 48000)
    with Agent(model=model, seed=2) as agent:
        agent.push(own=own48[:24000], sample_rate=48000)
        with pytest.raises(AudioFormatError, match="changed sample rate"):
            agent.push(own=own[8000:16000], sample_rate=16000)
        agent.push(own=own48[24000:], sample_rate=48000)
        agent.flush()
        assert len(agent.pull()) == 25
        agent.reset()  # a new stream may use another rate
        agent.push(own=own[:8000], sample_rate=16000)
        agent.flush()
        assert len(agent.pull()) == 12


def test_setup_errors_are_clear(model):
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU backend is available"):
            Agent(model=model, device="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        Agent(model=model, backend="tensorrt")
    agent = Agent(model=model)
    with pytest.raises(ValueError, match="style reference"):
        agent.set_style(np.zeros((10, 3)))
    agent.set_style(np.zeros((40, 62), np.float32))
    agent.close()
    with pytest.raises(AgentClosedError):
        agent.push(own=np.zeros(160, np.float32))
