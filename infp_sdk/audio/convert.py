"""Audio format conversion and resampling to the model's mono 16 kHz float32 input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from infp_sdk.audio.mel import SAMPLE_RATE

MIN_SAMPLE_RATE = 4000
"""Lowest accepted input sample rate in Hz."""
MAX_SAMPLE_RATE = 192000
"""Highest accepted input sample rate in Hz."""

ACCEPTED_DTYPES = "int16, int32, uint8, float16, float32, float64"

# Resampler design: Kaiser-windowed sinc with this many zero crossings on each side of the centre
# (at the lower of the two rates). beta 8.6 gives ~85 dB stopband; the cutoff sits slightly below
# the lower Nyquist so the transition band is mostly cut before aliasing can fold back.
_ZERO_CROSSINGS = 32
_KAISER_BETA = 8.6
_ROLLOFF = 0.96
# Rows of the gathered window matrix per BLAS call (bounds temporary memory to ~16 MB).
_CHUNK_ELEMENTS = 1 << 22


class AudioFormatError(ValueError):
    """Audio input that the SDK cannot use; the message names the problem and how to fix it."""


def _check_sample_rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(
        sample_rate, (int, float, np.integer, np.floating)
    ):
        raise AudioFormatError(
            f"sample_rate must be an int in Hz, got {type(sample_rate).__name__} "
            f"{sample_rate!r}: pass the rate of your source, e.g. sample_rate=48000"
        )
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate != int(rate):
        raise AudioFormatError(
            f"sample_rate must be a whole number of Hz, got {sample_rate!r}: "
            "pass e.g. sample_rate=44100"
        )
    rate_int = int(rate)
    if not MIN_SAMPLE_RATE <= rate_int <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"sample_rate {rate_int} Hz is out of range [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]: "
            "check that you passed the rate in Hz (e.g. 16000, not 16)"
        )
    return rate_int


def _to_float32(arr: np.ndarray) -> np.ndarray:
    """Scale a supported integer/float array to float32 in about [-1, 1]."""
    dtype = arr.dtype
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return arr.astype(np.float32, copy=False)
    if dtype.kind == "i" and dtype.itemsize == 2:
        return arr.astype(np.float32) / np.float32(32768.0)
    if dtype.kind == "i" and dtype.itemsize == 4:
        # float64 first: int32 has more significant bits than float32 can hold before scaling.
        return (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
    if dtype.kind == "u" and dtype.itemsize == 1:
        return (arr.astype(np.float32) - np.float32(128.0)) / np.float32(128.0)
    hint = ""
    if dtype.kind == "i" and dtype.itemsize == 8:
        hint = " (a Python list of ints becomes int64)"
    raise AudioFormatError(
        f"unsupported audio dtype {dtype}{hint}: accepted dtypes are {ACCEPTED_DTYPES}; "
        "convert first, e.g. np.asarray(x, dtype=np.int16) for PCM samples or "
        "x.astype(np.float32) for values in [-1, 1]"
    )


def _as_array(audio: Any) -> np.ndarray:
    if isinstance(audio, (bytes, bytearray, memoryview)):
        raw = bytes(audio)
        if len(raw) % 2:
            raise AudioFormatError(
                f"bytes input has an odd length ({len(raw)}): it is read as little-endian int16 "
                "PCM (2 bytes per sample), so do not split a sample across chunks"
            )
        return np.frombuffer(raw, dtype="<i2")
    try:
        return np.asarray(audio)
    except (ValueError, TypeError) as exc:
        raise AudioFormatError(
            f"cannot read audio of type {type(audio).__name__} as an array ({exc}): "
            "pass a NumPy array, a list of equal-length rows, or int16 PCM bytes"
        ) from exc


def _check_finite(arr: np.ndarray) -> None:
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    index = int(np.argmax(rows))
    raise AudioFormatError(
        f"audio contains NaN or Inf values at sample {index}: clean the signal "
        "(np.nan_to_num) before pushing it"
    )


def to_mono(audio: Any, sample_rate: int, *, channels: int | None = None) -> np.ndarray:
    """Validate audio and mix it to mono float32 at its own rate (see :func:`to_mono_16k`)."""
    _check_sample_rate(sample_rate)
    if channels is not None:
        if (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or (channels < 1)
        ):
            raise AudioFormatError(
                f"channels must be a positive int, got {channels!r}: "
                "pass e.g. channels=2 for interleaved stereo"
            )
        channels = int(channels)
    arr = _as_array(audio)
    samples = _to_float32(arr)
    if samples.ndim == 0:
        raise AudioFormatError(
            "audio is a scalar, not a signal: pass a 1-D array of samples "
            "(wrap a single sample as [x])"
        )
    if samples.ndim > 2:
        raise AudioFormatError(
            f"audio has {samples.ndim} dimensions (shape {samples.shape}): pass 1-D mono or "
            "2-D (samples, channels); for a batch, convert each item separately"
        )
    if samples.ndim == 1 and channels is not None and channels > 1:
        if samples.shape[0] % channels:
            raise AudioFormatError(
                f"interleaved audio of {samples.shape[0]} values is not a multiple of "
                f"channels={channels}: send whole frames (all channels of each sample) per chunk"
            )
        samples = samples.reshape(-1, channels)
    elif samples.ndim == 2:
        if channels is not None and samples.shape[1] != channels:
            raise AudioFormatError(
                f"2-D audio has shape {samples.shape} but channels={channels}: the layout is "
                "(samples, channels), so transpose channels-first input with audio.T"
            )
        if channels is None and samples.shape[1] > 64 and samples.shape[0] <= 64:
            raise AudioFormatError(
                f"2-D audio of shape {samples.shape} looks like (channels, samples): the layout "
                "is (samples, channels), so pass audio.T"
            )
    _check_finite(samples)
    if samples.ndim == 2:
        if samples.shape[1] == 0:
            raise AudioFormatError(
                f"2-D audio of shape {samples.shape} has no channels: pass (samples, channels) "
                "with at least one channel"
            )
        samples = samples.mean(axis=1, dtype=np.float32)
    if samples.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32)


def to_mono_16k(audio: Any, sample_rate: int, *, channels: int | None = None) -> np.ndarray:
    """Convert audio to the model's input: mono float32 at 16 kHz in about [-1, 1].

    Args:
        audio: A NumPy array or anything ``np.asarray`` accepts, or ``bytes``/``bytearray``/
            ``memoryview`` read as little-endian int16 PCM. Integer samples are scaled by their
            full range (int16 / 32768, int32 / 2**31, uint8 as 8-bit WAV ``(x - 128) / 128``);
            floats are taken as already in [-1, 1]. 1-D is mono (or interleaved when
            ``channels > 1``); 2-D is ``(samples, channels)``. Channels are averaged.
        sample_rate: Rate of ``audio`` in Hz, in [4000, 192000].
        channels: Channel count of interleaved 1-D input (including bytes); checked against the
            second axis of 2-D input.

    Returns:
        1-D float32 array at 16 kHz; empty input gives an empty array.

    Raises:
        AudioFormatError: On an unsupported dtype or shape, a bad rate or channel count, or
            non-finite samples.

    Each call is resampled independently (zero padded at both ends); for a stream in chunks use
    :class:`~infp_sdk.audio.stream.StreamResampler` (the Agent does), which has no seams.
    """
    samples = to_mono(audio, sample_rate, channels=channels)
    rate = int(sample_rate)
    if rate != SAMPLE_RATE and len(samples):
        samples = resample(samples, rate, SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


_FILTER_CACHE: dict[tuple[int, int], tuple[np.ndarray, int, int]] = {}


def _polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """Kaiser-windowed sinc at the upsampled rate; returns ``(h, half_len, taps_per_output)``.

    ``h`` is float64 of length ``2 * half_len + 1`` with DC gain ``up`` (the interpolation gain).
    """
    key = (up, down)
    cached = _FILTER_CACHE.get(key)
    if cached is not None:
        return cached
    period = max(up, down)
    cutoff = _ROLLOFF / period  # fraction of the upsampled Nyquist
    half_len = int(math.ceil(_ZERO_CROSSINGS * period / _ROLLOFF))
    t = np.arange(-half_len, half_len + 1, dtype=np.float64)
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(2 * half_len + 1, _KAISER_BETA)
    h *= up / h.sum()
    taps = -(-(2 * half_len + 1) // up)
    _FILTER_CACHE[key] = (h, half_len, taps)
    return h, half_len, taps


def _positive_rate(rate: Any) -> int:
    ok = not isinstance(rate, (bool, np.bool_)) and isinstance(
        rate, (int, float, np.integer, np.floating)
    )
    if ok and math.isfinite(rate) and rate == int(rate) and rate > 0:
        return int(rate)
    raise AudioFormatError(
        f"resample rates must be positive whole numbers of Hz, got {rate!r}: pass e.g. 48000"
    )


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D signal from ``orig_sr`` to ``target_sr`` with a polyphase Kaiser-sinc filter.

    Same conventions as ``scipy.signal.resample_poly`` with zero padding: the ratio is reduced by
    the gcd to ``up / down``, the filter is centred (no delay) and the output has
    ``ceil(len(x) * up / down)`` samples. The filter has 32 zero crossings per side, ~85 dB of
    stopband attenuation and a cutoff at 0.96 of the lower Nyquist.

    Returns float64 for float64 input, float32 otherwise.
    """
    orig, target = _positive_rate(orig_sr), _positive_rate(target_sr)
    x = np.asarray(x)
    if x.ndim != 1:
        raise AudioFormatError(
            f"resample expects a 1-D signal, got shape {x.shape}: resample each channel "
            "separately or mix to mono first"
        )
    work = np.float64 if x.dtype == np.float64 else np.float32
    x = x.astype(work, copy=False)
    g = math.gcd(orig, target)
    up, down = target // g, orig // g
    if up == down:
        return x.copy()
    n_in = x.shape[0]
    n_out = -(-n_in * up // down)
    if n_in == 0:
        return np.zeros(0, dtype=work)
    h, half_len, taps = _polyphase_filter(up, down)

    # Output k sits at position k*down on the upsampled grid; the input samples under the filter
    # start at n_lo and tap j of them uses h[i0 - j*up]. Outputs with the same k mod up share i0
    # (the same polyphase branch), and within a branch n_lo advances by `down` per output, so each
    # branch is one strided sliding-window matrix times one coefficient vector.
    n_branches = min(up, n_out)
    k0 = np.arange(n_branches, dtype=np.int64)
    m0 = k0 * down
    n_lo0 = -((half_len - m0) // up)
    i0 = m0 + half_len - n_lo0 * up
    tap_index = i0[:, None] - up * np.arange(taps)[None, :]
    coeffs = np.where(tap_index >= 0, h[np.clip(tap_index, 0, None)], 0.0).astype(work)

    pad_left = max(0, -int(n_lo0.min()))
    last_start = int(n_lo0.max()) + down * ((n_out - 1) // up + 1)
    pad_right = max(0, last_start + taps - n_in)
    padded = np.zeros(pad_left + n_in + pad_right, dtype=work)
    padded[pad_left : pad_left + n_in] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)

    out = np.empty(n_out, dtype=work)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // taps)
    for b in range(n_branches):
        count = len(range(b, n_out, up))
        start = int(n_lo0[b]) + pad_left
        branch = np.empty(count, dtype=work)
        for c in range(0, count, rows_per_chunk):
            stop = min(count, c + rows_per_chunk)
            block = windows[start + c * down : start + (stop - 1) * down + 1 : down]
            branch[c:stop] = block @ coeffs[b]
        out[b::up] = branch
    return out
