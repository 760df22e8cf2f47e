"""The one data home: everything sr_core writes at run time lives under ``$SR_CORE_HOME``.

Default: the per-user data folder (``$XDG_DATA_HOME/sr-core`` or ``~/.local/share/sr-core`` on Linux,
``~/Library/Application Support/sr-core`` on macOS, ``%LOCALAPPDATA%\\sr-core`` on Windows). Never inside the
installed code.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError

ENV_HOME = "SR_CORE_HOME"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
#: The bundled weights (``sr-small.pt``, ``pixel-baseline.npz``) and their cards. In a checkout they live in the
#: repository's ``models/``; an installed wheel carries the same files as package data in ``sr_core/_bundled/``
#: (``setup.py`` maps ``models/`` there), so ``pip install .`` gives a CLI with its model.
BUNDLED_DIR = PACKAGE_DIR / "_bundled"
CHECKOUT_MODELS_DIR = REPO_DIR / "models"


def bundled_models_dir() -> Path:
    """Where the bundled weights are: the installed package data when present, else the checkout's ``models/``."""
    return BUNDLED_DIR if BUNDLED_DIR.is_dir() else CHECKOUT_MODELS_DIR


MODELS_DIR = bundled_models_dir()

#: Real fixtures (tests, benchmarks and the calibration compare against them) are never looked for beside the
#: checkout: a user names their folder in ``$SR_SHARED_DATA`` (``make run`` does it in a checkout beside ``../shared``).
ENV_SHARED_DATA = "SR_SHARED_DATA"


def shared_data_dir() -> Path | None:
    """The folder of real fixtures named by ``$SR_SHARED_DATA`` (None when unset: the library never guesses one)."""
    raw = os.environ.get(ENV_SHARED_DATA)
    return Path(raw).expanduser() if raw else None


