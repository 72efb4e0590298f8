"""Tests for infp_sdk.audio: conversion, resampling, log-mel front end and WAV I/O."""

from __future__ import annotations

import math
import struct
import time

import numpy as np
import pytest
from scipy.signal import get_window, resample_poly

from infp_sdk.audio import (
    HOP_LENGTH,
    MEL_FPS,
    MEL_FRAMES_PER_MOTION_FRAME,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    SAMPLES_PER_MOTION_FRAME,
    WIN_LENGTH,
    AudioFormatError,
    LogMel,
    load_audio,
    log_mel,
    mel_to_motion_frames,
    motion_frames,
    read_wav,
    resample,
    to_mono_16k,
    write_wav,
)
from infp_sdk.motion import FPS

RNG = np.random.default_rng(1234)


def _tones(freqs: list[float], sr: int, n: int) -> np.ndarray:
    t = np.arange(n) / sr
    return sum(0.2 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs))


def _chirp_noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    dur = n / SAMPLE_RATE
    # Linear chirp 100 Hz -> 7.5 kHz plus noise and a silent gap (exercises the log floor).
    phase = 2 * np.pi * (100 * t + (7400 / (2 * dur)) * t**2)
    x = 0.5 * np.sin(phase) + 0.02 * rng.standard_normal(n)
    x[n // 3 : n // 3 + 1600] = 0.0
    return x.astype(np.float32)


# --------------------------------------------------------------------------------- constants


def test_constants_alignment() -> None:
    assert (SAMPLE_RATE, N_MELS, WIN_LENGTH, HOP_LENGTH, N_FFT) == (16000, 80, 400, 160, 512)
    assert MEL_FPS == 100
    assert MEL_FRAMES_PER_MOTION_FRAME == MEL_FPS // FPS == 4
    assert SAMPLES_PER_MOTION_FRAME == SAMPLE_RATE // FPS == 640


def test_one_second_frame_counts() -> None:
    mel = LogMel()(np.zeros((1, SAMPLE_RATE), np.float32))
    assert mel.shape == (1, 100, 80)
    assert motion_frames(SAMPLE_RATE) == 25
    assert mel_to_motion_frames(mel).shape == (1, 25, 320)


# --------------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 24000, 44100, 48000])
def test_resample_matches_scipy(sr: int) -> None:
    n = sr * 2 + 17
    band = 0.3 * min(sr, SAMPLE_RATE)
    freqs = [110.0, 440.0, 1000.0, 0.6 * band, band]
    x = _tones(freqs, sr, n)
    g = math.gcd(sr, SAMPLE_RATE)
    ref = resample_poly(x, SAMPLE_RATE // g, sr // g)
    y = resample(x, sr, SAMPLE_RATE)
    assert y.shape == ref.shape == (math.ceil(n * SAMPLE_RATE / sr),)
    inner = slice(1600, -1600)
    assert np.sqrt(np.mean((y[inner] - ref[inner]) ** 2)) < 1e-3
    # Ours should also be close to the analytically resampled signal.
    ideal = _tones(freqs, SAMPLE_RATE, len(y))
    assert np.sqrt(np.mean((y[inner] - ideal[inner]) ** 2)) < 1e-4


def _level_db(y: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(2 * np.mean(y**2)) + 1e-30)


def test_resample_passband_and_stopband() -> None:
    t = np.arange(48000) / 48000
    kept = resample(np.sin(2 * np.pi * 7000 * t).astype(np.float32), 48000, 16000)
    assert abs(_level_db(kept[800:-800])) < 0.5
    aliased = resample(np.sin(2 * np.pi * 10000 * t).astype(np.float32), 48000, 16000)
    assert _level_db(aliased[800:-800]) < -40


def test_resample_dtypes_identity_and_edges() -> None:
    x = RNG.standard_normal(1000)
    assert resample(x, 16000, 16000).dtype == np.float64
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    assert resample(x.astype(np.float32), 48000, 16000).dtype == np.float32
    assert resample(np.zeros(0), 44100, 16000).shape == (0,)
    assert resample(np.ones(1), 8000, 16000).shape == (2,)
    assert resample(np.ones(5), 48000, 16000).shape == (2,)
    # DC is preserved away from the edges.
    y = resample(np.ones(44100, dtype=np.float32), 44100, 16000)
    np.testing.assert_allclose(y[500:-500], 1.0, atol=1e-4)
    with pytest.raises(AudioFormatError, match="1-D"):
        resample(np.zeros((10, 2)), 48000, 16000)
    with pytest.raises(AudioFormatError, match="positive whole"):
        resample(x, 0, 16000)
    with pytest.raises(AudioFormatError, match="positive whole"):
        resample(x, 16000, 22050.5)


def test_resample_speed() -> None:
    x = RNG.standard_normal(60 * 48000).astype(np.float32)
    resample(x[:4800], 48000, 16000)
    start = time.perf_counter()
    y = resample(x, 48000, 16000)
    elapsed = time.perf_counter() - start
    assert y.shape == (60 * 16000,)
    assert elapsed < 1.0, f"60 s of 48 kHz took {elapsed:.2f} s"


# --------------------------------------------------------------------------------- to_mono_16k


def test_int_and_float_dtypes() -> None:
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(to_mono_16k(pcm, 16000), [0, 0.5, -1.0, 32767 / 32768])
    pcm32 = np.array([0, 2**30, -(2**31)], dtype=np.int32)
    np.testing.assert_allclose(to_mono_16k(pcm32, 16000), [0, 0.5, -1.0])
    u8 = np.array([128, 192, 0, 255], dtype=np.uint8)
    np.testing.assert_allclose(to_mono_16k(u8, 16000), [0, 0.5, -1.0, 127 / 128])
    for dtype in (np.float16, np.float32, np.float64):
        out = to_mono_16k(np.array([0.25, -0.5], dtype=dtype), 16000)
        assert out.dtype == np.float32 and out.ndim == 1
        np.testing.assert_allclose(out, [0.25, -0.5])
    big_endian = np.array([16384], dtype=">i2")
    np.testing.assert_allclose(to_mono_16k(big_endian, 16000), [0.5])


def test_lists_and_bytes() -> None:
    np.testing.assert_allclose(to_mono_16k([0.5, -0.25], 16000), [0.5, -0.25])
    raw = np.array([16384, -16384, 8192, 0], dtype="<i2").tobytes()
    for buf in (raw, bytearray(raw), memoryview(raw)):
        np.testing.assert_allclose(to_mono_16k(buf, 16000), [0.5, -0.5, 0.25, 0.0])
    stereo = to_mono_16k(raw, 16000, channels=2)
    np.testing.assert_allclose(stereo, [0.0, 0.125])


def test_channels() -> None:
    left = np.full(320, 0.5, dtype=np.float32)
    right = np.full(320, -0.1, dtype=np.float32)
    two_d = np.stack([left, right], axis=1)
    np.testing.assert_allclose(to_mono_16k(two_d, 16000), 0.2, atol=1e-7)
    interleaved = two_d.reshape(-1)
    np.testing.assert_allclose(to_mono_16k(interleaved, 16000, channels=2), 0.2, atol=1e-7)
    np.testing.assert_allclose(to_mono_16k(two_d, 16000, channels=2), 0.2, atol=1e-7)
    assert to_mono_16k(interleaved, 16000, channels=1).shape == (640,)


def test_resampling_path() -> None:
    x = _tones([440.0], 44100, 44100).astype(np.float32)
    stereo = np.stack([x, x], axis=1)
    out = to_mono_16k(stereo, 44100.0)
    assert out.dtype == np.float32 and out.shape == (16000,)
    ideal = _tones([440.0], 16000, 16000)
    assert np.max(np.abs(out[400:-400] - ideal[400:-400])) < 1e-3


@pytest.mark.parametrize(
    "empty",
    [np.zeros(0, np.float32), np.zeros(0, np.int16), [], b"", np.zeros((0, 2), np.float32)],
)
def test_empty_input_is_not_an_error(empty: object) -> None:
    for rate in (16000, 48000):
        out = to_mono_16k(empty, rate)
        assert out.dtype == np.float32 and out.shape == (0,)


def test_non_finite_reports_index() -> None:
    x = np.zeros(2000, dtype=np.float32)
    x[1234] = np.nan
    with pytest.raises(AudioFormatError, match=r"NaN or Inf.*sample 1234.*nan_to_num"):
        to_mono_16k(x, 16000)
    stereo = np.zeros((50, 2))
    stereo[7, 1] = np.inf
    with pytest.raises(AudioFormatError, match="sample 7"):
        to_mono_16k(stereo, 48000)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(4, dtype=np.complex64),
        np.zeros(4, dtype=bool),
        np.array([0.1, None], dtype=object),
        np.array(["a", "b"]),
        np.zeros(4, dtype=np.int64),
        np.zeros(4, dtype=np.uint16),
        [1, 2, 3],
    ],
)
def test_bad_dtypes(bad: object) -> None:
    dtype = np.asarray(bad).dtype
    with pytest.raises(AudioFormatError, match="dtype") as info:
        to_mono_16k(bad, 16000)
    assert str(dtype) in str(info.value) and "int16" in str(info.value)


