"""Causal log-mel front end in NumPy.

The front end is the single source of truth for the audio clock. Everything downstream (the model,
the runtime, the streaming buffers) imports these constants instead of restating them.

Timing contract
---------------
The input is mono float32 audio at :data:`SAMPLE_RATE`. The signal is left-padded with
``WIN_LENGTH - HOP_LENGTH`` zeros, so mel frame ``k`` covers samples
``[HOP_LENGTH * k - 240, HOP_LENGTH * (k + 1))``: it *ends* at sample ``160 * (k + 1)`` and never
looks ahead. A signal of ``S`` samples gives ``S // HOP_LENGTH`` frames (a trailing partial hop is
dropped), and appending samples never changes frames already produced, which is what streaming
needs. Motion frame ``m`` (at ``FPS``) uses mel frames ``4m .. 4m + 3``.

Feature definition
------------------
periodic Hann window of ``WIN_LENGTH`` samples, zero-padded to ``N_FFT``; power spectrum
``|X|^2``; Slaney-scale mel filterbank with Slaney area normalisation (librosa's default),
``0 .. 8000`` Hz, ``N_MELS`` bins; then ``log(max(mel, 1e-10))`` (natural log, so silence is
``log(1e-10) ~= -23.03``).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from infp_sdk.motion import FPS

SAMPLE_RATE = 16000
"""Sample rate (Hz) of everything after :func:`infp_sdk.audio.to_mono_16k`."""
N_MELS = 80
"""Number of mel bins."""
WIN_LENGTH = 400
"""Analysis window in samples (25 ms)."""
HOP_LENGTH = 160
"""Hop between mel frames in samples (10 ms)."""
N_FFT = 512
"""FFT size; the window is zero-padded to this length."""
MEL_FPS = SAMPLE_RATE // HOP_LENGTH
"""Mel frames per second (100)."""
MEL_FRAMES_PER_MOTION_FRAME = MEL_FPS // FPS
"""Mel frames per motion frame (4)."""
SAMPLES_PER_MOTION_FRAME = SAMPLE_RATE // FPS
"""Audio samples per motion frame (640)."""
F_MIN = 0.0
"""Lowest filterbank edge in Hz."""
F_MAX = SAMPLE_RATE / 2
"""Highest filterbank edge in Hz."""
LOG_FLOOR = 1e-10
"""Mel energies are clamped to this before the log."""

# A change to FPS or the hop must not silently misalign audio and motion.
assert MEL_FPS * HOP_LENGTH == SAMPLE_RATE
assert MEL_FRAMES_PER_MOTION_FRAME * FPS == MEL_FPS
assert SAMPLES_PER_MOTION_FRAME == MEL_FRAMES_PER_MOTION_FRAME * HOP_LENGTH

_N_FREQS = N_FFT // 2 + 1
_LEFT_PAD = WIN_LENGTH - HOP_LENGTH

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Convert Hz to Slaney mels (linear below 1 kHz, log above)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = F_MIN,
    fmax: float | None = None,
) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, shape ``[n_mels, n_fft // 2 + 1]`` float64."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    offsets = edges_hz[:, None] - fft_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: every filter has unit area in Hz, so wide high bands are not louder.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights


class LogMel:
    """Causal log-mel spectrogram in NumPy: ``[B, S]`` float32 16 kHz -> ``[B, S // 160, 80]``.

    Frames are strided views of the left-padded signal; each is windowed, zero-padded to
    ``N_FFT`` by the real FFT, and its power spectrum goes through the mel filterbank. See the
    module docstring for the exact framing and feature definition. No torch: training, the
    offline tools and the streaming runtime all compute the features here, so they cannot
    drift apart.
    """

    def __init__(self) -> None:
        n = np.arange(WIN_LENGTH)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)).astype(np.float32)
        self.mel_fb = mel_filterbank().T.astype(np.float32).copy()  # (n_freqs, N_MELS)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Return log-mel features ``[B, S // HOP_LENGTH, N_MELS]`` for ``wave`` ``[B, S]``."""
        wave = np.asarray(wave, dtype=np.float32)
        batch, samples = wave.shape
        count = samples // HOP_LENGTH
        if count == 0:
            return np.zeros((batch, 0, N_MELS), np.float32)
        padded = np.pad(wave, ((0, 0), (_LEFT_PAD, 0)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, WIN_LENGTH, axis=1)
        frames = frames[:, : count * HOP_LENGTH : HOP_LENGTH] * self.window  # (B, count, WIN)
        spectrum = np.fft.rfft(frames, n=N_FFT, axis=-1)  # periodic Hann, zero-padded to N_FFT
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        return np.log(np.maximum(power @ self.mel_fb, np.float32(LOG_FLOOR)))


_SHARED: list[LogMel] = []
_SHARED_LOCK = threading.Lock()


def _shared_log_mel() -> LogMel:
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(LogMel())
        return _SHARED[0]


def log_mel(audio_16k: np.ndarray) -> np.ndarray:
    """Log-mel features ``[S // 160, 80]`` float32 of mono 16 kHz audio.

    Convert arbitrary input with :func:`infp_sdk.audio.to_mono_16k` first.
    """
    wave = np.asarray(audio_16k, dtype=np.float32)
    if wave.ndim != 1:
        from infp_sdk.audio.convert import AudioFormatError

        raise AudioFormatError(
            f"log_mel expects 1-D mono 16 kHz audio, got shape {wave.shape}: "
            "convert it with to_mono_16k(audio, sample_rate) first"
        )
    return _shared_log_mel()(wave[None])[0]


def motion_frames(n_samples: int) -> int:
    """Number of whole motion frames covered by ``n_samples`` samples at 16 kHz."""
    return int(n_samples) // SAMPLES_PER_MOTION_FRAME


def mel_to_motion_frames(mel: np.ndarray) -> np.ndarray:
    """Stack each group of 4 mel frames: ``[B, T, 80] -> [B, T // 4, 4 * 80]``.

    Row ``m`` is mel frames ``4m, 4m+1, 4m+2, 4m+3`` concatenated in time order; a trailing partial
    group is dropped (it belongs to a motion frame that is not complete yet).
    """
    batch, frames, bins = mel.shape
    whole = frames // MEL_FRAMES_PER_MOTION_FRAME
    used = mel[:, : whole * MEL_FRAMES_PER_MOTION_FRAME]
    return used.reshape(batch, whole, MEL_FRAMES_PER_MOTION_FRAME * bins)
