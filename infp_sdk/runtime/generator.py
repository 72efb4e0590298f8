"""Hop-by-hop motion generation: the loop the streaming Agent and offline jobs share.

A hop of ``n`` frames starting at frame ``s`` needs the log-mel of both channels from
``audio_context`` frames before ``s`` to ``lookahead`` frames after ``s + n``, and the last
``prev_frames`` latents already generated. :class:`MotionStream` keeps exactly that state. The
noise of a hop is drawn from a generator seeded by (seed, first frame), and the mel features are
computed causally, so the frames do not depend on how the audio was chunked on the way in.

Everything here is NumPy: the stream's state lives in host memory and the model is a
:class:`~infp_sdk.runtime.backend.HopModel` (onnxruntime or torch behind it), so the streaming
runtime runs without torch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio import HOP_LENGTH, MEL_FRAMES_PER_MOTION_FRAME, SAMPLES_PER_MOTION_FRAME, LogMel
from ..model.config import LOG_MEL_FLOOR
from ..motion import Frame
from .backend import HopModel, Sampling, as_hop_model

# LogMel frame k reads samples [160k - 240, 160k + 160): two hops of history cover the 240.
_MEL_HISTORY_HOPS = 2
# The mel of a long append is computed in blocks, so a minute of audio pushed at once needs a
# few MB of frames at a time rather than all of them.
_MEL_BLOCK = 1024


@dataclass
class Motion:
    """Generated motion for a recording: latents (T, D) and speaking (T,)."""

    latents: np.ndarray
    speaking: np.ndarray

    def frames(self) -> list[Frame]:
        """One :class:`Frame` per latent (the rig motion space)."""
        return [
            Frame.from_rig_latent(i, self.latents[i], float(self.speaking[i]))
            for i in range(len(self.latents))
        ]


def hop_noise(seed: int, start: int, shape: tuple[int, ...]) -> np.ndarray:
    """The initial noise (float32) for the hop that starts at frame ``start``."""
    rng = np.random.default_rng((seed * 1_000_003 + start) % (2**63))
    return rng.standard_normal(shape, dtype=np.float32)


def prev_context(latents: np.ndarray, prev_frames: int, dim: int) -> tuple[np.ndarray, float]:
    """The continuity condition from the latents so far (T, D) -> ((1, P, D), has_prev).

    Fewer than P latents are padded by repeating the first; none at all is the null condition.
    """
    if latents.shape[0] == 0:
        return np.zeros((1, prev_frames, dim), np.float32), 0.0
    tail = latents[-prev_frames:]
    if tail.shape[0] < prev_frames:
        tail = np.concatenate([np.repeat(tail[:1], prev_frames - tail.shape[0], axis=0), tail])
    return tail[None], 1.0


class MotionStream:
    """Stateful generation: feed 16 kHz audio of both channels, receive (latent, speaking) rows.

    ``feed`` returns the frames that became computable (their audio and look-ahead have
    arrived); ``flush`` ends the stream, treating missing look-ahead as silence.
    """

    def __init__(
        self,
        model: Any,
        *,
        seed: int = 0,
        hop: int | None = None,
        style: np.ndarray | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
    ):
        model = as_hop_model(model)
        cfg = model.config
        self.model: HopModel = model
        self.seed = seed
        self.hop = hop or cfg.hop or cfg.window
        if self.hop < 1:
            raise ValueError(f"hop must be at least 1 frame, got {self.hop}")
        self.sampler, self.steps, self.cfg_scale = sampler, steps, cfg_scale
        self.style = model.style_vector(None) if style is None else style
        self.logmel = LogMel()
        self.reset()

    def reset(self) -> None:
        """Forget all audio and motion; the next frame is frame 0."""
        dim = self.model.config.latent_dim
        self.samples = 0  # samples received per channel
        self._audio = np.zeros((2, _MEL_HISTORY_HOPS * HOP_LENGTH), np.float32)
        self._audio_start = -_MEL_HISTORY_HOPS * HOP_LENGTH  # absolute index of _audio[:, 0]
        self._mel = np.zeros((2, 0, 80), np.float32)
        self._mel_start = 0  # absolute mel frame of _mel[:, 0]
        self._latents = np.zeros((0, dim), np.float32)  # the last prev_frames latents
        self.frames_out = 0

    def silence_own(self) -> None:
        """Treat own audio from the next frame on as silence (the agent was interrupted).

        Audio already received for look-ahead or a partial hop is replaced; frames already
        generated and the audio context before the next frame are kept.
        """
        first_mel = self.frames_out * MEL_FRAMES_PER_MOTION_FRAME
        cut = max(0, first_mel - self._mel_start)
        self._mel[0, cut:] = LOG_MEL_FLOOR
        first_sample = self.frames_out * SAMPLES_PER_MOTION_FRAME - self._audio_start
        self._audio[0, max(0, first_sample) :] = 0.0

    @property
    def style(self) -> np.ndarray:
        """The style vector (1, S) float32, kept with the rest of the stream's state."""
        return self._style

    @style.setter
    def style(self, value: Any) -> None:
        if hasattr(value, "detach"):  # a torch tensor, from code written for the torch model
            value = value.detach().cpu().float().numpy()
        self._style = np.asarray(value, np.float32).reshape(1, -1)

    @property
    def sampling(self) -> Sampling:
        """(sampler, steps, cfg_scale) overrides; hops batch together only when these match."""
        return self.sampler, self.steps, self.cfg_scale

    @property
    def frames_available(self) -> int:
        """Frames whose audio has fully arrived (what ``flush`` generates up to)."""
        return self.samples // SAMPLES_PER_MOTION_FRAME

    @property
    def mel_frames(self) -> int:
        return self._mel_start + self._mel.shape[1]

    def feed(self, own: np.ndarray, partner: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Append equal-length 16 kHz float32 chunks; return the frames now computable."""
        self.append(own, partner)
        out = []
        for _, end in hop_batches([self]):
            out += self._generate(end)
        return out

    def flush(self) -> list[tuple[np.ndarray, float]]:
        """Generate every remaining frame that has audio; missing look-ahead counts as silence."""
        out = []
        for _, end in hop_batches([self], flushing=[self]):
            out += self._generate(end)
        return out

    def append(self, own: np.ndarray, partner: np.ndarray) -> None:
        """Append equal-length 16 kHz float32 chunks without generating anything."""
        if len(own) != len(partner):
            raise ValueError("own and partner chunks must have the same length")
        if len(own):
            self._append_audio(np.stack([own, partner]).astype(np.float32, copy=False))

    def _append_audio(self, chunk: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, chunk], axis=1)
        self.samples += chunk.shape[1]
        # mel frames computable: those ending at or before the last sample received
        ready = (self._audio_start + self._audio.shape[1]) // HOP_LENGTH
        first = self.mel_frames
        if ready <= first:
            return
        step = _MEL_BLOCK - _MEL_HISTORY_HOPS
        blocks = [self._mel_block(a, min(ready, a + step)) for a in range(first, ready, step)]
        self._mel = np.concatenate([self._mel, *blocks], axis=1)
        keep_from = (ready - _MEL_HISTORY_HOPS) * HOP_LENGTH - self._audio_start
        self._audio = self._audio[:, keep_from:]
        self._audio_start += keep_from

    def _mel_block(self, start: int, stop: int) -> np.ndarray:
        """Mel frames [start, stop) absolute."""
        lo = (start - _MEL_HISTORY_HOPS) * HOP_LENGTH - self._audio_start
        hi = stop * HOP_LENGTH - self._audio_start
        return self.logmel(self._audio[:, lo:hi])[:, _MEL_HISTORY_HOPS:]

    def _mel_window(self, lo: int, hi: int, end: int | None) -> np.ndarray:
        """Mel frames [lo, hi) absolute; outside what exists (or past ``end``) is silence."""
        valid_hi = self.mel_frames if end is None else min(self.mel_frames, end)
        a, b = max(lo, self._mel_start), max(min(hi, valid_hi), max(lo, self._mel_start))
        piece = self._mel[:, a - self._mel_start : b - self._mel_start]
        return np.pad(piece, ((0, 0), (a - lo, hi - b), (0, 0)), constant_values=LOG_MEL_FLOOR)

    def hop_ready(self) -> bool:
        """Whether the next hop's audio and look-ahead have all arrived."""
        lookahead = self.model.config.encoder.lookahead
        needed = (self.frames_out + self.hop + lookahead) * MEL_FRAMES_PER_MOTION_FRAME
        return needed <= self.mel_frames

    def next_hop(self, end: int | None = None) -> HopInputs:
        """What the model needs for the next hop (``end``: the last frame with audio, on flush)."""
        cfg = self.model.config
        k = MEL_FRAMES_PER_MOTION_FRAME
        start = self.frames_out
        count = self.hop if end is None else min(self.hop, end - start)
        context, lookahead = cfg.audio_context, cfg.encoder.lookahead
        mel = self._mel_window(
            (start - context) * k,
            (start + count + lookahead) * k,
            None if end is None else end * k,
        )
        prev, has_prev = prev_context(self._latents, cfg.dit.prev_frames, cfg.latent_dim)
        return HopInputs(
            mel=mel,
            prev=prev,
            has_prev=has_prev,
            style=self.style,
            noise=hop_noise(self.seed, start, (1, count, cfg.latent_dim)),
            sampling=self.sampling,
        )

    def accept(self, latents: np.ndarray, speaking: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Take the generated hop (count, D), (count,) and move the stream past it."""
        cfg = self.model.config
        count = latents.shape[0]
        latents = np.asarray(latents, np.float32)
        self._latents = np.concatenate([self._latents, latents])[-cfg.dit.prev_frames :]
        self.frames_out += count
        # drop mel that no later hop can reach (it needs `context` frames before its start)
        drop = (self.frames_out - cfg.audio_context) * MEL_FRAMES_PER_MOTION_FRAME - self._mel_start
        if drop > 0:
            self._mel = self._mel[:, drop:]
            self._mel_start += drop
        return [(latents[i].copy(), float(speaking[i])) for i in range(count)]

    def _generate(self, end: int | None = None) -> list[tuple[np.ndarray, float]]:
        ((latents, speaking),) = generate_hops(self.model, [self.next_hop(end)])
        return self.accept(latents, speaking)


def hop_batches(
    streams: Sequence[MotionStream],
    flushing: Sequence[MotionStream] = (),
    *,
    keep: Callable[[MotionStream], bool] | None = None,
) -> Iterator[tuple[list[MotionStream], int | None]]:
    """The hop loop, shared by :class:`MotionStream` and the Engine: the batches to run, in order.

    Yields ``(streams, end)``. First every full hop whose audio and look-ahead have arrived,
    round after round, hops of the same length and sampling settings from different streams in
    one batch (``end`` None); then, for each stream in ``flushing``, its remaining frames up to
    the last one with audio (``end``), missing look-ahead counting as silence, one hop at a time.

    The caller runs each batch (:func:`generate_hops` on ``next_hop(end)``, then ``accept``)
    before asking for the next. A stream the caller did not move on (its batch failed), or for
    which ``keep`` turns false, takes no further part, so a failure can never loop forever.
    """
    live = list(streams)

    def drop_stalled(group: list[MotionStream], frames_before: list[int]) -> None:
        for stream, before in zip(group, frames_before, strict=True):
            stalled = stream.frames_out == before or (keep is not None and not keep(stream))
            if stalled and stream in live:
                live.remove(stream)

    while True:
        ready = [s for s in live if s.hop_ready()]
        if not ready:
            break
        groups: dict[tuple, list[MotionStream]] = defaultdict(list)
        for stream in ready:
            groups[(stream.hop, *stream.sampling)].append(stream)
        for group in groups.values():
            frames_before = [s.frames_out for s in group]
            yield group, None
            drop_stalled(group, frames_before)
    for stream in flushing:
        total = stream.frames_available
        while stream in live and stream.frames_out < total:
            frames_before = [stream.frames_out]
            yield [stream], total
            drop_stalled([stream], frames_before)


@dataclass
class HopInputs:
    """One stream's inputs for one hop of ``count`` frames (batch axis of 1, float32)."""

    mel: np.ndarray  # (2, (context + count + lookahead) * 4, 80): own, partner
    prev: np.ndarray  # (1, P, D)
    has_prev: float
    style: np.ndarray  # (1, S)
    noise: np.ndarray  # (1, count, D)
    sampling: Sampling  # sampler, steps, cfg_scale

    @property
    def count(self) -> int:
        return self.noise.shape[1]


@dataclass
class HopBatch:
    """Hops of several streams stacked on the batch axis; what one model call consumes."""

    mel: np.ndarray  # (B, 2, M, 80)
    prev: np.ndarray  # (B, P, D)
    style: np.ndarray  # (B, S)
    noise: np.ndarray  # (B, count, D)
    has_prev: np.ndarray  # (B,)

    @staticmethod
    def stack(hops: list[HopInputs]) -> HopBatch:
        first = hops[0]
        if any(h.count != first.count or h.sampling != first.sampling for h in hops):
            raise ValueError("hops batched together need the same length and sampling settings")
        return HopBatch(
            mel=np.stack([h.mel for h in hops]),
            prev=np.concatenate([h.prev for h in hops]),
            style=np.concatenate([h.style for h in hops]),
            noise=np.concatenate([h.noise for h in hops]),
            has_prev=np.array([h.has_prev for h in hops], np.float32),
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.mel, self.prev, self.style, self.noise, self.has_prev


def generate_hops(model: Any, hops: list[HopInputs]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run hops of many streams as one batch: one encoder and one sampler call.

    Every hop must have the same frame count and sampling settings. Returns, per hop, the
    latents (count, D) and speaking (count,).
    """
    latents, speaking = as_hop_model(model).run_hops(HopBatch.stack(hops), hops[0].sampling)
    return [(latents[i], speaking[i]) for i in range(len(hops))]


def iter_motion(
    model: Any,
    own: np.ndarray,
    partner: np.ndarray | None = None,
    *,
    seed: int = 0,
    hop: int | None = None,
    style: np.ndarray | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
) -> Iterator[tuple[np.ndarray, float]]:
    """:func:`generate_motion`'s frames as ``(latent, speaking)``, one hop at a time as each is
    generated, so that work on the first frames (rendering them) can overlap with the rest."""
    if partner is None:
        partner = np.zeros_like(own)
    n = max(len(own), len(partner))
    own = np.pad(np.asarray(own, np.float32), (0, n - len(own)))
    partner = np.pad(np.asarray(partner, np.float32), (0, n - len(partner)))
    stream = MotionStream(
        model, seed=seed, hop=hop, style=style, sampler=sampler, steps=steps, cfg_scale=cfg_scale
    )
    stream.append(own, partner)
    for _, end in hop_batches([stream]):
        yield from stream._generate(end)
    for _, end in hop_batches([stream], flushing=[stream]):
        yield from stream._generate(end)


def generate_motion(
    model: Any,
    own: np.ndarray,
    partner: np.ndarray | None = None,
    *,
    seed: int = 0,
    hop: int | None = None,
    style: np.ndarray | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
) -> Motion:
    """Motion for a whole recording: own/partner are 16 kHz mono float32 (see ``to_mono_16k``).

    A missing partner is silence; the shorter track is padded with silence. One frame per 40 ms.
    Runs the same :class:`MotionStream` as live use, fed in one piece and flushed.
    """
    rows = list(
        iter_motion(
            model,
            own,
            partner,
            seed=seed,
            hop=hop,
            style=style,
            sampler=sampler,
            steps=steps,
            cfg_scale=cfg_scale,
        )
    )
    dim = model.config.latent_dim
    latents = np.stack([r[0] for r in rows]) if rows else np.zeros((0, dim), np.float32)
    speaking = np.array([r[1] for r in rows], np.float32)
    return Motion(latents=latents, speaking=speaking)
