"""WAV reading and writing with the standard library and NumPy only.

Reads RIFF/WAVE PCM (8/16/24/32-bit), IEEE float (32/64-bit) and WAVE_FORMAT_EXTENSIBLE files,
skipping chunks it does not need; writes 16-bit PCM.
"""

from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO

import numpy as np

from infp_sdk.audio.convert import AudioFormatError, _as_array, _to_float32, to_mono_16k

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MPEG Layer 3",
    0x0161: "WMA",
}
_CONVERT_HINT = "convert it with e.g. `ffmpeg -i in.ext -ar 16000 -ac 1 -c:a pcm_s16le out.wav`"
# Streaming writers that cannot seek back leave this placeholder as the data size.
_UNKNOWN_SIZE = 0xFFFFFFFF

PathOrFile = str | os.PathLike | BinaryIO


def _read_bytes(path: Any) -> tuple[bytes, str]:
    if hasattr(path, "read"):
        return path.read(), getattr(path, "name", "<stream>")
    try:
        with open(path, "rb") as fh:
            return fh.read(), os.fspath(path)
    except IsADirectoryError as exc:
        raise AudioFormatError(f"{path} is a directory: pass the path of a .wav file") from exc


def _sniff(head: bytes) -> str:
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "MP3"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    if head[:4] == b"RF64":
        return "RF64 (64-bit WAV)"
    if head[:4] == b"FORM":
        return "AIFF"
    if head[:4] == b"RIFF":
        return f"RIFF/{head[8:12].decode('latin-1')}"
    return "not a WAV file"


def _format_name(tag: int) -> str:
    return _FORMAT_NAMES.get(tag, f"format tag 0x{tag:04x}")


def read_wav(path: PathOrFile) -> tuple[np.ndarray, int]:
    """Read a WAV file into float32 ``(samples, channels)`` in about [-1, 1] and its sample rate.

    Supports PCM 8 (unsigned), 16, 24 and 32-bit, IEEE float 32/64-bit and
    WAVE_FORMAT_EXTENSIBLE wrappers of those. ``path`` may also be a binary file object.

    Raises:
        AudioFormatError: For a non-WAV, truncated or unsupported file; the message says what
            was found and how to convert it.
    """
    data, name = _read_bytes(path)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        found = "an empty file" if not data else _sniff(data[:12])
        if len(data) < 12 and data[:4] == b"RIFF":
            found = "a truncated RIFF header"
        raise AudioFormatError(f"{name} is not a RIFF/WAVE file (found {found}): {_CONVERT_HINT}")

    fmt: tuple[int, int, int, int, int] | None = None
    pcm: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        available = len(data) - body_start
        if chunk_id == b"data":
            if size == _UNKNOWN_SIZE:
                size = available
            if size > available:
                raise AudioFormatError(
                    f"{name} is truncated: the data chunk declares {size} bytes but only "
                    f"{available} are present; re-export the file or repair it with "
                    "`ffmpeg -i in.wav -c:a pcm_s16le out.wav`"
                )
            pcm = data[body_start : body_start + size]
            if fmt is not None:
                break
        elif chunk_id == b"fmt ":
            if size < 16 or size > available:
                raise AudioFormatError(
                    f"{name} has a truncated or malformed fmt chunk ({size} bytes, "
                    f"{available} present): {_CONVERT_HINT}"
                )
            fmt = _parse_fmt(data[body_start : body_start + size], name)
            if pcm is not None:
                break
        # RIFF chunks are word aligned: odd-sized bodies carry one pad byte.
        pos = body_start + size + (size & 1)

    if fmt is None:
        raise AudioFormatError(
            f"{name} has no fmt chunk (truncated or damaged WAV): {_CONVERT_HINT}"
        )
    if pcm is None:
        raise AudioFormatError(
            f"{name} has no data chunk (truncated or damaged WAV): {_CONVERT_HINT}"
        )
    tag, channels, rate, block_align, bits = fmt
    n_frames = len(pcm) // block_align
    pcm = pcm[: n_frames * block_align]
    return _decode(pcm, tag, bits, channels), rate


