"""The declared registry of live sources and sinks: each is one entry, read by everything that
wires them (``infp-sdk live``'s flags, config file and defaults, its outputs and log lines; a
future ``serve`` and the framework adapters through :func:`open_sinks` and :func:`open_source`).

An entry says what a part is called, which options it adds (flags with their defaults and types,
which are also the config file's keys), how to make it (a factory), whether it needs rendered
frames, and which pip extra holds the packages its factory imports::

    register_sink(SinkEntry(
        name="osc-debug",
        options=(Option("--osc-debug", metavar="PORT", type=int, help="..."),),
        factory=lambda ctx: MySink(port=ctx["osc_debug"], fps=ctx.fps),
    ))

A sink is switched on by its first option (its value is the sink's target, e.g. ``--mp4 PATH``);
a source is chosen by the value of ``--own``/``--partner`` (``accepts``). Nothing here imports an
optional package: factories do, when they run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .options import PIPELINE_OPTIONS, LiveError, Option

if TYPE_CHECKING:
    from ..audio.sources import AudioMixer
    from ..io.sinks import Sink, Source

__all__ = [
    "REGISTRY",
    "Entry",
    "LiveError",
    "Option",
    "Registry",
    "SinkContext",
    "SinkEntry",
    "SourceContext",
    "SourceEntry",
    "register_sink",
    "register_source",
    "unregister",
]


# ----------------------------------------------------------------------------------------------
# Entries
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkContext:
    """What a sink factory gets: every option's value and what the agent decides.

    ``ctx["mp4"]`` is ``ctx.options["mp4"]``."""

    options: Mapping[str, Any]
    fps: float
    """The rate the sink will receive frames at (``--fps``; its Output converts)."""
    latent_size: int
    """Values per motion latent of the agent's model (for protocols that carry latents)."""

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


@dataclass(frozen=True)
class SourceContext:
    """What a source factory gets: the ``--own``/``--partner`` value, the channel and mixer it
    feeds, and every option's value (``ctx["loop"]``)."""

    spec: str
    channel: str
    mixer: AudioMixer
    options: Mapping[str, Any]
    alternatives: str = ""
    """The other sources' forms ("mic, device:NAME, zmq, none"), for a fallback's error."""

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """What sources and sinks share.

    Args:
        name: a short name, unique among sources and among sinks (a sink's shows in the status
            line and log: ``[mp4 dropped (...)]``).
        options: the options it adds to the command (flags, config keys, defaults).
        extra: the pip extra that installs what its factory imports; a factory that fails with
            ModuleNotFoundError then raises MissingExtraError naming ``infp-sdk[EXTRA]``.
        title: a few words for the help (defaults to the name).
    """

    name: str
    options: tuple[Option, ...] = ()
    extra: str | None = None
    title: str = ""

    def _call(self, kind: str, factory: Callable[[Any], Any], ctx: Any) -> Any:
        try:
            return factory(ctx)
        except ModuleNotFoundError as e:
            if self.extra is None:
                raise
            from ..io.sinks import MissingExtraError

            package = (e.name or "?").split(".")[0]
            raise MissingExtraError(
                f"the {self.name} {kind} needs the '{package}' package: "
                f"pip install 'infp-sdk[{self.extra}]' ({e})"
            ) from None