@pytest.mark.parametrize(
    ("rate", "keyword"),
    [
        (100, "out of range"),
        (400000, "out of range"),
        (16000.5, "whole number"),
        ("16000", "int"),
        (None, "int"),
        (True, "int"),
        (float("nan"), "whole number"),
    ],
)
def test_bad_sample_rates(rate: object, keyword: str) -> None:
    with pytest.raises(AudioFormatError, match=keyword):
        to_mono_16k(np.zeros(10, np.float32), rate)  # type: ignore[arg-type]


def test_bad_shapes_and_channels() -> None:
    with pytest.raises(AudioFormatError, match="3 dimensions"):
        to_mono_16k(np.zeros((2, 3, 4), np.float32), 16000)
    with pytest.raises(AudioFormatError, match="scalar"):
        to_mono_16k(np.float32(0.1), 16000)
    with pytest.raises(AudioFormatError, match="multiple of channels=2"):
        to_mono_16k(np.zeros(5, np.float32), 16000, channels=2)
    with pytest.raises(AudioFormatError, match="positive int"):
        to_mono_16k(np.zeros(4, np.float32), 16000, channels=0)
    with pytest.raises(AudioFormatError, match="transpose"):
        to_mono_16k(np.zeros((100, 2), np.float32), 16000, channels=3)
    with pytest.raises(AudioFormatError, match=r"audio\.T"):
        to_mono_16k(np.zeros((2, 4800), np.float32), 48000)
    with pytest.raises(AudioFormatError, match="odd length"):
        to_mono_16k(b"\x00\x01\x02", 16000)
    with pytest.raises(AudioFormatError, match="equal-length"):
        to_mono_16k([[0.1, 0.2], [0.3]], 16000)


