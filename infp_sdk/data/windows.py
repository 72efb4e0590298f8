"""Training windows cut from dyadic sessions.

A session is the log-mel of both channels plus the motion latents of the "own" side at 25 fps.
A window is N frames of motion with what the model sees when it generates them in a stream:
``audio_context`` frames of past audio and ``lookahead`` frames of future audio for both
channels, and the ``prev_frames`` latents before it (padded exactly as the runtime pads them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..audio import MEL_FRAMES_PER_MOTION_FRAME, LogMel
from ..model.config import LOG_MEL_FLOOR, INFPConfig


@dataclass
class Session:
    """One side of a conversation: mel (M, 80) per channel, motion (T, D), speaking (T,)."""

    mel_own: torch.Tensor
    mel_partner: torch.Tensor
    motion: torch.Tensor
    speaking: torch.Tensor | None = None

    @classmethod
    def from_audio(
        cls,
        own: np.ndarray,
        partner: np.ndarray,
        motion: np.ndarray,
        speaking: np.ndarray | None = None,
    ) -> Session:
        """Build from 16 kHz mono audio of both channels and (T, D) motion latents."""
        n = max(len(own), len(partner))
        audio = np.stack([np.pad(own, (0, n - len(own))), np.pad(partner, (0, n - len(partner)))])
        mel = torch.from_numpy(LogMel()(audio.astype(np.float32)))
        frames = min(len(motion), mel.shape[1] // MEL_FRAMES_PER_MOTION_FRAME)
        k = frames * MEL_FRAMES_PER_MOTION_FRAME
        return cls(
            mel_own=mel[0, :k],
            mel_partner=mel[1, :k],
            motion=torch.as_tensor(motion[:frames], dtype=torch.float32),
            speaking=None if speaking is None else torch.as_tensor(speaking[:frames]).float(),
        )

    @property
    def frames(self) -> int:
        return self.motion.shape[0]


def cut_window(session: Session, start: int, length: int, config: INFPConfig) -> dict:
    """The window of ``length`` frames starting at ``start`` (unbatched tensors)."""
    k = MEL_FRAMES_PER_MOTION_FRAME
    context, lookahead = config.audio_context, config.encoder.lookahead
    p = config.dit.prev_frames

    def mel_slice(mel: torch.Tensor) -> torch.Tensor:
        lo, hi = (start - context) * k, (start + length + lookahead) * k
        piece = mel[max(lo, 0) : min(hi, mel.shape[0])]
        return torch.nn.functional.pad(
            piece, (0, 0, max(-lo, 0), max(hi - mel.shape[0], 0)), value=LOG_MEL_FLOOR
        )

    motion = session.motion
    if start == 0:
        prev = torch.zeros(p, motion.shape[1])
    else:
        prev = motion[max(start - p, 0) : start]
        if prev.shape[0] < p:
            prev = torch.cat([prev[:1].expand(p - prev.shape[0], -1), prev])
    window = {
        "mel_own": mel_slice(session.mel_own),
        "mel_partner": mel_slice(session.mel_partner),
        "motion": motion[start : start + length],
        "prev": prev,
        "has_prev": torch.tensor(float(start > 0)),
    }
    if session.speaking is not None:
        window["speaking"] = session.speaking[start : start + length]
    return window


def random_batch(
    sessions: list[Session],
    batch_size: int,
    config: INFPConfig,
    generator: torch.Generator,
    reference_frames: int = 50,
    length: int | None = None,
) -> dict[str, torch.Tensor]:
    """A batch of windows from random sessions and positions, each with a style reference.

    Windows have ``length`` frames (default: the model's window). The reference is another
    stretch of the same session's motion (the person's manner).
    """
    n = length or config.window
    items = []
    for _ in range(batch_size):
        s = sessions[int(torch.randint(len(sessions), (1,), generator=generator))]
        if s.frames < n:
            raise ValueError(f"a session has {s.frames} frames, fewer than the window ({n})")
        start = int(torch.randint(s.frames - n + 1, (1,), generator=generator))
        item = cut_window(s, start, n, config)
        ref_len = min(reference_frames, s.frames)
        ref_start = int(torch.randint(s.frames - ref_len + 1, (1,), generator=generator))
        item["reference"] = s.motion[ref_start : ref_start + ref_len]
        items.append(item)
    keys = items[0].keys()
    if any(it.keys() != keys for it in items):
        keys = keys - {"speaking"}  # mixed sources: supervise speaking only when all have it
    return {key: torch.stack([it[key] for it in items]) for key in keys}
