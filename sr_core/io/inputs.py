"""What patches did the user name? EOPatch folders, folders of them, ``.zip`` / ``.tar.gz`` archives of them, or a
glob; archives are extracted safely (:mod:`sr_core.io.archive`) into a work folder the caller owns (e.g.
:func:`sr_core.paths.scratch_dir`)."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import PatchFormatError
from .archive import extract_archive
from .eopatch import find_eopatches, is_eopatch

_GLOB_CHARS = set("*?[")


def collect_eopatches(inputs: Iterable[str | Path], workdir: str | Path) -> list[Path]:
    """EOPatch folders named by ``inputs``: patch folders, folders of patch folders, or archives of them (safely
    extracted under ``workdir``). Raises when an input holds no patch or two patches share a folder name (their
    submission files would collide)."""
    found: list[Path] = []
    for i, raw in enumerate(inputs):
        src = Path(raw)
        if not src.exists():
            raise PatchFormatError(f"{src}: no such file or folder; give EOPatch folders, folders of them, or archives")
        if src.is_dir():
            folders = find_eopatches(src)
        else:
            folders = extract_archive(src, Path(workdir) / f"{i:03d}-{_safe(src.name)}")
        if not folders:
            raise PatchFormatError(
                f"{src}: no EOPatch folder in it (a folder with data/ and bbox.geojson or bbox.pkl.gz); "
                "point at a patch folder, a folder of them, or a .zip/.tar.gz archive of them"
            )
        found += folders
    names: dict[str, Path] = {}
    for f in found:
        if f.name in names and names[f.name].resolve() != f.resolve():
            raise PatchFormatError(
                f"two patches are both named {f.name!r} ({names[f.name]} and {f}); their submission files would "
                "collide: rename one folder"
            )
        names[f.name] = f
    return list(names.values())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]


def resolve_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Input paths from a glob pattern, one path, or a list of them (each may be a patch, a folder or an archive)."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for item in items:
        s = str(item)
        if _GLOB_CHARS & set(s) and not Path(s).exists():
            hits = sorted(glob.glob(s, recursive=True))  # noqa: PTH207 - absolute patterns too
            if not hits:
                raise PatchFormatError(f"{s}: the pattern matches nothing; give EOPatch folders, folders of them or a glob")
            out += [Path(h) for h in hits]
        else:
            out.append(Path(s))
    if not out:
        raise PatchFormatError("no inputs; give EOPatch folders, folders of them, archives or a glob")
    return out


def expand_inputs(paths: list[Path], workdir: Path) -> list[Path]:
    """EOPatch folders in ``paths``; a glob's hits that are not patches (e.g. a README beside them) are ignored."""
    keep = [p for p in paths if p.is_dir() or p.suffix.lower() in (".zip", ".gz", ".tgz", ".tar") or is_eopatch(p)]
    return collect_eopatches(keep or paths, workdir)


__all__ = ["collect_eopatches", "expand_inputs", "resolve_inputs"]