def _parse_fmt(body: bytes, name: str) -> tuple[int, int, int, int, int]:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioFormatError(
                f"{name} is WAVE_FORMAT_EXTENSIBLE but its fmt chunk is only {len(body)} bytes "
                f"(needs 40): {_CONVERT_HINT}"
            )
        # The first two bytes of the SubFormat GUID carry the real format tag.
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag not in (_PCM, _IEEE_FLOAT):
        raise AudioFormatError(
            f"{name} uses unsupported WAV encoding {_format_name(tag)} (only PCM and IEEE "
            f"float are read): {_CONVERT_HINT}"
        )
    supported = (8, 16, 24, 32) if tag == _PCM else (32, 64)
    if bits not in supported:
        kind = "PCM" if tag == _PCM else "float"
        raise AudioFormatError(
            f"{name} has {bits}-bit {kind} samples; supported are "
            f"{', '.join(map(str, supported))}-bit: {_CONVERT_HINT}"
        )
    if channels < 1 or rate < 1:
        raise AudioFormatError(
            f"{name} declares {channels} channels at {rate} Hz, which is invalid: {_CONVERT_HINT}"
        )
    if block_align != channels * bits // 8:
        raise AudioFormatError(
            f"{name} has block_align {block_align} but {channels} x {bits}-bit samples need "
            f"{channels * bits // 8}: the header is damaged; {_CONVERT_HINT}"
        )
    return tag, channels, rate, block_align, bits


def _decode(pcm: bytes, tag: int, bits: int, channels: int) -> np.ndarray:
    if tag == _IEEE_FLOAT:
        samples = np.frombuffer(pcm, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif bits == 8:
        samples = (np.frombuffer(pcm, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        raw = np.frombuffer(pcm, dtype=np.uint8).reshape(-1, 3)
        # Put the 3 bytes in the top of a little-endian int32 so the sign comes out right.
        wide = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = raw
        samples = (wide.view("<i4")[:, 0].astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        samples = (np.frombuffer(pcm, dtype="<i4").astype(np.float64) / 2147483648.0).astype(
            np.float32
        )
    return np.ascontiguousarray(samples.reshape(-1, channels))


def load_audio(path: PathOrFile) -> np.ndarray:
    """Read a WAV file and convert it to mono float32 at 16 kHz (:func:`to_mono_16k`).

    Raises:
        AudioFormatError: as :func:`read_wav`, or when the file's audio cannot be used (e.g. a
            sample rate outside 4-192 kHz); the message starts with the file's name.
    """
    audio, rate = read_wav(path)
    try:
        return to_mono_16k(audio, rate)
    except AudioFormatError as e:
        name = getattr(path, "name", "<stream>") if hasattr(path, "read") else os.fspath(path)
        raise AudioFormatError(f"{name}: {e}") from None


def write_wav(path: str | os.PathLike | BinaryIO, audio: Any, sample_rate: int) -> None:
    """Write ``audio`` as 16-bit PCM WAV.

    ``audio`` is 1-D mono or 2-D ``(samples, channels)`` in any dtype :func:`to_mono_16k`
    accepts; float input is clipped to [-1, 1]. ``path`` may also be a binary file object.
    """
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or not (0 < int(sample_rate) < 2**32)
    ):
        raise AudioFormatError(
            f"sample_rate must be a positive int in Hz, got {sample_rate!r}: "
            "pass e.g. sample_rate=16000"
        )
    arr = _as_array(audio)
    if arr.ndim not in (1, 2):
        raise AudioFormatError(
            f"write_wav expects 1-D mono or 2-D (samples, channels) audio, got shape {arr.shape}:"
            " reshape or transpose it first"
        )
    if arr.dtype.kind == "i" and arr.dtype.itemsize == 2:
        pcm16 = arr.astype("<i2")
    else:
        samples = _to_float32(arr)
        if not np.isfinite(samples).all():
            raise AudioFormatError(
                "audio contains NaN or Inf values: clean the signal (np.nan_to_num) before "
                "writing it"
            )
        # Scale by 32768 to mirror the reader (exact round trips) and saturate +1.0 at 32767
        # rather than letting it wrap to -32768.
        scaled = np.round(np.clip(samples, -1.0, 1.0).astype(np.float64) * 32768.0)
        pcm16 = np.clip(scaled, -32768, 32767).astype("<i2")
    if pcm16.ndim == 1:
        pcm16 = pcm16[:, None]
    n_frames, channels = pcm16.shape
    if channels < 1 or channels > 0xFFFF:
        raise AudioFormatError(
            f"write_wav got {channels} channels (shape {pcm16.shape}): the layout is "
            "(samples, channels)"
        )
    payload = np.ascontiguousarray(pcm16).tobytes()
    block_align = 2 * channels
    rate = int(sample_rate)
    header = b"".join(
        [
            b"RIFF",
            struct.pack("<I", 36 + len(payload) + (len(payload) & 1)),
            b"WAVE",
            b"fmt ",
            struct.pack("<IHHIIHH", 16, _PCM, channels, rate, rate * block_align, block_align, 16),
            b"data",
            struct.pack("<I", len(payload)),
        ]
    )
    blob = header + payload
    if hasattr(path, "write"):
        path.write(blob)
        return
    with open(path, "wb") as fh:
        fh.write(blob)
