"""A failure on a background thread reaches the failed agent's caller, and only that agent.

Failures are injected at each stage of an agent's work (appending audio, generating, delivering,
rendering, the batch's model call, the engine itself) into real Engine and Agent objects.
"""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from conftest import random_model, tiny_config

from infp_sdk import Agent, Engine
from infp_sdk.model import INFPModel
from infp_sdk.runtime.agent import AgentFailedError
from infp_sdk.runtime.engine import APPENDING, DELIVERING, GENERATING, RENDERING, SERVING
from infp_sdk.runtime.generator import MotionStream, generate_motion, hop_batches


class Injected(RuntimeError):
    """The failure the tests inject."""


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    n = 16000 * 2
    env = (np.sin(np.arange(n) / 1600) > 0).astype(np.float32)
    own = (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
    partner = (rng.standard_normal(n) * 0.1 * (1 - env)).astype(np.float32)
    return own, partner


def failing_after(calls: int, original=None):
    """A stand-in for ``original`` that works ``calls`` times, then raises Injected."""
    counter = itertools.count()

    def stand_in(*args, **kwargs):
        if next(counter) >= calls:
            raise Injected(f"injected after {calls} calls")
        return original(*args, **kwargs)

    return stand_in


def latents(frames):
    return np.stack([f.latent for f in frames])


def assert_failed(excinfo, agent: Agent, stage: str, recoverable: bool = True) -> None:
    error = excinfo.value
    assert isinstance(error.__cause__, Injected), "the original exception is chained"
    assert error.stage == stage and error.agent == agent.name
    assert agent.name in str(error) and stage in str(error)
    assert ("reset()" in str(error)) == recoverable


def test_a_delivery_failure_fails_that_agent_only_and_reset_recovers(model, audio):
    own, partner = audio
    with Engine(model=model) as engine:
        good = engine.agent(seed=1, hop=2, name="good")
        bad = engine.agent(seed=2, hop=2, name="bad")
        bad._frames_from_rows = failing_after(3, bad._frames_from_rows)
        for agent in (good, bad):
            agent.push(own=own, partner=partner)
        good.flush()
        with pytest.raises(AgentFailedError) as excinfo:
            bad.flush()
        assert_failed(excinfo, bad, DELIVERING)
        assert good.failure is None and str(bad.failure) == str(excinfo.value)
        # the frames finished before the failure come out first, in order; then the error
        before = bad.pull()
        assert [f.index for f in before] == list(range(6))
        for call in (bad.pull, bad.wait_idle, bad.flush, lambda: list(bad)):
            with pytest.raises(AgentFailedError) as excinfo:
                call()
            assert_failed(excinfo, bad, DELIVERING)
        with pytest.raises(AgentFailedError):
            bad.push(own=own[:1600])
        # the other agent on the engine carried on, unaffected
        reference = generate_motion(model, own, partner, seed=1, hop=2).latents
        np.testing.assert_allclose(latents(good.pull()), reference, atol=1e-4)
        # reset() starts a new stream on the failed agent
        del bad._frames_from_rows
        bad.reset()
        bad.push(own=own, partner=partner)
        bad.flush()
        again = bad.pull()
        assert bad.failure is None
    reference = generate_motion(model, own, partner, seed=2, hop=2).latents
    np.testing.assert_allclose(latents(again), reference, atol=1e-4)
    np.testing.assert_allclose(latents(before), reference[:6], atol=1e-4)


def test_an_append_failure_fails_that_agent_only(model, audio):
    own, partner = audio
    with Engine(model=model) as engine:
        good, bad = engine.agent(seed=1), engine.agent(seed=2)
        bad._stream.append = failing_after(0)
        for agent in (good, bad):
            agent.push(own=own, partner=partner)
        with pytest.raises(AgentFailedError) as excinfo:
            bad.wait_idle(timeout=60)
        assert_failed(excinfo, bad, APPENDING)
        good.flush()
        np.testing.assert_allclose(
            latents(good.pull()), generate_motion(model, own, partner, seed=1).latents, atol=1e-4
        )


def test_a_generation_failure_of_one_stream_spares_its_batch_mates(model, audio):
    own, partner = audio
    with Engine(model=model) as engine:
        good, bad = engine.agent(seed=1, hop=5), engine.agent(seed=2, hop=5)
        bad._stream.next_hop = failing_after(2, bad._stream.next_hop)
        with engine.lock:  # both queued before the worker looks: their hops share batches
            for agent in (good, bad):
                agent.push(own=own, partner=partner)
        good.flush()
        with pytest.raises(AgentFailedError) as excinfo:
            for _ in bad.frames(timeout=60):
                pass
        assert_failed(excinfo, bad, GENERATING)
        np.testing.assert_allclose(
            latents(good.pull()),
            generate_motion(model, own, partner, seed=1, hop=5).latents,
            atol=1e-4,
        )


def test_a_failed_model_call_fails_its_batch_and_the_engine_serves_on(model, audio, monkeypatch):
    own, partner = audio
    with Engine(model=model) as engine:
        first, second = engine.agent(seed=1, hop=5), engine.agent(seed=2, hop=5)
        monkeypatch.setattr(engine.model, "run_hops", failing_after(0))
        with engine.lock:  # queued together, so their first hops are one batch
            for agent in (first, second):
                agent.push(own=own, partner=partner)
        for agent in (first, second):
            with pytest.raises(AgentFailedError) as excinfo:
                agent.flush(timeout=60)
            assert_failed(excinfo, agent, GENERATING)
        monkeypatch.undo()
        # the worker is alive: a new agent is served, and a reset one serves a new stream
        late = engine.agent(seed=3)
        first.reset()
        for agent in (late, first):
            agent.push(own=own, partner=partner)
            agent.flush(timeout=60)
        np.testing.assert_allclose(
            latents(late.pull()), generate_motion(model, own, partner, seed=3).latents, atol=1e-4
        )
        np.testing.assert_allclose(
            latents(first.pull()),
            generate_motion(model, own, partner, seed=1, hop=5).latents,
            atol=1e-4,
        )


class FlakyRenderer:
    """Renders a blank picture, and raises at frame ``fail_at``."""

    def __init__(self, fail_at: int):
        self.fail_at = fail_at

    def render(self, frame):
        if frame.index == self.fail_at:
            raise Injected(f"cannot render frame {frame.index}")
        return np.zeros((8, 8, 3), np.uint8)


def test_a_render_failure_is_raised_after_the_frames_rendered_before_it(model, audio):
    own, partner = audio
    with Engine(model=model) as engine:
        painter = engine.agent(FlakyRenderer(fail_at=7), seed=1, name="painter")
        other = engine.agent(FlakyRenderer(fail_at=10_000), seed=1)
        for agent in (painter, other):
            agent.push(own=own, partner=partner)
        got = []
        with pytest.raises(AgentFailedError) as excinfo:
            for frame in painter:
                got.append(frame)
        assert_failed(excinfo, painter, RENDERING)
        assert [f.index for f in got] == list(range(7))
        assert all(f.image is not None for f in got)
        other.flush()
        assert len(other.pull()) == len(own) // 640


def test_the_async_iterator_raises_the_failure(model, audio):
    own, partner = audio

    async def main(agent):
        return [frame async for frame in agent]

    with Agent(FlakyRenderer(fail_at=3), model=model) as agent:
        agent.push(own=own, partner=partner)
        with pytest.raises(AgentFailedError) as excinfo:
            asyncio.run(main(agent))
        assert_failed(excinfo, agent, RENDERING)


def test_a_broken_engine_fails_every_agent_and_says_so(model, audio, monkeypatch):
    own, partner = audio
    engine = Engine(model=model)
    agents = [engine.agent(seed=k) for k in range(2)]
    monkeypatch.setattr(engine, "_round", failing_after(0))  # a bug in the engine itself
    with engine.lock:  # both queued before the worker breaks
        for agent in agents:
            agent.push(own=own, partner=partner)
    for agent in agents:
        with pytest.raises(AgentFailedError) as excinfo:
            agent.flush(timeout=60)
        assert_failed(excinfo, agent, SERVING, recoverable=False)
        with pytest.raises(AgentFailedError):
            agent.push(own=own)
        agent.reset()  # cannot help: the engine is gone, and the agent says so still
        with pytest.raises(AgentFailedError, match="create a new Engine"):
            agent.pull()
    with pytest.raises(RuntimeError, match="Engine is closed"):
        engine.agent()


def test_the_hop_loop_drops_a_stream_it_was_not_moved_on(model, audio):
    own, partner = audio
    stream = MotionStream(model)
    stream.append(own, partner)
    batches = list(hop_batches([stream], flushing=[stream]))  # the caller runs nothing
    assert batches == [([stream], None)], "a stream that does not advance must not loop"


def test_a_model_outside_the_rig_motion_space_is_refused_at_construction():
    model = INFPModel(tiny_config().model_copy(update={"latent_dim": 8}))
    with pytest.raises(ValueError, match=r"8-value motion latents.*rig \(62 values"):
        Engine(model=model)
    with pytest.raises(ValueError, match="latent_dim=62"):
        Agent(model=model)
