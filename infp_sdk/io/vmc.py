"""VMC protocol sink: OSC over UDP to VSeeFace, VNyan, Warudo, VirtualMotionCapture and friends.

Each frame is one OSC bundle:

* ``/VMC/Ext/Blend/Val (s name)(f value)`` for each of the 52 ARKit names ("perfect sync"),
* ``/VMC/Ext/Blend/Apply``,
* ``/VMC/Ext/Bone/Pos (s "Head")(f px py pz)(f qx qy qz qw)``: the head rotation in Unity's
  frame (left-handed, +Y up, +Z the avatar's forward),
* ``/VMC/Ext/OK (i 1)`` and ``/VMC/Ext/T (f seconds)``.

Needs python-osc (``pip install 'infp-sdk[vmc]'``).
"""

from __future__ import annotations

import math
import socket

import numpy as np

from ..motion import ARKIT_BLENDSHAPES, Frame
from .sinks import require

VMC_PORT = 39539
"""The usual port of a VMC receiver (performer)."""


def unity_head_rotation(yaw: float, pitch: float, roll: float) -> tuple[float, float, float, float]:
    """Our head angles -> a Unity quaternion (x, y, z, w) for the Head bone's local rotation.

    Ours are right-handed (+yaw to the avatar's left, +pitch chin down, +roll towards its right
    shoulder). In Unity (left-handed, Y up, Z forward) a positive rotation about Y turns the avatar
    to its right, about X tips the chin down, about Z tilts the head to its left shoulder, so
    Unity's Euler angles are (x, y, z) = (pitch, -yaw, -roll), composed as Unity does
    (``Quaternion.Euler``: Z first, then X, then Y).
    """
    x, y, z = pitch, -yaw, -roll
    qx = (math.sin(x / 2), 0.0, 0.0, math.cos(x / 2))
    qy = (0.0, math.sin(y / 2), 0.0, math.cos(y / 2))
    qz = (0.0, 0.0, math.sin(z / 2), math.cos(z / 2))
    return _qmul(_qmul(qy, qx), qz)


def _qmul(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


class VMCSink:
    """Sends frames as VMC/OSC bundles over UDP.

    Args:
        host, port: the receiver (default 127.0.0.1:39539).
        head_position: the Head bone's local position sent with its rotation (metres, Unity
            frame). Most receivers apply only the rotation of non-root bones; set this to your
            avatar's neck-to-head offset for one that applies positions too.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = VMC_PORT,
        *,
        head_position: tuple[float, float, float] = (0.0, 0.1, 0.0),
    ):
        osc = require("pythonosc.osc_message_builder", "vmc", "the VMC sink")
        bundle = require("pythonosc.osc_bundle_builder", "vmc", "the VMC sink")
        self._message = osc.OscMessageBuilder
        self._bundle = bundle.OscBundleBuilder
        self._immediately = bundle.IMMEDIATELY
        self.address = (host, int(port))
        self.head_position = tuple(float(v) for v in head_position)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self.sent = 0
        self.errors = 0
        # The names never change: build their messages' prefixes once.
        self._names = list(ARKIT_BLENDSHAPES)

    def _msg(self, address: str, *args) -> object:
        m = self._message(address=address)
        for a in args:
            if isinstance(a, str):
                m.add_arg(a, "s")
            elif isinstance(a, int):
                m.add_arg(a, "i")
            else:
                m.add_arg(float(a), "f")
        return m.build()

    def packet(self, frame: Frame) -> bytes:
        """The OSC bundle for one frame."""
        b = self._bundle(self._immediately)
        values = np.asarray(frame.blendshapes, np.float32).tolist()
        for name, value in zip(self._names, values, strict=True):
            b.add_content(self._msg("/VMC/Ext/Blend/Val", name, value))
        b.add_content(self._msg("/VMC/Ext/Blend/Apply"))
        yaw, pitch, roll = (float(v) for v in frame.head[:3])
        q = unity_head_rotation(yaw, pitch, roll)
        b.add_content(self._msg("/VMC/Ext/Bone/Pos", "Head", *self.head_position, *q))
        b.add_content(self._msg("/VMC/Ext/OK", 1))
        b.add_content(self._msg("/VMC/Ext/T", float(frame.t)))
        return b.build().dgram

    def send(self, frame: Frame) -> None:
        """Send one frame (UDP: a missing receiver is not an error)."""
        try:
            self._socket.sendto(self.packet(frame), self.address)
            self.sent += 1
        except OSError:  # nobody listening (ICMP refused) or a full buffer: drop, carry on
            self.errors += 1

    def close(self) -> None:
        self._socket.close()
