"""Whether this machine can build the C++ client (bindings/cpp): g++, the cppzmq and msgpack-cxx
headers, and libzmq to link against. The C++ tests skip with the reason when it cannot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL = "apt-get install g++ cppzmq-dev libmsgpack-cxx-dev"
HEADERS = ("zmq.hpp", "msgpack.hpp")


def missing_cpp_toolchain(headers: tuple[str, ...] = HEADERS) -> str | None:
    """Why the C++ client cannot be built here, or None when it can.

    Each header is compiled on its own, so every missing one is named; then a tiny program is
    linked with -lzmq.
    """
    if shutil.which("g++") is None:
        return f"g++ is not installed ({INSTALL})"
    missing = []
    for header in headers:
        probe = subprocess.run(
            ["g++", "-std=c++17", "-fsyntax-only", "-x", "c++", "-"],
            input=f"#define MSGPACK_NO_BOOST\n#include <{header}>\n",
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if probe.returncode != 0:
            missing.append(header)
    if missing:
        return f"C++ headers not found: {', '.join(missing)} ({INSTALL})"
    with tempfile.TemporaryDirectory() as tmp:
        link = subprocess.run(
            ["g++", "-x", "c++", "-", "-o", str(Path(tmp) / "probe"), "-lzmq"],
            input="#include <zmq.h>\nint main() { return zmq_ctx_new() == nullptr; }\n",
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    if link.returncode != 0:
        return f"cannot link against libzmq ({INSTALL}): {link.stderr.strip()[-300:]}"
    return None
