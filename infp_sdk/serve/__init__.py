"""``infp-sdk serve``: talk with the avatar from a browser (see ``docs/serve.md``).

A local web page sends the browser's microphone to the avatar over WebRTC (aiortc) and plays its
face and voice; an offline demo bot answers in turn with espeak-ng and stops when talked over.
Needs the ``serve`` extra (``pip install 'infp-sdk[serve]'``); nothing here is imported by
``import infp_sdk``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

_EXTRA_HINT = "infp-sdk serve needs the serve extra: pip install 'infp-sdk[serve]'"


def register_cli(sub: Any) -> None:
    """Add ``infp-sdk serve`` to the command's subparsers (importing nothing of the extra)."""
    p = sub.add_parser(
        "serve",
        help="talk with the avatar from a browser (WebRTC, a local demo bot)",
        description="Serve a web page where a person talks with the avatar: the browser's "
        "microphone is the partner, an offline demo bot answers with espeak-ng when the person "
        "stops and stops when talked over; face and voice come back over WebRTC. Loopback "
        "only unless --host says otherwise. See docs/serve.md.",
    )
    p.add_argument("--portrait", default="astronaut", help="bundled name, photo or .avatar")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--size", type=int, default=320, help="video side in px (default 320)")
    p.add_argument("--fps", type=float, default=25.0, help="video frames per second")
    p.add_argument(
        "--delay",
        type=float,
        default=0.2,
        help="seconds voice and face are held back to stay in step (default 0.2)",
    )
    p.add_argument("--model", default="default", help="bundled name, checkpoint or export folder")
    p.add_argument("-v", "--verbose", action="store_true", help="log connections")
    from ..live.registry import REGISTRY

    # the sinks of `infp-sdk live`: the face in the browser can drive an engine's avatar too
    REGISTRY.add_arguments(p, kinds=("sink",))
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ..live.options import LiveError
        from .bot import SpeechError
        from .server import ServeOptions, serve
    except ModuleNotFoundError as e:
        print(f"{_EXTRA_HINT} ({e})", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    from ..live.registry import REGISTRY

    sinks = {
        option.key: getattr(args, option.key)
        for entry in REGISTRY.sinks()
        for option in entry.options
        if getattr(args, option.key, None) is not None
    }
    options = ServeOptions(
        portrait=args.portrait,
        host=args.host,
        port=args.port,
        size=args.size,
        fps=args.fps,
        delay=args.delay,
        model=args.model,
        sinks=sinks,
    )
    try:
        asyncio.run(serve(options, ready=lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        pass
    except (SpeechError, OSError, LiveError) as e:
        print(f"infp-sdk serve: error: {e}", file=sys.stderr)
        return 2
    return 0
