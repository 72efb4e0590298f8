"""Tests for the Festival voices, the engine pools and the microphone augmentation of the
synthetic conversations."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from infp_sdk.audio import SAMPLE_RATE
from infp_sdk.data import espeak, festival, synth
from infp_sdk.data.festival import FestivalError
from infp_sdk.data.synth import (
    ENGINE_WEIGHTS,
    FESTIVAL_VOICES,
    HELD_OUT_ENGINES,
    available_codecs,
    codec_roundtrip,
    engine_pools,
    generate_session,
    register_cli,
    split_engines,
    voice_pool,
)
from infp_sdk.data.teacher import _VISEMES, phoneme_visemes, tag_phoneme
from infp_sdk.motion import ARKIT_BLENDSHAPES, FPS

needs_festival = pytest.mark.skipif(
    not festival.available(), reason="festival is not installed (apt-get install festival)"
)
needs_espeak = pytest.mark.skipif(not espeak.available(), reason="espeak-ng is not installed")

VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
JAW = ARKIT_BLENDSHAPES.index("jawOpen")


def voice_or_skip(voice: str) -> None:
    if not festival.available(voice):
        pytest.skip(f"festival voice {voice} is not installed")


def frame_db(audio: np.ndarray, hop: int = SAMPLE_RATE // 100) -> np.ndarray:
    n = len(audio) // hop
    return 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)


# ----------------------------------------------------------------------------------------------
# Festival
# ----------------------------------------------------------------------------------------------


@needs_festival
@pytest.mark.parametrize("voice", VOICES)
def test_festival_audio_and_timings(voice):
    voice_or_skip(voice)
    text = "Hello there. Maybe we could go to the park, if it stays dry."
    utt = festival.synthesize(text, voice)
    assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1 and utt.seconds > 2.0
    assert utt.phoneset == "radio" and utt.voice == voice
    # Contiguous, monotonic spans from 0 to the end of the audio.
    starts = np.array([s for s, _, _ in utt.phonemes])
    ends = np.array([e for _, e, _ in utt.phonemes])
    assert starts[0] == 0.0 and abs(ends[-1] - utt.seconds) < 1e-9
    assert np.all(ends > starts) and np.allclose(starts[1:], ends[:-1])
    assert len(utt.words) == 13
    assert all(a[1] <= b[0] + 1e-6 for a, b in zip(utt.words[:-1], utt.words[1:], strict=True))
    # The timings match the sound: loud where phones are, quiet in the long pauses, and
    # shifting the timings makes them match less.
    db = frame_db(utt.audio)
    t = (np.arange(len(db)) + 0.5) / 100
    loud = db > db.max() - 35

    def speech(shift: float) -> np.ndarray:
        mask = np.zeros(len(db), bool)
        for s, e, p in utt.phonemes:
            if p != "pau":
                mask |= (t >= s + shift) & (t < e + shift)
        return mask

    assert loud[speech(0.0)].mean() > 0.8
    agreement = (speech(0.0) == loud).mean()
    assert agreement > 0.85
    for shift in (-0.1, 0.1):
        assert agreement > (speech(shift) == loud).mean() + 0.02
    pauses = [(s, e) for s, e, p in utt.phonemes if p == "pau" and e - s > 0.1]
    assert len(pauses) >= 2
    for s, e in pauses:
        sel = (t >= s + 0.03) & (t < e - 0.03)
        assert db[sel].mean() < db[speech(0.0)].mean() - 20


@needs_festival
def test_festival_voice_settings_and_reproducibility():
    voice_or_skip("kal_diphone")
    text = "Shall we meet at the harbour on Thursday evening?"
    base = festival.synthesize(text, "kal_diphone")
    slow = festival.synthesize(text, "kal_diphone", stretch=1.3)
    assert slow.seconds > 1.2 * base.seconds
    # A fresh process, after other requests, gives the same samples: nothing carries over.
    with festival.Synthesizer() as other:
        other.synthesize("Something else entirely.", "ked_diphone", pitch=1.3)
        again = other.synthesize(text, "kal_diphone")
    np.testing.assert_array_equal(base.audio, again.audio)
    assert base.phonemes == again.phonemes
    # Backchannels Festival would spell out come from the lexicon additions.
    hmm = festival.synthesize("mmhmm", "kal_diphone")
    assert [p for _, _, p in hmm.phonemes if p != "pau"] == ["ax", "m", "hh", "ax", "m"]


def test_festival_errors_name_the_package(monkeypatch):
    monkeypatch.setattr(festival.shutil, "which", lambda name: None)
    with pytest.raises(FestivalError, match="apt-get install festival"):
        festival.Synthesizer()
    with pytest.raises(FestivalError, match="apt-get install festival"):
        festival.require("kal_diphone")
    monkeypatch.undo()
    if not festival.available():
        pytest.skip("festival is not installed")
    monkeypatch.setattr(festival, "_VOICES_CACHE", ("kal_diphone",))
    with pytest.raises(FestivalError, match="festvox-kdlpc16k"):
        festival.require("ked_diphone")
    with pytest.raises(FestivalError, match="festvox-us-slt-hts"):
        festival.require("cmu_us_slt_arctic_hts")
    with pytest.raises(FestivalError, match="no voice 'no_such_voice'"):
        festival.synthesize("hi", "no_such_voice")


# ----------------------------------------------------------------------------------------------
# Phone -> viseme
# ----------------------------------------------------------------------------------------------

RADIO = (
    "aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy jh k l m n nx ng ow "
    "oy p r s sh t th uh uw v w y z zh pau h# brth"
).split()


def test_every_festival_phone_has_a_viseme():
    phones = set(RADIO)
    if festival.available():
        for voice in festival.list_voices():
            if voice in VOICES:
                phones |= set(festival.shared().phones(voice))
    for phone in phones:
        visemes = phoneme_visemes(tag_phoneme(phone, "radio"))
        assert visemes and all(v in _VISEMES for v in visemes), phone
        assert "neutral" not in visemes, phone
        assert phoneme_visemes(phone, "radio") == visemes
    assert phoneme_visemes("radio:pau") == ("rest",)
    assert phoneme_visemes("radio:ay") == ("aa", "I")
    assert phoneme_visemes("radio:AY1") == ("aa", "I")  # ARPAbet spelling
    assert phoneme_visemes("radio:m") == ("PP",) and phoneme_visemes("radio:uw") == ("U",)
    # Tagging keeps the phone sets apart: espeak's "e" and "y" are not Festival's.
    assert phoneme_visemes("e") == ("E",) and phoneme_visemes("radio:y") == ("I",)
    assert phoneme_visemes("radio:dh") == ("TH",) and phoneme_visemes("dh") != ("TH",)
    assert tag_phoneme("aI") == "aI" and tag_phoneme("ay", "radio") == "radio:ay"
    with pytest.raises(ValueError, match="phone set"):
        tag_phoneme("aa", "klingon")


# ----------------------------------------------------------------------------------------------
# Voice pools
# ----------------------------------------------------------------------------------------------


def test_train_never_uses_the_held_out_engine():
    assert HELD_OUT_ENGINES == ("festival-hts",)
    for split in ("train", "val"):
        pools = engine_pools(split)
        assert set(pools) == {"espeak", "festival"} == set(ENGINE_WEIGHTS[split])
        assert pools["festival"] == ["kal_diphone"]
        assert not set(voice_pool(split)) & set(voice_pool("test"))
        with pytest.raises(ValueError, match="held out"):
            split_engines(split, ["festival-hts"])
    test = engine_pools("test")
    assert test["festival"] == ["ked_diphone"] and test["festival-hts"] == ["cmu_us_slt_arctic_hts"]
    assert all(festival.engine_of(v) == "festival-hts" for v in test["festival-hts"])
    assert festival.engine_of("kal_diphone") == "festival"
    # Sampled voices stay in their pools; both Festival engines do appear in test.
    seen: dict[str, set[str]] = {"train": set(), "test": set()}
    for split in seen:
        engines = tuple(ENGINE_WEIGHTS[split])
        for seed in range(200):
            rng = np.random.default_rng(seed)
            a, b = synth._pick_voices(rng, split, engines)
            for v in (a, b):
                assert v.name in voice_pool(split, v.engine)
                seen[split].add(v.engine)
            assert a.name != b.name
    assert seen["train"] == {"espeak", "festival"}
    assert seen["test"] == {"espeak", "festival", "festival-hts"}
    with pytest.raises(ValueError, match="engine"):
        split_engines("test", ["mbrola"])


def test_engine_option_and_cli_errors(capsys):
    parser = argparse.ArgumentParser(prog="infp-sdk")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["synth", "-o", "unused", "--split", "train", "--engine", "festival-hts"]
    )
    assert args.engine == ["festival-hts"]
    assert args.func(args) == 2
    assert "held out" in capsys.readouterr().err
    assert synth.session_id(3, "test") == "test-000003"
    assert synth.session_id(3, "test", ["festival-hts"]) == "test-festival-hts-000003"
    assert synth.session_id(3, "test", list(ENGINE_WEIGHTS["test"])) == "test-000003"


@needs_festival
@needs_espeak
def test_hts_test_session_records_engine_and_phonemes():
    voice_or_skip("cmu_us_slt_arctic_hts")
    s = generate_session(1, "test", 12.0, engines=["festival-hts"], augment=False)
    assert s.id == "test-festival-hts-000001"
    assert s.meta["engines"] == ["festival-hts"]
    for side in "ab":
        voice = s.meta["voices"][side]
        assert voice["engine"] == "festival-hts"
        assert voice["name"] in FESTIVAL_VOICES["test"]["festival-hts"]
    vowels, lips = [], []
    for side, motion in (("a", s.motion_a), ("b", s.motion_b)):
        rows = s.meta["phonemes"][side]
        assert rows, side
        for start, end, phone, viseme in rows:
            assert 0 <= start < end <= 12.0
            assert phone.startswith("radio:")
            assert viseme == "+".join(phoneme_visemes(phone))
            assert all(v in _VISEMES and v != "neutral" for v in viseme.split("+"))
        assert all(a[0] <= b[0] for a, b in zip(rows[:-1], rows[1:], strict=True))
        # The teacher animated these phones: the jaw opens on open vowels, closes on p/b/m
        # (the lips lead the sound by 40 to 80 ms).
        jaw = motion.blendshapes[:, JAW]
        for start, end, _, viseme in rows:
            i = int(((start + end) / 2 - 0.06) * FPS)
            if i < len(jaw) and viseme in ("aa", "ae"):
                vowels.append(jaw[i])
            elif i < len(jaw) and viseme == "PP":
                lips.append(jaw[i])
    assert len(vowels) >= 6 and len(lips) >= 6
    assert np.mean(vowels) > np.mean(lips) + 0.15
    # Mixed sessions say which engine each speaker used.
    mixed = generate_session(0, "test", 4.0, augment=False)
    for side in "ab":
        voice = mixed.meta["voices"][side]
        assert voice["name"] in voice_pool("test", voice["engine"])


@needs_festival
@needs_espeak
def test_festival_sessions_are_deterministic():
    # A train seed where a Festival voice speaks.
    engines = split_engines("train")
    seed = next(
        k
        for k in range(100)
        if "festival"
        in {v.engine for v in synth._pick_voices(np.random.default_rng([k, 0]), "train", engines)}
    )
    s1 = generate_session(seed, "train", 6.0)
    s2 = generate_session(seed, "train", 6.0)
    assert "festival" in {v["engine"] for v in s1.meta["voices"].values()}
    np.testing.assert_array_equal(s1.audio_a, s2.audio_a)
    np.testing.assert_array_equal(s1.audio_b, s2.audio_b)
    np.testing.assert_array_equal(s1.motion_a.blendshapes, s2.motion_a.blendshapes)
    assert s1.meta == s2.meta


# ----------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech():
    """Four seconds of speech with silence around it, at a realistic level."""
    rng = np.random.default_rng(0)
    if espeak.available():
        audio = espeak.synthesize("Would you ever want to climb a volcano, then?", "en-us+m3").audio
    else:  # a pulse train with formant-like bursts: enough to correlate
        t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
        audio = (np.sin(2 * np.pi * 140 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
        audio += 0.05 * rng.standard_normal(len(t)).astype(np.float32)
    x = np.zeros(4 * SAMPLE_RATE, np.float32)
    x[SAMPLE_RATE // 3 : SAMPLE_RATE // 3 + len(audio)] = audio[: 3 * SAMPLE_RATE]
    return 0.3 * x / np.abs(x).max()


def peak_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    return synth._lag(x, y, max_lag)


@pytest.mark.skipif(not available_codecs(), reason="ffmpeg with a lossy encoder is missing")
@pytest.mark.parametrize("codec,kbps", [("opus", 12), ("opus", 24), ("mp3", 16), ("amr-nb", 12.2)])
def test_codec_round_trip_keeps_length_and_alignment(speech, codec, kbps):
    if codec not in available_codecs():
        pytest.skip(f"ffmpeg cannot encode {codec} here")
    y, delay = codec_roundtrip(speech, codec, kbps)
    assert y.shape == speech.shape and y.dtype == np.float32
    # Aligned to the millisecond, and still the same speech.
    assert abs(peak_lag(speech, y, 800)) <= SAMPLE_RATE // 1000
    corr = float(np.dot(speech, y) / (np.linalg.norm(speech) * np.linalg.norm(y)))
    assert corr > 0.5
    assert 10 * np.log10(np.mean(y**2) / np.mean(speech**2)) == pytest.approx(0, abs=4)
    if codec == "mp3":
        assert delay > 0  # the encoder's priming samples were there and are gone


def test_filters_and_augment_keep_length_alignment_and_record(speech):
    rng = np.random.default_rng(3)
    for _ in range(4):
        y, info = synth._telephone(speech, rng)
        assert y.shape == speech.shape
        assert abs(peak_lag(speech, y, 800)) <= SAMPLE_RATE // 1000, info
    phone = synth._band_limit(speech, 300, 3400)
    spec = np.abs(np.fft.rfft(phone)) ** 2
    f = np.fft.rfftfreq(len(phone), 1 / SAMPLE_RATE)
    assert spec[f > 3700].sum() < 1e-4 * spec.sum() and spec[f < 200].sum() < 1e-4 * spec.sum()
    for kind in range(2):
        y, info = synth._dynamics(speech, np.random.default_rng(kind))
        assert y.shape == speech.shape and np.isfinite(y).all() and info["kind"]
    clipped, info = synth._clip(speech, rng)
    assert np.abs(clipped).max() < np.abs(speech).max() and 0 < info["fraction"] < 0.2
    music = synth._music(rng, 3 * SAMPLE_RATE)
    assert music.shape == (3 * SAMPLE_RATE,) and music.std() == pytest.approx(1, rel=0.01)
    # The whole chain: deterministic per seed, recorded, same length, never past full scale.
    kinds, keys = set(), set()
    clean = [speech, np.roll(speech, SAMPLE_RATE)]
    for seed in range(12):
        out, aug = synth._augment(clean, np.random.default_rng(seed), True, "train")
        again, aug2 = synth._augment(clean, np.random.default_rng(seed), True, "train")
        assert aug == aug2
        for k in range(2):
            np.testing.assert_array_equal(out[k], again[k])
            assert out[k].shape == speech.shape and np.abs(out[k]).max() <= 0.98 + 1e-6
        for side in "ab":
            keys |= set(aug[side])
            kinds.add(aug[side].get("noise"))
    assert {"level_db", "noise", "snr_db", "dynamics", "band"} <= keys
    assert {"pink", "babble", "music"} <= kinds
    if available_codecs():
        assert "codec" in keys
