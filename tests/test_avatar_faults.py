"""Hostile ``.avatar`` files: corrupt, zip bombs, lying sizes, odd member names, not zips at all.

Every file here is built for real with ``zipfile`` (or, where a zip must lie, by hand with
``struct``). Each must be refused with a :class:`PortraitError` that names the file, the problem
and the fix, within bounded time and memory (measured with ``tracemalloc``, which sees Python's
and numpy's allocations).
"""

from __future__ import annotations

import bz2
import io
import json
import random
import re
import struct
import time
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import infp_sdk.face.avatar as avatar_module
from infp_sdk.face import PortraitError, load_avatar, load_portrait

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "examples" / "portrait" / "astronaut.avatar"
PHOTO = ROOT / "examples" / "portrait" / "astronaut.png"
MiB = 1 << 20
NAMES = ("avatar.json", "image.npy", "vertices.npy", "triangles.npy", "head_weight.npy")
PEAK = 32 * MiB  # loading the shipped avatar peaks near 2 MiB
SECONDS = 10.0  # generous, for slow or busy machines


# ---------------------------------------------------------------------------------------------
# building hostile files
# ---------------------------------------------------------------------------------------------


def shipped_members() -> dict[str, bytes]:
    with zipfile.ZipFile(SHIPPED) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(path: Path, members, compression=zipfile.ZIP_DEFLATED) -> Path:
    """Write ``members`` (a dict, or (name, bytes) pairs for duplicates) with ``zipfile``."""
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in items:
            z.writestr(name, data)
    return path


def with_member(path: Path, name: str, data: bytes) -> Path:
    return rezip(path, {**shipped_members(), name: data})


def npy(array: np.ndarray, pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=pickle)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def header(**changes) -> bytes:
    meta = json.loads(shipped_members()["avatar.json"])
    meta.update(changes)
    return json.dumps(meta).encode()


@dataclass
class Raw:
    """A zip member written verbatim: ``data`` is already compressed; the sizes may lie."""

    name: str
    data: bytes
    method: int
    crc: int
    size: int
    flags: int = 0


def replace(member: Raw, **changes) -> Raw:
    return Raw(**{**member.__dict__, **changes})


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw(name: str, data: bytes, **lies) -> Raw:
    """A deflated member, honest unless ``lies`` (size, crc, flags, method, data) say otherwise."""
    member = Raw(name, deflate(data), zipfile.ZIP_DEFLATED, zlib.crc32(data), len(data))
    for key, value in lies.items():
        setattr(member, key, value)
    return member


def honest(exclude: tuple[str, ...] = ()) -> list[Raw]:
    return [raw(n, d) for n, d in shipped_members().items() if n not in exclude]


def write_raw_zip(path: Path, members: list[Raw], directory: bytes = b"") -> Path:
    """Local headers, data, central directory (plus ``directory``, extra raw entries), end."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        fields = (m.flags, m.method, 0, 0x21, m.crc, len(m.data), m.size, len(name))
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *fields, 0, 0, 0, 0, 0, len(out)
        )
        central += name
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *fields, 0) + name + m.data
    central += directory
    count = min(len(members) + directory.count(b"PK\x01\x02"), 0xFFFF)
    out += central + struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0
    )
    path.write_bytes(bytes(out))
    return path


def repeated_deflate(prefix: bytes, fill: bytes, mib: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``prefix`` + ``mib`` MiB of ``fill``: (data, crc32, size).

    Built in O(1 MiB) memory: a MiB of ``fill`` is deflated once and ended with a full flush (no
    back-reference reaches before it), so copies of it concatenate into one valid stream that an
    empty final block closes. 2 GiB of zeros take about 2 MB.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = fill * (MiB // len(fill))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return head + segment * mib + b"\x03\x00", crc, len(prefix) + mib * MiB


def bomb(name: str, mib: int, prefix: bytes = b"", fill: bytes = b"\0") -> Raw:
    data, crc, size = repeated_deflate(prefix, fill, mib)
    return Raw(name, data, zipfile.ZIP_DEFLATED, crc, size)


def image_bomb(mib: int) -> Raw:
    """image.npy: a valid (H, W, 3) uint8 header and ``mib`` MiB of zeros (mib divisible by 3)."""
    assert mib % 3 == 0
    return bomb("image.npy", mib, npy_header((mib // 3 * 1024, 1024, 3)))


def refused(path: Path, problem: str, peak: int = PEAK) -> str:
    """Load ``path``; it must raise PortraitError naming it, ``problem`` and the fix, in bounds."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(PortraitError) as caught:
            load_avatar(path)
    finally:
        seconds = time.perf_counter() - t0
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    message = str(caught.value)
    assert used < peak, f"loading allocated {used / MiB:.0f} MiB: {message}"
    assert seconds < SECONDS, f"loading took {seconds:.1f} s: {message}"
    assert str(path) in message, message
    assert re.search(problem, message), message
    assert "infp-sdk prepare" in message, message
    return message