def test_error_is_value_error() -> None:
    assert issubclass(AudioFormatError, ValueError)


# --------------------------------------------------------------------------------- log-mel


def _slaney_hz_to_mel(f: float) -> float:
    if f < 1000.0:
        return 3.0 * f / 200.0
    return 15.0 + 27.0 * math.log(f / 1000.0) / math.log(6.4)


def _slaney_mel_to_hz(m: float) -> float:
    if m < 15.0:
        return 200.0 * m / 3.0
    return 1000.0 * 6.4 ** ((m - 15.0) / 27.0)


def _reference_filterbank() -> np.ndarray:
    lo, hi = _slaney_hz_to_mel(0.0), _slaney_hz_to_mel(8000.0)
    edges = [_slaney_mel_to_hz(lo + (hi - lo) * i / (N_MELS + 1)) for i in range(N_MELS + 2)]
    freqs = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    fb = np.zeros((N_MELS, len(freqs)))
    for b in range(N_MELS):
        left, centre, right = edges[b], edges[b + 1], edges[b + 2]
        for j, f in enumerate(freqs):
            if left < f <= centre:
                w = (f - left) / (centre - left)
            elif centre < f < right:
                w = (right - f) / (right - centre)
            else:
                w = 0.0
            fb[b, j] = w * 2.0 / (right - left)
    return fb


