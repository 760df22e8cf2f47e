"""Safe extraction of uploaded archives (``.zip``, ``.tar.gz`` / ``.tgz``, ``.tar``) holding EOPatch folders.

An upload is untrusted: its members may try to land outside the target folder (absolute paths, ``..``), be links or
device files, be very many, or expand to far more than the archive's size (a "zip bomb"). :func:`extract_archive`
checks every member *before writing anything*:

* names: absolute paths, drive letters, ``..`` components and NUL bytes are refused (``\\`` counts as a separator);
* types: only regular files and folders; symlinks, hard links, devices, FIFOs and sparse files are refused;
* counts and sizes: at most ``max_files`` members and ``max_total_bytes`` declared uncompressed bytes;
* compression ratio (uncompressed / compressed) at most ``max_ratio``, per member and overall for zip; overall for
  tar.gz, where header sizes cannot be trusted against the gzip stream, so the decompression itself is metered
  and aborted past the limit. Ratios are judged only once more than ``ratio_floor_bytes`` would be written: an
  all-zero mask compresses ~1000× on its own and is harmless when small.

Then it writes, again metering every byte (a member that yields more than it declared is refused), and removes
what it wrote if anything fails. macOS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``) is skipped.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ArchiveError, PatchFormatError

# one direction only: eopatch never imports archive (is_eopatch / find_eopatches live there, re-exported here)
from .eopatch import find_eopatches, is_eopatch, load_eopatch  # noqa: F401  (is_eopatch: re-export)

MAX_FILES = 10_000
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 16 * 1024**2
_CHUNK = 1024**2
_TAR_OVERHEAD_PER_MEMBER = 3 * 512  # header + PAX/long-name header + padding, generously
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_NAME_BYTES = 255
_MAX_PATH_CHARS = 1024
#: Errors a decompressor raises on corrupt member data (zip: deflate / bzip2 / lzma; tar: gzip).
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError, OSError,
                ValueError)


@dataclass(frozen=True)
class _Limits:
    max_files: int
    max_total_bytes: int
    max_ratio: float
    ratio_floor_bytes: int


@dataclass(frozen=True)
class _Member:
    name: str  #: normalised relative POSIX path
    is_dir: bool
    size: int


def _mib(n: float) -> str:
    return f"{n / 1024**2:.1f} MiB"


def _clean_name(raw: str, archive: Path) -> str | None:
    """Relative POSIX path of a member, or None for the archive root; ArchiveError for escaping names."""
    if "\0" in raw:
        raise ArchiveError(f"{archive.name}: member {raw!r} has a NUL byte in its name; refusing the archive")
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(
            f"{archive.name}: member {raw!r} has an absolute path; archives must hold relative paths (nothing written)"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(
            f"{archive.name}: member {raw!r} would land outside the target folder ('..' in its path); "
            "refusing the archive (nothing written)"
        )
    if any(len(p.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for p in parts) or len(name) > _MAX_PATH_CHARS:
        raise ArchiveError(
            f"{archive.name}: member {raw[:80]!r}… has a name longer than file systems allow ({_MAX_NAME_BYTES} bytes "
            f"per name, {_MAX_PATH_CHARS} characters in all); refusing the archive (nothing written)"
        )
    return "/".join(parts) or None


def _skipped(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


def _kind(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    raise ArchiveError(
        f"{path.name}: not a .zip, .tar.gz/.tgz or .tar archive (unrecognised content); "
        "pack the EOPatch folders with zip or tar -czf"
    )


# -- zip -------------------------------------------------------------------------------------------------------------
#: Central-directory bytes allowed per member: its fixed 46 bytes, a name and a few extra fields (EOPatch members
#: take about 100–200). zipfile reads the whole directory into memory before anything can count its members, so the
#: directory's size is checked first: a 400 MB zip of empty members would hold ~9 million entries (gigabytes).
_ZIP_DIR_BYTES_PER_MEMBER = 512


def _zip_directory_size(archive: Path) -> tuple[int, int] | None:
    """(members announced, central-directory bytes) as zipfile will read them: the end record in the last 22 bytes,
    else the last one in the final 64 KiB (a comment), and a ZIP64 end record just before its locator, wherever the
    locator says it is. None where zipfile will not find an end record either (it then refuses the file)."""
    import struct

    with open(archive, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - (22 + 65535))
        fh.seek(start)
        tail = fh.read()
        at = len(tail) - 22
        if not (at >= 0 and tail[at:at + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):  # zipfile's first try
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < 22:
                return None
        _, _, _, _, n, dir_bytes, _, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
        eocd = start + at
        if eocd >= 20:
            fh.seek(eocd - 20)
            if fh.read(4) == b"PK\x06\x07" and eocd >= 76:  # ZIP64: zipfile reads the record right before the locator
                fh.seek(eocd - 76)
                rec = fh.read(56)
                if rec[:4] == b"PK\x06\x06":
                    n, dir_bytes = struct.unpack("<QQ", rec[32:48])
        return int(n), int(dir_bytes)


def _zip_precheck(archive: Path, lim: _Limits) -> None:
    found = _zip_directory_size(archive)
    if found is None:
        return
    n, dir_bytes = found
    if n > lim.max_files:
        raise ArchiveError(f"{archive.name}: {n} members, more than the limit of {lim.max_files}; split the upload")
    if dir_bytes > lim.max_files * _ZIP_DIR_BYTES_PER_MEMBER:
        raise ArchiveError(
            f"{archive.name}: its member directory takes {dir_bytes} bytes, more than {lim.max_files} members need "
            f"({_ZIP_DIR_BYTES_PER_MEMBER} bytes each at most); re-pack the folders with a plain zip or tar -czf"
        )


def _zip_members(zf: zipfile.ZipFile, archive: Path, lim: _Limits) -> list[tuple[_Member, zipfile.ZipInfo]]:
    infos = zf.infolist()
    if len(infos) > lim.max_files:
        raise ArchiveError(
            f"{archive.name}: {len(infos)} members, more than the limit of {lim.max_files}; split the upload"
        )
    out = []
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{archive.name}: member {info.filename!r} is encrypted; upload an unencrypted archive")
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_IFMT(mode):  # Unix type bits present (writestr leaves them 0)
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{archive.name}: member {info.filename!r} is a symbolic link; links are refused")
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ArchiveError(
                    f"{archive.name}: member {info.filename!r} is a device, FIFO or socket; only files and folders allowed"
                )
        name = _clean_name(info.filename, archive)
        if name is None or _skipped(name):
            continue
        size = 0 if info.is_dir() else info.file_size
        total += size
        if total > lim.max_total_bytes:
            raise ArchiveError(
                f"{archive.name}: members expand to more than the {_mib(lim.max_total_bytes)} limit "
                f"(reached at {info.filename!r}); split the upload"
            )
        if size > lim.ratio_floor_bytes and size > lim.max_ratio * max(info.compress_size, 1):
            raise ArchiveError(
                f"{archive.name}: member {info.filename!r} expands {size / max(info.compress_size, 1):.0f}× "
                f"({_mib(info.compress_size)} → {_mib(size)}), over the compression-ratio limit of {lim.max_ratio:g}; "
                "refused as a possible zip bomb"
            )
        out.append((_Member(name, info.is_dir(), size), info))
    archive_size = archive.stat().st_size
    if total > lim.ratio_floor_bytes and total > lim.max_ratio * max(archive_size, 1):
        raise ArchiveError(
            f"{archive.name}: expands {total / max(archive_size, 1):.0f}× ({_mib(archive_size)} → {_mib(total)}), over "
            f"the compression-ratio limit of {lim.max_ratio:g}; refused as a possible zip bomb"
        )
    return out


# -- tar (streamed, metered) -----------------------------------------------------------------------------------------
class _Metered:
    """Read-only stream that counts the bytes it yields and stops past ``limit`` (decompressed tar stream)."""

    def __init__(self, inner: IO[bytes], limit: int, on_exceed: Callable[[int], ArchiveError]) -> None:
        self.inner, self.limit, self.on_exceed, self.count = inner, limit, on_exceed, 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        data = self.inner.read(min(n, self.limit + 1 - self.count))
        self.count += len(data)
        if self.count > self.limit:
            raise self.on_exceed(self.count)
        return data


@contextlib.contextmanager
def _tar_open(archive: Path, kind: str, lim: _Limits) -> Iterator[tarfile.TarFile]:
    """A streaming TarFile over the metered (decompressed) stream; tar / gzip errors inside the block → ArchiveError."""
    with open(archive, "rb") as raw:
        archive_size = os.fstat(raw.fileno()).st_size
        size_cap = lim.max_total_bytes + _TAR_OVERHEAD_PER_MEMBER * (lim.max_files + 2) + 20 * 512
        ratio_cap = max(lim.ratio_floor_bytes, int(lim.max_ratio * archive_size)) if kind == "tar.gz" else size_cap

        def exceeded(count: int) -> ArchiveError:
            if ratio_cap < size_cap:
                return ArchiveError(
                    f"{archive.name}: decompresses to more than {_mib(ratio_cap)} from {_mib(archive_size)}, over the "
                    f"compression-ratio limit of {lim.max_ratio:g}; refused as a possible archive bomb"
                )
            return ArchiveError(
                f"{archive.name}: decompresses to more than {_mib(size_cap)}, beyond the {_mib(lim.max_total_bytes)} "
                "size limit; split the upload"
            )

        try:
            with contextlib.ExitStack() as stack:
                inner: IO[bytes] = raw
                if kind == "tar.gz":
                    inner = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[assignment]
                metered = _Metered(inner, min(size_cap, ratio_cap), exceeded)
                tf = stack.enter_context(tarfile.open(fileobj=metered, mode="r|",  # type: ignore[call-overload]
                                                      tarinfo=_BoundedTarInfo))
                yield tf
        except ArchiveError:
            raise
        except _HeaderTooLarge as exc:
            raise ArchiveError(f"{archive.name}: {exc}; not a tar an EOPatch export writes, refused") from None
        except RecursionError:  # thousands of chained extended headers
            raise ArchiveError(f"{archive.name}: extended headers chained beyond any real archive; refused") from None
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ArchiveError(f"{archive.name}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from None


#: Largest PAX / GNU long-name header accepted. tarfile reads such a header whole into memory before any check of ours
#: sees the member (its size field allows gigabytes); real ones hold a name and a few times: well under a kilobyte.
_MAX_TAR_HEADER_BYTES = 1024**2
#: All extended headers of one archive together (10 000 members with a PAX header each take about 2 MiB).
_MAX_TAR_HEADERS_TOTAL = 16 * 1024**2


class _HeaderTooLarge(Exception):
    pass


class _BoundedTarInfo(tarfile.TarInfo):
    """TarInfo that refuses an extended header larger than :data:`_MAX_TAR_HEADER_BYTES`, or extended headers adding
    up to more than :data:`_MAX_TAR_HEADERS_TOTAL` in one archive, before they are read; and GNU sparse maps (sparse
    members are refused anyway) before tarfile reads them."""

    def _proc_gnulong(self, tarfile):  # type: ignore[no-untyped-def]
        self._bounded(tarfile)
        return super()._proc_gnulong(tarfile)  # type: ignore[misc]

    def _proc_pax(self, tarfile):  # type: ignore[no-untyped-def]
        self._bounded(tarfile)
        return super()._proc_pax(tarfile)  # type: ignore[misc]

    def _proc_sparse(self, tarfile):  # type: ignore[no-untyped-def]
        raise _HeaderTooLarge(f"member {self.name!r} is a GNU sparse file (its map is read before anything else)")

    def _proc_gnusparse_10(self, next, pax_headers, tarfile):  # type: ignore[no-untyped-def]
        raise _HeaderTooLarge(f"member {next.name!r} is a PAX sparse file (GNU.sparse.major 1)")

    def _bounded(self, tarfile) -> None:  # type: ignore[no-untyped-def]
        if self.size > _MAX_TAR_HEADER_BYTES:
            raise _HeaderTooLarge(f"an extended (PAX / long-name) header of {self.size} bytes, more than "
                                  f"{_MAX_TAR_HEADER_BYTES}")
        seen = getattr(tarfile, "_sr_header_bytes", 0) + self.size
        if seen > _MAX_TAR_HEADERS_TOTAL:
            raise _HeaderTooLarge(f"extended (PAX / long-name) headers adding up to more than {_MAX_TAR_HEADERS_TOTAL} "
                                  "bytes")
        tarfile._sr_header_bytes = seen


def _tar_member(m: tarfile.TarInfo, archive: Path) -> _Member | None:
    if m.issym() or m.islnk():
        raise ArchiveError(f"{archive.name}: member {m.name!r} is a {'symbolic' if m.issym() else 'hard'} link "
                           f"(→ {m.linkname!r}); links are refused (nothing written)")
    if m.ischr() or m.isblk() or m.isfifo():
        raise ArchiveError(f"{archive.name}: member {m.name!r} is a device or FIFO; only files and folders allowed")
    if m.issparse():
        raise ArchiveError(f"{archive.name}: member {m.name!r} is a sparse file; re-pack without sparse support")
    if not (m.isreg() or m.isdir()):
        raise ArchiveError(f"{archive.name}: member {m.name!r} has unsupported type {m.type!r}; only files and folders")
    name = _clean_name(m.name, archive)
    if name is None or _skipped(name):
        return None
    return _Member(name, m.isdir(), 0 if m.isdir() else m.size)


def _tar_check(archive: Path, kind: str, lim: _Limits) -> list[_Member]:
    out: list[_Member] = []
    total = n = 0
    with _tar_open(archive, kind, lim) as tf:
        for m in tf:
            n += 1
            if n > lim.max_files:
                raise ArchiveError(f"{archive.name}: more than the limit of {lim.max_files} members; split the upload")
            mem = _tar_member(m, archive)
            if mem is None:
                continue
            total += mem.size
            if total > lim.max_total_bytes:
                raise ArchiveError(
                    f"{archive.name}: members expand to more than the {_mib(lim.max_total_bytes)} limit "
                    f"(reached at {m.name!r}); split the upload"
                )
            out.append(mem)
    return out


# -- shared ----------------------------------------------------------------------------------------------------------
def _check_layout(members: list[_Member], archive: Path) -> None:
    seen: dict[str, bool] = {}
    for m in members:
        if m.name in seen and not (m.is_dir and seen[m.name]):
            raise ArchiveError(f"{archive.name}: member {m.name!r} appears twice; refusing ambiguous archive")
        seen[m.name] = m.is_dir
    for name in seen:
        parent = name.rpartition("/")[0]
        while parent:
            if seen.get(parent) is False:
                raise ArchiveError(f"{archive.name}: {parent!r} is both a file and a folder; refusing the archive")
            parent = parent.rpartition("/")[0]


def _copy(src: IO[bytes], target: Path, declared: int, name: str, archive: Path, budget: list[int]) -> None:
    written = 0
    with _writing(name, archive), open(target, "xb") as out:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except ArchiveError:
                raise
            except _READ_ERRORS as exc:
                raise ArchiveError(f"{archive.name}: member {name!r} is corrupt ({type(exc).__name__}: {exc})") from None
            if not chunk:
                break
            written += len(chunk)
            budget[0] -= len(chunk)
            if written > declared or budget[0] < 0:
                raise ArchiveError(
                    f"{archive.name}: member {name!r} yields more than its declared {declared} bytes; refused"
                )
            out.write(chunk)
    if written != declared:
        raise ArchiveError(f"{archive.name}: member {name!r} holds {written} bytes, declared {declared}; truncated")


@contextlib.contextmanager
def _writing(name: str, archive: Path) -> Iterator[None]:
    """OSError while creating / writing a member's file (disk full, name refused by the file system) → ArchiveError."""
    try:
        yield
    except OSError as exc:
        raise ArchiveError(
            f"{archive.name}: cannot write member {name!r} ({exc.strerror or exc}); free disk space or re-pack the archive"
        ) from None


