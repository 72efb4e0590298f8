"""Print an agent's motion as it arrives: the smallest client of the wire protocol.

    infp-sdk live --own examples/conversation/own.wav --partner examples/conversation/partner.wav \
        --loop --zmq tcp://127.0.0.1:5555 &
    python examples/subscriber.py tcp://127.0.0.1:5555
"""

import sys

from infp_sdk.io import MotionSubscriber
from infp_sdk.io.protocol import Hello, Motion

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
with MotionSubscriber(endpoint) as sub:
    jaw = None
    while True:
        msg = sub.recv(timeout=5.0)
        if msg is None:
            print("nothing for 5 s; is the publisher running?")
        elif isinstance(msg, Hello):
            jaw = msg.blendshapes.index("jawOpen")  # names travel with values
            print(f"hello from {msg.agent}: {msg.fps:g} fps, {len(msg.blendshapes)} blendshapes")
        elif isinstance(msg, Motion) and jaw is not None:
            bar = "#" * int(40 * msg.blendshapes[jaw])
            print(
                f"{msg.t:8.2f} s  speaking {msg.speaking:4.2f}  jawOpen {bar:<40}  "
                f"lost {sub.dropped}"
            )
