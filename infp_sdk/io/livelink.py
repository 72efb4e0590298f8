"""Live Link Face sink: the UDP packet of Epic's Live Link Face app, so Unreal needs no plugin.

In Unreal, enable the Live Link and Apple ARKit Face Support plugins (both ship with the engine):
the engine then listens on UDP 11111 and the subject appears in the Live Link window by name.

Packet layout (all multi-byte values big-endian):

====================  ==========================================================
uint8                 packet version (6)
int32 + bytes         device id: length, then UTF-8 (no terminator)
int32 + bytes         subject name: length, then UTF-8
int32                 frame number (at the frame rate below)
float32               sub-frame (0..1)
int32, int32          frame rate numerator, denominator
uint8                 value count (61)
61 x float32          the 52 ARKit blendshapes (0..1, Live Link order = ours), then
                      HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw, LeftEyePitch, LeftEyeRoll,
                      RightEyeYaw, RightEyePitch, RightEyeRoll as angle / pi (-1..1)
====================  ==========================================================
"""

from __future__ import annotations

import math
import socket
import struct

import numpy as np

from ..motion import FPS, NUM_BLENDSHAPES, Frame

LIVE_LINK_PORT = 11111
PACKET_VERSION = 6
VALUE_COUNT = 61
EXTRA_NAMES = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip


def live_link_values(
    frame: Frame, signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> np.ndarray:
    """The 61 values of a frame: blendshapes, then head and eye angles / pi.

    ``signs`` multiplies (yaw, pitch, roll) of head and eyes, for rigs whose axes differ from
    ours (+yaw to the avatar's left, +pitch chin down, +roll towards its right shoulder).
    """
    sy, sp, sr = signs
    yaw, pitch, roll = (float(v) for v in frame.head[:3])
    lyaw, lpitch, ryaw, rpitch = (float(v) for v in frame.gaze[:4])
    angles = (
        np.array(
            [
                sy * yaw,
                sp * pitch,
                sr * roll,
                sy * lyaw,
                sp * lpitch,
                0.0,
                sy * ryaw,
                sp * rpitch,
                0.0,
            ],
            np.float64,
        )
        / math.pi
    )
    out = np.concatenate([np.asarray(frame.blendshapes, np.float64)[:NUM_BLENDSHAPES], angles])
    return out.astype(np.float32)


def live_link_packet(
    values: np.ndarray,
    frame_number: int,
    fps: int,
    subject: str = "infp",
    device_id: str = "infp-sdk",
    subframe: float = 0.0,
) -> bytes:
    """Pack 61 values into a Live Link Face packet (layout in this module's docstring)."""
    values = np.asarray(values, np.float32).reshape(-1)
    if values.size != VALUE_COUNT:
        raise ValueError(f"a Live Link Face packet has {VALUE_COUNT} values, got {values.size}")
    dev, sub = device_id.encode(), subject.encode()
    return b"".join(
        [
            struct.pack(">B", PACKET_VERSION),
            struct.pack(">i", len(dev)),
            dev,
            struct.pack(">i", len(sub)),
            sub,
            struct.pack(">ifii", int(frame_number) & 0x7FFFFFFF, subframe, int(fps), 1),
            struct.pack(">B", VALUE_COUNT),
            values.astype(">f4").tobytes(),
        ]
    )


class LiveLinkFaceSink:
    """Sends frames as Live Link Face UDP packets (Unreal's default port 11111).

    Args:
        host, port: the machine running Unreal.
        subject: the Live Link subject name shown in Unreal.
        fps: the frame rate stamped in the packets (use the rate the frames are sent at).
        signs: multipliers for (yaw, pitch, roll) if your rig turns the other way.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = LIVE_LINK_PORT,
        *,
        subject: str = "infp",
        device_id: str = "infp-sdk",
        fps: float = FPS,
        signs: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ):
        if not subject or len(subject.encode()) > 255 or len(device_id.encode()) > 255:
            raise ValueError("subject and device_id must be 1..255 bytes of UTF-8")
        self.address = (host, int(port))
        self.subject, self.device_id = subject, device_id
        self.fps = int(round(fps))
        self.signs = signs
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self.sent = 0
        self.errors = 0

    def packet(self, frame: Frame) -> bytes:
        return live_link_packet(
            live_link_values(frame, self.signs), frame.index, self.fps, self.subject,
            self.device_id,
        )  # fmt: skip

    def send(self, frame: Frame) -> None:
        """Send one frame (UDP: a missing receiver is not an error)."""
        try:
            self._socket.sendto(self.packet(frame), self.address)
            self.sent += 1
        except OSError:
            self.errors += 1

    def close(self) -> None:
        self._socket.close()
