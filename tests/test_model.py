"""Stage-2 networks: shapes, dtypes, determinism, guidance, presets, samplers."""

from __future__ import annotations

import pytest
import torch
from conftest import random_model, tiny_config

from infp_sdk.model import INFPModel, count_parameters, preset
from infp_sdk.model import sampling as S
from infp_sdk.runtime.generator import generate_motion


def make_batch(cfg, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, lat = cfg.window, cfg.encoder.lookahead
    mel_len = (cfg.audio_context + n + lat) * 4
    return {
        "mel_own": torch.randn(b, mel_len, 80, generator=g) - 6,
        "mel_partner": torch.randn(b, mel_len, 80, generator=g) - 6,
        "motion": torch.randn(b, n, cfg.latent_dim, generator=g),
        "prev": torch.randn(b, cfg.dit.prev_frames, cfg.latent_dim, generator=g),
        "reference": torch.randn(b, 30, cfg.latent_dim, generator=g),
        "speaking": torch.rand(b, n, generator=g),
    }


@pytest.mark.parametrize("name", ["realtime", "paper"])
def test_presets_build_and_run(name):
    cfg = preset(name)
    model = INFPModel(cfg)
    assert cfg.guider.bank_size == 64 and cfg.dit.depth == 4 and cfg.dit.prev_frames == 10
    if name == "paper":
        assert cfg.dit.width == 512 and cfg.encoder.width == 512 and cfg.steps == 20
        assert cfg.sampler == "ddim"
    assert count_parameters(model) > 0
    batch = make_batch(cfg, b=2)
    losses = model.loss(batch)
    assert losses["loss"].shape == () and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.dit.parameters() if p.requires_grad)


def test_shapes_and_dtypes():
    cfg = tiny_config()
    model = INFPModel(cfg).eval()
    b, n = 2, cfg.window
    batch = make_batch(cfg, b)
    style = model.style_vector(batch["reference"], b)
    assert style.shape == (b, cfg.style_dim)
    feature, speaking, _ = model.encode(batch["mel_own"], batch["mel_partner"], style)
    assert feature.shape == (b, cfg.audio_context + n, cfg.encoder.width)
    assert speaking.shape == (b, cfg.audio_context + n)
    assert speaking.min() >= 0 and speaking.max() <= 1 and feature.dtype == torch.float32
    out = model.sample_window(
        feature[:, -n:], batch["prev"], style, torch.randn(b, n, cfg.latent_dim)
    )
    assert out.shape == (b, n, cfg.latent_dim) and out.dtype == torch.float32
    # any window length works (distance-only positions): the runtime picks its hop
    out3 = model.sample_window(
        feature[:, -3:], batch["prev"], style, torch.randn(b, 3, cfg.latent_dim)
    )
    assert out3.shape == (b, 3, cfg.latent_dim)


def test_latent_size_comes_from_the_config():
    cfg = tiny_config().model_copy(update={"latent_dim": 16, "mouth": None})
    model = INFPModel(cfg)
    batch = make_batch(cfg)
    assert batch["motion"].shape[-1] == 16
    assert torch.isfinite(model.loss(batch)["loss"])


def test_generation_is_deterministic_for_a_seed():
    model = random_model()
    g = torch.Generator().manual_seed(1)
    own = torch.randn(16000, generator=g).numpy() * 0.1
    partner = torch.randn(16000, generator=g).numpy() * 0.1
    a = generate_motion(model, own, partner, seed=7)
    b = generate_motion(model, own, partner, seed=7)
    c = generate_motion(model, own, partner, seed=8)
    assert a.latents.shape == (25, 62) and a.speaking.shape == (25,)
    assert (a.latents == b.latents).all() and (a.speaking == b.speaking).all()
    assert not (a.latents == c.latents).all()


