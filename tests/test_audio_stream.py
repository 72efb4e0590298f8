"""Audio in chunks: the seamless stream resampler and the two-channel input."""

from __future__ import annotations

import numpy as np
import pytest

from infp_sdk.audio import AudioFormatError, resample
from infp_sdk.audio.stream import DuplexInput, StreamResampler


def chunked(x: np.ndarray, sizes: list[int]):
    i, k = 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        yield x[i : i + n]
        i, k = i + n, k + 1


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 44101, 16000])
@pytest.mark.parametrize("sizes", [[7], [441, 13, 2000], [10**6]])
def test_stream_resampling_equals_resampling_the_whole_signal(rate, sizes):
    rng = np.random.default_rng(rate)
    x = (rng.standard_normal(rate) * 0.3).astype(np.float32)
    whole = resample(x, rate, 16000)
    r = StreamResampler(rate, 16000)
    parts = [r.process(c) for c in chunked(x, sizes)] + [r.flush()]
    out = np.concatenate(parts)
    assert out.shape == whole.shape
    np.testing.assert_allclose(out, whole, atol=2e-6)
    if rate != 16000:  # it holds back only the filter's reach, a few ms
        held = len(whole) - sum(len(p) for p in parts[:-1])
        assert 0 < held < 0.005 * 16000


def test_per_chunk_resampling_would_leave_seams():
    """Why the stream resampler exists: 10 ms chunks resampled alone are audibly wrong."""
    x = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    whole = resample(x, 48000, 16000)
    alone = np.concatenate([resample(c, 48000, 16000) for c in chunked(x, [480])])
    assert np.abs(alone - whole).max() > 0.1


def test_duplex_input_aligns_channels_at_different_rates():
    rng = np.random.default_rng(1)
    own24 = (rng.standard_normal(24000) * 0.3).astype(np.float32)
    partner48 = (rng.standard_normal(48000) * 0.3).astype(np.float32)
    duplex = DuplexInput()
    own_out, partner_out = [], []
    # own arrives in 20 ms chunks at 24 kHz, the partner in 10 ms chunks at 48 kHz, interleaved
    for k in range(50):
        o, p = duplex.push(own=own24[k * 480 : (k + 1) * 480], sample_rate=24000)
        own_out.append(o), partner_out.append(p)
        for j in range(2):
            piece = partner48[(2 * k + j) * 480 : (2 * k + j + 1) * 480]
            o, p = duplex.push(partner=piece, sample_rate=48000)
            own_out.append(o), partner_out.append(p)
    o, p = duplex.flush()
    own_out.append(o), partner_out.append(p)
    own16, partner16 = np.concatenate(own_out), np.concatenate(partner_out)
    # the timeline: each side's chunk, then silence while the other side's chunks play
    own_track = np.concatenate([np.r_[c, np.zeros(480, np.float32)] for c in chunked(own24, [480])])
    partner_track = np.concatenate(
        [np.r_[np.zeros(960, np.float32), c] for c in chunked(partner48, [960])]
    )
    np.testing.assert_allclose(own16, resample(own_track, 24000, 16000), atol=2e-6)
    partner_expected = resample(partner_track, 48000, 16000)
    # the partner had no rate yet during own's first chunk: its silence went out as plain zeros,
    # without the 2 ms pre-echo the filter would have put there
    assert not partner16[:320].any()
    np.testing.assert_allclose(partner16[320:], partner_expected[320:], atol=2e-6)


def test_a_rate_change_on_one_channel_is_refused_and_nothing_is_lost():
    duplex = DuplexInput()
    a, _ = duplex.push(own=np.ones(4800, np.float32) * 0.1, sample_rate=48000)
    with pytest.raises(AudioFormatError, match="48000 Hz to 44100 Hz.*reset"):
        duplex.push(own=np.ones(441, np.float32), sample_rate=44100)
    # the partner channel may still use its own rate, and own carries on at 48 kHz
    b, _ = duplex.push(partner=np.zeros(2205, np.float32), sample_rate=22050)
    c, _ = duplex.push(own=np.ones(4800, np.float32) * 0.1, sample_rate=48000)
    d, _ = duplex.flush()
    total = np.concatenate([a, b, c, d])
    assert len(total) == 3 * 1600
    np.testing.assert_allclose(total[200:1500], 0.1, atol=1e-3)  # no seam, nothing dropped
    np.testing.assert_allclose(total[1700:3000], 0.0, atol=1e-3)  # the partner's turn
    np.testing.assert_allclose(total[3400:4600], 0.1, atol=1e-3)
    duplex.reset()
    duplex.push(own=np.ones(441, np.float32), sample_rate=44100)  # a new stream, a new rate
