"""Tests for the synthetic dyadic data: espeak-ng binding, teacher, generator, dataset format."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from infp_sdk.audio import SAMPLE_RATE, write_wav
from infp_sdk.data import dataset, espeak
from infp_sdk.data.dataset import DatasetError, MotionTrack, examples, read_session, write_session
from infp_sdk.data.espeak import EspeakError, Synthesizer, list_voices, synthesize
from infp_sdk.data.synth import (
    VOICES,
    generate_session,
    register_cli,
    sentence_bank,
    voice_pool,
)
from infp_sdk.data.teacher import Manner, Timeline, phoneme_visemes, teach
from infp_sdk.motion import ARKIT_BLENDSHAPES, FPS, rig_to_latent

pytestmark = pytest.mark.skipif(not espeak.available(), reason="espeak-ng is not installed")

JAW = ARKIT_BLENDSHAPES.index("jawOpen")
BLINK = ARKIT_BLENDSHAPES.index("eyeBlinkLeft")
NOT_EYES = [i for i, n in enumerate(ARKIT_BLENDSHAPES) if not n.startswith("eye")]


def frame_times(frames: int) -> np.ndarray:
    return (np.arange(frames) + 0.5) / FPS


# ----------------------------------------------------------------------------------------------
# espeak-ng
# ----------------------------------------------------------------------------------------------


def test_phoneme_events_line_up_with_audio_energy():
    utt = synthesize("Hello there. Maybe we could go to the park, if it stays dry.", "en-us+m3")
    assert utt.audio.dtype == np.float32 and utt.seconds > 2.0
    hop = SAMPLE_RATE // 100
    n = len(utt.audio) // hop
    db = 10 * np.log10(np.mean(utt.audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = db > db.max() - 40
    t = (np.arange(n) + 0.5) / 100

    def speech_mask(shift: float) -> np.ndarray:
        mask = np.zeros(n, bool)
        for start, end, name in utt.phonemes:
            if not name.startswith("_"):
                mask |= (t >= start + shift) & (t < end + shift)
        return mask

    mask = speech_mask(0.0)
    pauses = [(s, e) for s, e, name in utt.phonemes if name.startswith("_") and e - s > 0.05]
    assert len(pauses) >= 2, "sentence and comma pauses should come as pause phonemes"
    # Speech energy inside the phoneme spans and (near) silence in the pauses.
    assert loud[mask].mean() > 0.9
    for start, end in pauses:
        sel = (t >= start + 0.02) & (t < end - 0.02)
        assert db[sel].max() < db.max() - 30, f"energy inside the pause {start:.2f}-{end:.2f}"
    agreement = (mask == loud).mean()
    assert agreement > 0.9
    # The alignment is what makes the agreement: shifted timings agree far less.
    assert agreement - (speech_mask(0.25) == loud).mean() > 0.05
    # Vowels are louder than the stops and fricatives around them.
    vowels = [(s, e) for s, e, p in utt.phonemes if p in ("oU", "eI", "A:", "aa", "I", "E")]
    stops = [(s, e) for s, e, p in utt.phonemes if p in ("t", "k", "p", "s", "z")]
    mean_db = lambda spans: np.mean([db[(t >= s) & (t < e)].mean() for s, e in spans])  # noqa: E731
    assert mean_db(vowels) > mean_db(stops) + 4
    # Words cover the spoken phonemes, in order.
    assert len(utt.words) == 13
    assert all(a[1] <= b[0] + 1e-6 for a, b in zip(utt.words[:-1], utt.words[1:], strict=True))


def test_voices_and_errors(monkeypatch):
    voices = list_voices()
    assert {"en-us", "en-gb", "en-029"} <= set(voices)
    a = synthesize("Good morning.", "en-gb+f2", pitch=70)
    b = synthesize("Good morning.", "en-us+m3", pitch=30, rate=220)
    assert a.phonemes and b.phonemes and a.seconds > b.seconds
    with pytest.raises(EspeakError, match="no voice"):
        synthesize("hi", "xx-notavoice")

    def no_library(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setattr(espeak.ctypes, "CDLL", no_library)
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        synthesize("hi")


def test_synthesizer_is_reproducible_whatever_came_before():
    def run() -> list[np.ndarray]:
        with Synthesizer() as tts:
            return [tts.synthesize("Shall we go, then?", v).audio for v in ("en-us+m3", "en-gb+f2")]

    first = run()
    # Plain synthesize() carries state from call to call; a Synthesizer starts afresh.
    synthesize("Something else entirely, to stir the state.", "en-gb-scotland+f3")
    second = run()
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    tts = Synthesizer()
    tts.close()
    with pytest.raises(EspeakError, match="closed"):
        tts.synthesize("hi")


# ----------------------------------------------------------------------------------------------
# Teacher
# ----------------------------------------------------------------------------------------------


def place(timeline: Timeline, utt, start: float, audio: np.ndarray, kind: str = "turn"):
    timeline.phonemes += [(start + s, start + e, p) for s, e, p in utt.phonemes]
    timeline.words += [(start + s, start + e) for s, e in utt.words]
    timeline.utterances.append((start, start + utt.seconds, kind))
    lo = int(start * SAMPLE_RATE)
    audio[lo : lo + len(utt.audio)] += utt.audio


@pytest.fixture(scope="module")
def dialogue():
    """A scripted 24 s exchange: A talks, B answers, A talks again, B backchannels once."""
    seconds = 24.0
    n = int(seconds * SAMPLE_RATE)
    audio = [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    a, b = Timeline(), Timeline()
    say_a = (
        "Bob's father parked a car by my mom's barn. Then, far past the pond, the calm dark farm. "
    )
    say_a += "My pop bought a big map. Bob, a pal of mine, hopped on a boat."
    u1 = synthesize(say_a, "en-us+m3", rate=160)
    place(a, u1, 0.5, audio[0])
    bc = synthesize("yeah", "en-gb+f2")
    place(b, bc, 4.2, audio[1], "backchannel")
    u2 = synthesize(
        "Oh, really? That sounds lovely. I went there last summer, with my sister.", "en-gb+f2"
    )
    start2 = 0.5 + u1.seconds + 0.4
    place(b, u2, start2, audio[1])
    u3 = synthesize(
        "Well, we should all go together next week, if the weather is good.", "en-us+m3"
    )
    place(a, u3, start2 + u2.seconds + 0.5, audio[0])
    assert a.utterances[-1][1] < seconds
    a.audio, b.audio = audio
    return a, b, seconds


def test_teacher_shapes_ranges_and_determinism(dialogue):
    a, b, seconds = dialogue
    ma, mb = teach(a, b, seconds, np.random.default_rng(7))
    frames = int(seconds * FPS)
    for m in (ma, mb):
        assert m.head.shape == (frames, 6) and m.gaze.shape == (frames, 4)
        assert m.blendshapes.shape == (frames, 52) and m.vad.shape == (frames,)
        assert m.head.dtype == np.float32
        for arr in (m.head, m.gaze, m.blendshapes):
            assert np.isfinite(arr).all()
        assert m.blendshapes.min() >= 0.0 and m.blendshapes.max() <= 1.0
        assert np.abs(m.head[:, :3]).max() <= 0.5
        assert np.abs(m.head[:, 3:]).max() < 0.05  # metres: a few centimetres at most
        assert np.abs(m.gaze).max() <= 0.6
        assert rig_to_latent(m.head, m.gaze, m.blendshapes).shape == (frames, 62)
    again = teach(a, b, seconds, np.random.default_rng(7))
    np.testing.assert_array_equal(again[0].blendshapes, ma.blendshapes)
    np.testing.assert_array_equal(again[1].head, mb.head)
    other = teach(a, b, seconds, np.random.default_rng(8))
    assert not np.allclose(other[0].head, ma.head)
    # The manner changes the style: a calm and a lively person move their head differently.
    calm = Manner(head_amp=0.5, nod_amp=0.04, expressiveness=0.6)
    lively = Manner(head_amp=1.6, nod_amp=0.12, expressiveness=1.4)
    m_calm, _ = teach(a, b, seconds, np.random.default_rng(1), calm, calm)
    m_lively, _ = teach(a, b, seconds, np.random.default_rng(1), lively, lively)
    assert m_lively.head[:, :3].std() > 1.5 * m_calm.head[:, :3].std()


def test_jaw_moves_while_speaking_not_while_listening(dialogue):
    a, b, seconds = dialogue
    for seed in (0, 1, 2):
        for motion in teach(a, b, seconds, np.random.default_rng(seed)):
            jaw = motion.blendshapes[:, JAW]
            speaking = motion.vad > 0.5
            assert 0.2 < speaking.mean() < 0.8
            assert jaw[speaking].var() > 3 * jaw[~speaking].var()
            assert jaw[~speaking].mean() < 0.08  # resting lips while listening


def test_open_vowels_open_the_mouth_more_than_bilabials(dialogue):
    a, b, seconds = dialogue
    motion, _ = teach(a, b, seconds, np.random.default_rng(3))
    frames = motion.frames
    close = motion.blendshapes[:, ARKIT_BLENDSHAPES.index("mouthPressLeft")]

    def at_centres(names: set[str], values: np.ndarray) -> np.ndarray:
        idx = [int((s + e) / 2 * FPS) for s, e, p in a.phonemes if p in names]
        return values[[i for i in idx if i < frames]]

    open_vowels = {"A:", "aa", "a", "A@"}
    bilabials = {"p", "b", "m"}
    jaw = motion.blendshapes[:, JAW]
    vowel_jaw, lip_jaw = at_centres(open_vowels, jaw), at_centres(bilabials, jaw)
    assert len(vowel_jaw) >= 8 and len(lip_jaw) >= 8
    assert vowel_jaw.mean() > lip_jaw.mean() + 0.15
    assert np.median(vowel_jaw) > np.median(lip_jaw)
    assert at_centres(bilabials, close).mean() > at_centres(open_vowels, close).mean() + 0.1
    assert phoneme_visemes("aI") == ("aa", "I") and phoneme_visemes("_:") == ("rest",)
    assert phoneme_visemes("T") == ("TH",) and phoneme_visemes("I2") == ("I",)


def test_no_jumps_at_turn_changes(dialogue):
    a, b, seconds = dialogue
    for seed in (0, 1):
        for motion in teach(a, b, seconds, np.random.default_rng(seed)):
            changes = np.flatnonzero(np.diff(motion.vad) != 0)
            assert len(changes) >= 2
            near = np.zeros(motion.frames - 1, bool)
            for c in changes:
                near[max(c - 12, 0) : c + 13] = True
            head_step = np.abs(np.diff(motion.head[:, :3], axis=0)).max(axis=1)
            face_step = np.abs(np.diff(motion.blendshapes[:, NOT_EYES], axis=0)).max(axis=1)
            assert head_step[near].max() < 0.05  # rad per 40 ms frame
            assert face_step[near].max() < 0.4
            assert np.abs(np.diff(motion.head[:, 3:], axis=0)).max() < 0.003  # metres


def nod_peaks(motion: MotionTrack) -> np.ndarray:
    """Frames where the head pitch (chin down) peaks above its slow trend while not speaking."""
    pitch = motion.head[:, 1]
    trend = np.convolve(np.pad(pitch, 25, mode="edge"), np.ones(51) / 51, mode="valid")
    hp = pitch - trend
    peak = (hp[1:-1] > 0.02) & (hp[1:-1] >= hp[:-2]) & (hp[1:-1] > hp[2:])
    frames = np.flatnonzero(peak) + 1
    return frames[motion.vad[frames] < 0.5]


def test_listening_nods_follow_partner_phrase_ends(dialogue):
    a, b, seconds = dialogue
    hits, total, chance = 0, 0, []
    for seed in range(6):
        for partner, motion in zip(
            (b, a), teach(a, b, seconds, np.random.default_rng(seed)), strict=True
        ):
            ends = np.array(partner.phrase_ends())
            t = frame_times(motion.frames)

            def near(x, ends=ends):
                return bool(np.any((x >= ends) & (x <= ends + 1.2)))

            for f in nod_peaks(motion):
                hits += near(t[f])
                total += 1
            listening = t[motion.vad < 0.5]
            chance.append(np.mean([near(x) for x in listening]))
    assert total >= 10
    assert hits / total > np.mean(chance) + 0.2


def test_blinks_have_plausible_rate_and_duration(dialogue):
    a, b, seconds = dialogue
    rates = []
    for seed in range(3):
        for motion in teach(a, b, seconds, np.random.default_rng(seed)):
            lid = motion.blendshapes[:, BLINK]
            closed = lid > 0.5
            starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
            ends = np.flatnonzero(~closed[1:] & closed[:-1]) + 1
            runs = ends - starts[: len(ends)] if len(ends) else np.array([])
            assert runs.size == 0 or runs.max() <= 4  # never shut for more than ~160 ms
            rates.append(len(starts) / seconds * 60)
            # Both eyes blink together.
            np.testing.assert_allclose(
                lid, motion.blendshapes[:, ARKIT_BLENDSHAPES.index("eyeBlinkRight")]
            )
    assert 8 <= np.mean(rates) <= 40
    assert min(rates) >= 3 and max(rates) <= 60


# ----------------------------------------------------------------------------------------------
# Conversation generator
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sessions():
    # Seed 0 happens to be one 11 s monologue with a backchannel: a conversation, but not one
    # that shows turn-taking.
    return [generate_session(seed, "train", 12.0) for seed in (1, 2, 3)]


def test_session_has_two_voices_turns_and_backchannels(sessions):
    overlaps, backchannels = [], 0
    for s in sessions:
        n = 12 * SAMPLE_RATE
        assert s.audio_a.shape == (n,) and s.audio_b.shape == (n,)
        assert s.audio_a.dtype == np.float32 and np.abs(s.audio_a).max() <= 1.0
        assert s.meta["voices"]["a"]["name"] != s.meta["voices"]["b"]["name"]
        va, vb = s.motion_a.vad > 0.5, s.motion_b.vad > 0.5
        assert 0.1 < va.mean() < 0.9 and 0.1 < vb.mean() < 0.9
        assert (va | vb).mean() > 0.7  # a conversation, not mostly silence
        overlaps.append((va & vb).mean())
        utts = s.meta["utterances"]
        assert {"a", "b"} == {u["speaker"] for u in utts if u["kind"] == "turn"}
        for u in utts:
            if u["kind"] != "backchannel":
                continue
            backchannels += 1
            assert u["end"] - u["start"] < 1.0
            # The backchannel is in the listener's channel while the other one speaks.
            mid = int((u["start"] + u["end"]) / 2 * FPS)
            motion = s.motion_a if u["speaker"] == "a" else s.motion_b
            assert motion.vad[mid] == 1.0
        # Each channel carries its own speaker: louder where they talk than where they do not.
        for audio, vad in ((s.audio_a, va), (s.audio_b, vb)):
            frames = audio[: len(vad) * 640].reshape(len(vad), 640)
            power = (frames**2).mean(axis=1)
            assert 10 * np.log10(power[vad].mean() / power[~vad].mean()) > 8  # dB
    assert backchannels >= 2
    assert 0 < np.mean(overlaps) < 0.25


def test_interruptions_and_options():
    interrupted = False
    for seed in range(12):
        s = generate_session(seed, "train", 20.0, augment=False)
        turns = [u for u in s.meta["utterances"] if u["kind"] == "turn"]
        for cur, nxt in zip(turns[:-1], turns[1:], strict=True):
            if cur["interrupted"] and cur["end"] < 20.0:
                interrupted = True
                # The next speaker started before the interrupted one stopped.
                assert nxt["start"] < cur["end"] and nxt["speaker"] != cur["speaker"]
                text = " ".join(cur["sentences"])
                assert text == cur["text"]
        if interrupted:
            break
    assert interrupted, "no interruption in 12 sessions"
    calm = generate_session(
        4, "train", 20.0, overlaps=False, interruptions=False, backchannels=False, augment=False
    )
    utts = sorted(calm.meta["utterances"], key=lambda u: u["start"])
    assert all(u["kind"] == "turn" and not u["interrupted"] or u["end"] >= 20.0 for u in utts)
    for cur, nxt in zip(utts[:-1], utts[1:], strict=True):
        assert nxt["start"] >= cur["end"]
    # Without augmentation the channels are clean: (near) digital silence between turns.
    quiet = calm.motion_a.vad == 0
    assert quiet.sum() > 25
    rms = np.sqrt((calm.audio_a[: len(quiet) * 640].reshape(len(quiet), 640) ** 2).mean(axis=1))
    assert np.percentile(rms[quiet], 90) < 1e-4 and rms[quiet].max() < 0.01


def test_generation_is_deterministic_and_augmented():
    s1 = generate_session(11, "val", 8.0)
    s2 = generate_session(11, "val", 8.0)
    np.testing.assert_array_equal(s1.audio_a, s2.audio_a)
    np.testing.assert_array_equal(s1.motion_b.blendshapes, s2.motion_b.blendshapes)
    assert s1.meta == s2.meta
    assert s1.id == "val-000011" and s1.split == "val"
    other = generate_session(11, "train", 8.0)
    assert other.meta["utterances"] != s1.meta["utterances"]
    aug = s1.meta["augmentation"]
    assert set(aug) == {"a", "b"} and "level_db" in aug["a"] and "level_db" in aug["b"]


def test_test_split_is_held_out():
    train_voices = set(voice_pool("train"))
    test_voices = set(voice_pool("test"))
    assert not train_voices & test_voices
    # Held out in both respects: accent and variant.
    assert not set(VOICES["train"][0]) & set(VOICES["test"][0])
    assert not set(VOICES["train"][1]) & set(VOICES["test"][1])
    assert set(voice_pool("val")) == train_voices
    train_bank = set(sentence_bank("train"))
    test_bank = set(sentence_bank("test"))
    assert len(train_bank) > 300 and len(test_bank) > 300
    assert not train_bank & test_bank
    for seed in range(3):
        s = generate_session(seed, "test", 10.0)
        for side in "ab":
            assert s.meta["voices"][side]["name"] in test_voices
        for u in s.meta["utterances"]:
            for sentence in u["sentences"]:
                assert sentence in test_bank and sentence not in train_bank
    for seed in range(3):
        s = generate_session(seed, "train", 10.0)
        for u in s.meta["utterances"]:
            assert all(sentence in train_bank for sentence in u["sentences"])
        assert s.meta["voices"]["a"]["name"] in train_voices


# ----------------------------------------------------------------------------------------------
# Dataset format
# ----------------------------------------------------------------------------------------------


def fake_motion(frames: int, seed: int = 0, vad: bool = True) -> MotionTrack:
    rng = np.random.default_rng(seed)
    return MotionTrack(
        head=rng.normal(0, 0.05, (frames, 6)).astype(np.float32),
        gaze=rng.normal(0, 0.1, (frames, 4)).astype(np.float32),
        blendshapes=rng.uniform(0, 1, (frames, 52)).astype(np.float32),
        vad=(rng.random(frames) > 0.5).astype(np.float32) if vad else None,
    )


def test_dataset_round_trip(tmp_path, sessions):
    s = sessions[0]
    s.save(tmp_path)
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 5 * SAMPLE_RATE).astype(np.float32)
    one_sided = fake_motion(125, vad=False)
    meta = {"src": "tracker", "fps_in": np.float32(60), "offsets": np.zeros(2)}
    write_session(tmp_path, "mine", audio, audio * 0.5, one_sided, None, meta, "val")
    assert read_session(tmp_path / "mine").meta["fps_in"] == 60
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["fps"] == 25 and manifest["sample_rate"] == 16000
    assert {(e["id"], e["split"]) for e in manifest["sessions"]} == {
        (s.id, "train"),
        ("mine", "val"),
    }
    assert [p.name for p in dataset.list_sessions(tmp_path, "train")] == [s.id]
    back = read_session(tmp_path / s.id)
    assert np.abs(back.audio_a - s.audio_a).max() < 1e-4  # 16-bit PCM
    np.testing.assert_array_equal(back.motion_b.blendshapes, s.motion_b.blendshapes)
    np.testing.assert_array_equal(back.motion_a.vad, s.motion_a.vad)
    assert back.meta["voices"] == s.meta["voices"]
    train = examples(tmp_path, "train")
    assert [(e.session_id, e.side) for e in train] == [(s.id, "a"), (s.id, "b")]
    ex_b = train[1]
    np.testing.assert_allclose(ex_b.own, back.audio_b)
    np.testing.assert_allclose(ex_b.partner, back.audio_a)
    np.testing.assert_allclose(
        ex_b.latents, rig_to_latent(s.motion_b.head, s.motion_b.gaze, s.motion_b.blendshapes)
    )
    assert ex_b.latents.shape == (300, 62) and ex_b.speaking.shape == (300,)
    np.testing.assert_array_equal(ex_b.speaking, s.motion_b.vad)
    val = examples(tmp_path, "val")
    assert len(val) == 1 and val[0].latents.shape == (125, 62)
    # No vad stored: estimated from the audio energy.
    assert val[0].speaking.shape == (125,) and val[0].speaking.mean() > 0.5
    assert examples(tmp_path, "test") == []
    assert len(examples(tmp_path, None)) == 3


def test_dataset_errors(tmp_path):
    audio = np.zeros(4 * SAMPLE_RATE, np.float32)
    good = fake_motion(100)
    root = tmp_path / "ds"
    write_session(root, "s1", audio, audio, good, good, {}, "train")
    read_session(root / "s1")
    # One frame of slack either way is accepted.
    write_session(root, "s2", audio, audio, fake_motion(101), fake_motion(99), {}, "train")
    assert read_session(root / "s2").motion_a.frames == 100

    with pytest.raises(DatasetError, match="frames"):
        write_session(root, "bad", audio, audio, fake_motion(110), None)
    nan = fake_motion(100)
    nan.head[17, 2] = np.nan
    with pytest.raises(DatasetError, match=r"a_head contains NaN.*frame 17"):
        write_session(root, "bad", audio, audio, nan, None)
    percent = fake_motion(100)
    percent.blendshapes *= 100
    with pytest.raises(DatasetError, match="divide by 100"):
        write_session(root, "bad", audio, audio, percent, None)
    with pytest.raises(DatasetError, match="same time"):
        write_session(root, "bad", audio, audio[:-2000], good, None)
    with pytest.raises(DatasetError, match="split"):
        write_session(root, "bad", audio, audio, good, None, split="dev")
    with pytest.raises(DatasetError, match="JSON"):
        write_session(root, "bad", audio, audio, good, None, {"when": object()})
    assert not (root / "bad").exists()  # nothing half-written

    def broken(name: str):
        path = root / name
        if path.exists():
            shutil.rmtree(path)
        shutil.copytree(root / "s1", path)
        return path

    path = broken("rate")
    write_wav(path / "a.wav", np.zeros(4 * 44100, np.float32), 44100)
    with pytest.raises(DatasetError, match=r"a.wav is 44100 Hz.*16000"):
        read_session(path)
    path = broken("stereo")
    write_wav(path / "b.wav", np.zeros((4 * SAMPLE_RATE, 2), np.float32), SAMPLE_RATE)
    with pytest.raises(DatasetError, match="mono"):
        read_session(path)
    path = broken("missing")
    (path / "b.wav").unlink()
    with pytest.raises(DatasetError, match=r"missing file b\.wav"):
        read_session(path)
    path = broken("nomotion")
    (path / "motion.npz").unlink()
    with pytest.raises(DatasetError, match=r"missing file motion\.npz"):
        read_session(path)
    path = broken("short")
    write_wav(path / "a.wav", np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    write_wav(path / "b.wav", np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    with pytest.raises(DatasetError, match="a_head has 100 frames"):
        read_session(path)
    path = broken("partial")
    arrays = dict(np.load(path / "motion.npz"))
    del arrays["b_gaze"]
    np.savez(path / "motion.npz", **arrays)
    with pytest.raises(DatasetError, match="lacks b_gaze"):
        read_session(path)
    path = broken("nan")
    arrays = dict(np.load(path / "motion.npz"))
    arrays["b_blendshapes"][3, 5] = np.nan
    np.savez(path / "motion.npz", **arrays)
    with pytest.raises(DatasetError, match="b_blendshapes contains NaN"):
        read_session(path)
    with pytest.raises(DatasetError, match="manifest.json"):
        examples(tmp_path / "nowhere", "train")


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def test_synth_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="infp-sdk")
    register_cli(parser.add_subparsers(dest="command"))
    out = tmp_path / "data"
    args = parser.parse_args(
        [
            "synth",
            "-o",
            str(out),
            "--sessions",
            "2",
            "--seconds",
            "4",
            "--seed",
            "5",
            "--split",
            "val",
            "--workers",
            "2",
        ]
    )
    assert args.func(args) == 0
    assert "[2/2]" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(e["id"], e["split"]) for e in manifest["sessions"]] == [
        ("val-000005", "val"),
        ("val-000006", "val"),
    ]
    for entry in manifest["sessions"]:
        folder = out / entry["id"]
        assert {p.name for p in folder.iterdir()} == {"a.wav", "b.wav", "motion.npz", "meta.json"}
    assert len(examples(out, "val")) == 4
    # A second run adds to the same dataset instead of replacing it.
    args = parser.parse_args(["synth", "-o", str(out), "--sessions", "1", "--seconds", "3"])
    assert args.func(args) == 0
    assert len(dataset.list_sessions(out)) == 3
    assert len(dataset.list_sessions(out, "train")) == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "-o", str(out), "--split", "dev"])
