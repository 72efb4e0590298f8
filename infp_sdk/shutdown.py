"""Stop the SDK's background threads before the interpreter takes itself apart.

Every object in infp_sdk that starts a thread (an engine's worker, an agent's portrait renderer,
the audio mixer and sources, the publisher, sinks, the control server) registers here with
:func:`stop_at_exit`, and one ``atexit`` handler stops whatever is still running, newest first,
joining each thread with a bounded wait.

Why this is needed: the threads are daemon threads, so a script that forgets ``close()`` still
ends. But a daemon thread that is inside native code when the interpreter finalises (a torch op
that released the GIL, a PortAudio callback) is ended by ``pthread_exit`` as soon as it asks for
the GIL back, and that forced unwinding through C++ frames calls ``std::terminate``: the process
dies with SIGABRT ("terminate called without an active exception", exit status 134). ``atexit``
handlers run after the non-daemon threads have been joined and before finalisation begins, so a
thread stopped here has left native code before anything is torn down.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

Owner = TypeVar("Owner")

# The longest an exit handler waits for one thread: far above a hop or a render on a CPU, so it
# only bounds a thread that is stuck (a process must exit even then).
EXIT_JOIN_TIMEOUT_S = 10.0

_lock = threading.RLock()  # re-entrant: a weakref callback may run inside a locked section
_registered: dict[int, tuple[weakref.ref, Callable]] = {}
_keys = itertools.count()


def stop_at_exit(owner: Owner, stop: Callable[[Owner], object]) -> Callable[[], None]:
    """Call ``stop(owner)`` at interpreter exit, if ``owner`` is still alive then.

    Only a weak reference to ``owner`` is kept, so ``stop`` must not hold one itself (pass an
    unbound method such as ``Engine.stop_now``, not ``engine.stop_now``). Returns a function that
    cancels the registration: call it from ``close()`` so closed objects do not pile up here.
    """
    key = next(_keys)

    def forget(_ref: weakref.ref | None = None) -> None:
        with _lock:
            _registered.pop(key, None)

    with _lock:
        _registered[key] = (weakref.ref(owner, forget), stop)
    return forget


def stop_all() -> None:
    """Stop everything still registered, newest first (the ``atexit`` handler; safe to repeat).

    Newest first because later objects are usually built on earlier ones (an agent on its
    engine, a source on its mixer) and should stop before what they feed.
    """
    with _lock:
        entries = list(_registered.values())[::-1]
        _registered.clear()
    for ref, stop in entries:
        owner = ref()
        if owner is None:
            continue
        try:
            stop(owner)
        except Exception:  # one failing owner must not keep the others running
            log.exception("stopping %r at exit failed", owner)


atexit.register(stop_all)