def _reference_mel_power(x: np.ndarray) -> np.ndarray:
    window = get_window("hann", WIN_LENGTH, fftbins=True)
    padded = np.concatenate([np.zeros(WIN_LENGTH - HOP_LENGTH), x.astype(np.float64)])
    fb = _reference_filterbank()
    frames = []
    for k in range(len(x) // HOP_LENGTH):
        seg = padded[k * HOP_LENGTH : k * HOP_LENGTH + WIN_LENGTH] * window
        spec = np.abs(np.fft.rfft(seg, n=N_FFT)) ** 2
        frames.append(fb @ spec)
    return np.array(frames)


def test_log_mel_matches_independent_reference() -> None:
    x = _chirp_noise(24000 + 77)
    ref_power = _reference_mel_power(x)
    ours = log_mel(x)
    assert ours.shape == (len(x) // HOP_LENGTH, N_MELS) == ref_power.shape
    assert ours.dtype == np.float32
    valid = ref_power > 1e-6
    assert valid.mean() > 0.8
    diff = np.abs(ours - np.log(np.maximum(ref_power, 1e-10)))
    assert diff[valid].max() < 1e-3
    # The silent gap hits the floor exactly.
    assert np.isclose(ours.min(), np.log(1e-10), atol=1e-4)


def test_log_mel_batch_and_impulse_alignment() -> None:
    x = np.zeros(3200, dtype=np.float32)
    x[1000] = 1.0
    mel = log_mel(x)
    floor = math.log(1e-10)
    # Frame k covers [160k - 240, 160k + 160): only frames 6 and 7 contain sample 1000.
    hit = np.where(mel.max(axis=1) > floor + 1.0)[0]
    assert hit.tolist() == [6, 7]
    module = LogMel()
    out = module(np.stack([x, _chirp_noise(3200)]))
    assert out.shape == (2, 20, 80) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], mel, atol=1e-5)