def _target(dest: Path, name: str) -> Path:
    target = dest / name
    if dest not in target.resolve().parents:  # belt and braces after _clean_name (e.g. a pre-existing link)
        raise ArchiveError(f"member {name!r} resolves outside {dest}; refused")
    return target


def extract_archive(
    archive: str | Path,
    dest: str | Path,
    *,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
    ratio_floor_bytes: int = RATIO_FLOOR_BYTES,
) -> list[Path]:
    """Safely extract ``archive`` into ``dest`` (created; must be empty) and return the EOPatch folders found in it.

    Every member is checked before anything is written (see the module docstring); a refused or failed
    extraction leaves ``dest`` as it was. Raises :class:`ArchiveError` naming the member and the limit.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such archive file")
    lim = _Limits(max_files, max_total_bytes, max_ratio, ratio_floor_bytes)
    kind = _kind(archive)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"{dest}: extraction target must be a new or empty folder")

    zf: zipfile.ZipFile | None = None
    try:
        if kind == "zip":
            _zip_precheck(archive, lim)  # before zipfile reads every directory entry into memory
            try:
                zf = zipfile.ZipFile(archive)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise ArchiveError(f"{archive.name}: corrupt zip ({exc})") from None
            zmembers = _zip_members(zf, archive, lim)
            members = [m for m, _ in zmembers]
        else:
            members = _tar_check(archive, kind, lim)
        _check_layout(members, archive)

        # -- nothing was written up to here --
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        dest = dest.resolve()
        budget = [lim.max_total_bytes]
        try:
            if zf is not None:
                for m, info in zmembers:
                    target = _target(dest, m.name)
                    with _writing(m.name, archive):
                        if m.is_dir:
                            target.mkdir(parents=True, exist_ok=True)
                            continue
                        target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        with zf.open(info) as src:
                            _copy(src, target, m.size, info.filename, archive, budget)
                    except ArchiveError:
                        raise
                    except _READ_ERRORS as exc:
                        raise ArchiveError(f"{archive.name}: member {info.filename!r} is corrupt ({exc})") from None
            else:
                wanted = {m.name: m for m in members}
                with _tar_open(archive, kind, lim) as tf:
                    for ti in tf:
                        name = _clean_name(ti.name, archive)
                        if name is None or name not in wanted:
                            continue
                        m = wanted[name]
                        target = _target(dest, name)
                        with _writing(name, archive):
                            if m.is_dir:
                                target.mkdir(parents=True, exist_ok=True)
                                continue
                            target.parent.mkdir(parents=True, exist_ok=True)
                        src = tf.extractfile(ti)
                        if src is None:
                            raise ArchiveError(f"{archive.name}: member {ti.name!r} cannot be read")
                        _copy(src, target, m.size, ti.name, archive, budget)
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                for child in list(dest.iterdir()):
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            raise
    finally:
        if zf is not None:
            zf.close()
    return find_eopatches(dest)


# -- finding and opening patches ---------------------------------------------------------------------------------------
def iter_patch_folders(path: str | Path, *, keep_extracted: bool = False, **limits: Any) -> Iterator[tuple[Path, Any]]:
    """Like :func:`iter_patches`, yielding ``(folder, patch)``: the EOPatch folder each patch was read from (inside
    the temporary extraction folder for an archive, valid until the next item unless ``keep_extracted``), for
    callers that read more from it (e.g. :func:`sr_core.io.eopatch.read_b10`)."""
    from ..paths import subdir

    path = Path(path)
    if not path.exists():
        raise PatchFormatError(f"{path}: no such file or folder")
    if path.is_dir():
        folders = find_eopatches(path)
        if not folders:
            raise PatchFormatError(
                f"{path}: no EOPatch folders found (a folder with data/ and bbox.geojson or bbox.pkl.gz); "
                "point at a patch folder, a folder of them, or a .zip/.tar.gz archive"
            )
        for f in folders:
            yield f, load_eopatch(f)
        return
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name)[:60]
    dest = subdir("uploads") / f"{stem}-{uuid.uuid4().hex[:8]}"
    try:
        folders = extract_archive(path, dest, **limits)
        if not folders:
            raise ArchiveError(
                f"{path.name}: holds no EOPatch folders (a folder with data/ and bbox.geojson or bbox.pkl.gz)"
            )
        for f in folders:
            yield f, load_eopatch(f)
    finally:
        if not keep_extracted:
            shutil.rmtree(dest, ignore_errors=True)


def iter_patches(path: str | Path, *, keep_extracted: bool = False, **limits: Any) -> Iterator[Any]:
    """Yield the patches in ``path`` one at a time (an EOPatch folder, a folder of them, or an archive of them),
    so that only one patch is in memory at once.

    Archives are extracted (by :func:`extract_archive`, ``limits`` passed on) into a fresh folder under
    ``$SR_CORE_HOME/uploads``, deleted when the iteration ends unless ``keep_extracted``. Patches come in
    folder-path order.
    """
    for _folder, patch in iter_patch_folders(path, keep_extracted=keep_extracted, **limits):
        yield patch


def open_patches(path: str | Path, *, keep_extracted: bool = False, **limits: Any) -> list[Any]:
    """All patches in ``path`` as a list (see :func:`iter_patches`; prefer that for many large patches)."""
    return list(iter_patches(path, keep_extracted=keep_extracted, **limits))
