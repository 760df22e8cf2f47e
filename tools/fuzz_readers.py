"""Fuzzing the readers: random EOPatch folders and archives, and the property they must satisfy.

A development tool, not part of the library: it lives with the checkout (``tools/``), is used by
``tests/test_fuzz_reader.py`` and run by ``python -m sr_core fuzz`` from a checkout (or ``python tools/fuzz_readers.py``).

Property: :func:`~sr_core.io.eopatch.load_eopatch`, :func:`~sr_core.io.archive.extract_archive` and
:func:`~sr_core.io.archive.open_patches` either return valid values (a :class:`~sr_core.patch.Patch`, a list of
EOPatch folders inside the target, a list of patches) or raise an :class:`~sr_core.errors.SRCoreError`; never
another exception, never run past a time limit, never write outside their target folder (a sentinel sibling
folder is checked, and the reader of a folder must not change that folder at all), and leave no extraction
behind.

Cases start from a small *valid* patch (random T, H, W, dtypes, layout: eo-learn 0.9 pickles or 1.x JSON, optional
layers, ``.npy`` or ``.npy.gz``) and apply 0–3 random mutations: truncation, random bytes, bit flips, arrays of
random shape / dtype, hand-made ``.npy`` headers (absurd shapes, object / structured dtypes, gzip bombs), random or
deeply nested JSON, odd pickles (random values, forbidden globals, malformed opcodes, odd BBox / datetime states),
deleted files, duplicate ``.npy`` + ``.npy.gz``, folders where files belong, links. Archive cases pack such folders
into zip / tar / tar.gz with hostile members (``..``, absolute paths, links, devices, duplicates, bombs,
unsupported compression) and may corrupt the archive itself.

All randomness comes from a :class:`CaseRng` so that the same builders serve the hypothesis property tests
(``tests/test_fuzz_reader.py``, which draw from hypothesis and shrink failures) and the nightly-style command
``python -m sr_core fuzz --cases 5000`` (:func:`run_fuzz`, numpy-seeded, reproducible by ``--seed``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import stat
import struct
import tarfile
import threading
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

if __package__ in (None, ""):  # run as a script: the checkout's sr_core
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_core.errors import SRCoreError


class CaseRng(Protocol):
    """The randomness a case builder consumes (numpy- or hypothesis-backed)."""

    def int(self, lo: int, hi: int) -> int: ...  # inclusive bounds

    def pick(self, seq: Sequence[Any]) -> Any: ...

    def chance(self, p: float) -> bool: ...

    def blob(self, max_len: int) -> bytes: ...


class NumpyRng:
    """:class:`CaseRng` over ``numpy.random.Generator``."""

    def __init__(self, seed: int | Sequence[int]) -> None:
        self.g = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.g.integers(lo, hi, endpoint=True))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.g.integers(0, len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.g.random() < p)

    def blob(self, max_len: int) -> bytes:
        return self.g.bytes(int(self.g.integers(0, max_len, endpoint=True)))


# -- hand-made pickles (no sentinelhub / dateutil needed, any oddity expressible) -------------------------------------
def _p_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p_str(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(b)) + b


def _p_value(v: Any) -> bytes:
    """Opcodes (protocol 2/3) that push ``v`` (plain values only)."""
    if v is None:
        return b"N"
    if v is True or v is False:
        return b"\x88" if v else b"\x89"
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return b"J" + struct.pack("<i", v)
        n = (v.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True) if n < 256 else b"N"
    if isinstance(v, float):
        return b"G" + struct.pack(">d", v)
    if isinstance(v, str):
        return _p_str(v)
    if isinstance(v, bytes):
        return (b"C" + bytes([len(v)]) + v) if len(v) < 256 else (b"B" + struct.pack("<I", len(v)) + v)
    if isinstance(v, tuple):
        return b"(" + b"".join(_p_value(x) for x in v) + b"t"
    if isinstance(v, list):
        return b"(" + b"".join(_p_value(x) for x in v) + b"l"
    if isinstance(v, dict):
        return b"(" + b"".join(_p_value(k) + _p_value(x) for k, x in v.items()) + b"d"
    if isinstance(v, _Raw):
        return v.ops
    raise TypeError(type(v))


@dataclass(frozen=True)
class _Raw:
    ops: bytes


def _p_datetime(t: datetime, tz: _Raw | None = None) -> _Raw:
    state = t.__reduce__()[1][0]
    args = _p_value(state) + (tz.ops if tz is not None else b"")
    return _Raw(_p_global("datetime", "datetime") + b"(" + args + b"tR")


def _p_timedelta(days: int, seconds: int, us: int = 0) -> _Raw:
    return _Raw(_p_global("datetime", "timedelta") + _p_value((days, seconds, us)) + b"R")


def _p_tzlocal(offset_s: int = 0) -> _Raw:
    state = {"_std_offset": _p_timedelta(0, offset_s), "_dst_offset": _p_timedelta(0, offset_s),
             "_dst_saved": _p_timedelta(0, 0), "_hasdst": False, "_tznames": ("UTC", "UTC")}
    return _Raw(_p_global("dateutil.tz.tz", "tzlocal") + b")\x81" + _p_value(state) + b"b")


def _p_bbox(min_x: Any, min_y: Any, max_x: Any, max_y: Any, crs: Any = "32633") -> _Raw:
    crs_ops = _Raw(_p_global("sentinelhub.constants", "CRS") + b"(" + _p_value(crs) + b"tR")
    state = {"min_x": min_x, "max_x": max_x, "min_y": min_y, "max_y": max_y, "_crs": crs_ops}
    return _Raw(_p_global("sentinelhub.geometry", "BBox") + b")\x81" + _p_value(state) + b"b")


def _pickle(v: Any) -> bytes:
    return b"\x80\x03" + _p_value(v) + b"."


# -- random values ---------------------------------------------------------------------------------------------------
def _random_scalar(r: CaseRng) -> Any:
    return r.pick([
        lambda: None, lambda: r.chance(0.5), lambda: r.int(-(2**40), 2**40), lambda: r.pick([0, -1, 2**63, -(2**70)]),
        lambda: r.pick([0.0, -0.0, 1e308, float("nan"), float("inf"), 465181.05, -1.5]),
        lambda: r.blob(12).decode("latin-1"), lambda: r.pick(["", "32633", "EPSG:4326", "L1C", "2019-03-04T10:00:00"]),
    ])()


def _random_json(r: CaseRng, depth: int = 0) -> Any:
    if depth > 3 or r.chance(0.4):
        v = _random_scalar(r)
        return v if not isinstance(v, float) or np.isfinite(v) or r.chance(0.3) else 0.0
    if r.chance(0.5):
        return [_random_json(r, depth + 1) for _ in range(r.int(0, 4))]
    return {r.pick(["crs", "coordinates", "type", "a", "properties", "name", "", "product_level"]): _random_json(r, depth + 1)
            for _ in range(r.int(0, 4))}


def _random_pickle_value(r: CaseRng, depth: int = 0) -> Any:
    if depth > 3 or r.chance(0.4):
        v = _random_scalar(r)
        return r.blob(10) if r.chance(0.1) else v
    kind = r.int(0, 6)
    if kind == 0:
        return [_random_pickle_value(r, depth + 1) for _ in range(r.int(0, 4))]
    if kind == 1:
        return tuple(_random_pickle_value(r, depth + 1) for _ in range(r.int(0, 3)))
    if kind == 2:
        return {r.pick(["min_x", "max_x", "min_y", "max_y", "_crs", 1, "x"]): _random_pickle_value(r, depth + 1)
                for _ in range(r.int(0, 5))}
    if kind == 3:  # a datetime with random state bytes or fields
        if r.chance(0.5):
            return _Raw(_p_global("datetime", "datetime") + b"(" + _p_value(r.blob(12)) + b"tR")
        if r.chance(0.5):
            return _p_datetime(r.pick([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)]), _p_tzlocal(r.int(-90000, 90000)))
        return _Raw(_p_global("datetime", "datetime") + _p_value(tuple(r.int(-5, 3000) for _ in range(r.int(0, 9)))) + b"R")
    if kind == 4:
        return _p_bbox(*(_random_pickle_value(r, depth + 1) for _ in range(4)), crs=_random_pickle_value(r, depth + 1))
    if kind == 5:
        mod, name = r.pick([("datetime", "timedelta"), ("datetime", "timezone"), ("builtins", "set"),
                            ("copyreg", "_reconstructor"), ("dateutil.tz", "tzoffset"), ("_codecs", "encode"),
                            ("builtins", "dict"), ("datetime", "date")])
        args = tuple(_random_pickle_value(r, depth + 1) for _ in range(r.int(0, 3)))
        return _Raw(_p_global(mod, name) + _p_value(args) + b"R")
    return _p_tzlocal(r.int(-200000, 200000))


_EVIL_GLOBALS = (("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("posix", "system"),
                 ("numpy.core.multiarray", "_reconstruct"), ("builtins", "getattr"), ("sr_core.paths", "data_home"))


def _odd_pickle(r: CaseRng) -> bytes:
    kind = r.int(0, 5)
    if kind == 0:
        return _pickle(_random_pickle_value(r))
    if kind == 1:
        mod, name = r.pick(_EVIL_GLOBALS)
        return b"\x80\x02" + _p_global(mod, name) + _p_value(("echo pwned",)) + b"R."
    if kind == 2:  # deep nesting
        n = r.pick([100, 5000, 200_000])
        return b"\x80\x02" + (b"]" * n) + (b"a" * (n - 1)) + b"."
    if kind == 3:
        return b"\x80\x02" + (b"(" * r.pick([10, 100_000])) + b"."
    if kind == 4:  # random opcodes after a valid header
        return b"\x80" + bytes([r.int(0, 6)]) + r.blob(64)
    return _pickle(r.pick([b"\x00" * 10, "x" * 100, [1, 2, 3], {"a": float("nan")}, 3.5]))


# -- .npy writing (valid and hand-made headers) ------------------------------------------------------------------------
def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_header(header: str, version: int = 1) -> bytes:
    h = header.encode("latin-1")
    pad = (-(10 + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h)) + h


_ZEROS_1MIB_GZ: bytes | None = None


def _gzip_bomb(declared_bytes: int, header_dtype: str = "|u1") -> bytes:
    """A .npy.gz declaring ``declared_bytes`` zeros, made of repeated 1 MiB gzip members (cheap to build)."""
    global _ZEROS_1MIB_GZ
    if _ZEROS_1MIB_GZ is None:
        _ZEROS_1MIB_GZ = gzip.compress(bytes(1024 * 1024), compresslevel=9, mtime=0)
    head = gzip.compress(_npy_header(f"{{'descr': '{header_dtype}', 'fortran_order': False, 'shape': ({declared_bytes},), }}"),
                         mtime=0)
    return head + _ZEROS_1MIB_GZ * max(1, declared_bytes // (1024 * 1024))


def _random_array_npy(r: CaseRng, thw: tuple[int, int, int] = (2, 3, 3)) -> bytes:
    """A valid .npy of random shape and dtype (including ones the reader must refuse); half the time a shape that
    fits the patch (``thw``) so that value and dtype checks are reached."""
    dtype = r.pick(["u1", "u2", "i2", "i8", "f2", "f4", "f8", ">u2", ">f4", "?", "c8", "U3", "S2", "m8[s]", "M8[D]",
                    "V4", [("a", "u1"), ("b", "f4")]])
    T, H, W = thw
    if r.chance(0.5):
        shape = r.pick([(T, H, W, 1), (T, H, W), (T, H, W, r.pick([2, 11, 12, 13])), (4 * H, 4 * W, 1), (4 * H, 4 * W),
                        (T, 1), (T,), (T + 1, H, W, 1), (T, H, W + 1, 12), (H, W, 12)])
    else:
        shape = tuple(r.int(0, 7) for _ in range(r.int(0, 5)))
    arr = np.zeros(shape, dtype=dtype)
    if arr.size and arr.dtype.kind in "uif":
        hi = r.pick([2, 12, 256, 70000])
        vals = np.random.default_rng(r.int(0, 999)).integers(-2 if r.chance(0.2) else 0, hi, arr.size)
        arr.flat[:] = vals if arr.dtype.kind != "u" else np.abs(vals)
        if arr.dtype.kind == "f" and r.chance(0.3):
            arr.flat[0] = r.pick([np.nan, np.inf, -np.inf])
    if r.chance(0.3) and arr.ndim >= 2:
        arr = np.asfortranarray(arr)
    return _npy_bytes(arr)


def _odd_npy(r: CaseRng) -> bytes:
    kind = r.int(0, 7)
    if kind == 0:
        return _random_array_npy(r)
    if kind == 1:  # object dtype header (pickle payload)
        return _npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }") + _pickle(["x"])
    if kind == 2:  # absurd shapes
        shape = r.pick(["(-1, 3)", "(1000000000000,)", "(99999999999999999999, 2)", "(2, 3, 100000, 100000)", "()", "(1.5,)",
                        "('a',)", "(True,)", f"({2**62}, 0)", f"({2**70}, 0)", "(" + "0, " * 70 + ")", "(" + "1, " * 70 + ")"])
        return _npy_header(f"{{'descr': '<u2', 'fortran_order': False, 'shape': {shape}, }}") + r.blob(32)
    if kind == 3:  # broken header text
        text = r.pick(["{", "[1, 2]", "{'descr': '<u2'}", "{'descr': 'xx', 'fortran_order': False, 'shape': (1,), }",
                       "{'descr': '<u2', 'fortran_order': 3, 'shape': (1,), }", "__import__('os')",
                       "{'descr': [('a', '<u2', (2,))], "
                       "'fortran_order': False, 'shape': (2,), }", r.blob(40).decode("latin-1"),
                       "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
                       "{'descr': ('<u2', (2, 2)), 'fortran_order': False, 'shape': (1,), }"])
        return _npy_header(text, version=r.pick([1, 2, 3])) + r.blob(16)
    if kind == 4:
        return b"\x93NUMPY" + bytes([r.int(0, 9), r.int(0, 9)]) + r.blob(30)
    if kind == 5:  # declared more than given
        return _npy_header("{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4, 5, 12), }") + r.blob(100)
    if kind == 6:  # huge header length
        return b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
    return _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2, 12), }") + \
        np.full(48, r.pick([np.nan, np.inf, -1.0, 1e30]), np.float32).tobytes()


# -- valid base patch -------------------------------------------------------------------------------------------------
@dataclass
class _Case:
    folder: Path
    layout: str  #: "0.9" or "1.x"
    thw: tuple[int, int, int] = (1, 1, 1)
    files: list[Path] = field(default_factory=list)


def _save_array(path: Path, arr: np.ndarray, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _npy_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    else:
        path.write_bytes(data)
    return path


def build_patch_folder(folder: Path, r: CaseRng) -> _Case:
    """A small valid EOPatch folder with random shapes, dtypes, layout and optional layers."""
    T, H, W = r.int(1, 4), r.int(1, 9), r.int(1, 9)
    layout = r.pick(["0.9", "1.x"])
    gz = layout == "0.9" or r.chance(0.5)
    g = np.random.default_rng(r.int(0, 2**31))
    case = _Case(folder, layout, (T, H, W))
    add = case.files.append
    folder.mkdir(parents=True)
    kind = r.pick(["u2", "u2", "f4", "i2", "u1", "f8", "i8", "f2"])
    thirteen = layout == "1.x" and r.chance(0.3)
    C = 13 if thirteen else 12
    if kind.startswith("f"):
        bands = g.uniform(0, 0.6, (T, H, W, C)).astype(kind)
    else:
        bands = g.integers(0, 120 if kind == "u1" else 6000, (T, H, W, C)).astype(kind)
    name = "BANDS-S2-L1C" if thirteen and r.chance(0.5) else "BANDS"
    add(_save_array(folder / "data" / f"{name}.npy", bands, gz))
    if not kind.startswith("f") and r.chance(0.7):
        add(_save_array(folder / "scalar" / "NORM_FACTORS.npy", np.full((T, 1), 1e-4, np.float32), gz))
    if r.chance(0.6):
        if r.chance(0.7):
            clp = g.integers(0, 256, (T, H, W, 1)).astype(np.uint8)
        else:
            clp = g.uniform(0, 1, (T, H, W, 1)).astype(np.float32)
        add(_save_array(folder / "data" / "CLP.npy", clp, gz))
    for feat, dt in (("CLM", np.uint8), ("IS_DATA", bool)):
        if r.chance(0.6):
            add(_save_array(folder / "mask" / f"{feat}.npy", (g.uniform(0, 1, (T, H, W, 1)) > 0.3).astype(dt), gz))
    if r.chance(0.3):
        add(_save_array(folder / "mask" / "SCL.npy", g.integers(0, 12, (T, H, W, 1)).astype(np.uint8), gz))
    if r.chance(0.5):
        add(_save_array(folder / "mask_timeless" / "CULTIVATED.npy", g.uniform(0, 1, (4 * H, 4 * W, 1)) > 0.5, gz))
        add(_save_array(folder / "mask_timeless" / "NOT_DECLARED.npy", np.zeros((4 * H, 4 * W, 1), bool), gz))
    if r.chance(0.3):
        add(_save_array(folder / "mask_timeless" / "ALL_POLYS.npy", g.integers(0, 3000, (4 * H, 4 * W, 1)).astype(np.uint16), gz))
    x0, y0 = 465000.0 + 10 * r.int(0, 1000), 5079000.0 + 10 * r.int(0, 1000)
    times = [datetime(2019, 3, 5, 10, 0, 31) + timedelta(days=5 * i + r.int(0, 4)) for i in range(T)]
    if layout == "1.x":
        bbox = folder / "bbox.geojson"
        bbox.write_text(json.dumps({"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
                                    "type": "Polygon", "coordinates": [[[x0, y0], [x0, y0 + 10 * H], [x0 + 10 * W, y0 + 10 * H],
                                                                        [x0 + 10 * W, y0], [x0, y0]]]}))
        ts = folder / "timestamps.json"
        ts.write_text(json.dumps([t.isoformat() for t in times]))
        add(bbox)
        add(ts)
        if r.chance(0.5):
            (folder / "meta_info").mkdir()
            for key, value in (("size_x", W), ("product_level", r.pick(["L1C", "L2A", "unknown"])), ("maxcc", 0.8)):
                if r.chance(0.6):
                    p = folder / "meta_info" / f"{key}.json"
                    p.write_text(json.dumps(value))
                    add(p)
    else:
        tz = _p_tzlocal(0) if r.chance(0.7) else None
        add(_write_gz(folder / "bbox.pkl.gz", _pickle(_p_bbox(x0, y0, x0 + 10 * W, y0 + 10 * H))))
        add(_write_gz(folder / "timestamp.pkl.gz", _pickle([_p_datetime(t, tz) for t in times])))
        if r.chance(0.6):
            meta = {"maxcc": 0.8, "size_x": W, "size_y": H, "time_difference": _p_timedelta(0, 7200),
                    "time_interval": (_p_datetime(datetime(2019, 3, 1)), _p_datetime(datetime(2019, 9, 1)))}
            add(_write_gz(folder / "meta_info.pkl.gz", _pickle(meta)))
    return case


def _write_gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0))
    return path


# -- mutations -------------------------------------------------------------------------------------------------------
def _pos(r: CaseRng, n: int) -> int:
    """A position in ``0 … n - 1`` drawn as a fraction, so that the draw does not depend on file sizes (which vary
    with archive timestamps and temporary paths; hypothesis needs the same draws to replay a case)."""
    return r.int(0, 9999) * max(n, 1) // 10_000
def _mutate(case: _Case, r: CaseRng, outside: Path) -> str:
    """Apply one random mutation; return its name."""
    files = [f for f in case.files if f.is_file() and not f.is_symlink()]
    if not files:
        return "none"
    f = r.pick(files)
    kind = r.pick(["truncate", "random_bytes", "flip", "odd_array", "odd_npy", "json", "pickle", "delete", "duplicate",
                   "dir_for_file", "link", "bomb", "gz_inner"])
    if kind == "truncate":
        data = f.read_bytes()
        f.write_bytes(data[:_pos(r, len(data))])
    elif kind == "random_bytes":
        f.write_bytes(r.blob(300))
    elif kind == "flip":
        data = bytearray(f.read_bytes())
        for _ in range(r.int(1, 6)):
            i, bit = _pos(r, len(data)), r.int(0, 7)
            if data:
                data[i] ^= 1 << bit
        f.write_bytes(bytes(data))
    elif kind in ("odd_array", "odd_npy", "bomb"):
        arrays = [x for x in files if x.name.endswith((".npy", ".npy.gz"))]
        f = r.pick(arrays) if arrays else f
        if kind == "bomb":
            payload = _gzip_bomb(r.pick([200 * 1024**2, 2 * 1024**3]), r.pick(["|u1", "<u2"]))
            target = f if f.name.endswith(".gz") else f.with_name(f.name + ".gz")
            if target != f:
                f.unlink()
            target.write_bytes(payload)
            return kind
        if kind == "odd_array":
            payload = _random_array_npy(r, case.thw)
        else:
            payload = _odd_npy(r)
        f.write_bytes(gzip.compress(payload, mtime=0) if f.name.endswith(".gz") else payload)
    elif kind == "json":
        targets = [x for x in files if x.name.endswith(".json")] or [f]
        f = r.pick(targets)
        choice = r.int(0, 3)
        if choice == 0:
            f.write_text(json.dumps(_random_json(r)))
        elif choice == 1:
            f.write_text(r.pick(["{", "[1,", "NaN", "Infinity", "[" * 100_000 + "]" * 100_000, '{"a": 1e400}', "\ufeff[]",
                                 '["2019-02-30T10:00:00"]', '["+999999-01-01"]', '[20190304]', "null", "[" + "9" * 5000 + "]",
                                 '["0001-01-01T00:00:00+05:00"]', '["9999-12-31T23:59:59-05:00"]', '["2019-03-04T10:00:00Z"]']))
        elif choice == 2:
            f.write_bytes(r.blob(60))
        else:
            crs = r.pick(["EPSG:0", "EPSG:-5", "x", "9" * 5000])
            f.write_text(json.dumps({"type": "Polygon", "crs": {"properties": {"name": crs}},
                                     "coordinates": [[[r.pick([0, 1e308, "a", None, 10**400, True]), 1]] * r.int(0, 3)]}))
    elif kind == "pickle":
        targets = [x for x in files if ".pkl" in x.name] or [f]
        f = r.pick(targets)
        data = _odd_pickle(r)
        f.write_bytes(gzip.compress(data, mtime=0) if f.name.endswith(".gz") else data)
    elif kind == "delete":
        f.unlink()
    elif kind == "duplicate":
        other = f.with_name(f.name[:-3]) if f.name.endswith(".gz") else f.with_name(f.name + ".gz")
        shutil.copyfile(f, other)
        case.files.append(other)
    elif kind == "dir_for_file":
        f.unlink()
        f.mkdir()
        (f / "x").write_bytes(b"x")
    elif kind == "link":
        f.unlink()
        target = r.pick([outside / "secret.npy", Path("/dev/zero"), Path("/nonexistent/x"), case.folder])
        with contextlib.suppress(OSError):
            f.symlink_to(target)
    elif kind == "gz_inner":  # valid gzip around random bytes
        f.write_bytes(gzip.compress(r.blob(200), mtime=0))
    return kind


def build_folder_case(root: Path, r: CaseRng) -> tuple[Path, list[str]]:
    """A random (possibly broken) EOPatch folder under ``root/work``; returns it and the mutations applied."""
    case = build_patch_folder(root / "work" / "eopatch", r)
    muts = [_mutate(case, r, root / "sentinel") for _ in range(r.pick([0, 1, 1, 2, 3]))]
    return case.folder, muts


# -- archives --------------------------------------------------------------------------------------------------------
def _hostile_name(r: CaseRng, root: Path) -> str:
    return r.pick(["../sentinel/pwned", "../../pwned", "/tmp/sr-core-fuzz-pwned", str(root / "sentinel" / "pwned"),
                   "a/../../sentinel/pwned", "..\\sentinel\\pwned", "C:/pwned", "eopatch/../../sentinel/pwned", "./ok",
                   "dir/", "ü/ñ.npy", "a" * 300, "eopatch/data", "__MACOSX/x", "._x", "eopatch/.DS_Store"])


def build_archive_case(root: Path, r: CaseRng) -> tuple[Path, list[str], dict[str, Any]]:
    """A random archive under ``root/in`` (zip / tar / tar.gz of a random folder case plus hostile members); returns
    the archive, what was done, and extraction limits to use (sometimes small, to reach the limit checks)."""
    folder, muts = build_folder_case(root, r)
    kind = r.pick(["zip", "zip", "tar", "tar.gz"])
    arc_dir = root / "in"
    arc_dir.mkdir(exist_ok=True)
    arc = arc_dir / f"upload.{kind}"
    members = sorted(p for p in folder.parent.rglob("*"))
    extra: list[str] = []
    if kind == "zip":
        method = r.pick([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        with zipfile.ZipFile(arc, "w", compression=method) as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate member names are part of the test
            for p in members:
                rel = p.relative_to(folder.parent).as_posix()
                if p.is_symlink():
                    info = zipfile.ZipInfo(rel)
                    info.create_system = 3
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    zf.writestr(info, str(p.readlink()))
                elif p.is_dir():
                    zf.write(p, rel + "/")
                else:
                    zf.write(p, rel)
            for _ in range(r.pick([0, 0, 0, 1, 2])):
                name = _hostile_name(r, root)
                info = zipfile.ZipInfo(name)
                if r.chance(0.2):
                    info.create_system = 3
                    info.external_attr = (r.pick([stat.S_IFLNK, stat.S_IFCHR, stat.S_IFIFO, stat.S_IFREG]) | 0o644) << 16
                try:
                    zf.writestr(info, r.blob(50))
                    extra.append(f"zip member {name!r}")
                except (ValueError, OSError):
                    pass
            if r.chance(0.1):
                zf.writestr("eopatch/data/big.bin", bytes(r.pick([3, 40]) * 1024 * 1024))
                extra.append("zip bomb member")
    else:
        mode = "w:gz" if kind == "tar.gz" else "w"
        with tarfile.open(arc, mode) as tf:
            for p in members:
                tf.add(p, p.relative_to(folder.parent).as_posix(), recursive=False)
            for _ in range(r.pick([0, 0, 0, 1, 2])):
                name = _hostile_name(r, root)
                ti = tarfile.TarInfo(name)
                ti.type = r.pick([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.FIFOTYPE, tarfile.DIRTYPE, b"Z"])
                ti.linkname = r.pick(["../sentinel/secret.npy", "/etc/passwd", "eopatch"])
                data = r.blob(50)
                ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
                try:
                    tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
                    extra.append(f"tar member {name!r} type {ti.type!r}")
                except (ValueError, OSError, tarfile.TarError):
                    pass
            if r.chance(0.1):
                data = bytes(r.pick([3, 40]) * 1024 * 1024)
                ti = tarfile.TarInfo("eopatch/data/big.bin")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                extra.append("tar bomb member")
    corrupt = r.pick(["none", "none", "none", "none", "none", "truncate", "flip", "random"])
    if corrupt == "truncate":
        data = arc.read_bytes()
        arc.write_bytes(data[:_pos(r, len(data))])
    elif corrupt == "flip":
        data = bytearray(arc.read_bytes())
        for _ in range(r.int(1, 8)):
            i, bit = _pos(r, len(data)), r.int(0, 7)
            if data:
                data[i] ^= 1 << bit
        arc.write_bytes(bytes(data))
    elif corrupt == "random":
        arc.write_bytes(r.pick([b"PK\x03\x04", b"\x1f\x8b", b""]) + r.blob(500))
    limits: dict[str, Any] = {}
    if r.chance(0.3):
        limits = {"max_files": r.int(1, 40), "max_total_bytes": r.pick([1024, 10**6, 10**8]),
                  "max_ratio": r.pick([2, 50, 200]), "ratio_floor_bytes": r.pick([0, 1024, 10**6])}
    shutil.rmtree(folder.parent)
    return arc, [*muts, *extra, f"archive {kind}, corrupt={corrupt}"], limits


# -- the property ----------------------------------------------------------------------------------------------------
class CaseTimeout(BaseException):
    """Raised inside a case that ran past its time limit (a BaseException so reader code cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (SIGALRM; a no-op outside the main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"case ran past its {seconds:g} s limit")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(path.rglob("*")) if path.exists() else []:
        try:
            st = p.lstat()
        except OSError:
            continue
        out[p.relative_to(path).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass(frozen=True)
class Outcome:
    """What one case did: ``status`` is ``"patch"``, ``"patches:N"``, ``"error:<Class>"`` or ``"BUG"``."""

    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def is_bug(self) -> bool:
        return self.status == "BUG"


def _prepare_root(root: Path) -> None:
    (root / "sentinel").mkdir(parents=True, exist_ok=True)
    (root / "sentinel" / "secret.npy").write_bytes(_npy_bytes(np.arange(6, dtype=np.uint16)))
    (root / "home").mkdir(exist_ok=True)


def _bug(where: str, exc: BaseException) -> Outcome:
    tb = traceback.extract_tb(exc.__traceback__)
    frame = next((f for f in reversed(tb) if "sr_core" in f.filename), tb[-1] if tb else None)
    loc = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return Outcome("BUG", f"{where} raised {type(exc).__name__}: {str(exc)[:300]}{loc}")


def check_folder_case(root: Path, r: CaseRng, *, seconds: float = 10.0) -> Outcome:
    """Build a random folder case under ``root`` and check :func:`load_eopatch` on it."""
    from sr_core.io.eopatch import load_eopatch
    from sr_core.patch import Patch

    _prepare_root(root)
    folder, muts = build_folder_case(root, r)
    before, sentinel = _snapshot(root / "work"), _snapshot(root / "sentinel")
    t0 = time.perf_counter()
    try:
        with time_limit(seconds):
            got = load_eopatch(folder)
    except CaseTimeout as exc:
        return Outcome("BUG", f"load_eopatch hung ({exc}); mutations {muts}", time.perf_counter() - t0)
    except SRCoreError as exc:
        out = Outcome(f"error:{type(exc).__name__}", str(exc)[:200], time.perf_counter() - t0)
    except Exception as exc:  # the property under test: anything but SRCoreError is a bug
        b = _bug("load_eopatch", exc)
        return Outcome("BUG", f"{b.detail}; mutations {muts}", time.perf_counter() - t0)
    else:
        if not isinstance(got, Patch):
            return Outcome("BUG", f"load_eopatch returned {type(got).__name__}; mutations {muts}")
        out = Outcome("patch", "", time.perf_counter() - t0)
    if _snapshot(root / "work") != before or _snapshot(root / "sentinel") != sentinel:
        return Outcome("BUG", f"load_eopatch changed files on disk; mutations {muts}")
    return out


def check_archive_case(root: Path, r: CaseRng, *, seconds: float = 10.0) -> Outcome:
    """Build a random archive under ``root`` and check :func:`extract_archive` and :func:`open_patches` on it."""
    from sr_core.io.archive import extract_archive, open_patches
    from sr_core.patch import Patch

    _prepare_root(root)
    arc, what, limits = build_archive_case(root, r)
    sentinel = _snapshot(root / "sentinel")
    allowed_top = {"in", "out", "sentinel", "home", "work"}
    dest = root / "out"
    t0 = time.perf_counter()
    statuses = []
    old_home = os.environ.get("SR_CORE_HOME")
    os.environ["SR_CORE_HOME"] = str(root / "home")
    try:
        for step in ("extract_archive", "open_patches"):
            try:
                with time_limit(seconds):
                    if step == "extract_archive":
                        got: Any = extract_archive(arc, dest, **limits)
                    else:
                        got = open_patches(arc, **limits)
            except CaseTimeout as exc:
                return Outcome("BUG", f"{step} hung ({exc}); {what}", time.perf_counter() - t0)
            except SRCoreError as exc:
                statuses.append(f"error:{type(exc).__name__}")
                if step == "extract_archive" and dest.exists() and any(dest.iterdir()):
                    return Outcome("BUG", f"extract_archive failed but left files in {dest}; {what}")
            except Exception as exc:  # the property under test: anything but SRCoreError is a bug
                b = _bug(step, exc)
                return Outcome("BUG", f"{b.detail}; {what}", time.perf_counter() - t0)
            else:
                if step == "extract_archive":
                    resolved = dest.resolve()
                    if not isinstance(got, list) or not all(resolved in Path(p).resolve().parents or Path(p).resolve() == resolved
                                                            for p in got):
                        return Outcome("BUG", f"extract_archive returned {got!r}; {what}")
                    links = [p for p in dest.rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]
                    if links:
                        return Outcome("BUG", f"extract_archive created links or special files {links[:3]}; {what}")
                    statuses.append(f"folders:{len(got)}")
                else:
                    if not isinstance(got, list) or not all(isinstance(p, Patch) for p in got):
                        return Outcome("BUG", f"open_patches returned {type(got).__name__}; {what}")
                    statuses.append(f"patches:{len(got)}")
    finally:
        if old_home is None:
            os.environ.pop("SR_CORE_HOME", None)
        else:
            os.environ["SR_CORE_HOME"] = old_home
    tops = {p.name for p in root.iterdir()}
    if not tops <= allowed_top or _snapshot(root / "sentinel") != sentinel or Path("/tmp/sr-core-fuzz-pwned").exists():
        return Outcome("BUG", f"something was written outside the target folder ({sorted(tops - allowed_top)}); {what}")
    uploads = root / "home" / "uploads"
    if uploads.exists() and any(uploads.iterdir()):
        return Outcome("BUG", f"open_patches left its extraction behind in {uploads}; {what}")
    return Outcome(statuses[-1] if statuses else "none", " / ".join(statuses), time.perf_counter() - t0)


# -- the nightly-style run -------------------------------------------------------------------------------------------
@dataclass
class FuzzReport:
    cases: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    bugs: list[tuple[int, str, str]] = field(default_factory=list)  #: (case index, kind, detail)
    slowest: tuple[float, int] = (0.0, -1)

    def as_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "seconds": round(self.seconds, 2), "outcomes": dict(self.outcomes.most_common()),
                "bugs": [{"case": i, "kind": k, "detail": d} for i, k, d in self.bugs],
                "slowest_case_seconds": round(self.slowest[0], 3), "slowest_case": self.slowest[1]}


def run_case(index: int, seed: int, work: Path, *, seconds: float = 10.0) -> tuple[str, Outcome]:
    """Case ``index`` of run ``seed`` (folder cases 60 %, archive cases 40 %), in a fresh folder under ``work``."""
    r = NumpyRng([seed, index])
    root = work / f"case-{index}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    kind = "archive" if r.chance(0.4) else "folder"
    try:
        out = (check_archive_case if kind == "archive" else check_folder_case)(root, r, seconds=seconds)
    finally:
        with contextlib.suppress(OSError):
            for p in root.rglob("*"):  # undo read-only bits a case may have set, then remove
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
    return kind, out


def run_fuzz(cases: int, seed: int, work: Path, *, seconds: float = 10.0, only: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> FuzzReport:
    """Run ``cases`` random cases (or just case ``only``) and collect outcomes and bugs."""
    report = FuzzReport()
    t0 = time.perf_counter()
    indices = [only] if only is not None else range(cases)
    for n, i in enumerate(indices):
        kind, out = run_case(i, seed, work, seconds=seconds)
        report.cases += 1
        report.outcomes[f"{kind}:{out.status.split(':')[0] if out.status.startswith('patches') else out.status}"] += 1
        if out.is_bug:
            report.bugs.append((i, kind, out.detail))
        if out.seconds > report.slowest[0]:
            report.slowest = (out.seconds, i)
        if progress is not None:
            progress(n + 1, len(indices))
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["CaseRng", "CaseTimeout", "FuzzReport", "NumpyRng", "Outcome", "build_archive_case", "build_folder_case",
           "build_patch_folder", "check_archive_case", "check_folder_case", "run_case", "run_fuzz", "time_limit"]


if __name__ == "__main__":  # python tools/fuzz_readers.py --cases 5000: the same as `python -m sr_core fuzz`
    from sr_core.cli import main

    raise SystemExit(main(["fuzz", *__import__("sys").argv[1:]]))
