"""A self-hosted LiveKit avatar worker with a conversing face (infp_sdk.integrations.livekit).

It joins a room as its own participant, receives the voice agent's speech over LiveKit's
avatar data stream, listens to the user's microphone track, and publishes the face and the
voice, in step:

    python examples/livekit_avatar.py --url ws://localhost:7880 --room demo

The voice agent sends its speech here with one line before its session starts
(``send_voice_to_avatar(session, ctx.room)``); docs/integrations/livekit.md has the whole
set-up, against a local ``livekit-server --dev`` (whose key and secret, devkey and secret, are
the defaults here). Needs ``pip install "infp-sdk[livekit]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--url",
        default=env("LIVEKIT_URL", "ws://localhost:7880"),
        help="the LiveKit server (default $LIVEKIT_URL or ws://localhost:7880)",
    )
    p.add_argument("--room", required=True, help="the room the voice agent is in")
    p.add_argument(
        "--api-key",
        default=env("LIVEKIT_API_KEY", "devkey"),
        help="to make this worker's token (default $LIVEKIT_API_KEY or devkey)",
    )
    p.add_argument(
        "--api-secret",
        default=env("LIVEKIT_API_SECRET", "secret"),
        help="(default $LIVEKIT_API_SECRET or secret)",
    )
    p.add_argument("--token", help="a ready token instead of --api-key/--api-secret")
    p.add_argument(
        "--identity",
        default="infp-avatar",
        help="this worker's identity: the voice agent's destination_identity",
    )
    p.add_argument(
        "--agent-identity", help="the voice agent that sends its speech (default: the first agent)"
    )
    p.add_argument(
        "--user-identity", help="the user to listen to (default: the first non-agent microphone)"
    )
    p.add_argument(
        "--portrait",
        default=str(HERE / "portrait" / "astronaut.png"),
        help="the face: a photo or a prepared .avatar",
    )
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--sample-rate", type=int, default=24000, help="of the published voice")
    p.add_argument(
        "--delay",
        type=float,
        default=None,
        help="seconds the voice is held back for the face (default 0.2)",
    )
    return p.parse_args(argv)  # fmt: skip


def make_token(args: argparse.Namespace) -> str:
    from livekit import api

    token = (
        api.AccessToken(args.api_key, args.api_secret)
        .with_identity(args.identity)
        .with_name("infp avatar")
        .with_kind("agent")  # so the voice agent does not take it for the user
        .with_grants(api.VideoGrants(room_join=True, room=args.room))
    )
    if args.agent_identity:  # the tracks are the voice agent's, published on its behalf
        token = token.with_attributes({"lk.publish_on_behalf": args.agent_identity})
    return token.to_jwt()


async def serve(args: argparse.Namespace) -> None:
    from livekit import rtc

    from infp_sdk.integrations.livekit import (
        DEFAULT_DELAY_S,
        InfpVideoGenerator,
        run_avatar_worker,
    )

    generator = InfpVideoGenerator(
        args.portrait,
        width=args.width,
        height=args.height,
        fps=args.fps,
        sample_rate=args.sample_rate,
        delay=DEFAULT_DELAY_S if args.delay is None else args.delay,
    )
    await generator.start()  # the model and the portrait, before joining
    room = rtc.Room()
    await room.connect(args.url, args.token or make_token(args))
    logging.info("joined %s as %s", args.room, args.identity)
    try:
        await run_avatar_worker(
            room,
            generator,
            sender_identity=args.agent_identity,
            partner_identity=args.user_identity,
        )
    finally:
        await room.disconnect()
        logging.info("left; %s", generator.stats)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