# ---------------------------------------------------------------------------------------------
# valid avatars load exactly as before
# ---------------------------------------------------------------------------------------------


def test_shipped_avatar_loads_bit_identical():
    members = shipped_members()
    avatar = load_avatar(SHIPPED)
    for name in ("image", "vertices", "triangles", "head_weight"):
        reference = np.load(io.BytesIO(members[f"{name}.npy"]), allow_pickle=False)
        got = getattr(avatar, name)
        assert got.dtype == reference.dtype and got.shape == reference.shape
        assert got.tobytes() == reference.tobytes()
        assert got.flags.writeable
    meta = json.loads(members["avatar.json"])
    assert avatar.meta == {k: v for k, v in meta.items() if k not in ("format", "version")}


def test_round_trip_and_stored_members(tmp_path):
    avatar = load_avatar(SHIPPED)
    again = load_avatar(avatar.save(tmp_path / "again.avatar"))
    stored = load_avatar(rezip(tmp_path / "stored.avatar", shipped_members(), zipfile.ZIP_STORED))
    for other in (again, stored):
        for name in ("image", "vertices", "triangles", "head_weight"):
            assert np.array_equal(getattr(other, name), getattr(avatar, name))
        assert other.meta == avatar.meta


def test_limits_leave_room_for_real_avatars():
    limits = avatar_module.AVATAR_LIMITS
    with zipfile.ZipFile(SHIPPED) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
    assert sizes["avatar.json"] * 100 < limits.header_bytes
    # the largest avatar prepare writes at --max-side 8192: an RGB image and a weight map
    side = 8192
    assert side * side * 3 + 128 <= limits.member_bytes
    assert side * side * 4 + sum(sizes.values()) <= limits.total_bytes
    assert limits.members >= 10 * len(NAMES)


def test_save_refuses_what_load_would_refuse(tmp_path, monkeypatch):
    avatar = load_avatar(SHIPPED)
    monkeypatch.setattr(
        avatar_module, "AVATAR_LIMITS", avatar_module.AvatarLimits(member_bytes=100_000)
    )
    target = tmp_path / "big.avatar"
    with pytest.raises(PortraitError, match=r"image\.npy is .* over the limit.*--max-side"):
        avatar.save(target)
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# not a zip, truncated, damaged
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: random.Random(1).randbytes(4096), "not a zip archive"),
        (lambda: b"", "not a zip archive"),
        (lambda: PHOTO.read_bytes(), "not a zip archive"),
        (lambda: b"INFP avatar\n" * 100, "not a zip archive"),
        (lambda: SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2], "truncated"),
        (lambda: SHIPPED.read_bytes()[:-30], "truncated"),
    ],
    ids=["random-bytes", "empty", "png-renamed", "text", "first-half", "end-cut"],
)
def test_not_a_zip(tmp_path, make, problem):
    path = tmp_path / "x.avatar"
    path.write_bytes(make())
    refused(path, problem)


