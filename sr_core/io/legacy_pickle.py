"""Decode the challenge's legacy eo-learn 0.9 pickles (``bbox.pkl.gz``, ``timestamp.pkl.gz``, ``meta_info.pkl.gz``)
without ever running code from the file.

A pickle is a small program: ``pickle.load`` imports whatever classes and functions the file names and calls them.
:class:`RestrictedUnpickler` overrides :meth:`pickle.Unpickler.find_class` so that a name outside a short allow-list
raises :class:`~sr_core.errors.UnsafePickleError` *before* anything is imported or called. Allowed names never map
to the real classes: each maps to a local stand-in that only records its arguments / state, and the stand-ins are
converted to plain values afterwards. Neither eo-learn nor sentinelhub nor dateutil needs to be installed.

What real challenge files contain (checked with ``pickletools.dis`` on the fixture
``slovenia-forest-l1c-5frames-challenge-layout``):

* ``bbox.pkl.gz``: ``sentinelhub.geometry.BBox`` built with ``NEWOBJ`` + ``BUILD`` from a state dict
  ``{min_x, max_x, min_y, max_y, _crs}``, ``_crs`` being ``sentinelhub.constants.CRS('32633')`` (enum by value).
* ``timestamp.pkl.gz``: a list of ``datetime.datetime(<10-byte state>, dateutil.tz.tz.tzlocal())`` whose tzlocal
  state holds ``datetime.timedelta`` offsets.
* ``meta_info.pkl.gz``: a dict of numbers, a ``timedelta`` and a tuple of two naive datetimes.

The allow-list (module, name) → stand-in:

=====================================================  ====================================================
``sentinelhub.geometry.BBox`` (also ``sentinelhub.BBox``)   :class:`_BBoxState` → :class:`sr_core.geo.BBox`
``sentinelhub.constants.CRS`` (also ``sentinelhub.CRS``)    :func:`_crs` → EPSG code
``datetime.datetime`` / ``date`` / ``timedelta`` / ``timezone``  re-implemented constructors (state bytes decoded
                                                        here, never handed to the C constructor unchecked)
``dateutil.tz.tz.tzlocal`` / ``tzutc`` / ``tzoffset``        stand-ins (aliases ``dateutil.tz.*`` accepted)
``copyreg._reconstructor``, ``builtins.object``,        only to rebuild the stand-ins above (protocols 0–1)
``datetime.tzinfo``
``builtins.set`` / ``frozenset`` / ``list`` / ``tuple`` / ``dict``  plain containers (older protocols)
``_codecs.encode`` (``str``, ``'latin1'``)               how protocol ≤ 2 pickles store ``bytes``
=====================================================  ====================================================

**Time zones.** eo-learn 0.9 stamped the UTC acquisition times it got from Sentinel Hub with
``dateutil.tz.tzlocal()``; the wall-clock values in the file are UTC. A tzlocal stamp is therefore read as UTC
(exactly what the writing machine's stored offsets say when it ran in UTC, as the fixture's did). If the stored
offsets are not zero, the value is still read as UTC and a note says so (see :attr:`LegacyPickle.notes`).
"""

from __future__ import annotations

import _compat_pickle
import gzip
import io
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from ..errors import PatchFormatError, UnsafePickleError
from ..geo import BBox

#: Largest legacy pickle (after gunzip) that is decoded at all. Real ones are a few hundred bytes.
MAX_PICKLE_BYTES = 8 * 1024 * 1024
#: Deepest nesting of containers :func:`to_jsonable` converts (metadata is 2 or 3 levels deep).
MAX_META_DEPTH = 64


# -- stand-ins ---------------------------------------------------------------------------------------------------
class _State:
    """Base of the stand-ins: accepts any constructor arguments and a ``BUILD`` state, stores both, runs nothing."""

    kind = "object"

    def __new__(cls, *args: Any, **kwargs: Any) -> _State:
        self = object.__new__(cls)
        self.args = args
        self.state = None
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls cls(*args): nothing more to do
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _BBoxState(_State):
    kind = "sentinelhub.geometry.BBox"


class _TzLocal(_State):
    kind = "dateutil.tz.tzlocal"


class _TzUTC(_State):
    kind = "dateutil.tz.tzutc"


class _TzOffset(_State):
    kind = "dateutil.tz.tzoffset"


class _ObjectBase:
    """Stands for ``builtins.object`` when it appears as the base argument of ``copyreg._reconstructor``."""


