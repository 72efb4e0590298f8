"""Streams of audio in chunks: a seamless resampler and the two-channel input of an agent.

Resampling each chunk on its own zero-pads both of its ends, which smears a few milliseconds at
every boundary (40 % of a 10 ms chunk). :class:`StreamResampler` keeps the filter's history and
holds back the few samples whose filter window reaches past what has arrived, so a stream cut
into any chunks resamples to the same samples as the whole signal at once.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .convert import AudioFormatError, _polyphase_filter, resample, to_mono
from .mel import SAMPLE_RATE

# Values of gathered filter windows per block (4 Mi float32 = 16 MB of temporary memory).
_BLOCK_ELEMENTS = 1 << 22


def take_samples(chunks: deque[np.ndarray], n: int) -> tuple[np.ndarray, int]:
    """The oldest ``n`` samples of a queue of chunks, removed from it: (samples, how many were
    there); a queue that runs short is padded with silence."""
    out = np.zeros(n, np.float32)
    got = 0
    while got < n and chunks:
        c = chunks[0]
        k = min(n - got, len(c))
        out[got : got + k] = c[:k]
        got += k
        if k == len(c):
            chunks.popleft()
        else:
            chunks[0] = c[k:]
    return out, got


class StreamResampler:
    """Chunk-by-chunk resampling equal to :func:`~infp_sdk.audio.resample` of the whole stream.

    ``process(chunk)`` returns the output samples whose filter window has fully arrived (about
    2 ms behind the input); ``flush()`` returns the rest, treating the future as silence.
    """

    def __init__(self, orig_sr: int, target_sr: int):
        g = math.gcd(int(orig_sr), int(target_sr))
        self.orig_sr, self.target_sr = int(orig_sr), int(target_sr)
        self.up, self.down = self.target_sr // g, self.orig_sr // g
        self.identity = self.up == self.down
        if not self.identity:
            h, self.half_len, self.taps = _polyphase_filter(self.up, self.down)
            # output k uses the coefficients of its polyphase branch k mod up
            k = np.arange(self.up, dtype=np.int64)
            index = (k * self.down + self.half_len - self._first_input(k) * self.up)[:, None] - (
                self.up * np.arange(self.taps)[None, :]
            )
            self._coeffs = np.where(index >= 0, h[np.clip(index, 0, None)], 0.0).astype(np.float32)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # input index of _buf[0]
        self.received = 0  # input samples so far
        self.emitted = 0  # output samples so far

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Take float32 mono input; return the output samples that became computable."""
        chunk = np.asarray(chunk, np.float32)
        self.received += len(chunk)
        if self.identity:
            self.emitted += len(chunk)
            return chunk.copy()
        self._buf = np.concatenate([self._buf, chunk])
        # output k reads inputs first_input(k) .. first_input(k) + taps - 1
        last = ((self.received - self.taps) * self.up + self.half_len) // self.down
        return self._outputs(max(last + 1, self.emitted))

    def flush(self) -> np.ndarray:
        """The remaining output of a finished stream (zeros beyond the last input)."""
        if self.identity:
            return np.zeros(0, np.float32)
        return self._outputs(-(-self.received * self.up // self.down))

    def _first_input(self, k: np.ndarray) -> np.ndarray:
        return -((self.half_len - k * self.down) // self.up)

    def _outputs(self, stop: int) -> np.ndarray:
        if stop <= self.emitted:
            return np.zeros(0, np.float32)
        start, n = self.emitted, stop - self.emitted
        first = int(self._first_input(np.int64(start))) - self._buf_start
        last = int(self._first_input(np.int64(stop - 1))) - self._buf_start
        # inputs before the stream's start and after its end (on flush) are silence
        pad_left = max(0, -first)
        pad_right = max(0, last + self.taps - len(self._buf))
        padded = np.pad(self._buf, (pad_left, pad_right))
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.taps)  # a view, no copy
        out = np.empty(n, np.float32)
        # Blocks of rows bound the temporary memory (~16 MB) whatever the chunk's length.
        rows = max(1, _BLOCK_ELEMENTS // self.taps)
        if n < 4 * self.up:
            # short chunks: gather each output's window directly
            for a in range(0, n, rows):
                k = np.arange(start + a, start + min(n, a + rows), dtype=np.int64)
                idx = self._first_input(k) - self._buf_start + pad_left
                out[a : a + len(k)] = np.einsum("ij,ij->i", windows[idx], self._coeffs[k % self.up])
        else:
            # long chunks: one strided matrix-vector product per polyphase branch
            for r in range(self.up):
                k0 = start + r
                count = len(range(r, n, self.up))
                s0 = int(self._first_input(np.int64(k0))) - self._buf_start + pad_left
                coeffs = self._coeffs[k0 % self.up]
                branch = np.empty(count, np.float32)
                for a in range(0, count, rows):
                    b = min(count, a + rows)
                    block = windows[s0 + a * self.down : s0 + (b - 1) * self.down + 1 : self.down]
                    branch[a:b] = block @ coeffs
                out[r :: self.up] = branch
        self.emitted = stop
        keep_from = int(self._first_input(np.int64(stop))) - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out


class _Channel:
    """One side of the conversation: its rate (fixed by its first audio) and 16 kHz samples."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self.resampler: StreamResampler | None = None
        self.ready = np.zeros(0, np.float32)
        self._silence_debt = 0.0  # fractional samples of silence owed at this channel's rate

    def audio(self, samples: np.ndarray, rate: int) -> None:
        if self.resampler is None:
            self.rate = rate
            self.resampler = StreamResampler(rate, SAMPLE_RATE)
        self._append(self.resampler.process(samples))

    def silence(self, samples: int, rate: int) -> None:
        """Silence lasting ``samples`` at ``rate`` (through the resampler, so in time order)."""
        own_rate = self.rate or SAMPLE_RATE
        self._silence_debt += samples * own_rate / rate
        count = int(self._silence_debt)
        self._silence_debt -= count
        zeros = np.zeros(count, np.float32)
        self._append(zeros if self.resampler is None else self.resampler.process(zeros))

    def flush(self) -> None:
        if self.resampler is not None:
            self._append(self.resampler.flush())

    def _append(self, samples: np.ndarray) -> None:
        if len(samples):
            self.ready = np.concatenate([self.ready, samples])


class DuplexInput:
    """Own and partner audio in chunks at any rate -> aligned pairs of 16 kHz mono float32.

    Each channel's rate is fixed by the first audio pushed for it; another rate for that channel
    later is an error (call :meth:`reset` to start over at a new rate). A channel left out of a
    push is silence for the chunk's duration. Pairs come out as soon as both channels have the
    samples (a resampled channel lags its input by about 2 ms until :meth:`flush`).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._own, self._partner = _Channel(), _Channel()

    def push(
        self, own=None, partner=None, sample_rate: int = SAMPLE_RATE, channels: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Convert and queue a chunk; return the (own, partner) 16 kHz samples now aligned.

        Raises :class:`AudioFormatError` (and keeps its state) on bad audio or a rate change.
        """
        converted = [
            None if x is None else to_mono(x, sample_rate, channels=channels)
            for x in (own, partner)
        ]
        rate = int(sample_rate)
        sides = ((self._own, converted[0], "own"), (self._partner, converted[1], "partner"))
        for channel, samples, name in sides:
            if samples is not None and channel.rate not in (None, rate):
                raise AudioFormatError(
                    f"{name} audio changed sample rate mid-stream, from {channel.rate} Hz to "
                    f"{rate} Hz: keep one rate per channel, or call reset() before switching"
                )
        n = max((len(x) for x in converted if x is not None), default=0)
        if n:
            for channel, samples, _ in sides:
                if samples is None:
                    channel.silence(n, rate)
                else:
                    channel.audio(np.pad(samples, (0, n - len(samples))), rate)
        return self._take()

    def silence_own(self) -> None:
        """Own samples queued but not yet handed out become silence (an interruption)."""
        self._own.ready[:] = 0.0

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of input: everything left, the shorter channel padded with silence."""
        for channel in (self._own, self._partner):
            channel.flush()
        n = max(len(self._own.ready), len(self._partner.ready))
        for channel in (self._own, self._partner):
            channel.ready = np.pad(channel.ready, (0, n - len(channel.ready)))
        return self._take()

    def _take(self) -> tuple[np.ndarray, np.ndarray]:
        n = min(len(self._own.ready), len(self._partner.ready))
        out = self._own.ready[:n], self._partner.ready[:n]
        self._own.ready, self._partner.ready = self._own.ready[n:], self._partner.ready[n:]
        return out


__all__ = ["DuplexInput", "StreamResampler", "resample"]