def test_log_mel_short_inputs() -> None:
    module = LogMel()
    for n in (0, 1, 159, 160, 161, 399, 400):
        assert module(np.zeros((2, n), np.float32)).shape == (2, n // HOP_LENGTH, N_MELS)
    assert log_mel(np.zeros(100, np.float32)).shape == (0, N_MELS)
    with pytest.raises(AudioFormatError, match="to_mono_16k"):
        log_mel(np.zeros((100, 2), np.float32))


def test_log_mel_is_causal() -> None:
    x = _chirp_noise(8000, seed=3)[None]
    module = LogMel()
    full = module(x)
    for n in (1000, 3333, 6400):
        prefix = module(x[:, :n])
        assert prefix.shape[1] == n // HOP_LENGTH
        np.testing.assert_allclose(prefix, full[:, : n // HOP_LENGTH], atol=1e-4, rtol=0)
    # Changing future samples leaves earlier frames untouched.
    y = x.copy()
    y[:, 4800:] = np.random.default_rng(0).standard_normal((1, 3200))
    np.testing.assert_allclose(module(y)[:, :30], full[:, :30], atol=1e-4, rtol=0)
    assert not np.allclose(module(y)[:, 31], full[:, 31])


def test_mel_to_motion_frames_stacks_in_order() -> None:
    mel = np.arange(2 * 11 * 80, dtype=np.float32).reshape(2, 11, 80)
    stacked = mel_to_motion_frames(mel)
    assert stacked.shape == (2, 2, 320)
    np.testing.assert_array_equal(stacked[1, 1, 80:160], mel[1, 5])
    np.testing.assert_array_equal(stacked[0, 0], mel[0, :4].reshape(-1))
    assert motion_frames(639) == 0 and motion_frames(640) == 1 and motion_frames(48000) == 75


# --------------------------------------------------------------------------------- WAV


def _craft_wav(
    samples: bytes,
    *,
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    extensible: bool = False,
    extra_chunk: bytes = b"",
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits
    )
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0x3) + struct.pack("<H", tag) + guid_tail
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunk
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_round_trip_16bit_mono_and_stereo(tmp_path) -> None:
    mono = (0.8 * np.sin(np.linspace(0, 50, 1001))).astype(np.float32)
    write_wav(tmp_path / "m.wav", mono, 22050)
    got, rate = read_wav(tmp_path / "m.wav")
    assert rate == 22050 and got.shape == (1001, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], mono, atol=0.5 / 32768 + 1e-7)

    stereo = np.stack([mono, -mono * 0.5], axis=1)
    write_wav(str(tmp_path / "s.wav"), stereo, 48000)
    got, rate = read_wav(str(tmp_path / "s.wav"))
    assert rate == 48000 and got.shape == (1001, 2)
    np.testing.assert_allclose(got, stereo, atol=0.5 / 32768 + 1e-7)

    pcm = np.array([[1, -2], [32767, -32768]], dtype=np.int16)
    write_wav(tmp_path / "i.wav", pcm, 16000)
    got, _ = read_wav(tmp_path / "i.wav")
    np.testing.assert_array_equal(np.round(got * 32768).astype(np.int16), pcm)

    clipped = np.array([2.0, -3.0], dtype=np.float32)
    write_wav(tmp_path / "c.wav", clipped, 16000)
    got, _ = read_wav(tmp_path / "c.wav")
    np.testing.assert_allclose(got[:, 0], [32767 / 32768, -1.0])


def test_wav_24bit_and_32bit_pcm(tmp_path) -> None:
    values = np.array([0, 1, -1, 2**23 - 1, -(2**23), 1234567], dtype=np.int64)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in values)
    (tmp_path / "a.wav").write_bytes(_craft_wav(raw, tag=1, channels=2, rate=44100, bits=24))
    got, rate = read_wav(tmp_path / "a.wav")
    assert rate == 44100 and got.shape == (3, 2)
    np.testing.assert_allclose(got.reshape(-1), values / 2**23, rtol=1e-6)

    v32 = np.array([0, 2**30, -(2**31), 2**31 - 1], dtype="<i4")
    (tmp_path / "b.wav").write_bytes(
        _craft_wav(v32.tobytes(), tag=1, channels=1, rate=8000, bits=32)
    )
    got, _ = read_wav(tmp_path / "b.wav")
    np.testing.assert_allclose(got[:, 0], v32 / 2**31, rtol=1e-6)


def test_wav_float_and_8bit(tmp_path) -> None:
    f32 = np.array([0.5, -0.25, 1.5, -1.0], dtype="<f4")
    (tmp_path / "f.wav").write_bytes(
        _craft_wav(f32.tobytes(), tag=3, channels=1, rate=16000, bits=32)
    )
    got, _ = read_wav(tmp_path / "f.wav")
    np.testing.assert_array_equal(got[:, 0], f32)
    f64 = np.array([0.125, -0.75], dtype="<f8")
    (tmp_path / "d.wav").write_bytes(
        _craft_wav(f64.tobytes(), tag=3, channels=2, rate=16000, bits=64)
    )
    got, _ = read_wav(tmp_path / "d.wav")
    np.testing.assert_array_equal(got, [[0.125, -0.75]])
    u8 = bytes([128, 255, 0, 64])
    (tmp_path / "u.wav").write_bytes(_craft_wav(u8, tag=1, channels=1, rate=8000, bits=8))
    got, rate = read_wav(tmp_path / "u.wav")
    assert rate == 8000
    np.testing.assert_allclose(got[:, 0], [0.0, 127 / 128, -1.0, -0.5])


