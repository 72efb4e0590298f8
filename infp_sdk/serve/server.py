"""``infp-sdk serve``: a local web page where a person talks with the avatar from a browser.

The page (``static/index.html``) sends the microphone over WebRTC and plays the avatar's face and
voice coming back. The signalling is one HTTP request: the page posts its offer to ``/offer``
(with its ICE candidates) and gets the answer. One conversation at a time: a new one (a reload,
another tab) ends the one before. ``/status`` reports where the conversation stands as JSON.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ..face import DEFAULT_PORTRAIT
from ..live.fanout import Fanout
from ..runtime.pacer import warm_up
from .bot import REPLIES, espeak_path
from .session import Conversation

STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class ServeOptions:
    """What ``infp-sdk serve`` runs (its CLI flags, one to one)."""

    portrait: Any = DEFAULT_PORTRAIT
    """A bundled portrait's name, an image or ``.avatar`` path."""
    host: str = "127.0.0.1"
    port: int = 8080
    size: int = 320
    """Side of the video (px); 320 keeps up on two cores with the browser on the same machine
    (``docs/serve.md``)."""
    fps: float = 25.0
    delay: float = 0.2
    """Seconds the bot's voice and face are held back; it covers the face's latency."""
    model: str = "default"
    agent_options: dict[str, Any] = field(default_factory=dict)
    replies: tuple[str, ...] = REPLIES
    sinks: dict[str, Any] = field(default_factory=dict)
    """The frames shown also go to these sinks of ``infp-sdk live`` (its options by key, as
    ``{"zmq": "tcp://127.0.0.1:5555", "vmc": True}``): a game engine or a virtual camera
    follows the browser conversation."""


class AvatarServer:
    """The web server: the page, the signalling, the one agent all conversations share.

    Use :meth:`start` / :meth:`stop` from a running event loop (or :func:`serve` to run until
    interrupted).
    """

    def __init__(self, options: ServeOptions):
        if not 64 <= options.size <= 1024:
            raise ValueError(f"size must be 64..1024 px, got {options.size}")
        if not 5 <= options.fps <= 60:
            raise ValueError(f"fps must be 5..60, got {options.fps}")
        espeak_path()  # fails now, with the fix, rather than at the first reply
        self.options = options
        self.agent: Any = None
        self.fanout: Fanout | None = None
        self.conversation: Conversation | None = None
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        """Load the model and the portrait, warm them up, and listen; returns the page's URL."""
        self.agent = await asyncio.to_thread(self._make_agent)
        await asyncio.to_thread(warm_up, self.agent)
        self.fanout = await asyncio.to_thread(
            Fanout.open, self.options.sinks, self.agent.latent_size
        )
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/status", self._status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
        return self.url

    async def stop(self) -> None:
        """End the conversation, stop listening and close the agent."""
        if self.conversation is not None:
            await self.conversation.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.fanout is not None:
            await asyncio.to_thread(self.fanout.close)
            self.fanout = None
        if self.agent is not None:
            await asyncio.to_thread(self.agent.close)
            self.agent = None

    def _make_agent(self) -> Any:
        from .. import Agent
        from ..face import load_portrait

        o = self.options
        portrait = load_portrait(o.portrait, size=o.size)
        return Agent(portrait, model=o.model, **o.agent_options)

    # ------------------------------------------------------------------ routes
    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            sdp, type_ = body["sdp"], body.get("type", "offer")
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='post {"sdp": ..., "type": "offer"} as JSON') from None
        async with self._lock:
            if self.conversation is not None:  # the newest page wins
                await self.conversation.close()
            o = self.options
            conversation = Conversation(
                self.agent,
                size=(o.size, o.size),
                fps=o.fps,
                delay=o.delay,
                replies=o.replies,
                fanout=self.fanout,
            )
            try:
                answer = await conversation.answer(sdp, type_)
            except ValueError as e:
                await conversation.close()
                raise web.HTTPBadRequest(text=f"cannot answer this offer: {e}") from None
            self.conversation = conversation
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    async def _status(self, request: web.Request) -> web.Response:
        c = self.conversation
        return web.json_response(
            {
                "size": self.options.size,
                "fps": self.options.fps,
                "conversation": None if c is None else c.stats(),
                "sinks": self.fanout.health() if self.fanout is not None else {},
            }
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(options: ServeOptions, ready=print) -> None:
    """Run the server until Ctrl-C or SIGTERM (or until cancelled); ``ready`` is called with a
    line naming the URL."""
    server = AvatarServer(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform or thread
            pass
    try:
        url = await server.start()
        ready(f"infp-sdk serve: open {url} in a browser (?autostart=1 starts the conversation)")
        assert server.fanout is not None
        endpoints = server.fanout.endpoints()
        for output in server.fanout.outputs:
            where = f" on {endpoints[output.name]}" if output.name in endpoints else ""
            ready(f"infp-sdk serve: frames also go to {output.name}{where}")
        if not is_loopback(options.host):
            ready(
                "infp-sdk serve: warning: browsers give a page the microphone only on localhost "
                "or over HTTPS; from another machine, put an HTTPS proxy in front"
            )
        await stop.wait()
    finally:
        await server.stop()
