"""Engine packages (Unity, Godot, Unreal): layout checks that need no engine.

The engines themselves cannot run in CI; their C# and C++ cores can and are tested in
test_bindings_csharp.py and test_bindings_cpp.py. These tests keep the packages well-formed: Unity
meta files, one copy of the shared C# sources, the Godot install script, the Unreal descriptors.
"""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT

BINDINGS = ROOT / "bindings"
SHARED = sorted(p.name for p in (BINDINGS / "csharp").glob("*.cs"))


def test_one_copy_of_the_shared_csharp_sources():
    tracked = subprocess.run(["git", "ls-files", "bindings"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    for name in SHARED:
        copies = [p for p in tracked if p.endswith("/" + name)]
        assert copies == [f"bindings/csharp/{name}"], copies
    assert SHARED == ["InfpDecoder.cs", "InfpRig.cs", "InfpStream.cs"]


def test_unity_packages_have_meta_files_with_unique_guids():
    """Git-installed Unity packages are immutable: every asset needs a committed .meta."""
    guids = {}
    for package in ("csharp", "unity"):
        root = BINDINGS / package
        manifest = json.loads((root / "package.json").read_text())
        assert re.fullmatch(r"com\.infp\.[a-z.]+", manifest["name"])
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part.endswith("~") or part.startswith(".") for part in rel.parts):
                continue
            if path.suffix == ".meta":
                assert path.with_suffix("").exists(), f"orphan {path}"
                continue
            meta = path.with_name(path.name + ".meta")
            assert meta.exists(), f"{meta} missing"
            guid = re.search(r"^guid: ([0-9a-f]{32})$", meta.read_text(), re.M).group(1)
            assert guid not in guids, (path, guids.get(guid))
            guids[guid] = path
    asmdef = json.loads((BINDINGS / "unity" / "Runtime" / "Infp.Unity.asmdef").read_text())
    protocol = json.loads((BINDINGS / "csharp" / "Infp.Protocol.asmdef").read_text())
    assert protocol["name"] in asmdef["references"] and protocol["noEngineReferences"]


def test_godot_project_and_install_script_use_the_shared_sources(tmp_path):
    csproj = (BINDINGS / "godot" / "InfpGodot.csproj").read_text()
    for name in SHARED:
        assert f'Include="../csharp/{name}"' in csproj
    subprocess.run(["sh", str(BINDINGS / "godot" / "install.sh"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    addon = tmp_path / "addons" / "infp"
    for name in SHARED:
        assert (addon / "protocol" / name).read_bytes() == (BINDINGS / "csharp" / name).read_bytes()
    for src in (BINDINGS / "godot" / "addons" / "infp").iterdir():
        assert (addon / src.name).read_bytes() == src.read_bytes()


def test_unreal_plugin_descriptors():
    root = BINDINGS / "unreal" / "InfpLiveLink"
    plugin = json.loads((root / "InfpLiveLink.uplugin").read_text())
    assert {m["Name"] for m in plugin["Modules"]} == {"InfpLiveLink"}
    assert any(p["Name"] == "LiveLink" for p in plugin["Plugins"])
    build = (root / "Source" / "InfpLiveLink" / "InfpLiveLink.Build.cs").read_text()
    assert '"LibZmq"' in build and '"LiveLinkInterface"' in build
    third_party = (root / "Source" / "ThirdParty" / "LibZmq" / "LibZmq.Build.cs").read_text()
    assert "ModuleType.External" in third_party
    sources = "".join(p.read_text() for p in (root / "Source" / "InfpLiveLink").rglob("*.cpp"))
    assert "THIRD_PARTY_INCLUDES_START" in sources and "FRunnable" in sources
