"""Many agents on one Engine: batched model calls, the same frames as alone, join and leave."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import random_model

from infp_sdk import Engine
from infp_sdk.runtime.agent import AgentClosedError
from infp_sdk.runtime.generator import generate_motion


@pytest.fixture(scope="module")
def model():
    return random_model()


def conversation(seed: int, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    env = (np.sin(np.arange(n) / (1000 + 300 * seed)) > 0).astype(np.float32)
    own = (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
    partner = (rng.standard_normal(n) * 0.1 * (1 - env)).astype(np.float32)
    return own, partner


def latents(frames):
    return np.stack([f.latent for f in frames])


def test_agents_on_one_engine_get_their_own_frames_in_batched_calls(model):
    chunk = 320  # 20 ms, pushed in lockstep as live audio would arrive
    convs = [conversation(k) for k in range(3)]
    with Engine(model=model) as engine:
        agents = [engine.agent(seed=10 + k, hop=2) for k in range(3)]
        n = len(convs[0][0])
        for i in range(0, n, chunk):
            for agent, (own, partner) in zip(agents, convs, strict=True):
                agent.push(own=own[i : i + chunk], partner=partner[i : i + chunk])
        for agent in agents:
            agent.flush()
        got = [latents(a.pull()) for a in agents]
        hops, batches = engine.hops, engine.batches
    for k, (own, partner) in enumerate(convs):
        alone = generate_motion(model, own, partner, seed=10 + k, hop=2).latents
        assert got[k].shape == alone.shape
        np.testing.assert_allclose(got[k], alone, atol=1e-4)
    # different conversations and seeds really gave different motion
    assert np.abs(got[0] - got[1]).mean() > 1e-2
    assert batches < hops, "hops of different agents should share model calls"


def test_agents_join_and_leave_while_others_stream(model):
    own, partner = conversation(5, seconds=3.0)
    half = len(own) // 2
    with Engine(model=model) as engine:
        staying = engine.agent(seed=1)
        leaving = engine.agent(seed=2)
        staying.push(own=own[:half], partner=partner[:half])
        leaving.push(own=own[:half], partner=partner[:half])
        assert leaving.wait_idle(timeout=60)
        produced = leaving.pull()
        leaving.close()
        with pytest.raises(AgentClosedError):
            leaving.push(own=own[half:])
        joining = engine.agent(seed=3)
        assert len(engine.agents) == 2
        joining.push(own=own, partner=partner)
        staying.push(own=own[half:], partner=partner[half:])
        staying.flush()
        joining.flush()
        stayed, joined = latents(staying.pull()), latents(joining.pull())
    assert len(produced) > 0
    np.testing.assert_allclose(
        latents(produced), generate_motion(model, own[:half], partner[:half], seed=2).latents[
            : len(produced)
        ], atol=1e-4,
    )  # fmt: skip
    np.testing.assert_allclose(stayed, generate_motion(model, own, partner, seed=1).latents,
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(joined, generate_motion(model, own, partner, seed=3).latents,
                               atol=1e-4)  # fmt: skip


def test_agents_with_different_hops_share_an_engine(model):
    own, partner = conversation(7)
    with Engine(model=model) as engine:
        agents = [engine.agent(seed=4, hop=h) for h in (1, 3, 10)]
        threads = [
            threading.Thread(target=a.push, kwargs={"own": own, "partner": partner}) for a in agents
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a in agents:
            a.flush()
        results = [latents(a.pull()) for a in agents]
    for hop, got in zip((1, 3, 10), results, strict=True):
        np.testing.assert_allclose(
            got, generate_motion(model, own, partner, seed=4, hop=hop).latents, atol=1e-4
        )


def test_closing_the_engine_closes_its_agents_and_keeps_their_frames(model):
    own, partner = conversation(2)
    engine = Engine(model=model)
    agent = engine.agent(seed=0)
    agent.push(own=own, partner=partner)
    agent.flush()
    engine.close()
    assert len(agent.pull()) == len(own) // 640
    with pytest.raises(AgentClosedError):
        agent.push(own=own)
    with pytest.raises(RuntimeError, match="Engine is closed"):
        engine.agent()


def test_the_model_config_sets_the_default_hop():
    from infp_sdk.model.infp import INFPModel

    base = random_model()
    with Engine(model=base) as engine:
        assert engine.agent().hop == base.config.window  # no hop in the config: the window
    config = base.config.model_copy(update={"hop": 2})
    tuned = INFPModel(config)
    tuned.load_state_dict(base.state_dict())
    with Engine(model=tuned) as engine:
        assert engine.agent().hop == 2 and engine.agent(hop=5).hop == 5
