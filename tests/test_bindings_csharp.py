"""The shared C# code (bindings/csharp), compiled with Mono's mcs and run against the vectors.

InfpDecoder.cs is the decoder the Unity package and the Godot addon both use; InfpStream.cs and
InfpRig.cs are their engine-free receiver core (interpolation, drop counts, name mapping, axes).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT
from vectors.conformance import compare, stdin_lines

CSHARP = ROOT / "bindings" / "csharp"


def mcs(out, *sources, extra=()):
    cmd = ["mcs", "-warn:4", "-warnaserror", "-r:System.dll", "-r:System.Core.dll", *extra,
           f"-out:{out}", *map(str, sources)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    return out


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.skip("Mono is not installed (apt-get install mono-mcs mono-runtime)")
    return tmp_path_factory.mktemp("csharp")


def test_csharp_decoder_matches_the_vectors(tools):
    exe = mcs(tools / "dump.exe", CSHARP / "InfpDecoder.cs", CSHARP / "Tests~" / "DumpVectors.cs")
    res = subprocess.run(["mono", str(exe)], input=stdin_lines(), capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    checks, problems = compare(res.stdout)
    assert problems == [], "\n".join(problems)
    assert checks > 200


NAMES = [
    "eyeBlinkLeft", "EyeBlinkLeft", "eyeBlink_L", "blendShape1.eyeBlink_L", "ARKit_jawOpen",
    "arkit.mouthSmile_R", "BROWINNERUP", " cheekPuff ", "blendShape.tongueOut", "noseSneer_R",
]  # fmt: skip
ANGLES = [(0.1, 0.2, -0.3), (0.0, 0.0, 0.0), (-0.35, 0.15, 0.05), (0.3, -0.2, 0.25), (1.0, 0, 0)]


def test_csharp_stream_and_rig_match_the_python_sdk(tools):
    """InfpStream (drops, restarts, status, interpolation, latest-frame-wins) checks itself on the
    vectors; the blendshape name keys and the head rotations must equal the Python SDK's."""
    from infp_sdk.io.vmc import unity_head_rotation
    from infp_sdk.motion import ARKIT_BLENDSHAPES, blendshape_index

    sources = [CSHARP / n for n in ("InfpDecoder.cs", "InfpStream.cs", "InfpRig.cs")]
    exe = mcs(tools / "core.exe", *sources, CSHARP / "Tests~" / "CoreTests.cs")
    queries = [f"key\t{n}" for n in NAMES + list(ARKIT_BLENDSHAPES)]
    queries += [f"{engine}\t{y}\t{p}\t{r}" for engine in ("unity", "godot") for y, p, r in ANGLES]
    res = subprocess.run(["mono", str(exe), str(ROOT / "tests" / "vectors")],
                         input="\n".join(queries) + "\n", capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("ok ") >= 20
    out = res.stdout.splitlines()
    keys, quats = out[: len(queries) - 2 * len(ANGLES)], out[len(queries) - 2 * len(ANGLES) :]
    by_key = {k: i for i, k in enumerate(keys[len(NAMES) :])}
    assert len(by_key) == 52  # the 52 ARKit names have 52 distinct keys
    for name, key in zip(NAMES, keys[: len(NAMES)], strict=True):
        assert by_key.get(key) == blendshape_index(name), (name, key)
    unity = [[float(v) for v in q.split()] for q in quats[: len(ANGLES)]]
    godot = [[float(v) for v in q.split()] for q in quats[len(ANGLES) :]]
    for (y, p, r), u, g in zip(ANGLES, unity, godot, strict=True):
        assert u == pytest.approx(unity_head_rotation(y, p, r), abs=1e-6)
        # Godot's frame is the protocol's; Unity's mirrors X: (x, y, z, w) -> (x, -y, -z, w).
        assert g == pytest.approx([u[0], -u[1], -u[2], u[3]], abs=1e-6)
