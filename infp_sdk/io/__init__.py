"""Live I/O: how motion leaves the SDK and audio comes in.

* :mod:`~infp_sdk.io.protocol` — the wire protocol's messages (pydantic), msgpack encoding, schema
* :class:`MotionPublisher` — ``hello``/``motion``/``frame`` on a ZeroMQ PUB socket
* :class:`ControlServer` — control (reset, interrupt, style, ping) and audio input sockets
* :mod:`~infp_sdk.io.client` — Python subscriber, control client and audio sender
* :mod:`~infp_sdk.io.sinks` — VMC (OSC), Live Link Face (UDP), virtual camera, mp4 file sinks

Optional packages (python-osc, pyvirtualcam, Pillow) are imported only by the sink that needs them.
"""

from .client import AudioSender, ControlClient, MotionSubscriber
from .control import ControlServer
from .protocol import PROTOCOL_VERSION
from .publisher import CurveKeys, MotionPublisher, NoImageError

__all__ = [
    "PROTOCOL_VERSION",
    "AudioSender",
    "ControlClient",
    "ControlServer",
    "CurveKeys",
    "MotionPublisher",
    "MotionSubscriber",
    "NoImageError",
]
