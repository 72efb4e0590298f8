"""Compare what a client's decoder made of the conformance vectors with manifest.json.

Every client in bindings/ has a small program that reads lines ``VECTOR.zmsg[<TAB>CONTEXT.zmsg]`` on
stdin and prints one JSON object per line: ``{"file", "ok": true, "kind", "fields": {...}}`` with
the decoded fields, or ``{"file", "ok": false, "error": CODE, "message": ...}``. The comparison
lives here, once, in Python.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

VECTORS = Path(__file__).resolve().parent
FLOAT32_FIELDS = {"blendshapes", "head", "gaze", "speaking", "latent"}
"""Motion fields a client holds as float32: compared as float32."""
FLOAT64_FIELDS = {"t", "fps"}
"""Fields held as float64: compared exactly."""


def manifest(folder: Path = VECTORS) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def stdin_lines(folder: Path = VECTORS) -> str:
    """The input of a dump program: every vector, with its context hello when it has one."""
    lines = []
    for vec in manifest(folder)["vectors"]:
        line = str(folder / vec["file"])
        if vec["context"]:
            line += "\t" + str(folder / vec["context"])
        lines.append(line)
    return "\n".join(lines) + "\n"


def _same(key: str, kind: str, got: Any, want: Any) -> bool:
    if kind == "motion" and key in FLOAT32_FIELDS:
        g = np.asarray(got, np.float64).astype(np.float32)
        w = np.asarray(want, np.float64).astype(np.float32)
        return g.shape == w.shape and bool(np.array_equal(g, w))
    if key in FLOAT64_FIELDS:
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=0, abs_tol=0)
    return got == want and type(got) is type(want)


def compare(output: str, folder: Path = VECTORS, error_codes: bool = True) -> tuple[int, list[str]]:
    """Check a dump program's output against the manifest.

    Returns (number of checks made, list of problems). ``error_codes``: compare the error code of
    rejected vectors, not only that they were rejected.
    """
    vectors = manifest(folder)["vectors"]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    problems: list[str] = []
    if len(lines) != len(vectors):
        problems.append(f"{len(lines)} results for {len(vectors)} vectors")
    checks = 0
    for vec, got in zip(vectors, lines, strict=False):
        name, want = vec["name"], vec["expect"]
        if got.get("file") != vec["file"]:
            problems.append(f"{name}: result is for {got.get('file')}")
            continue
        checks += 1
        if not want["ok"]:
            if got.get("ok"):
                problems.append(f"{name}: accepted; must be rejected as {want['error']}")
            elif error_codes and got.get("error") != want["error"]:
                problems.append(
                    f"{name}: rejected as {got.get('error')} ({got.get('message')}); "
                    f"expected {want['error']}"
                )
            continue
        if not got.get("ok"):
            problems.append(f"{name}: rejected ({got.get('error')}: {got.get('message')})")
            continue
        if got.get("kind") != want["kind"]:
            problems.append(f"{name}: decoded as {got.get('kind')}, not {want['kind']}")
            continue
        fields = got.get("fields", {})
        for key, value in want["fields"].items():
            checks += 1
            if key not in fields:
                problems.append(f"{name}.{key}: missing from the client's result")
            elif not _same(key, want["kind"], fields[key], value):
                problems.append(f"{name}.{key}: got {fields[key]!r:.200}, expected {value!r:.200}")
    return checks, problems
