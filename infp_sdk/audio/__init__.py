"""Audio input: format conversion, resampling, WAV I/O and the causal log-mel front end.

Everything the model hears goes through :func:`to_mono_16k` (mono float32 at 16 kHz) and then
:class:`LogMel` (100 mel frames per second, 4 per motion frame at ``FPS`` = 25). The timing
constants below are defined once, in :mod:`infp_sdk.audio.mel`.
"""

from infp_sdk.audio.convert import AudioFormatError, resample, to_mono_16k
from infp_sdk.audio.mel import (
    HOP_LENGTH,
    MEL_FPS,
    MEL_FRAMES_PER_MOTION_FRAME,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    SAMPLES_PER_MOTION_FRAME,
    WIN_LENGTH,
    LogMel,
    log_mel,
    mel_to_motion_frames,
    motion_frames,
)
from infp_sdk.audio.wav import load_audio, read_wav, write_wav

__all__ = [
    "HOP_LENGTH",
    "MEL_FPS",
    "MEL_FRAMES_PER_MOTION_FRAME",
    "N_FFT",
    "N_MELS",
    "SAMPLES_PER_MOTION_FRAME",
    "SAMPLE_RATE",
    "WIN_LENGTH",
    "AudioFormatError",
    "LogMel",
    "load_audio",
    "log_mel",
    "mel_to_motion_frames",
    "motion_frames",
    "read_wav",
    "resample",
    "to_mono_16k",
    "write_wav",
]