class _TzInfoBase(_State):
    """Stands for ``datetime.tzinfo``: protocols 0/1 rebuild dateutil zones as
    ``copyreg._reconstructor(tzlocal, datetime.tzinfo, datetime.tzinfo())``."""

    kind = "datetime.tzinfo"


@dataclass(frozen=True)
class _CRSValue:
    epsg: int


@dataclass
class _LazyDatetime:
    """A datetime whose tzinfo stand-in is resolved after unpickling (its ``BUILD`` may come later)."""

    naive: datetime
    tz: Any


_STANDIN_CLASSES = (_BBoxState, _TzLocal, _TzUTC, _TzOffset)


def _reconstructor(cls: Any, base: Any, state: Any) -> _State:
    """``copyreg._reconstructor(cls, object, None)``: how protocol-0 ``__reduce__`` rebuilds plain objects."""
    is_standin = isinstance(cls, type) and issubclass(cls, _STANDIN_CLASSES)
    is_tz = is_standin and issubclass(cls, (_TzLocal, _TzUTC, _TzOffset))
    ok_base = (base is _ObjectBase and state is None) or (
        base is _TzInfoBase and is_tz and (state is None or isinstance(state, _TzInfoBase))
    )
    if not (is_standin and ok_base):
        raise _Bad(f"copyreg._reconstructor({getattr(cls, '__name__', cls)!r}, {getattr(base, '__name__', base)!r}) "
                   "is not how eo-learn files rebuild objects")
    return cls.__new__(cls)