def test_damaged_compressed_data(tmp_path):
    """Deflate data replaced by noise (zlib.error) or bit-flipped (CRC): refused, not a crash."""
    members = honest(exclude=("image.npy",))
    image = raw("image.npy", shipped_members()["image.npy"])
    noise = replace(image, data=random.Random(2).randbytes(len(image.data)))
    damaged = "not a readable avatar|holds (less|more) data than"
    refused(write_raw_zip(tmp_path / "noise.avatar", [*members, noise]), damaged)
    flipped = bytearray(image.data)
    flipped[len(flipped) // 2] ^= 0x10
    flip = replace(image, data=bytes(flipped))
    refused(write_raw_zip(tmp_path / "flip.avatar", [*members, flip]), damaged)


def test_random_damage_is_always_a_portrait_error(tmp_path):
    """Seeded fuzzing: byte flips, cut-outs and truncations of the shipped avatar."""
    original = SHIPPED.read_bytes()
    rng = random.Random(3)
    path = tmp_path / "fuzz.avatar"
    for trial in range(300):
        data = bytearray(original)
        kind = trial % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            at = rng.randrange(len(data))
            del data[at : at + rng.randint(1, 4096)]
        elif kind == 2:
            # damage the directory and the headers, where the parser's fields live
            for _ in range(rng.randint(1, 4)):
                at = len(data) - rng.randrange(1, 400) if rng.random() < 0.7 else rng.randrange(80)
                data[at] = rng.randrange(256)
        else:
            data = data[: rng.randrange(len(data))]
        path.write_bytes(bytes(data))
        try:
            load_avatar(path)
        except PortraitError as e:
            assert str(path) in str(e) and "infp-sdk prepare" in str(e)
            assert "Errno" not in str(e), str(e)


# ---------------------------------------------------------------------------------------------
# members missing, of the wrong type or shape; a header that is not what it should be
# ---------------------------------------------------------------------------------------------


def test_missing_member(tmp_path):
    members = shipped_members()
    del members["triangles.npy"]
    refused(rezip(tmp_path / "x.avatar", members), "lacks triangles.npy")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\xff\xfe{not json", "avatar.json is not valid JSON"),
        (b'{"format": "infp-avatar", "version": 1', "avatar.json is not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "avatar.json is not valid JSON"),
        (b'["infp-avatar", 1]', "not an infp-sdk avatar"),
        (b'{"format": "infp-avatar", "version": "1"}', "version '1', not a positive integer"),
        (b'{"format": "infp-avatar", "version": true}', "version True, not a positive integer"),
        (b'{"format": "infp-avatar", "version": 0}', "version 0, not a positive integer"),
        (header(groups="rings"), "meta 'groups' is not an object"),
        (header(groups={"outer_rings": [494, 36, 10**9]}), r"groups\.outer_rings is \[494"),
        (header(groups={"eye_rings": [-1, 8, 2]}), r"groups\.eye_rings"),
        (header(groups={"eye_rings": [478, 8]}), r"groups\.eye_rings"),
        (header(groups={"eye_rings": [478, 8.5, 2]}), r"groups\.eye_rings"),
        (header(groups={"pivot_depth": "deep"}), r"groups\.pivot_depth is 'deep'"),
        (header(groups={"pivot_depth": float("inf")}), r"groups\.pivot_depth is inf"),
    ],
    ids=[
        "not-utf8",
        "cut-short",
        "nested-too-deep",
        "a-list",
        "version-string",
        "version-bool",
        "version-zero",
        "groups-string",
        "a-billion-rings",
        "negative-ring-start",
        "two-ring-numbers",
        "fractional-ring-count",
        "pivot-string",
        "pivot-inf",
    ],
)
def test_bad_header(tmp_path, content, problem):
    refused(with_member(tmp_path / "x.avatar", "avatar.json", content), problem)


def test_existing_tools_still_see_the_newer_version_hint(tmp_path):
    path = with_member(tmp_path / "x.avatar", "avatar.json", header(version=2))
    with pytest.raises(PortraitError, match="upgrade infp-sdk"):
        load_avatar(path)


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("image.npy", npy(np.zeros((512, 512, 3), np.float32)), r"image\.npy holds float32"),
        ("image.npy", npy(np.zeros((512, 512), np.uint8)), r"image\.npy has shape \(512, 512\)"),
        ("image.npy", b"not an npy file at all", r"image\.npy is not a readable \.npy array"),
        ("image.npy", npy(np.zeros((512, 512, 3), "U1")), r"image\.npy holds <U1 data"),
        ("vertices.npy", npy(np.zeros((602, 3), np.complex64)), r"vertices\.npy holds complex64"),
        ("vertices.npy", npy(np.zeros((602, 3), [("x", "<f4")])), r"vertices\.npy holds"),
        ("vertices.npy", npy(np.zeros((602, 2), np.float32)), r"vertices\.npy has shape"),
        ("vertices.npy", npy(np.full((602, 3), np.nan, np.float32)), "NaN or inf"),
        ("triangles.npy", npy(np.zeros((10, 3), np.float32)), r"triangles\.npy holds float32"),
        (
            "triangles.npy",
            npy(np.full((10, 3), 2**32 + 5, np.uint64)),  # wraps to 5 as int32
            "triangles index vertices that do not exist",
        ),
        ("triangles.npy", npy(np.full((10, 3), 602, np.int32)), "index vertices that do not"),
        ("head_weight.npy", npy(np.zeros((256, 256), np.uint8)), "head_weight is uint8"),
        (
            "head_weight.npy",
            npy(np.zeros(1, object), pickle=True),
            r"head_weight\.npy holds object",
        ),
        # the .npy header and the data behind it disagree
        ("image.npy", npy(np.zeros((512, 512, 3), np.uint8)) + b"\0", r"holds 786433 bytes"),
        ("image.npy", npy_header((512, 512, 3)) + bytes(1000), r"declares shape \(512, 512, 3\)"),
    ],
    ids=[
        "image-float",
        "image-2d",
        "image-not-npy",
        "image-strings",
        "vertices-complex",
        "vertices-structured",
        "vertices-2-columns",
        "vertices-nan",
        "triangles-float",
        "triangles-wrap-int32",
        "triangles-out-of-range",
        "weight-wrong-shape",
        "weight-pickle",
        "image-extra-bytes",
        "image-short-data",
    ],
)
def test_bad_array(tmp_path, name, content, problem):
    refused(with_member(tmp_path / "x.avatar", name, content), problem)