def test_cfg_scale_one_is_the_conditional_prediction():
    model = random_model()
    cfg = model.config
    b, n = 2, cfg.window
    batch = make_batch(cfg, b)
    style = model.style_vector(batch["reference"], b)
    feature = model.encode(batch["mel_own"], batch["mel_partner"], style)[0][:, -n:]
    prev = model.standardise(batch["prev"])
    x = torch.randn(b, n, cfg.latent_dim)
    t = torch.full((b,), 0.7)
    ones, zeros = torch.ones(b), torch.zeros(b)
    with torch.no_grad():
        cond = model.dit(x, t, feature, prev, style, ones, ones, ones)
        uncond = model.dit(x, t, feature, prev, style, zeros, ones, zeros)
        assert (cond - uncond).abs().max() > 1e-3  # the condition changes the prediction
        torch.testing.assert_close(S.guided(cond, uncond, 1.0), cond)
        x0_plain = model.denoiser(feature, prev, style, ones, 1.0)(x, 0.7)
        x0_guided = model.denoiser(feature, prev, style, ones, 1.0 + 1e-12)(x, 0.7)
    torch.testing.assert_close(x0_plain, S.x0_from_v(x, cond, t))
    torch.testing.assert_close(x0_guided, x0_plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sampler", sorted(S.SAMPLERS))
def test_samplers_recover_data_from_an_exact_denoiser(sampler):
    x0 = torch.randn(2, 5, 8)
    out = S.SAMPLERS[sampler](lambda x, t: x0, torch.randn(2, 5, 8), 4)
    torch.testing.assert_close(out, x0)


@pytest.mark.parametrize("sampler", sorted(S.SAMPLERS))
def test_samplers_match_a_gaussian_target(sampler):
    # data ~ N(mu, s^2) has a closed-form denoiser; 20 steps must reproduce its moments
    mu, s = 0.5, 0.3

    def denoise(x, t):
        a, sg = S.alpha_sigma(t)
        return mu + a * s * s * (x - a * mu) / (a * a * s * s + sg * sg)

    out = S.SAMPLERS[sampler](
        denoise, torch.randn(20000, 1, generator=torch.Generator().manual_seed(0)), 20
    )
    assert out.mean().item() == pytest.approx(mu, abs=0.01)
    assert out.std().item() == pytest.approx(s, abs=0.04)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="at least 1 step"):
        S.time_grid(0)
    model = INFPModel(tiny_config())
    with pytest.raises(ValueError, match="unknown sampler"):
        n = model.config.window
        model.sample_window(
            torch.zeros(1, n, 64), torch.zeros(1, 10, 62), model.style_vector(None, 1),
            torch.zeros(1, n, 62), sampler="euler",
        )  # fmt: skip


def test_the_articulation_head_sets_the_mouth_channels_and_is_trained():
    from infp_sdk.model.config import ARTICULATION_CHANNELS
    from infp_sdk.motion import RIG_BLENDSHAPES, blendshape_index

    model = random_model()
    cfg = model.config
    assert cfg.mouth is not None and cfg.mouth.channels == ARTICULATION_CHANNELS
    channels = [RIG_BLENDSHAPES.start + blendshape_index(n) for n in ARTICULATION_CHANNELS]
    batch = make_batch(cfg)
    losses = model.loss(batch)
    assert losses["mouth"] > 0
    # the regression loss reaches the encoder: articulation is learned from the audio
    losses["mouth"].backward()
    assert model.encoder.proj.weight.grad.abs().sum() > 0
    b, n = 3, 4
    style = model.style_vector(None, b)
    with torch.no_grad():
        feature, _, mouth = model.encode(batch["mel_own"], batch["mel_partner"], style)
        noise = torch.randn(b, n, cfg.latent_dim)
        plain = model.sample_window(feature[:, -n:], batch["prev"], style, noise)
        spoken = model.sample_window(
            feature[:, -n:], batch["prev"], style, noise, mouth=mouth[:, -n:]
        )
    assert mouth.shape == (b, feature.shape[1], len(channels))
    expected = mouth[:, -n:] * model.motion_std[channels] + model.motion_mean[channels]
    assert torch.allclose(spoken[..., channels], expected, atol=1e-5)
    others = [i for i in range(cfg.latent_dim) if i not in channels]
    assert torch.equal(spoken[..., others], plain[..., others])


def test_old_configs_load_and_a_learned_motion_space_is_refused():
    from infp_sdk.model import INFPConfig

    old = tiny_config().model_dump()
    old.pop("mouth")
    old["motion_space"] = "rig"
    assert INFPConfig.model_validate(old).mouth is None
    old["motion_space"] = "learned"
    with pytest.raises(ValueError, match="learned motion space"):
        INFPConfig.model_validate(old)
    with pytest.raises(ValueError, match="mouth=None"):
        INFPConfig.model_validate({**tiny_config().model_dump(), "latent_dim": 16})


def test_calibration_restores_the_spread_a_regression_loses():
    from infp_sdk.model.config import MouthConfig
    from infp_sdk.model.mouth import MouthHead, calibrate

    head = MouthHead(8, MouthConfig(channels=("jawOpen", "mouthFunnel")))
    g = torch.Generator().manual_seed(0)
    truth = [torch.randn(50, 2, generator=g) for _ in range(3)]
    # a regression that caught the shape but moves 0.6x (jaw) and 1.5x (funnel) as much
    shrunk = [0.2 + t * torch.tensor([0.6, 1.5]) for t in truth]
    out = calibrate(head, shrunk, truth)
    assert out["gain"][0] == pytest.approx(1 / 0.6, rel=1e-4)
    assert out["gain"][1] == 1.0  # never damped
    own = torch.randn(4, 5, 8, generator=g)
    raw, calibrated = head.regress(own), head(own)
    centre = head.centre
    assert torch.allclose(calibrated - centre, (raw - centre) * head.gain, atol=1e-6)
    with pytest.raises(ValueError, match="held-out frames"):
        calibrate(head, [torch.zeros(1, 2)], [torch.zeros(1, 2)])