def real_fixture(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The real fixture folder ``<data_dir>/real/<name>`` (default ``data_dir``: :func:`shared_data_dir`); None when
    no folder is named or it is absent."""
    base = Path(data_dir) if data_dir is not None else shared_data_dir()
    if base is None:
        return None
    p = base / "real" / name
    return p if p.is_dir() else None


def _default_home() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sr-core"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "sr-core"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "sr-core"


def data_home(create: bool = True) -> Path:
    """The data home folder (created on first use unless ``create=False``)."""
    raw = os.environ.get(ENV_HOME)
    home = Path(raw).expanduser() if raw else _default_home()
    home = home.resolve()
    if home == PACKAGE_DIR or PACKAGE_DIR in home.parents:
        raise ConfigError(
            f"{ENV_HOME}={home} lies inside the installed package {PACKAGE_DIR}; "
            f"point {ENV_HOME} at a data folder outside the code, e.g. ~/.local/share/sr-core"
        )
    if create:
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the data home {home} ({exc.strerror}); set {ENV_HOME} to a writable folder"
            ) from exc
    return home


def subdir(name: str, create: bool = True) -> Path:
    """A named folder under the data home: ``demo``, ``cache``, ``uploads``, ``benchmark``, ``runs``."""
    path = data_home(create) / name
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def swap_in_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing an existing ``final`` so that readers see either the
    old or the new folder, never a half-written one (on failure the old folder is put back)."""
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
        try:
            tmp.rename(final)
        except OSError:
            old.rename(final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def demo_dir() -> Path:
    return subdir("demo")


def cache_dir() -> Path:
    return subdir("cache")


def uploads_dir() -> Path:
    return subdir("uploads")


ENV_UPLOAD_QUOTA = "SR_CORE_UPLOAD_QUOTA_GB"
DEFAULT_UPLOAD_QUOTA_GB = 20.0
#: Disk space an upload never takes: the leaderboard, caches and the system keep working when uploads fill up.
DISK_RESERVE_BYTES = 1024**3


def _env_amount(name: str, default: float, what: str) -> float:
    """A finite number ≥ 0 from ``$name`` (``default`` when unset), or a ConfigError that says ``what`` it is."""
    raw = os.environ.get(name, "").strip()
    try:
        v = float(raw) if raw else default
    except ValueError:
        v = -1.0
    if not (v >= 0 and math.isfinite(v)):  # also NaN and inf
        raise ConfigError(f"{name}={raw!r} is not {what}")
    return v


def upload_quota_bytes() -> int:
    """All uploads together may take ``$SR_CORE_UPLOAD_QUOTA_GB`` (default 20 GB)."""
    gb = _env_amount(ENV_UPLOAD_QUOTA, DEFAULT_UPLOAD_QUOTA_GB, f"a size in GB; set e.g. {ENV_UPLOAD_QUOTA}=20")
    return int(gb * 1024**3)


def upload_room() -> int:
    """Bytes a new upload may still expand to: what the quota leaves after the uploads kept so far, and never the
    last :data:`DISK_RESERVE_BYTES` of the disk."""
    d = uploads_dir()
    used = 0
    for root, _dirs, files in os.walk(d):
        for f in files:
            try:
                used += (Path(root) / f).lstat().st_size
            except OSError:  # removed meanwhile (another session's scratch folder)
                continue
    free = shutil.disk_usage(d).free - DISK_RESERVE_BYTES
    return max(0, min(upload_quota_bytes() - used, free))


_RESERVED: dict[int, int] = {}  #: bytes held by uploads being stored now, in this server process
_RESERVE_LOCK = threading.Lock()


@contextmanager
def upload_reservation(want: int) -> Iterator[int]:
    """Hold up to ``want`` bytes of :func:`upload_room` for an upload being stored, so that uploads stored at the same
    time (one per browser session, each on its own thread) cannot all be granted the same room and together exceed
    the quota. Yields the bytes granted (less than ``want`` when there is less room; 0 when none); released on exit,
    when the stored upload counts in :func:`upload_room` itself. One server process: several processes serving the
    same uploads folder do not see each other's reservations."""
    key = uuid.uuid4().int
    with _RESERVE_LOCK:
        granted = max(0, min(int(want), upload_room() - sum(_RESERVED.values())))
        _RESERVED[key] = granted
    try:
        yield granted
    finally:
        with _RESERVE_LOCK:
            _RESERVED.pop(key, None)


ENV_UPLOAD_DAYS = "SR_CORE_UPLOAD_DAYS"
DEFAULT_UPLOAD_DAYS = 30.0
#: A scratch folder of the app's own (an upload being checked, a submission being scored on the Leaderboard page) older
#: than this was left by a server that stopped mid-way: no such operation takes a day.
SCRATCH_MAX_AGE_S = 24 * 3600
#: The app's scratch folders under ``uploads/`` (the Upload and Leaderboard pages'; ``tmp`` from before they were
#: named). The command line's (``batch-``, ``predict-``, …) are never touched: a long run keeps its own for days.
APP_SCRATCH_PREFIXES = ("upload-", "leaderboard-", "tmp")
#: The name of a kept upload: the first 16 hex digits of the archive's SHA-256 (the Upload page names it so).
_UPLOAD_NAME = re.compile(r"[0-9a-f]{16}")


def upload_days() -> float:
    """Days an upload is kept after it was last opened: ``$SR_CORE_UPLOAD_DAYS`` (default 30; ``0`` keeps them for
    good)."""
    return _env_amount(ENV_UPLOAD_DAYS, DEFAULT_UPLOAD_DAYS,
                       f"a number of days; set e.g. {ENV_UPLOAD_DAYS}=30 (0 keeps uploads for good)")


def _upload_of(path: str | Path) -> Path | None:
    """The kept upload folder (``uploads/<digest>``) that ``path`` lies in, or None."""
    d = uploads_dir().resolve()
    try:
        rel = Path(path).resolve().relative_to(d)
    except (OSError, ValueError):
        return None
    if not rel.parts or not _UPLOAD_NAME.fullmatch(rel.parts[0]):
        return None
    return d / rel.parts[0]


def touch_upload(path: str | Path) -> None:
    """Record that the kept upload holding ``path`` was opened now (its age for :func:`expire_uploads` counts from
    here). The time goes to a side file ``<digest>.used`` beside the folder, never into the folder: a patch folder's
    own modification time keys the app's caches."""
    try:
        top = _upload_of(path)
        if top is None or not top.is_dir():
            return
        top.with_name(top.name + ".used").touch()  # creates it, or sets its time to now
    except (OSError, ConfigError):  # a read-only data home: the upload then ages from when it was stored
        pass


def expire_uploads(now: float | None = None) -> list[str]:
    """Remove kept uploads not opened for :func:`upload_days` days, and the app's scratch folders
    (:data:`APP_SCRATCH_PREFIXES`) older than a day that a stopped server left behind. Returns the names removed
    (folder names only: digests and scratch names)."""
    d = uploads_dir()
    now = time.time() if now is None else now
    days = upload_days()
    removed = []
    for entry in d.iterdir():
        try:
            info = entry.lstat()
        except OSError:
            continue
        if entry.name.endswith(".used") and _UPLOAD_NAME.fullmatch(entry.name[:-5]):
            if not (d / entry.name[:-5]).exists():  # its upload is gone
                entry.unlink(missing_ok=True)
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue
        if _UPLOAD_NAME.fullmatch(entry.name):
            mark = d / (entry.name + ".used")
            try:
                last = max(info.st_mtime, mark.stat().st_mtime)
            except OSError:  # never opened since it was stored
                last = info.st_mtime
            if days == 0 or now - last <= days * 86400:
                continue
        elif not entry.name.startswith(APP_SCRATCH_PREFIXES) or now - info.st_mtime <= SCRATCH_MAX_AGE_S:
            continue  # not the app's, or in use
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry.name)
            (d / (entry.name + ".used")).unlink(missing_ok=True)
    return sorted(removed)


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder under ``$SR_CORE_HOME/uploads`` (archives are extracted there), removed on exit."""
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=subdir("uploads")))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