@pytest.mark.parametrize("gib", [2, 1 << 10], ids=["2GiB", "1TiB"])
def test_npy_header_declaring_a_huge_array(tmp_path, gib):
    """A few bytes whose .npy header claims gigabytes: refused before numpy allocates them."""
    content = npy_header((gib << 20, 1024)) + bytes(64)
    path = with_member(tmp_path / "x.avatar", "head_weight.npy", content)
    refused(path, r"head_weight\.npy declares shape")


# ---------------------------------------------------------------------------------------------
# zip bombs and sizes that lie
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_gib_image() -> Raw:
    return image_bomb(2046)  # about 2 MB on disk, 2 GiB inflated


def test_zip_bomb_is_refused_before_inflating(tmp_path, two_gib_image):
    """2 GiB of zeros behind a valid .npy header: declared honestly, refused without reading."""
    assert len(two_gib_image.data) < 3 * MiB and two_gib_image.size > 2_000 * MiB
    path = write_raw_zip(tmp_path / "bomb.avatar", [*honest(("image.npy",)), two_gib_image])
    refused(path, r"image\.npy is 2\.0 GiB uncompressed, over the limit of 256\.0 MiB.*zip bomb")


def test_declared_size_alone_is_refused(tmp_path):
    """A member claiming 3 GiB is refused on the claim: nothing is inflated to find out."""
    members = honest(("vertices.npy",))
    lie = raw("vertices.npy", shipped_members()["vertices.npy"], size=3 << 30)
    path = write_raw_zip(tmp_path / "claim.avatar", [*members, lie])
    refused(path, r"vertices\.npy is 3\.0 GiB uncompressed, over the limit")