def _crs(value: Any) -> _CRSValue:
    """``sentinelhub.constants.CRS(value)``: the enum is pickled by value, e.g. ``'32633'`` or ``'4326'``."""
    if isinstance(value, _CRSValue):
        return value
    text = str(value).strip().upper()
    for prefix in ("EPSG:", "URN:OGC:DEF:CRS:EPSG::"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text == "WGS84":
        text = "4326"
    if not text.isdigit():
        raise _Bad(f"CRS value {value!r} is not an EPSG code")
    return _CRSValue(int(text))


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _Bad(f"{what} is {type(x).__name__}, expected an integer")
    return x


def _make_datetime(*args: Any) -> _LazyDatetime:
    """``datetime.datetime(state_bytes[, tz])`` (pickle form) or ``datetime(y, m, d, ...)``; tz resolved later."""
    tz = None
    if args and isinstance(args[0], (bytes, bytearray)):
        if len(args) > 2:
            raise _Bad("datetime state has extra arguments")
        b = bytes(args[0])
        if len(b) != 10:
            raise _Bad(f"datetime state has {len(b)} bytes, expected 10")
        fold = b[2] >> 7
        fields = (b[0] * 256 + b[1], b[2] & 0x7F, b[3], b[4], b[5], b[6], (b[7] << 16) | (b[8] << 8) | b[9])
        tz = args[1] if len(args) == 2 else None
    else:
        if not 3 <= len(args) <= 8:
            raise _Bad(f"datetime called with {len(args)} arguments")
        nums = args[:7]
        if len(args) == 8:
            tz = args[7]
        fields = tuple(_int(v, "datetime field") for v in nums)
        fold = 0
    try:
        naive = datetime(*fields, fold=fold)  # type: ignore[misc]
    except (ValueError, TypeError, OverflowError) as exc:
        raise _Bad(f"invalid datetime fields {fields}: {exc}") from None
    return _LazyDatetime(naive, tz)


def _make_date(*args: Any) -> date:
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        b = bytes(args[0])
        if len(b) != 4:
            raise _Bad(f"date state has {len(b)} bytes, expected 4")
        fields = (b[0] * 256 + b[1], b[2], b[3])
    elif len(args) == 3:
        fields = tuple(_int(v, "date field") for v in args)
    else:
        raise _Bad(f"date called with {len(args)} arguments")
    try:
        return date(*fields)
    except (ValueError, OverflowError) as exc:
        raise _Bad(f"invalid date fields {fields}: {exc}") from None


def _make_timedelta(*args: Any) -> timedelta:
    if len(args) > 3:
        raise _Bad(f"timedelta called with {len(args)} arguments")
    nums = [_int(v, "timedelta field") for v in args]
    try:
        return timedelta(*nums)
    except OverflowError as exc:
        raise _Bad(f"timedelta out of range: {exc}") from None


def _make_timezone(*args: Any) -> timezone:
    if not 1 <= len(args) <= 2 or not isinstance(args[0], timedelta):
        raise _Bad("timezone expects (timedelta[, name])")
    if len(args) == 2 and not isinstance(args[1], str):
        raise _Bad("timezone name is not a string")
    try:
        return timezone(*args)
    except ValueError as exc:
        raise _Bad(f"invalid timezone: {exc}") from None


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode(str, 'latin1')``: protocols 0–2 store ``bytes`` this way."""
    if not isinstance(text, str) or str(encoding).lower().replace("-", "") not in ("latin1", "utf8"):
        raise _Bad("_codecs.encode only accepted as (str, 'latin1')")
    return text.encode(str(encoding))


def _container(kind: type) -> Callable[..., Any]:
    def build(*args: Any) -> Any:
        if len(args) > 1:
            raise _Bad(f"{kind.__name__} called with {len(args)} arguments")
        if args and not isinstance(args[0], (list, tuple, set, frozenset, dict)):
            raise _Bad(f"{kind.__name__} built from {type(args[0]).__name__}")
        return kind(*args)

    build.__name__ = kind.__name__
    return build


_TZ = {"tzlocal": _TzLocal, "tzutc": _TzUTC, "tzoffset": _TzOffset}

#: (module, name) → stand-in. Anything not here is refused.
ALLOWED: dict[tuple[str, str], Any] = {
    ("sentinelhub.geometry", "BBox"): _BBoxState,
    ("sentinelhub", "BBox"): _BBoxState,
    ("sentinelhub.constants", "CRS"): _crs,
    ("sentinelhub", "CRS"): _crs,
    ("datetime", "datetime"): _make_datetime,
    ("datetime", "date"): _make_date,
    ("datetime", "timedelta"): _make_timedelta,
    ("datetime", "timezone"): _make_timezone,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): _ObjectBase,
    ("datetime", "tzinfo"): _TzInfoBase,
    ("builtins", "set"): _container(set),
    ("builtins", "frozenset"): _container(frozenset),
    ("builtins", "list"): _container(list),
    ("builtins", "tuple"): _container(tuple),
    ("builtins", "dict"): _container(dict),
    ("_codecs", "encode"): _codecs_encode,
    **{(mod, name): cls for name, cls in _TZ.items() for mod in ("dateutil.tz.tz", "dateutil.tz")},
}


class _Refused(Exception):
    """Internal: a name outside the allow-list (turned into UnsafePickleError with the file name)."""


class _Bad(Exception):
    """Internal: an allowed name used with arguments real files never have (turned into PatchFormatError)."""


class RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its BUILD can be checked (the C one's cannot)
    """An unpickler that resolves only the names in :data:`ALLOWED`, to stand-ins; anything else is refused. A
    ``BUILD`` (state set on an object) is accepted on a fresh stand-in only: on an allow-listed function or class it
    would set attributes that outlive the file (``_codecs_encode.__defaults__``, a stand-in class's methods) and
    change how every later upload is read in this process."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def _load_build_checked(self) -> None:
        target = self.stack[-2] if len(self.stack) >= 2 else None
        if not isinstance(target, _State):
            raise _Bad(f"state set on a {type(target).__name__} (BUILD), which real eo-learn files never do")
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build_checked

    def find_class(self, module: str, name: str) -> Any:
        # protocols 0-2 name Python 2 modules (__builtin__, copy_reg); map them as pickle itself would
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


# -- conversion to plain values ------------------------------------------------------------------------------------
@dataclass
class LegacyPickle:
    """A decoded legacy pickle: plain values (BBox, aware datetimes, dicts, lists …) and notes on what was assumed."""

    value: Any
    notes: list[str] = field(default_factory=list)


def _tz_to_tzinfo(tz: Any, notes: list[str]) -> timezone | None:
    if tz is None:
        return None
    if isinstance(tz, timezone):
        return tz
    if isinstance(tz, _TzUTC):
        return UTC
    if isinstance(tz, _TzOffset):
        args = tz.args or ()
        st = tz.state if isinstance(tz.state, dict) else {}
        offset = st.get("_offset", args[1] if len(args) > 1 else None)
        if isinstance(offset, (int, float)) and not isinstance(offset, bool):
            offset = timedelta(seconds=offset)
        if not isinstance(offset, timedelta):
            raise _Bad("tzoffset without an offset")
        try:
            return timezone(offset)
        except ValueError as exc:
            raise _Bad(f"tzoffset {offset}: {exc}") from None
    if isinstance(tz, _TzLocal):
        st = tz.state if isinstance(tz.state, dict) else {}
        offsets = [v for k, v in st.items() if k in ("_std_offset", "_dst_offset") and isinstance(v, timedelta)]
        if any(o != timedelta(0) for o in offsets):
            note = (f"timestamps carried dateutil tzlocal with the writer's offsets {sorted({str(o) for o in offsets})}; "
                    "read as UTC (eo-learn 0.9 stamped UTC acquisition times with tzlocal)")
        else:
            note = "timestamps carried dateutil tzlocal (UTC on the writing machine); read as UTC"
        if note not in notes:
            notes.append(note)
        return UTC
    raise _Bad(f"datetime tzinfo is {type(tz).__name__}")


def _bbox(obj: _BBoxState) -> BBox:
    st = obj.state if isinstance(obj.state, dict) else {}
    crs = st.get("_crs", st.get("crs"))
    try:
        if all(k in st for k in ("min_x", "min_y", "max_x", "max_y")):
            coords = [st["min_x"], st["min_y"], st["max_x"], st["max_y"]]
        elif obj.args:  # BBox(bbox, crs) form: ((x0, y0), (x1, y1)) or (x0, y0, x1, y1)
            raw = obj.args[0]
            coords = [*raw[0], *raw[1]] if len(raw) == 2 else list(raw)
            if crs is None and len(obj.args) > 1:
                crs = obj.args[1]
        else:
            raise _Bad("BBox state has no min_x/min_y/max_x/max_y")
        coords = [float(c) for c in coords]
    except (TypeError, ValueError, IndexError) as exc:
        raise _Bad(f"BBox coordinates unreadable ({exc})") from None
    if len(coords) != 4:
        raise _Bad(f"BBox has {len(coords)} coordinates")
    if crs is None:
        raise _Bad("BBox has no CRS")
    epsg = _crs(crs).epsg
    x0, x1 = sorted(coords[0::2])
    y0, y1 = sorted(coords[1::2])
    return BBox(x0, y0, x1, y1, epsg)


#: Most values a pickle may decode to. Real metadata pickles hold a few dozen; a pickle can reference one list from
#: two places at every level (memo references), so a few hundred bytes could otherwise expand to 2^50 values here.
MAX_VALUES = 100_000


def _convert(obj: Any, notes: list[str], depth: int = 0, budget: list[int] | None = None) -> Any:
    if depth > 50:
        raise _Bad("nesting deeper than 50 levels")
    budget = [MAX_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise _Bad(f"more than {MAX_VALUES} values (shared references expanding); real eo-learn metadata is tiny")
    if isinstance(obj, _LazyDatetime):
        tz = _tz_to_tzinfo(obj.tz, notes)
        return obj.naive if tz is None else obj.naive.replace(tzinfo=tz)
    if isinstance(obj, _BBoxState):
        return _bbox(obj)
    if isinstance(obj, _CRSValue):
        return f"EPSG:{obj.epsg}"
    if isinstance(obj, _TzInfoBase):
        raise _Bad("bare datetime.tzinfo object")
    if isinstance(obj, (_TzLocal, _TzUTC, _TzOffset)):
        return str(_tz_to_tzinfo(obj, notes))
    if isinstance(obj, (_State, _ObjectBase)) or obj is _ObjectBase:
        raise _Bad(f"unexpected {type(obj).__name__} object")
    if isinstance(obj, dict):
        return {_convert(k, notes, depth + 1, budget): _convert(v, notes, depth + 1, budget) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_convert(v, notes, depth + 1, budget) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_convert(v, notes, depth + 1, budget) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(_convert(v, notes, depth + 1, budget) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, date, timedelta, timezone)):
        return obj
    raise _Bad(f"unexpected {type(obj).__name__} object")


# -- public API ----------------------------------------------------------------------------------------------------
def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        if path.stat().st_size > max_bytes + 4096:
            raise PatchFormatError(f"{path}: file larger than {max_bytes} bytes; real eo-learn metadata pickles are tiny")
        raw = path.read_bytes()
    except OSError as exc:
        raise PatchFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise PatchFormatError(f"{path}: not a gzip file; expected a gzipped pickle as eo-learn 0.9 writes it")
        data = raw
    else:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                data = fh.read(max_bytes + 1)
                if len(data) <= max_bytes:
                    fh.read(1)  # reach the end of the stream so the CRC is checked
        except EOFError:
            raise PatchFormatError(f"{path}: the gzip stream is truncated; copy the file again") from None
        except (OSError, zlib.error) as exc:
            raise PatchFormatError(f"{path}: corrupt gzip data ({exc}); copy the file again") from None
    if len(data) > max_bytes:
        raise PatchFormatError(f"{path}: pickle larger than {max_bytes} bytes; real eo-learn metadata pickles are tiny")
    return data


def read_legacy_pickle(path: str | Path, *, max_bytes: int = MAX_PICKLE_BYTES) -> LegacyPickle:
    """Decode a (gzipped or plain) legacy eo-learn pickle at ``path`` without running code.

    Raises :class:`UnsafePickleError` (naming the file and the refused name) when the pickle references anything
    outside :data:`ALLOWED`, and :class:`PatchFormatError` when it is truncated, corrupt or not a pickle.
    """
    path = Path(path)
    data = _read_bytes(path, max_bytes)
    notes: list[str] = []
    try:
        raw = RestrictedUnpickler(io.BytesIO(data)).load()
        value = _convert(raw, notes)
    except _Refused as exc:
        raise UnsafePickleError(
            f"{path}: refused to unpickle: it references {exc}, which is not among the classes real eo-learn 0.9 "
            "files contain (nothing was executed); if the file is genuine, re-save the patch with eo-learn >= 1.0 "
            "(bbox.geojson, timestamps.json)"
        ) from None
    except _Bad as exc:
        raise PatchFormatError(f"{path}: not a valid eo-learn 0.9 pickle ({exc}); re-save the patch with eo-learn >= 1.0") \
            from None
    except RecursionError:
        raise PatchFormatError(f"{path}: pickle nested too deeply; not a real eo-learn file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            OverflowError, MemoryError, struct.error, UnicodeDecodeError) as exc:  # the Python unpickler's own
        raise PatchFormatError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); copy the file again") \
            from None
    return LegacyPickle(value, notes)


def read_bbox_pickle(path: str | Path) -> BBox:
    """``bbox.pkl[.gz]`` → :class:`~sr_core.geo.BBox`."""
    value = read_legacy_pickle(path).value
    if not isinstance(value, BBox):
        raise PatchFormatError(f"{path}: holds {type(value).__name__}, expected a sentinelhub BBox")
    return value


def read_timestamps_pickle(path: str | Path) -> tuple[list[datetime], list[str]]:
    """``timestamp.pkl[.gz]`` → (naive-UTC datetimes, notes on how time zones were read)."""
    res = read_legacy_pickle(path)
    value = res.value
    if not isinstance(value, (list, tuple)):
        raise PatchFormatError(f"{path}: holds {type(value).__name__}, expected a list of datetimes")
    out = []
    for i, t in enumerate(value):
        if isinstance(t, datetime):
            try:
                out.append(t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t)
            except (OverflowError, ValueError):
                raise PatchFormatError(f"{path}: entry {i} ({t!r}) falls outside years 1–9999 in UTC") from None
        elif isinstance(t, date):
            out.append(datetime(t.year, t.month, t.day))
        else:
            raise PatchFormatError(f"{path}: entry {i} is {type(t).__name__}, expected a datetime")
    return out, res.notes


def to_jsonable(value: Any, *, _depth: int = 0) -> Any:
    """Plain JSON-able form of decoded metadata: datetimes/dates → ISO strings, timedeltas → seconds,
    tuples/sets → lists, BBox → ``[min_x, min_y, max_x, max_y]`` plus CRS, bytes → latin-1 text. Containers nested
    more than :data:`MAX_META_DEPTH` deep raise :class:`PatchFormatError` (never a RecursionError)."""
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if _depth >= MAX_META_DEPTH:
            raise PatchFormatError(f"metadata nested more than {MAX_META_DEPTH} levels deep; not eo-learn metadata "
                                   "(remove that key, or flatten what it holds)")
        d = _depth + 1
        if isinstance(value, dict):
            return {str(k): to_jsonable(v, _depth=d) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [to_jsonable(v, _depth=d) for v in value]
        return sorted((to_jsonable(v, _depth=d) for v in value), key=str)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, BBox):
        return {"bbox": list(value.bounds), "crs": value.crs}
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, timezone):
        return str(value)
    return value


def read_meta_pickle(path: str | Path, *, max_bytes: int = MAX_PICKLE_BYTES) -> tuple[dict[str, Any], list[str]]:
    """``meta_info.pkl[.gz]`` → (JSON-able dict, notes); a pickle over ``max_bytes`` (decoded) is refused unread."""
    res = read_legacy_pickle(path, max_bytes=max_bytes)
    if not isinstance(res.value, dict):
        raise PatchFormatError(f"{path}: holds {type(res.value).__name__}, expected a dict of metadata")
    try:
        return to_jsonable(res.value), res.notes
    except PatchFormatError as exc:
        raise PatchFormatError(f"{path}: {exc}") from None