@dataclass(frozen=True, kw_only=True)
class SinkEntry(Entry):
    """A sink: switched on by its first option, made by ``factory``.

    Args:
        factory: makes the sink (anything with ``send(frame)`` and ``close()``, see
            :class:`~infp_sdk.io.sinks.Sink`) from a :class:`SinkContext`.
        needs_image: it shows rendered frames, so the agent needs a portrait.
        describe: the log line once it is open (``"vmc to 127.0.0.1:39539"``), or None.

    A sink may also have ``reopen()`` (retried after a failure), ``announce(control=...,
    audio=...)`` (told the control and audio endpoints) and ``send_hello()`` (the control
    socket's ``hello`` asks it); see ``docs/live.md``.
    """

    factory: Callable[[SinkContext], Sink]
    needs_image: bool = False
    describe: Callable[[Any, Mapping[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError(f"sink {self.name!r}: its first option switches it on; give one")

    @property
    def switch(self) -> Option:
        """The option that switches the sink on; its value is the sink's target."""
        return self.options[0]

    def wanted(self, options: Mapping[str, Any]) -> bool:
        """Whether ``options`` switch this sink on."""
        return bool(options.get(self.switch.key))

    def open(self, ctx: SinkContext) -> Sink:
        """Make the sink (a missing optional package raises MissingExtraError)."""
        return self._call("sink", self.factory, ctx)


@dataclass(frozen=True, kw_only=True)
class SourceEntry(Entry):
    """An audio source, chosen by the value of ``--own``/``--partner``.

    Args:
        forms: how it is written there, for the help and errors (``("mic", "device:NAME")``).
        accepts: whether a value names this source.
        factory: makes the source, not yet started (see :class:`~infp_sdk.io.sinks.Source`),
            from a :class:`SourceContext`; or returns None when its audio comes another way
            (the audio input socket) or not at all.
        help: how the command's description lists it.
        max_buffered: seconds the mixer holds on its channel before dropping the oldest
            (None: the mixer's default, 60 s).
        audio_socket: its audio arrives on the audio input socket, which is then opened.
        fallback: tried after every other source (the WAV file: any value may be a path).
    """

    forms: tuple[str, ...]
    accepts: Callable[[str], bool]
    factory: Callable[[SourceContext], Source | None]
    help: str = ""
    max_buffered: float | None = None
    audio_socket: bool = False
    fallback: bool = False

    def open(self, ctx: SourceContext) -> Source | None:
        """Make the source, not started (a missing optional package raises MissingExtraError)."""
        return self._call("source", self.factory, ctx)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------


@dataclass
class Registry:
    """Sources and sinks by name, in the order they were added, plus the options of the command
    that uses them (``core``). Option keys are unique across all of them."""

    core: tuple[Option, ...] = ()
    _sinks: dict[str, SinkEntry] = field(default_factory=dict)
    _sources: dict[str, SourceEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_keys(self.core, within=())

    # ------------------------------------------------------------------ adding
    def add_sink(self, entry: SinkEntry) -> SinkEntry:
        """Register a sink; raises ValueError if its name or an option key is taken."""
        if entry.name in self._sinks:
            raise ValueError(f"a sink named {entry.name!r} is registered already")
        self._check_keys(entry.options, within=self.options())
        self._sinks[entry.name] = entry
        return entry

    def add_source(self, entry: SourceEntry) -> SourceEntry:
        """Register a source; raises ValueError if its name or an option key is taken."""
        if entry.name in self._sources:
            raise ValueError(f"a source named {entry.name!r} is registered already")
        self._check_keys(entry.options, within=self.options())
        self._sources[entry.name] = entry
        return entry

    def remove(self, entry: SinkEntry | SourceEntry) -> None:
        """Unregister an entry (no error if it is not there)."""
        table = self._sinks if isinstance(entry, SinkEntry) else self._sources
        if table.get(entry.name) is entry:
            del table[entry.name]

    @staticmethod
    def _check_keys(new: Sequence[Option], within: Sequence[Option]) -> None:
        seen = {o.key for o in within}
        for option in new:
            if option.key in seen:
                raise ValueError(f"option {option.flag} is declared twice")
            seen.add(option.key)

    # ------------------------------------------------------------------ reading
    def sinks(self) -> list[SinkEntry]:
        """The sinks, in the order they were registered (the order outputs are made in)."""
        return list(self._sinks.values())

    def sources(self) -> list[SourceEntry]:
        """The sources, in the order they were registered (the order the help lists them)."""
        return list(self._sources.values())

    def sink(self, name: str) -> SinkEntry:
        """The sink entry named ``name`` (KeyError if there is none)."""
        return self._sinks[name]

    def source(self, name: str) -> SourceEntry:
        """The source entry named ``name`` (KeyError if there is none)."""
        return self._sources[name]

    def options(self) -> list[Option]:
        """Every option: the command's, then the sources', then the sinks'."""
        return [*self.core, *self._entry_options()]

    def _entry_options(self) -> Iterator[Option]:
        for entry in (*self._sources.values(), *self._sinks.values()):
            yield from entry.options

    def defaults(self) -> dict[str, Any]:
        """Every option's key and default (the config file's known keys)."""
        return {o.key: o.default for o in self.options()}

    def resolve(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every option's value: ``options`` over the defaults (for callers without a command
        line, such as an adapter opening sinks: ``resolve({"vmc": True})``). LiveError for a
        key that no option has."""
        values = self.defaults()
        unknown = sorted(set(options) - set(values))
        if unknown:
            raise LiveError(f"unknown option(s) {', '.join(unknown)}")
        values.update(options)
        return values

    def check_config(self, path: str, data: Mapping[str, Any]) -> None:
        """Raise LiveError naming the file, the option and the expected type for a mistyped
        value (unknown keys are the caller's concern)."""
        by_key = {o.key: o for o in self.options()}
        for key, value in data.items():
            want = by_key[key].expected(value) if key in by_key else None
            if want is not None:
                raise LiveError(f"config {path}: {key} must be {want}, got {value!r}")

    def add_arguments(
        self, parser: argparse.ArgumentParser, kinds: Sequence[str] = ("source", "sink")
    ) -> None:
        """Add every source's and sink's options to ``parser`` (or only those of ``kinds``), a
        group each (the core options are the command's to place)."""
        for kind, entries in (("source", self.sources()), ("sink", self.sinks())):
            if kind not in kinds:
                continue
            for entry in entries:
                if not entry.options:
                    continue
                title = f"{entry.name} {kind}" + (f": {entry.title}" if entry.title else "")
                extra = f"extra: pip install 'infp-sdk[{entry.extra}]'" if entry.extra else None
                group = parser.add_argument_group(title, extra)
                for option in entry.options:
                    option.add_to(group)

    # ------------------------------------------------------------------ sinks
    def image_flags(self, options: Mapping[str, Any]) -> list[str]:
        """The flags set in ``options`` that ask for rendered frames (sinks that show them,
        then options such as ``--frames``)."""
        sinks = [e.switch.flag for e in self.sinks() if e.needs_image and e.wanted(options)]
        flags = [o.flag for o in self._entry_options() if o.needs_image and options.get(o.key)]
        return sinks + flags

    def open_sinks(
        self, options: Mapping[str, Any], *, fps: float, latent_size: int
    ) -> list[tuple[SinkEntry, Sink]]:
        """Make every sink that ``options`` switch on, in registry order. If one fails (or a
        signal interrupts), those already made are closed before the error propagates."""
        ctx = SinkContext(options, float(fps), int(latent_size))
        made: list[tuple[SinkEntry, Sink]] = []
        try:
            for entry in self.sinks():
                if entry.wanted(options):
                    made.append((entry, entry.open(ctx)))
        except BaseException:
            for _, sink in reversed(made):
                sink.close()
            raise
        return made

    # ------------------------------------------------------------------ sources
    def source_for(self, spec: str) -> SourceEntry:
        """The source that ``spec`` (a value of ``--own``/``--partner``) names: the first that
        accepts it, fallbacks last. LiveError if none does."""
        ordered = sorted(self.sources(), key=lambda e: e.fallback)  # stable: keeps the order
        for entry in ordered:
            if entry.accepts(spec):
                return entry
        raise LiveError(f"{spec!r} is not one of {self.alternatives()}")

    def alternatives(self, but: SourceEntry | None = None) -> str:
        """How the sources other than fallbacks are written: "mic, device:NAME, zmq, none"."""
        forms = (f for e in self.sources() if not e.fallback and e is not but for f in e.forms)
        return ", ".join(forms)

    def open_source(
        self, spec: str, channel: str, mixer: AudioMixer, options: Mapping[str, Any]
    ) -> tuple[SourceEntry, Source | None]:
        """The entry that ``spec`` names and the source it made for ``channel`` (not started;
        None when its audio comes another way)."""
        entry = self.source_for(spec)
        ctx = SourceContext(spec, channel, mixer, options, self.alternatives(but=entry))
        return entry, entry.open(ctx)


REGISTRY = Registry(core=PIPELINE_OPTIONS)
"""The registry ``infp-sdk live`` reads; the built-in sources and sinks are in it."""


def register_sink(entry: SinkEntry) -> SinkEntry:
    """Add a sink to :data:`REGISTRY` (its flags then appear in ``infp-sdk live``)."""
    return REGISTRY.add_sink(entry)


def register_source(entry: SourceEntry) -> SourceEntry:
    """Add a source to :data:`REGISTRY` (``--own``/``--partner`` can then name it)."""
    return REGISTRY.add_source(entry)


def unregister(entry: SinkEntry | SourceEntry) -> None:
    """Remove an entry from :data:`REGISTRY`."""
    REGISTRY.remove(entry)