def test_members_over_the_total_limit(tmp_path):
    """Two members each under the per-member limit, together over the total."""
    members = honest(("image.npy", "head_weight.npy"))
    image = image_bomb(216)
    weight = bomb("head_weight.npy", 216, npy_header((216 * 1024, 1024)))
    path = write_raw_zip(tmp_path / "total.avatar", [*members, image, weight])
    refused(path, r"members hold 432\.0 MiB in total, over 320\.0 MiB")


def test_json_bomb(tmp_path):
    """100 MiB of '[' behind the header's name: over the header's own 1 MiB limit."""
    members = honest(("avatar.json",))
    path = write_raw_zip(tmp_path / "json.avatar", [*members, bomb("avatar.json", 100, b"", b"[")])
    refused(path, r"avatar\.json is 100\.0 MiB uncompressed, over the limit of 1\.0 MiB")


def test_deflated_member_holding_more_than_it_declares(tmp_path, two_gib_image):
    """The directory says 1000 bytes; the deflate stream holds 2 GiB. At most 1000 are read."""
    size = 1000
    first = npy_header((682 * 1024, 1024, 3)) + bytes(size)
    lie = replace(two_gib_image, size=size, crc=zlib.crc32(first[:size]))
    path = write_raw_zip(tmp_path / "lie.avatar", [*honest(("image.npy",)), lie])
    refused(path, r"image\.npy declares shape \(698368, 1024, 3\)")


def test_bzip2_member_is_refused_unread(tmp_path):
    """bzip2 inflates a whole read at once: 96 MiB of zeros in ~200 bytes claiming 1000 bytes."""
    data = bz2.compress(bytes(96 * MiB), 9)
    assert len(data) < 1000
    lie = Raw("image.npy", data, zipfile.ZIP_BZIP2, 0, 1000)
    path = write_raw_zip(tmp_path / "bz2.avatar", [*honest(("image.npy",)), lie])
    refused(path, r"image\.npy uses zip compression method 12")


@pytest.mark.parametrize(
    "method, flags, problem",
    [
        (zipfile.ZIP_BZIP2, 0, "compression method 12"),
        (zipfile.ZIP_LZMA, 0, "compression method 14"),
        (99, 0, "compression method 99"),  # AES, which zipfile cannot read
        (zipfile.ZIP_DEFLATED, 0x1, "is encrypted"),
    ],
    ids=["bzip2", "lzma", "aes", "encrypted"],
)
def test_members_zipfile_would_mishandle(tmp_path, method, flags, problem):
    members = honest(("vertices.npy",))
    odd = replace(raw("vertices.npy", shipped_members()["vertices.npy"]), method=method)
    odd.flags = flags
    refused(write_raw_zip(tmp_path / "odd.avatar", [*members, odd]), rf"vertices\.npy.*{problem}")


def test_size_enforced_while_reading(tmp_path, monkeypatch):
    """A zip reader that trusted the stream over the declared size still reads no more than it.

    ``zipfile`` itself stops a deflated member at its declared size; this stands in for a reader
    that did not (an endless stream of zeros), to show the loader's own bound.
    """
    path = rezip(tmp_path / "x.avatar", shipped_members())

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            assert 0 <= n <= 786560 + 1, f"asked for {n} bytes"
            return bytes(n)

    real_open = zipfile.ZipFile.open

    def open_(self, name, *args, **kwargs):
        if getattr(name, "filename", name) == "image.npy":
            return Endless()
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_)
    refused(path, r"image\.npy holds more data than the 786560 bytes it declares")


