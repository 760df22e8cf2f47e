"""Safe archive extraction: escapes, links, devices, counts, sizes and compression bombs refused before writing."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures_io import make_challenge_patch

from sr_core.errors import ArchiveError, PatchFormatError
from sr_core.io import extract_archive, find_eopatches, open_patches
from sr_core.paths import subdir


@pytest.fixture
def patches(tmp_path) -> Path:
    """A folder holding two small challenge-layout EOPatches."""
    root = tmp_path / "src"
    make_challenge_patch(root / "eopatch-01", T=2, seed=1)
    make_challenge_patch(root / "eopatch-02", T=3, seed=2)
    return root


def _zip(path: Path, root: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            zf.write(f, f.relative_to(root.parent).as_posix())
    return path


def _tar(path: Path, root: Path, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        tf.add(root, arcname=root.name)
    return path


def _tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, size: int = 0, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.linkname = size, type_, linkname
    return ti


def _nothing_written(dest: Path) -> bool:
    return not dest.exists() or not any(dest.iterdir())


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_extract_and_open(tmp_path, patches, kind):
    arc = {"zip": lambda p: _zip(p, patches), "tar.gz": lambda p: _tar(p, patches),
           "tar": lambda p: _tar(p, patches, "w")}[kind](tmp_path / f"up.{kind}")
    found = extract_archive(arc, tmp_path / "out")
    assert [f.name for f in found] == ["eopatch-01", "eopatch-02"]
    assert (found[0] / "data" / "BANDS.npy.gz").read_bytes() == (patches / "eopatch-01/data/BANDS.npy.gz").read_bytes()
    loaded = open_patches(arc)
    assert [p.name for p in loaded] == ["eopatch-01", "eopatch-02"] and [p.n_dates for p in loaded] == [2, 3]
    assert not any(subdir("uploads").iterdir())  # temporary extraction removed after loading


def test_open_patches_on_folders(patches):
    assert [p.name for p in open_patches(patches)] == ["eopatch-01", "eopatch-02"]
    assert [p.name for p in open_patches(patches / "eopatch-02")] == ["eopatch-02"]
    assert find_eopatches(patches / "eopatch-01" / "data") == []
    with pytest.raises(PatchFormatError, match="no EOPatch folders found"):
        open_patches(patches / "eopatch-01" / "data")


def test_keep_extracted_under_data_home(tmp_path, patches):
    arc = _zip(tmp_path / "a.zip", patches)
    open_patches(arc, keep_extracted=True)
    kept = list(subdir("uploads").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith("a.zip-") and len(find_eopatches(kept[0])) == 2


# -- refused archives ---------------------------------------------------------------------------------------------------


def test_zip_with_dotdot_member(tmp_path):
    arc = tmp_path / "evil.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("eopatch-01/data/ok.txt", "fine")
        zf.writestr("eopatch-01/../../escaped.txt", "owned")
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(ArchiveError, match=r"'eopatch-01/\.\./\.\./escaped\.txt' would land outside"):
        extract_archive(arc, dest)
    assert _nothing_written(dest) and not (tmp_path / "a" / "escaped.txt").exists()


def test_tar_with_dotdot_and_absolute_members(tmp_path):
    dest = tmp_path / "deep" / "out"
    arc = _tar_with(tmp_path / "evil.tgz", (_info("ok/file", 2), b"ok"), (_info("../escaped", 3), b"bad"))
    with pytest.raises(ArchiveError, match=r"'\.\./escaped' would land outside"):
        extract_archive(arc, dest)
    assert _nothing_written(dest) and not (tmp_path / "deep" / "escaped").exists()
    arc = _tar_with(tmp_path / "abs.tgz", (_info(str(tmp_path / "abs.txt"), 3), b"bad"))
    with pytest.raises(ArchiveError, match="absolute path"):
        extract_archive(arc, dest)
    assert not (tmp_path / "abs.txt").exists()
    arc = _tar_with(tmp_path / "win.tgz", (_info("a\\..\\..\\win.txt", 3), b"bad"))
    with pytest.raises(ArchiveError, match="would land outside"):
        extract_archive(arc, dest)


@pytest.mark.parametrize(
    ("member", "pattern"),
    [
        (_info("p/link", type_=tarfile.SYMTYPE, linkname="/etc/passwd"), "is a symbolic link"),
        (_info("p/hard", type_=tarfile.LNKTYPE, linkname="p/file"), "is a hard link"),
        (_info("p/dev", type_=tarfile.CHRTYPE), "is a device or FIFO"),
        (_info("p/fifo", type_=tarfile.FIFOTYPE), "is a device or FIFO"),
    ],
)
def test_tar_links_and_devices(tmp_path, member, pattern):
    arc = _tar_with(tmp_path / "x.tar.gz", (_info("p/file", 1), b"x"), (member, None))
    with pytest.raises(ArchiveError, match=pattern):
        extract_archive(arc, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")


def test_zip_symlink_member(tmp_path):
    arc = tmp_path / "link.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zi = zipfile.ZipInfo("p/link")
        zi.create_system = 3
        zi.external_attr = (0o120777 << 16)
        zf.writestr(zi, "/etc/passwd")
    with pytest.raises(ArchiveError, match=r"'p/link' is a symbolic link"):
        extract_archive(arc, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")


def test_too_many_members(tmp_path):
    arc = tmp_path / "many.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for i in range(5):
            zf.writestr(f"p/{i}.txt", "x")
    with pytest.raises(ArchiveError, match="5 members, more than the limit of 4"):
        extract_archive(arc, tmp_path / "out", max_files=4)
    tgz = _tar_with(tmp_path / "many.tgz", *[(_info(f"p/{i}", 1), b"x") for i in range(5)])
    with pytest.raises(ArchiveError, match="more than the limit of 4 members"):
        extract_archive(tgz, tmp_path / "out", max_files=4)
    assert _nothing_written(tmp_path / "out")


def test_a_zip_directory_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """zipfile reads every directory entry into memory before anything can count them (a 400 MB zip of empty members:
    ~9 million): the announced count and the directory's size are checked from the end record first."""
    import sr_core.io.archive as archive

    arc = tmp_path / "many.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for i in range(50):
            zf.writestr(f"p/{i}.txt", "")
    big = tmp_path / "long-names.zip"  # few members, each with a directory entry far beyond a real file name
    with zipfile.ZipFile(big, "w") as zf:
        for i in range(3):
            zi = zipfile.ZipInfo(f"p/{i}.txt")
            zi.extra = b"\xfe\xca" + (60_000).to_bytes(2, "little") + b"\0" * 60_000  # one large extra field
            zf.writestr(zi, "")

    def never(*_a, **_k):
        raise AssertionError("zipfile must not read a directory that is over the limit")

    monkeypatch.setattr(archive.zipfile, "ZipFile", never)
    with pytest.raises(ArchiveError, match="50 members, more than the limit of 10"):
        extract_archive(arc, tmp_path / "out", max_files=10)
    with pytest.raises(ArchiveError, match=r"member directory takes \d+ bytes, more than 10 members need \(512 bytes each"):
        extract_archive(big, tmp_path / "out", max_files=10)
    assert _nothing_written(tmp_path / "out")
    monkeypatch.undo()  # zipfile back: the cases below reach it only if the check failed to stop them
    # a ZIP64 end record (which zipfile reads whenever its locator precedes the end record, whatever the plain record
    # says) announcing 9 million members, slipped in front of a small archive's plain end record
    import struct

    raw = arc.read_bytes()
    eocd = raw.rfind(b"PK\x05\x06")
    forged = (struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 9_000_000, 9_000_000, 10**9, 0)
              + struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1))
    (tmp_path / "zip64.zip").write_bytes(raw[:eocd] + forged + raw[eocd:])
    with pytest.raises(ArchiveError, match="9000000 members, more than the limit of 10000"):
        extract_archive(tmp_path / "zip64.zip", tmp_path / "out")
    # a plain end record whose own fields hold the signature again: zipfile takes the record in the last 22 bytes
    raw = arc.read_bytes()
    arc.write_bytes(raw[:-6] + b"PK\x05\x06" + raw[-2:])  # in the directory's offset field
    with pytest.raises(ArchiveError, match="50 members, more than the limit of 10"):
        extract_archive(arc, tmp_path / "out", max_files=10)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_tar_header_of_megabytes_is_refused_before_it_is_read(tmp_path, fmt):
    """A long-name (GNU) or PAX header announces its size; tarfile would read it whole (up to gigabytes from a small
    .tar.gz) before the name checks run. Over 1 MiB it is refused unread; a real long name (300 chars) still passes."""
    huge = tmp_path / "huge.tgz"
    with tarfile.open(huge, "w:gz", format=fmt) as tf:
        tf.addfile(_info("p/" + "a" * (2 * 1024**2) + ".txt", 1), io.BytesIO(b"x"))
    assert huge.stat().st_size < 64 * 1024
    with pytest.raises(ArchiveError, match=r"extended \(PAX / long-name\) header of \d+ bytes, more than 1048576"):
        extract_archive(huge, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")
    fine = tmp_path / "fine.tgz"
    long_name = "p/" + "/".join(["d" * 100] * 2) + "/" + "f" * 100
    with tarfile.open(fine, "w:gz", format=fmt) as tf:
        tf.addfile(_info(long_name, 1), io.BytesIO(b"x"))
    extract_archive(fine, tmp_path / "ok")
    assert (tmp_path / "ok" / long_name).read_bytes() == b"x"


def test_tar_extended_headers_have_a_total_budget_and_sparse_maps_are_not_read(tmp_path, monkeypatch):
    """Each extended header under the per-header limit, but together over the archive's budget (16 MiB; 1 MiB here,
    to keep the test small): refused, as tarfile would hold them all; a GNU sparse member is refused before its map
    is read."""
    import sr_core.io.archive as archive

    monkeypatch.setattr(archive, "_MAX_TAR_HEADERS_TOTAL", 1024**2)
    many = tmp_path / "many-pax.tgz"
    with tarfile.open(many, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for i in range(12):
            ti = _info(f"p/{i}.txt", 1)
            ti.pax_headers = {"comment": "c" * 100_000}
            tf.addfile(ti, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match="headers adding up to more than 1048576 bytes"):
        extract_archive(many, tmp_path / "out")
    sparse = _tar_with(tmp_path / "sparse.tgz", (_info("p/s.bin", 0, tarfile.GNUTYPE_SPARSE), None))
    with pytest.raises(ArchiveError, match="GNU sparse file"):
        extract_archive(sparse, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")


def test_zip_bomb_ratio(tmp_path):
    arc = tmp_path / "bomb.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p/zeros.bin", b"\0" * (4 * 1024**2))
    ratio = 4 * 1024**2 / arc.stat().st_size
    assert ratio > 200  # the archive really expands far beyond its size
    with pytest.raises(ArchiveError, match=r"'p/zeros\.bin' expands \d+× .* compression-ratio limit of 200"):
        extract_archive(arc, tmp_path / "out", ratio_floor_bytes=1024**2)
    assert _nothing_written(tmp_path / "out")
    with pytest.raises(ArchiveError, match=r"more than the 1\.0 MiB limit"):
        extract_archive(arc, tmp_path / "out", max_total_bytes=1024**2)
    # under the default floor (16 MiB) a small all-zero file is harmless and extracts
    assert extract_archive(arc, tmp_path / "ok") == [] and (tmp_path / "ok/p/zeros.bin").stat().st_size == 4 * 1024**2


def test_zip_bomb_overall_ratio(tmp_path):
    arc = tmp_path / "many-zeros.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            zf.writestr(f"p/{i}.bin", b"\0" * (256 * 1024))
    with pytest.raises(ArchiveError, match=r"many-zeros\.zip: expands \d+× .* compression-ratio limit"):
        extract_archive(arc, tmp_path / "out", ratio_floor_bytes=1024**2)  # each member is under the floor


def test_tar_gz_bomb_is_metered_while_streaming(tmp_path):
    arc = _tar_with(tmp_path / "bomb.tgz", (_info("p/zeros.bin", 8 * 1024**2), b"\0" * (8 * 1024**2)))
    assert arc.stat().st_size * 200 < 8 * 1024**2
    with pytest.raises(ArchiveError, match=r"bomb\.tgz: decompresses to more than .* compression-ratio limit of 200"):
        extract_archive(arc, tmp_path / "out", ratio_floor_bytes=1024**2)
    assert _nothing_written(tmp_path / "out")
    with pytest.raises(ArchiveError, match=r"more than the 1\.0 MiB limit"):
        extract_archive(arc, tmp_path / "out", max_total_bytes=1024**2)


def test_not_an_archive_and_corrupt_archives(tmp_path, patches):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"hello world, not an archive" * 30)
    with pytest.raises(ArchiveError, match=r"not a \.zip, \.tar\.gz/\.tgz or \.tar archive"):
        extract_archive(junk, tmp_path / "out")
    tgz = _tar(tmp_path / "cut.tgz", patches)
    tgz.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        extract_archive(tgz, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")


def test_target_must_be_empty_and_duplicates_refused(tmp_path):
    arc = tmp_path / "dup.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("p/a.txt", "1")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="must be a new or empty folder"):
        extract_archive(arc, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    tgz = _tar_with(tmp_path / "dup.tgz", (_info("p/a", 1), b"1"), (_info("p/./a", 1), b"2"))
    with pytest.raises(ArchiveError, match="appears twice"):
        extract_archive(tgz, tmp_path / "out")


def test_macos_metadata_is_skipped(tmp_path, patches):
    arc = _zip(tmp_path / "mac.zip", patches)
    with zipfile.ZipFile(arc, "a") as zf:
        zf.writestr("__MACOSX/src/._eopatch-01", "resource fork")
        zf.writestr("src/.DS_Store", "x")
    out = extract_archive(arc, tmp_path / "out")
    assert len(out) == 2 and not (tmp_path / "out" / "__MACOSX").exists()
    assert np.array_equal(open_patches(tmp_path / "out")[0].bands, open_patches(patches)[0].bands)


def test_uploads_share_a_quota_and_never_take_the_last_of_the_disk(monkeypatch):
    """What a new upload may expand to: the quota ($SR_CORE_UPLOAD_QUOTA_GB) less what earlier uploads keep, and
    never the disk's last GiB (the Upload page refuses at once when that is less than twice the archive)."""
    import shutil

    from sr_core.errors import ConfigError
    from sr_core.paths import DISK_RESERVE_BYTES, upload_quota_bytes, upload_room, uploads_dir

    kept = uploads_dir() / "abc" / "BANDS.npy"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"\0" * 3_000_000)
    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", str(5_000_000 / 1024**3))
    free = shutil.disk_usage(uploads_dir()).free - DISK_RESERVE_BYTES
    assert upload_room() == max(0, min(2_000_000, free))
    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", str(2_000_000 / 1024**3))
    assert upload_room() == 0  # over the quota: nothing more
    monkeypatch.delenv("SR_CORE_UPLOAD_QUOTA_GB")
    assert upload_quota_bytes() == 20 * 1024**3
    # a nearly full disk: the quota is far from used, the disk's last DISK_RESERVE_BYTES are never given
    import sr_core.paths

    disk_usage = shutil.disk_usage
    usage = disk_usage(uploads_dir())
    for free, room in ((DISK_RESERVE_BYTES + 1_000_000, 1_000_000), (DISK_RESERVE_BYTES - 1, 0), (0, 0)):
        monkeypatch.setattr(sr_core.paths.shutil, "disk_usage", lambda _p, f=free: usage._replace(free=f))
        assert upload_room() == room
    monkeypatch.setattr(sr_core.paths.shutil, "disk_usage", disk_usage)
    for bad in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", bad)
        with pytest.raises(ConfigError, match=r"SR_CORE_UPLOAD_QUOTA_GB=.* is not a size in GB"):
            upload_quota_bytes()


def test_uploads_stored_at_the_same_time_share_the_room(monkeypatch):
    """Each browser session stores its upload on its own thread: without reservations three sessions each saw the
    whole room and together stored more than the quota."""
    import threading

    from sr_core.paths import upload_reservation, upload_room

    monkeypatch.setenv("SR_CORE_UPLOAD_QUOTA_GB", str(10_000_000 / 1024**3))
    room = upload_room()
    assert 0 < room <= 10_000_000
    with upload_reservation(6_000_000) as a:
        assert a == min(6_000_000, room)
        with upload_reservation(6_000_000) as b:
            assert b == room - a  # what the first left
            with upload_reservation(1) as c:
                assert c == 0
    with upload_reservation(room + 1) as d:  # all released
        assert d == room
    granted, start = [], threading.Barrier(3)

    def store() -> None:
        start.wait()
        with upload_reservation(room // 2 + 1) as g:
            granted.append(g)
            start.wait()  # all three hold their reservation at once

    threads = [threading.Thread(target=store) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) <= room and sorted(granted)[-1] == room // 2 + 1


def test_uploads_expire_when_unopened_and_stopped_servers_scratch_is_cleared(monkeypatch):
    """An upload is removed after $SR_CORE_UPLOAD_DAYS days (default 30) since it was last opened, not since it was
    stored; opening it records the time beside the folder (the folder's own time keys the app's caches and stays
    put). A scratch folder older than a day was left by a stopped server and goes; a younger one is in use and
    stays. 0 keeps uploads for good; nonsense is a clear error."""
    import os
    import time

    from sr_core.errors import ConfigError
    from sr_core.paths import expire_uploads, touch_upload, upload_days, uploads_dir

    now = time.time()
    day = 86400.0
    d = uploads_dir()

    def made(name: str, age_days: float) -> Path:
        p = d / name / "eopatch-01"
        p.mkdir(parents=True)
        (p / "BANDS.npy").write_bytes(b"\0" * 10)
        for q in (p / "BANDS.npy", p, p.parent):
            os.utime(q, (now - age_days * day, now - age_days * day))
        return p.parent

    old_unopened = made("0123456789abcdef", 31)
    old_opened = made("fedcba9876543210", 40)
    young = made("00000000aaaaaaaa", 2)
    stale_scratch = made("upload-k3j2h1", 1.5)
    live_scratch = made("leaderboard-x1", 0.2)
    cli_scratch = made("batch-a1b2", 9)  # a long command-line run's: never the app's to remove
    before = old_opened.stat().st_mtime
    touch_upload(old_opened / "eopatch-01")  # a page opened one of its patches just now
    assert old_opened.stat().st_mtime == before  # the folder's own time is untouched
    assert (d / "fedcba9876543210.used").is_file()
    touch_upload(live_scratch / "eopatch-01")  # not an upload: nothing recorded
    assert not (d / "leaderboard-x1.used").exists()

    assert upload_days() == 30
    assert expire_uploads(now=now) == ["0123456789abcdef", stale_scratch.name]
    assert not old_unopened.exists() and not stale_scratch.exists()
    assert old_opened.is_dir() and young.is_dir() and live_scratch.is_dir() and cli_scratch.is_dir()

    # opened 40 days ago is 40 days unopened: it goes, with its side file
    os.utime(d / "fedcba9876543210.used", (now - 40 * day, now - 40 * day))
    monkeypatch.setenv("SR_CORE_UPLOAD_DAYS", "1")
    assert expire_uploads(now=now) == ["00000000aaaaaaaa", "fedcba9876543210"]
    assert not (d / "fedcba9876543210.used").exists() and live_scratch.is_dir()

    kept = made("1111111111111111", 400)
    monkeypatch.setenv("SR_CORE_UPLOAD_DAYS", "0")  # keep for good
    assert expire_uploads(now=now) == [] and kept.is_dir()
    for bad in ("a month", "-3", "nan", "inf"):
        monkeypatch.setenv("SR_CORE_UPLOAD_DAYS", bad)
        with pytest.raises(ConfigError, match=r"SR_CORE_UPLOAD_DAYS=.* is not a number of days"):
            expire_uploads(now=now)
    assert kept.is_dir()
