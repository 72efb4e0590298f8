"""Tests for the evaluation suite: each metric on signals with known answers, then end to end."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from conftest import random_model

from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME
from infp_sdk.data import espeak
from infp_sdk.data.dataset import MotionTrack, write_session
from infp_sdk.eval import metrics as M
from infp_sdk.eval import report
from infp_sdk.model import save_model
from infp_sdk.motion import FPS, RIG_DIM, blendshape_index, rig_to_latent
from infp_sdk.runtime import generator

scipy_signal = pytest.importorskip("scipy.signal")
scipy_linalg = pytest.importorskip("scipy.linalg")

JAW = blendshape_index("jawOpen")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------
# Signal helpers
# ----------------------------------------------------------------------------------------------


def test_frame_loudness_is_the_frame_rms_in_db():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 500 * t)  # a whole number of periods per 40 ms frame
    audio = np.concatenate([tone, np.zeros(SAMPLE_RATE)]).astype(np.float32)
    db = M.frame_loudness_db(audio)
    assert db.shape == (2 * FPS,)
    np.testing.assert_allclose(db[:FPS], 10 * np.log10(0.5**2 / 2), atol=1e-3)
    assert np.all(db[FPS:] == -80.0)
    # asking for more frames than the audio has pads with silence
    assert M.frame_loudness_db(audio[:SAMPLES_PER_MOTION_FRAME], 3)[1:].tolist() == [-80.0] * 2


def test_local_maxima_and_prominences_match_scipy():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=400))
    peaks = M.local_maxima(x)
    np.testing.assert_array_equal(peaks, scipy_signal.find_peaks(x)[0])
    for wlen in (None, 9, 39):
        np.testing.assert_allclose(
            M.peak_prominences(x, peaks, wlen), scipy_signal.peak_prominences(x, peaks, wlen)[0]
        )
    plateau = np.array([0, 1, 2, 2, 2, 1, 0, 3, 3, 4.0, 0])
    np.testing.assert_array_equal(M.local_maxima(plateau), scipy_signal.find_peaks(plateau)[0])


# ----------------------------------------------------------------------------------------------
# Turn-taking and mouth
# ----------------------------------------------------------------------------------------------


def test_speaking_accuracy_on_a_hand_made_case():
    own = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], np.float32)
    partner = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0], np.float32)
    # own-only frames 0-3: right, right, right, wrong; partner-only 4-7: right x3, wrong;
    # frame 8 (both talk) and frame 9 (neither) are left out whatever is predicted there
    speaking = np.array([0.9, 0.8, 0.6, 0.2, 0.1, 0.3, 0.5, 0.7, 0.0, 1.0], np.float32)
    out = M.speaking_accuracy(speaking, own, partner)
    assert out["frames"] == 8
    assert out["accuracy"] == pytest.approx(6 / 8)
    assert out["balanced_accuracy"] == pytest.approx(0.75)
    # pooling over examples; a constant output scores 0.5 balanced whatever the class shares
    out = M.speaking_accuracy([np.ones(10), np.ones(4)], [own, np.ones(4)], [partner, np.zeros(4)])
    assert out["frames"] == 12
    assert out["accuracy"] == pytest.approx(8 / 12)
    assert out["balanced_accuracy"] == pytest.approx(0.5)
    assert math.isnan(M.speaking_accuracy(speaking, own * 0, partner * 0)["accuracy"])


def test_lip_activity_ratio_is_own_std_over_partner_std():
    # own talks in frames 0-39, the partner in 40-79, both in 80-99 (left out: the jaw is wild)
    own = np.r_[np.ones(40), np.zeros(40), np.ones(20)]
    partner = np.r_[np.zeros(40), np.ones(40), np.ones(20)]
    jaw = np.r_[np.tile([0.0, 0.4], 20), 0.3 + np.tile([-0.01, 0.01], 20), np.linspace(0, 1, 20)]
    out = M.lip_activity(jaw, own, partner)
    assert out["own_std"] == pytest.approx(0.2)
    assert out["partner_std"] == pytest.approx(0.01)
    assert out["ratio"] == pytest.approx(20.0)
    # a per-example offset of the resting jaw is not activity
    other = M.lip_activity([jaw, jaw + 0.5], [own, own], [partner, partner])
    assert other["partner_std"] == pytest.approx(0.01)
    assert M.lip_activity(jaw * own, own, partner)["ratio"] == math.inf
    assert math.isnan(M.lip_activity(np.zeros(100), own, partner)["ratio"])
    assert math.isnan(M.lip_activity(jaw, own, np.zeros(100))["ratio"])


def _speech_like_loudness(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return M.gaussian_smooth(rng.normal(size=frames), 1.5) * 10 - 40


def test_lip_sync_finds_r_and_lag_of_a_copied_and_a_shifted_jaw():
    loud = _speech_like_loudness(500, 0)
    vad = np.ones(500)
    vad[200:260] = 0
    jaw = 0.01 * (loud + 60)  # an affine copy of the loudness
    out = M.lip_sync(jaw, loud, vad, teacher_jaw=jaw)
    assert out["loudness_r"] == pytest.approx(1.0, abs=1e-9) and out["loudness_lag"] == 0
    assert out["teacher_r"] == pytest.approx(1.0, abs=1e-9) and out["teacher_lag"] == 0
    late = np.r_[np.full(2, jaw[0]), jaw[:-2]]  # the jaw follows the voice by 2 frames
    out = M.lip_sync(late, loud, vad, teacher_jaw=jaw)
    assert out["loudness_lag"] == 2 and out["loudness_r"] > 0.999
    assert out["teacher_lag"] == 2 and out["teacher_r"] > 0.999
    early = np.r_[jaw[3:], np.full(3, jaw[-1])]
    assert M.lagged_correlation(early, loud, vad > 0.5)[1] == -3
    by_lag = M.correlation_by_lag(late, loud, vad > 0.5, max_lag=4)
    assert sorted(by_lag) == list(range(-4, 5)) and max(by_lag.values()) == by_lag[2]
    # unrelated noise correlates weakly; a still jaw is undefined, not zero
    noise = np.random.default_rng(1).normal(size=500)
    assert abs(M.lip_sync(noise, loud, vad)["loudness_r"]) < 0.2
    still = M.lip_sync(np.zeros(500), loud, vad)
    assert math.isnan(still["loudness_r"]) and math.isnan(still["loudness_lag"])


def test_lip_sync_only_reads_own_speech_and_averages_examples():
    loud = _speech_like_loudness(300, 2)
    jaw = 0.01 * (loud + 60)
    vad = np.r_[np.ones(150), np.zeros(150)]
    jaw[150:] = np.random.default_rng(3).normal(size=150)  # garbage while not talking
    assert M.lip_sync(jaw, loud, vad)["loudness_r"] == pytest.approx(1.0, abs=1e-6)
    # a second example that is perfectly anti-correlated, with 3x the frames, pulls r to -0.5
    jaws, louds, vads = [jaw, -np.tile(jaw, 3)], [loud, np.tile(loud, 3)], [vad, np.tile(vad, 3)]
    r, lag = M.lagged_correlation(jaws, louds, vads, max_lag=0)
    assert lag == 0 and r == pytest.approx((150 - 450) / 600, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# Nods
# ----------------------------------------------------------------------------------------------


def _bump(frames: int, onset: float, duration: float, amp: float) -> np.ndarray:
    u = ((np.arange(frames) + 0.5) / FPS - onset) / duration
    return np.where((u > 0) & (u < 1), amp * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)


def test_inside_turns_drops_turn_edges_short_turns_and_overlap():
    own = np.zeros(100)
    own[10:60] = 1  # a 2 s turn with a 3-frame breath that stays one turn
    own[30:33] = 0
    own[80:90] = 1  # too short to have an inside
    partner = np.zeros(100)
    partner[40:42] = 1
    mask = M.inside_turns(own, partner, margin=8, bridge=5)
    expected = np.zeros(100, bool)
    expected[18:52] = True
    expected[40:42] = False
    assert np.array_equal(mask, expected)


def _mouth(jaw: np.ndarray, close: np.ndarray | None = None) -> np.ndarray:
    bs = np.zeros((len(jaw), 52), np.float32)
    bs[:, JAW] = jaw
    if close is not None:
        bs[:, blendshape_index("mouthClose")] = close
    return bs


def test_articulation_scores_a_copied_a_flat_and_a_late_mouth():
    rng = np.random.default_rng(0)
    teacher_jaw = np.clip(M.gaussian_smooth(rng.random(200), 1.5), 0, 1)
    rms = teacher_jaw + 0.01 * rng.standard_normal(200)
    mask = np.ones(200, bool)
    teacher = _mouth(teacher_jaw)
    same = M.articulation(teacher, teacher, rms, mask)
    assert same["teacher_r_jawOpen"] == pytest.approx(1.0)
    assert same["jaw_spread_ratio"] == pytest.approx(1.0)
    assert same["jaw_rms_r"] > 0.95 and same["jaw_rms_lag"] == 0
    half = M.articulation(_mouth(0.2 + 0.5 * teacher_jaw), teacher, rms, mask)
    assert half["teacher_r_jawOpen"] == pytest.approx(1.0)
    assert half["jaw_spread_ratio"] == pytest.approx(0.5)
    late = M.articulation(_mouth(np.roll(teacher_jaw, 2)), teacher, rms, mask)
    assert late["jaw_rms_lag"] == 2 and late["teacher_r_jawOpen"] < 0.9
    flat = M.articulation(_mouth(np.full(200, 0.3)), teacher, rms, mask)
    assert math.isnan(flat["teacher_r_jawOpen"]) and flat["jaw_spread_ratio"] == 0.0


def test_bilabial_closure_and_rounding_are_read_at_the_phonemes():
    frames = 100
    jaw = np.full(frames, 0.4, np.float32)
    teacher = _mouth(jaw.copy())
    teacher[48:53, JAW] = 0.02  # the teacher closes the lips for the /m/ at 2.0-2.1 s
    teacher[70:75, blendshape_index("mouthPucker")] = 0.6  # and rounds for the /u/
    phonemes = [(2.0, 2.1, "PP"), (2.8, 2.96, "U+@"), (3.5, 3.6, "aa")]
    mask = np.ones(frames, bool)
    rms = np.linspace(0, 1, frames)
    open_mouth = M.articulation(_mouth(jaw), teacher, rms, mask, [phonemes])
    assert open_mouth["bilabial_closure"] == 0.0 and open_mouth["bilabial_closure_teacher"] == 1.0
    assert open_mouth["bilabial_closure_count"] == 1 and open_mouth["rounding_ratio"] == 0.0
    copied = M.articulation(teacher, teacher, rms, mask, [phonemes])
    assert copied["bilabial_closure_ratio"] == 1.0 and copied["rounding_ratio"] == 1.0
    # a phoneme outside the scored frames does not count
    outside = M.articulation(teacher, teacher, rms, np.zeros(frames, bool), [phonemes])
    assert math.isnan(outside["bilabial_closure"])
    assert math.isnan(M.articulation(teacher, teacher, rms, mask)["teacher_r_mouthClose"])


def test_nods_are_counted_on_a_synthetic_pitch_curve():
    frames = 60 * FPS  # one minute
    t = (np.arange(frames) + 0.5) / FPS
    pitch = 0.03 * np.sin(2 * np.pi * t / 20)  # slow posture drift: not a nod
    pitch += _bump(frames, 30.0, 4.0, 0.06)  # a slow 4 s bow: too slow to be a nod
    for onset in (5.0, 12.0, 40.0):  # three single nods, 0.5 s, 0.05 rad
        pitch += _bump(frames, onset, 0.5, 0.05)
    pitch += _bump(frames, 20.0, 0.45, 0.05) + _bump(frames, 20.45, 0.45, 0.04)  # a double nod
    pitch += _bump(frames, 50.0, 0.5, 0.008)  # too small
    pitch += 0.002 * np.random.default_rng(0).normal(size=frames)  # tracker jitter
    peaks = M.detect_nods(pitch)
    expected = [5.25, 12.25, 20.225, 20.675, 40.25]
    assert len(peaks) == len(expected)
    np.testing.assert_allclose(peaks / FPS, expected, atol=0.09)
    # listening everywhere except 10..15 s: the nod at 12 s happens while talking
    listening = np.ones(frames)
    listening[10 * FPS : 15 * FPS] = 0
    out = M.nods_per_minute(pitch, listening)
    assert out["nods"] == 4
    assert out["minutes"] == pytest.approx(55 / 60)
    assert out["per_minute"] == pytest.approx(4 / (55 / 60))
    # a still head, or nobody listening
    assert M.nods_per_minute(np.zeros(frames), listening)["per_minute"] == 0
    assert math.isnan(M.nods_per_minute(pitch, np.zeros(frames))["per_minute"])
    # the sign matters: chin-up bumps (negative pitch) are not nods
    assert len(M.detect_nods(-_bump(frames, 5.0, 0.5, 0.05))) == 0


# ----------------------------------------------------------------------------------------------
# FD, Var, SID
# ----------------------------------------------------------------------------------------------


def test_frechet_distance_known_values_and_scipy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 6))
    assert M.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([0.3, -0.2, 0.0, 1.0, 0.5, 0.1])
    assert M.frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # a list of examples pools their frames
    assert M.frechet_distance([x[:700], x[700:]], x) == pytest.approx(0.0, abs=1e-8)
    # general case against the usual sqrtm formula
    y = rng.normal(size=(1500, 6)) @ rng.normal(size=(6, 6)) + 1.0
    mu1, s1 = M.gaussian_fit(x)
    mu2, s2 = M.gaussian_fit(y)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean))
    assert M.frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
    # a degenerate (constant) prediction is fine
    still = np.tile(x.mean(axis=0), (100, 1))
    assert M.frechet_distance(still, x) == pytest.approx(np.trace(np.cov(x.T, bias=True)))


def test_temporal_variance():
    t = np.arange(1000)
    sine = np.stack([2.0 * np.sin(2 * np.pi * t / 50), np.zeros(1000)], axis=1)
    assert M.temporal_variance(sine) == pytest.approx((4.0 / 2) / 2)  # dims averaged
    assert M.temporal_variance(np.ones((50, 3))) == 0
    # within-example: two still examples at different levels have no variance
    assert M.temporal_variance([np.zeros((20, 2)), np.ones((20, 2))]) == 0


def test_sid_is_log2_k_for_an_even_spread_and_0_for_a_constant():
    rng = np.random.default_rng(0)
    k = 8
    centers = rng.normal(size=(k, 5)) * 20
    truth = np.concatenate([c + rng.normal(size=(200, 5)) * 0.1 for c in centers])
    fitted = M.kmeans(truth, k, seed=0)
    assert M.sid(truth, fitted) == pytest.approx(math.log2(k), abs=1e-9)
    assert M.sid(np.tile(truth[:1], (300, 1)), fitted) == 0.0
    # two of the eight clusters, evenly: one bit
    assert M.sid(truth[:400], fitted) == pytest.approx(1.0)
    # deterministic for a seed; uniform data spreads over k clusters almost evenly
    np.testing.assert_array_equal(M.kmeans(truth, k, seed=3), M.kmeans(truth, k, seed=3))
    uniform = rng.uniform(size=(5000, 2))
    assert M.sid(uniform, M.kmeans(uniform, 20, seed=0)) > math.log2(20) - 0.1
    # k-means++ copes with fewer distinct points than clusters
    few = np.repeat(np.eye(3), 10, axis=0)
    assert M.sid(few, M.kmeans(few, 5, seed=0)) == pytest.approx(math.log2(3))


# ----------------------------------------------------------------------------------------------
# Beat align
# ----------------------------------------------------------------------------------------------


def test_beat_align_scores_distance_to_the_nearest_motion_beat():
    audio = np.array([10, 50, 90])
    assert M.beat_align(audio, audio) == pytest.approx(1.0)
    assert M.beat_align(audio, audio + 3) == pytest.approx(math.exp(-9 / 18))
    assert M.beat_align(audio, np.array([10])) == pytest.approx((1 + 2 * math.exp(-1600 / 18)) / 3)
    # pooled over the audio beats of all examples; no motion beats scores 0
    assert M.beat_align([audio, np.array([5])], [audio, np.array([], int)]) == pytest.approx(0.75)
    assert math.isnan(M.beat_align(np.array([], int), audio))
    # beats that sit on the audio beats score 1; shifted away, much less; jitter scores high
    audio = np.arange(12, 1000, 40)
    assert M.beat_align(audio, audio) == 1.0
    assert M.beat_align_chance(audio, audio, 1000) < 0.5
    dense = np.arange(0, 1000, 3)
    assert M.beat_align(audio, dense) > 0.9 and M.beat_align_chance(audio, dense, 1000) > 0.9


def test_audio_and_motion_beats_on_constructed_signals():
    # noise bursts starting at known frames, with a quiet noise floor between them
    rng = np.random.default_rng(0)
    onsets = [20, 45, 80, 130, 160]
    audio = 0.001 * rng.normal(size=200 * SAMPLES_PER_MOTION_FRAME)
    for f in onsets:
        lo = f * SAMPLES_PER_MOTION_FRAME
        audio[lo : lo + 8 * SAMPLES_PER_MOTION_FRAME] += 0.3 * rng.normal(size=8 * 640)
    beats = M.audio_beats(M.frame_loudness_db(audio))
    assert len(beats) == len(onsets)
    assert np.max(np.abs(beats - onsets)) <= 1
    assert len(M.audio_beats(M.frame_loudness_db(0.001 * rng.normal(size=200 * 640)))) == 0
    # a sine swing slows down at its extremes: every quarter period + k half periods
    t = np.arange(200)
    swing = np.stack([np.sin(2 * np.pi * t / 40), np.zeros(200)], axis=1)
    np.testing.assert_array_equal(M.motion_beats(swing), np.arange(10, 200, 20))
    assert len(M.motion_beats(np.ones((100, 6)))) == 0


# ----------------------------------------------------------------------------------------------
# evaluate, the table, the plot and the CLI
# ----------------------------------------------------------------------------------------------


def _hand_made_dataset(root, sessions: int, seconds: float) -> None:
    """Noise-burst turns with a jaw that follows them, for machines without espeak-ng."""
    rng = np.random.default_rng(0)
    frames = int(seconds * FPS)
    for s in range(sessions):
        voices, tracks = [], []
        for side in range(2):
            vad = ((np.arange(frames) // 50) % 2 == side).astype(np.float32)
            level = vad * rng.uniform(0.05, 0.3, frames)
            env = np.repeat(level, SAMPLES_PER_MOTION_FRAME)
            voices.append((env * rng.normal(size=len(env))).astype(np.float32))
            bs = np.zeros((frames, 52), np.float32)
            bs[:, JAW] = 2 * level + 0.01 * rng.uniform(size=frames)  # and breathing
            head = 0.02 * rng.normal(size=(frames, 6)).astype(np.float32)
            tracks.append(MotionTrack(head, np.zeros((frames, 4), np.float32), bs, vad))
        write_session(root, f"test-{s:06d}", *voices, *tracks, split="test")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    if espeak.available():
        from infp_sdk.data.synth import build_dataset

        build_dataset(root, 2, seconds=8, split="test", workers=1, progress=False)
    else:
        _hand_made_dataset(root, 2, 8.0)
    return root


def test_evaluate_end_to_end(tiny_dataset, tmp_path, monkeypatch):
    calls = []
    real = generator.generate_motion

    def counting(model, own, partner, **kw):
        calls.append(len(own))
        return real(model, own, partner, **kw)

    monkeypatch.setattr(generator, "generate_motion", counting)
    results = report.evaluate({"random": random_model()}, tiny_dataset, plot=tmp_path / "s.png")
    assert len(calls) == results["examples"] == 4  # one generate_motion per example
    assert results["sessions"] == 2 and results["minutes"] == pytest.approx(4 * 8 / 60)
    assert results["static_source"] == "evaluated split"  # the tiny dataset has no train split
    rows = results["metrics"]
    assert list(rows) == ["random", "teacher", "static"]
    keys = set(rows["teacher"])
    assert {"fd_pose", "sid_expression", "beat_align", "lipsync_loudness_lag"} <= keys
    assert keys <= set(rows["random"])

    teacher = rows["teacher"]
    assert teacher["fd_pose"] == pytest.approx(0, abs=1e-8)
    assert teacher["fd_expression"] == pytest.approx(0, abs=1e-8)
    assert (
        teacher["lipsync_teacher_r"] == pytest.approx(1.0) and teacher["lipsync_teacher_lag"] == 0
    )
    assert teacher["speaking_accuracy"] == 1.0
    assert teacher["lip_ratio"] > 2  # the teacher talks with its mouth and listens quietly
    assert teacher["lipsync_loudness_r"] > 0.3
    assert 0 < teacher["sid_expression"] <= math.log2(report.SID_K_EXPRESSION)

    static = rows["static"]
    assert static["var_pose"] == 0 and static["var_expression"] == 0
    assert static["sid_pose"] == 0 and static["sid_expression"] == 0
    assert static["nods_per_minute"] == 0 and static["beat_align"] == 0
    assert static["beat_align_chance"] == 0
    assert math.isnan(static["lipsync_loudness_r"])
    assert static["speaking_balanced_accuracy"] == pytest.approx(0.5)
    assert 0 < static["fd_pose"]

    random_row = rows["random"]
    assert random_row["fd_pose"] > static["fd_pose"]  # untrained noise is far off
    assert random_row["seconds"] > 0 and random_row["rtf"] > 0
    for key in ("fd_expression", "var_pose", "sid_pose", "speaking_accuracy", "beat_align"):
        assert math.isfinite(random_row[key]), key

    table = report.format_table(results)
    for word in ("random", "teacher", "static", "FD pose", "nods/min", "1.00 (+0)"):
        assert word in table
    saved = json.loads(report.save_json(results, tmp_path / "e.json").read_text())
    assert saved["metrics"]["static"]["lipsync_loudness_r"] is None  # nan -> null
    assert saved["metrics"]["teacher"]["fd_pose"] == pytest.approx(0, abs=1e-8)
    png = (tmp_path / "s.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_evaluate_limits_sessions_and_rejects_bad_models(tiny_dataset):
    results = report.evaluate({}, tiny_dataset, max_sessions=1)
    assert results["sessions"] == 1 and list(results["metrics"]) == ["teacher", "static"]
    with pytest.raises(TypeError, match="INFPModel"):
        report.evaluate({"x": 3}, tiny_dataset)
    with pytest.raises(ValueError, match="reserved"):
        report.evaluate({"teacher": random_model()}, tiny_dataset)
    with pytest.raises(ValueError, match="no val sessions"):
        report.evaluate({}, tiny_dataset, split="val")


def test_static_baseline_uses_the_train_split(tmp_path):
    frames = 100
    head = np.zeros((frames, 6), np.float32)
    head[:, 1] = 0.1
    bs = np.full((frames, 52), 0.2, np.float32)
    vad = np.r_[np.ones(25), np.zeros(75)].astype(np.float32)
    track = MotionTrack(head, np.zeros((frames, 4), np.float32), bs, vad)
    audio = np.zeros(frames * SAMPLES_PER_MOTION_FRAME, np.float32)
    write_session(tmp_path, "train-0", audio, audio, track, None, split="train")
    mean, share, source = report.static_baseline(tmp_path)
    assert source == "train" and share == pytest.approx(0.25) and mean.shape == (RIG_DIM,)
    np.testing.assert_allclose(mean, rig_to_latent(head[0], np.zeros(4), bs[0]), atol=1e-6)


def test_eval_cli_through_register_cli(tiny_dataset, tmp_path, capsys):
    first = save_model(random_model(0), tmp_path / "a.safetensors")
    second = save_model(random_model(1), tmp_path / "b.safetensors")
    parser = argparse.ArgumentParser(prog="infp-sdk")
    sub = parser.add_subparsers(dest="command")
    report.register_cli(sub)
    out = tmp_path / "out"
    common = ["eval", "--data", str(tiny_dataset), "--model", str(first), "--out", str(out)]
    args = parser.parse_args([*common, "--compare", f"other={second}", "--sessions", "1"])
    assert args.split == "test"
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "other" in printed and "teacher" in printed and "static" in printed
    saved = json.loads((out / "eval.json").read_text())
    assert list(saved["metrics"]) == ["model", "other", "teacher", "static"]
    assert saved["sessions"] == 1
    assert (out / "session.png").stat().st_size > 20_000
    bad = parser.parse_args([*common, "--compare", "nopath"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        bad.func(bad)


def test_evaluate_passes_hop_steps_and_guidance_to_every_generation(tiny_dataset, monkeypatch):
    seen = []
    real = generator.generate_motion

    def recording(model, own, partner, **kw):
        seen.append((kw["hop"], kw["steps"], kw["cfg_scale"]))
        return real(model, own, partner, **kw)

    monkeypatch.setattr(generator, "generate_motion", recording)
    model = random_model()
    few = report.evaluate({"m": model}, tiny_dataset, max_sessions=1, hop=3, steps=2)
    guided = report.evaluate({"m": model}, tiny_dataset, max_sessions=1, hop=3, cfg_scale=2.0)
    default = report.evaluate({"m": model}, tiny_dataset, max_sessions=1, hop=3)
    assert seen == [(3, 2, None)] * 2 + [(3, None, 2.0)] * 2 + [(3, None, None)] * 2
    assert few["settings"]["solver_steps"] == 2 and few["settings"]["hop_frames"] == 3
    assert guided["settings"]["cfg_scale"] == 2.0
    for other in (few, guided):
        assert other["metrics"]["m"]["fd_pose"] != default["metrics"]["m"]["fd_pose"]