# ---------------------------------------------------------------------------------------------
# member names and counts
# ---------------------------------------------------------------------------------------------


def test_odd_member_names_are_ignored_and_nothing_is_extracted(tmp_path, monkeypatch):
    """../x, absolute paths, drive letters, look-alikes: never read, never written to disk."""
    work = tmp_path / "deep" / "inside"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    evil = b"should never be written"
    members = [
        *shipped_members().items(),
        ("../evil.txt", evil),
        ("../../evil.txt", evil),
        (str(tmp_path / "absolute-evil.txt"), evil),
        ("C:\\evil.txt", evil),
        ("./image.npy", npy(np.zeros((4, 4, 3), np.uint8))),
        ("IMAGE.NPY", npy(np.zeros((4, 4, 3), np.uint8))),
        ("sub/avatar.json", b"{}"),
    ]
    path = rezip(work / "names.avatar", members)
    before = sorted(p for p in tmp_path.rglob("*"))
    avatar = load_avatar(path)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert np.array_equal(avatar.image, load_avatar(SHIPPED).image)


def test_expected_member_only_under_a_traversal_name(tmp_path):
    members = shipped_members()
    members["../image.npy"] = members.pop("image.npy")
    refused(rezip(tmp_path / "x.avatar", members), "lacks image.npy")


def test_duplicate_member_is_refused(tmp_path):
    """Two image.npy entries: zip tools disagree on which counts, so neither is trusted."""
    members = [*shipped_members().items(), ("image.npy", npy(np.zeros((512, 512, 3), np.uint8)))]
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = rezip(tmp_path / "dup.avatar", members)
    refused(path, "holds image.npy more than once")


def test_too_many_members(tmp_path):
    members = {**shipped_members(), **{f"extra/{i}.txt": b"" for i in range(60)}}
    path = rezip(tmp_path / "many.avatar", members)
    refused(path, "its zip directory lists 65 members in 3[0-9]{3} bytes; an avatar has 5")
    # the end record's count may lie (zipfile reads the directory by its size): counted again
    data = bytearray(path.read_bytes())
    data[-14:-10] = struct.pack("<HH", 5, 5)
    path.write_bytes(bytes(data))
    refused(path, "it has 65 members; an avatar has 5")


def test_zip64_end_record_is_bounded_too(tmp_path):
    """A zip64 end record (which zipfile prefers) claiming a million entries in a 1 GB directory."""
    path = rezip(tmp_path / "z64.avatar", shipped_members())
    data = path.read_bytes()
    eocd = data[-22:]
    cd_size, cd_offset = struct.unpack_from("<LL", eocd, 12)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 10**6, 10**6, 10**9, 0)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(data) - 22, 1)
    path.write_bytes(data[:-22] + record + locator + eocd)
    refused(path, "lists 1000000 members in 1000000000 bytes")


def test_huge_directory_is_refused_before_parsing(tmp_path):
    """200,000 directory entries (about 10 MB): refused before zipfile builds an object each."""
    entry = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0
    )
    directory = b"".join(entry + b"%05d" % (i % 100_000) for i in range(200_000))
    path = write_raw_zip(tmp_path / "wide.avatar", honest(), directory)
    assert path.stat().st_size > 9 * MiB
    refused(path, r"zip directory lists 65535 members in \d+ bytes", peak=4 * MiB)


def test_load_portrait_reports_the_same(tmp_path, two_gib_image):
    """Through the public entry point the renderer uses: the same error, nothing rendered."""
    path = write_raw_zip(tmp_path / "bomb.avatar", [*honest(("image.npy",)), two_gib_image])
    with pytest.raises(PortraitError, match=re.escape(str(path))):
        load_portrait(path)