def test_wav_extensible_and_unknown_chunks(tmp_path) -> None:
    pcm = np.array([100, -200, 300, -400], dtype="<i2")
    odd_list = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # odd size + pad byte
    blob = _craft_wav(
        pcm.tobytes(), tag=1, channels=2, rate=16000, bits=16, extensible=True, extra_chunk=odd_list
    )
    (tmp_path / "x.wav").write_bytes(blob + b"junk" + struct.pack("<I", 2) + b"zz")
    got, rate = read_wav(tmp_path / "x.wav")
    assert rate == 16000 and got.shape == (2, 2)
    np.testing.assert_allclose(got.reshape(-1), pcm / 32768)

    f32 = np.array([0.5, -0.5], dtype="<f4")
    (tmp_path / "xf.wav").write_bytes(
        _craft_wav(f32.tobytes(), tag=3, channels=1, rate=16000, bits=32, extensible=True)
    )
    np.testing.assert_array_equal(read_wav(tmp_path / "xf.wav")[0][:, 0], f32)


def test_load_audio_converts_to_mono_16k(tmp_path) -> None:
    x = _tones([300.0], 44100, 44100)
    write_wav(tmp_path / "in.wav", np.stack([x, x], axis=1), 44100)
    out = load_audio(tmp_path / "in.wav")
    assert out.dtype == np.float32 and out.shape == (16000,)
    ideal = _tones([300.0], 16000, 16000)
    assert np.max(np.abs(out[400:-400] - ideal[400:-400])) < 1e-3


def test_wav_errors(tmp_path) -> None:
    good = tmp_path / "good.wav"
    write_wav(good, np.zeros(1000, np.float32), 16000)
    blob = good.read_bytes()

    (tmp_path / "half.wav").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioFormatError, match="truncated"):
        read_wav(tmp_path / "half.wav")
    (tmp_path / "head.wav").write_bytes(blob[:30])
    with pytest.raises(AudioFormatError, match="truncated"):
        read_wav(tmp_path / "head.wav")
    (tmp_path / "tiny.wav").write_bytes(blob[:6])
    with pytest.raises(AudioFormatError, match="ffmpeg"):
        read_wav(tmp_path / "tiny.wav")

    (tmp_path / "notes.txt").write_text("hello, this is not audio\n")
    with pytest.raises(AudioFormatError, match="not a RIFF/WAVE.*ffmpeg"):
        read_wav(tmp_path / "notes.txt")
    (tmp_path / "song.mp3").write_bytes(b"ID3\x04\x00" + bytes(64))
    with pytest.raises(AudioFormatError, match="MP3.*ffmpeg -i"):
        load_audio(tmp_path / "song.mp3")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioFormatError, match="empty"):
        read_wav(tmp_path / "empty.wav")

    mulaw = _craft_wav(bytes(8), tag=7, channels=1, rate=8000, bits=8)
    (tmp_path / "mulaw.wav").write_bytes(mulaw)
    with pytest.raises(AudioFormatError, match="mu-law.*ffmpeg"):
        read_wav(tmp_path / "mulaw.wav")
    odd_bits = _craft_wav(bytes(12), tag=1, channels=1, rate=8000, bits=12)
    (tmp_path / "b12.wav").write_bytes(odd_bits)
    with pytest.raises(AudioFormatError, match="12-bit"):
        read_wav(tmp_path / "b12.wav")

    with pytest.raises(AudioFormatError, match="NaN"):
        write_wav(tmp_path / "nan.wav", np.array([np.nan], np.float32), 16000)
    with pytest.raises(AudioFormatError, match="sample_rate"):
        write_wav(tmp_path / "r.wav", np.zeros(4, np.float32), 0)
