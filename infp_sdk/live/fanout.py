"""The frames a conversation shows somewhere else (a browser, a Pipecat or LiveKit room), also
sent to the sinks of ``infp-sdk live``: a game engine's avatar, a virtual camera or a recording
follows the same conversation.

Used by ``infp-sdk serve`` and the voice-agent adapters (their ``sinks=`` argument), with the
sinks opened from the registry, so a sink registered once works in all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..io.sinks import Output
from ..motion import FPS, Frame
from .registry import REGISTRY, Registry


class Fanout:
    """Agent frames, each once and in order, to sinks each behind its own
    :class:`~infp_sdk.io.sinks.Output` (a thread and a bounded queue: a slow or failing sink
    never holds up the caller; :meth:`health` says how each is doing)."""

    def __init__(self, outputs: list[Output]):
        self.outputs = outputs
        self._last = -1

    @classmethod
    def open(
        cls, sinks: Mapping[str, Any] | None, latent_size: int, registry: Registry = REGISTRY
    ) -> Fanout:
        """Open the sinks that ``sinks`` switches on (options of ``infp-sdk live`` by key, e.g.
        ``{"zmq": "tcp://127.0.0.1:5555", "vmc": True}``); none for None or {}. Raises
        :class:`~infp_sdk.live.options.LiveError` for an unknown option."""
        if not sinks:
            return cls([])
        opened = registry.open_sinks(registry.resolve(sinks), fps=FPS, latent_size=latent_size)
        return cls([Output(sink, name=entry.name) for entry, sink in opened])

    def show(self, frame: Frame) -> None:
        """The frame now shown; a frame shown again (a late one repeated) is not sent twice."""
        if frame.index > self._last:
            self._last = frame.index
            for output in self.outputs:
                output.put(frame)

    def restart(self) -> None:
        """The agent was reset: its frame numbers start again from 0."""
        self._last = -1

    def health(self) -> dict[str, str]:
        """Each sink's state, by name ("zmq ok", "virtualcam retrying (...)")."""
        return {output.name: output.health() for output in self.outputs}

    def endpoints(self) -> dict[str, str]:
        """Where sinks that bind an address listen, by name (a ``*`` port resolved)."""
        out = {}
        for output in self.outputs:
            where = getattr(output.sink, "endpoint", None)
            if where:
                out[output.name] = str(where)
        return out

    def close(self) -> None:
        """Close every sink (what is queued is delivered first); idempotent."""
        for output in self.outputs:
            output.close()
