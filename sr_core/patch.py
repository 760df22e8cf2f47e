"""The one core type: :class:`Patch`, a Sentinel-2 time series over one area with optional 2.5 m labels.

Shapes (T dates, H × W pixels at 10 m, labels at 4H × 4W = 2.5 m):

==================  ===============  =========  ====================================================
field               shape            dtype      meaning
==================  ===============  =========  ====================================================
``bands``           (T, H, W, 12)    float32    surface (L2A) or top-of-atmosphere (L1C) reflectance,
                                                challenge band order :data:`sr_core.bands.BAND_NAMES`
``timestamps``      T                datetime   acquisition times, naive UTC
``bbox``            –                BBox       footprint and CRS
``cloud_prob``      (T, H, W)        float32    cloud probability 0–1 (s2cloudless CLP / 255), optional
``cloud_mask``      (T, H, W)        bool       True = cloud, optional
``is_data``         (T, H, W)        bool       True = pixel has data, optional (all True if absent)
``scl``             (T, H, W)        uint8      Sen2Cor scene classification 0–11, optional
``cultivated``      (4H, 4W)         bool       target label at 2.5 m, optional
``not_declared``    (4H, 4W)         bool       ignored in scoring, optional
``all_polys``       (4H, 4W)         uint16     raw land-use / crop codes, optional
==================  ===============  =========  ====================================================

Arrays are validated once, at construction, and stored read-only: steps return new values instead of changing
a Patch in place (use :meth:`Patch.replace`). The caller's arrays are never changed: a writeable array is copied
(unless a dtype conversion already made a new one), a read-only array is shared as it is, without a copy (a loader
that owns its arrays marks them read-only first, and so promises not to change them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from .bands import BAND_NAMES, N_BANDS, NIR, RED
from .errors import PatchValidationError
from .geo import BBox

SCALE = 4  #: super-resolution factor: 10 m → 2.5 m
#: The per-date (T, H, W) layers beside the bands: whatever moves or is cut with a date moves or is cut with them.
DATE_LAYERS = ("cloud_prob", "cloud_mask", "is_data", "scl")

#: Sen2Cor scene classes that make an observation unusable when SCL is the cloud source (no CLM / CLP).
SCL_UNUSABLE: dict[int, str] = {
    0: "no data", 1: "saturated or defective", 3: "cloud shadow", 8: "cloud, medium probability",
    9: "cloud, high probability", 10: "thin cirrus", 11: "snow or ice",
}


class Source(StrEnum):
    """Where a patch comes from. The app shows it on every view: simulated data is never presented as real."""

    REAL = "real"
    SIMULATED = "simulated"


class ProductLevel(StrEnum):
    L2A = "L2A"  #: bottom-of-atmosphere (surface) reflectance: what the benchmark ships and the model expects
    L1C = "L1C"  #: top-of-atmosphere reflectance
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PatchInfo:
    """Provenance of a patch, shown to users (never guessed silently)."""

    name: str = "patch"
    source: Source = Source.REAL
    product_level: ProductLevel = ProductLevel.L2A
    norm_factor: float | None = None  #: DN scale used when the cube was read from digital numbers
    notes: tuple[str, ...] = ()  #: what the reader did, e.g. "dropped B10", "cloud masks computed"
    meta: Mapping[str, Any] = field(default_factory=dict)  #: meta_info as read (plain JSON-able values)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Source(self.source))
        object.__setattr__(self, "product_level", ProductLevel(self.product_level))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def with_note(self, note: str) -> PatchInfo:
        return dataclasses.replace(self, notes=(*self.notes, note))


def read_only(a: np.ndarray, given: Any = None) -> np.ndarray:
    """``a`` as a C-contiguous read-only array that nobody can change through ``given`` (the array a caller passed,
    which stays as it was): a read-only array is taken as it is; a writeable one is copied while it still shares
    memory with ``given``, and marked read-only when the conversions before already made it a new array."""
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        return a
    if isinstance(given, np.ndarray) and np.may_share_memory(a, given):
        a = a.copy()
    a.flags.writeable = False
    return a


def handed_over(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` marked read-only and returned: for a new array made for a new Patch and held by nobody else, which the
    Patch then takes without a copy (the caller promises not to change it)."""
    if a is not None:
        a.flags.writeable = False
    return a


def _fail(name: str, problem: str, fix: str) -> PatchValidationError:
    return PatchValidationError(f"Patch.{name}: {problem}; {fix}")


def _as_timestamps(ts: Sequence[Any]) -> tuple[datetime, ...]:
    out = []
    for i, t in enumerate(ts):
        if isinstance(t, np.datetime64):
            t = t.astype("datetime64[us]").item()
        elif isinstance(t, str):
            try:
                t = datetime.fromisoformat(t.replace("Z", "+00:00"))
            except ValueError:
                raise _fail("timestamps", f"entry {i} {t!r} is not an ISO date", "use e.g. '2019-03-04T10:00:00'") from None
        if not isinstance(t, datetime):
            raise _fail("timestamps", f"entry {i} is {type(t).__name__}, not a datetime", "pass datetime objects")
        if t.tzinfo is not None:
            t = t.astimezone(UTC).replace(tzinfo=None)
        out.append(t)
    return tuple(out)


def timestamp_groups(timestamps: Sequence[datetime]) -> dict[datetime, list[int]]:
    """The indices of ``timestamps`` grouped by instant (time zone dropped), in order of first appearance: one group
    per date, several indices where one pass was delivered as several entries (:meth:`Patch.merged_duplicate_dates`,
    :func:`sr_core.io.eopatch.read_b10`)."""
    groups: dict[datetime, list[int]] = {}
    for i, t in enumerate(timestamps):
        groups.setdefault(t.replace(tzinfo=None), []).append(i)
    return groups


def clear_mask(shape: tuple[int, int, int], is_data: np.ndarray | None, cloud_mask: np.ndarray | None,
               cloud_prob: np.ndarray | None, scl: np.ndarray | None) -> np.ndarray:
    """(T, H, W) bool: has data and is not cloud, by :meth:`Patch.valid_mask`'s rule (CLM, else CLP > 0.4, else the
    SCL classes), from the layers themselves: the reader needs it before its Patch exists."""
    valid = np.ones(shape, bool) if is_data is None else np.array(is_data, bool)
    if cloud_mask is not None:
        valid &= ~np.asarray(cloud_mask, bool)
    elif cloud_prob is not None:
        valid &= cloud_prob <= 0.4
    elif scl is not None:
        valid &= ~np.isin(scl, tuple(SCL_UNUSABLE))
    return valid


@dataclass(frozen=True, repr=False, eq=False)
class Patch:
    bands: np.ndarray
    timestamps: tuple[datetime, ...]
    bbox: BBox
    cloud_prob: np.ndarray | None = None
    cloud_mask: np.ndarray | None = None
    is_data: np.ndarray | None = None
    scl: np.ndarray | None = None
    cultivated: np.ndarray | None = None
    not_declared: np.ndarray | None = None
    all_polys: np.ndarray | None = None
    info: PatchInfo = field(default_factory=PatchInfo)

    # -- validation ----------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        set_ = object.__setattr__
        b = self.bands
        if not isinstance(b, np.ndarray):
            raise _fail("bands", f"got {type(b).__name__}", "pass a numpy array of shape (T, H, W, 12)")
        if b.ndim == 3 and b.shape[-1] == N_BANDS:
            raise _fail("bands", f"has shape {b.shape} (no time axis)", "add one with bands[None] for a single date")
        if b.ndim != 4:
            raise _fail("bands", f"has {b.ndim} dimensions {b.shape}", "expected (T, H, W, 12)")
        T, H, W, C = b.shape
        if C != N_BANDS:
            hint = "drop B10 (index 10) from a 13-band L1C cube" if C == 13 else f"order bands as {' '.join(BAND_NAMES)}"
            raise _fail("bands", f"has {C} bands, expected {N_BANDS}", hint)
        if T < 1 or H < 1 or W < 1:
            raise _fail("bands", f"has an empty axis {b.shape}", "a patch needs at least one date and one pixel")
        if not np.issubdtype(b.dtype, np.floating):
            raise _fail(
                "bands", f"dtype {b.dtype} is not floating point",
                "convert digital numbers to reflectance first (DN × 1e-4 for the challenge's uint16 cubes)",
            )
        set_(self, "bands", read_only(b.astype(np.float32, copy=False), b))

        if not isinstance(self.bbox, BBox):
            raise _fail("bbox", f"got {type(self.bbox).__name__}", "pass sr_core.geo.BBox(min_x, min_y, max_x, max_y, epsg)")
        ts = _as_timestamps(self.timestamps)
        if len(ts) != T:
            raise _fail("timestamps", f"has {len(ts)} entries but bands have T={T} dates", "give one timestamp per date")
        set_(self, "timestamps", ts)

        def frames(name: str, kind: str, lo: float | None = None, hi: float | None = None) -> None:
            given = a = getattr(self, name)
            if a is None:
                return
            a = np.asarray(a)
            if a.ndim == 4 and a.shape[-1] == 1:
                a = a[..., 0]
            if a.shape != (T, H, W):
                raise _fail(name, f"has shape {a.shape}, bands imply (T, H, W) = {(T, H, W)}",
                            "give one 10 m layer per date on the band grid (a trailing axis of 1 is accepted)")
            if kind == "bool":
                if a.dtype != bool:
                    if not (np.issubdtype(a.dtype, np.integer) and a.size and a.min() >= 0 and a.max() <= 1) and a.size:
                        raise _fail(name, f"dtype {a.dtype} with values outside {{0, 1}}", "pass a boolean mask")
                    a = a.astype(bool)
            elif kind == "prob":
                if np.issubdtype(a.dtype, np.integer):
                    raise _fail(name, f"dtype {a.dtype} (integer)", "scale s2cloudless CLP (0–255) to 0–1 with CLP / 255")
                a = a.astype(np.float32, copy=False)
                if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
                    raise _fail(name, "has values outside 0–1", "scale s2cloudless CLP (0–255) with CLP / 255")
            elif kind == "uint8":
                if not np.issubdtype(a.dtype, np.integer):
                    raise _fail(name, f"dtype {a.dtype}", "pass integer scene classes 0–11")
                if a.size and (a.min() < (lo or 0) or a.max() > (hi or 255)):
                    raise _fail(name, f"has values outside {lo}–{hi}", "pass Sen2Cor scene classes 0–11")
                a = a.astype(np.uint8, copy=False)
            set_(self, name, read_only(a, given))

        frames("cloud_prob", "prob")
        frames("cloud_mask", "bool")
        frames("is_data", "bool")
        frames("scl", "uint8", 0, 11)

        def label(name: str, kind: str) -> None:
            given = a = getattr(self, name)
            if a is None:
                return
            a = np.asarray(a)
            if a.ndim == 3 and a.shape[-1] == 1:
                a = a[..., 0]
            want = (SCALE * H, SCALE * W)
            if a.shape != want:
                raise _fail(name, f"has shape {a.shape}, expected {want} (4× the {H} × {W} band grid)",
                            "labels are at 2.5 m: 4 label pixels per 10 m pixel along each axis")
            if kind == "bool" and a.dtype != bool:
                if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 1)):
                    raise _fail(name, f"dtype {a.dtype} is not boolean", "pass a mask with values 0/1")
                a = a.astype(bool)
            if kind == "codes":
                if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
                    raise _fail(name, f"dtype {a.dtype}", "pass non-negative integer land-use codes")
                a = a.astype(np.uint16)
            set_(self, name, read_only(a, given))

        label("cultivated", "bool")
        label("not_declared", "bool")
        label("all_polys", "codes")
        if not isinstance(self.info, PatchInfo):
            raise _fail("info", f"got {type(self.info).__name__}", "pass a sr_core.patch.PatchInfo")

    # -- shape facts -------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W) at 10 m."""
        T, H, W, _ = self.bands.shape
        return (T, H, W)

    @property
    def n_dates(self) -> int:
        return self.bands.shape[0]

    @property
    def height(self) -> int:
        return self.bands.shape[1]

    @property
    def width(self) -> int:
        return self.bands.shape[2]

    @property
    def label_shape(self) -> tuple[int, int]:
        return (SCALE * self.height, SCALE * self.width)

    @property
    def has_labels(self) -> bool:
        return self.cultivated is not None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def is_simulated(self) -> bool:
        return self.info.source is Source.SIMULATED

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-order affine of the 10 m band grid."""
        return self.bbox.transform(self.width, self.height)

    @property
    def label_transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-order affine of the 2.5 m label grid."""
        return self.bbox.transform(SCALE * self.width, SCALE * self.height)

    # -- derived layers (new arrays, never views into the patch) ----------------------------------------------
    def data_mask(self) -> np.ndarray:
        """(T, H, W) bool: pixel has data (all True where ``is_data`` is absent)."""
        return np.ones(self.shape, bool) if self.is_data is None else self.is_data.copy()

    @property
    def cloud_source(self) -> str | None:
        """Which layer says where the clouds are: ``"CLM"``, ``"CLP"`` (``cloud_prob > 0.4``), ``"SCL"`` (Sen2Cor
        classes, used only when CLM and CLP are both absent) or None (no cloud layer: every pixel is taken as clear)."""
        if self.cloud_mask is not None:
            return "CLM"
        if self.cloud_prob is not None:
            return "CLP"
        if self.scl is not None:
            return "SCL"
        return None

    def valid_mask(self) -> np.ndarray:
        """(T, H, W) bool: has data and is not cloud. Clouds come from ``cloud_mask``; where it is absent, from
        ``cloud_prob > 0.4`` (the s2cloudless default threshold); where both are absent, from the Sen2Cor scene
        classification (:data:`SCL_UNUSABLE`: no data, saturated, cloud shadow, cloud medium / high, cirrus, snow)."""
        return clear_mask(self.shape, self.is_data, self.cloud_mask, self.cloud_prob, self.scl)

    def cloud_fraction(self) -> np.ndarray:
        """(T,) float: share of data pixels flagged cloudy per date (NaN when a date has no data;
        0 where no cloud layer exists)."""
        data = self.data_mask()
        cloudy = data & ~self.valid_mask()
        n = data.sum(axis=(1, 2)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, cloudy.sum(axis=(1, 2)) / np.maximum(n, 1), np.nan)

    def ndvi(self) -> np.ndarray:
        """(T, H, W) float32 NDVI = (B08 − B04) / (B08 + B04), 0 where the denominator is 0."""
        nir = self.bands[..., NIR].astype(np.float32)
        red = self.bands[..., RED].astype(np.float32)
        den = nir + red
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den != 0, (nir - red) / den, 0.0)
        return out.astype(np.float32)

    def features_present(self) -> list[str]:
        names = ["bands"]
        for f in ("cloud_prob", "cloud_mask", "is_data", "scl", "cultivated", "not_declared", "all_polys"):
            if getattr(self, f) is not None:
                names.append(f)
        return names

    def replace(self, **changes: Any) -> Patch:
        """A new Patch with some fields changed (re-validated)."""
        return dataclasses.replace(self, **changes)

    def crop(self, row: int, col: int, height: int, width: int) -> Patch:
        """A new Patch cut to the 10 m window ``[row:row+height, col:col+width]`` (labels cut to match)."""
        if not (row >= 0 and col >= 0 and height > 0 and width > 0 and row + height <= self.height
                and col + width <= self.width):
            raise PatchValidationError(
                f"crop window rows {row}:{row + height}, cols {col}:{col + width} lies outside the "
                f"{self.height} × {self.width} patch; choose a window inside it"
            )
        a, _, c, _, e, f = self.transform
        bbox = BBox(c + col * a, f + (row + height) * e, c + (col + width) * a, f + row * e, self.bbox.epsg)

        def cut(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else handed_over(x[:, row:row + height, col:col + width].copy())

        def cut4(x: np.ndarray | None) -> np.ndarray | None:
            r, c_ = SCALE * row, SCALE * col
            return None if x is None else handed_over(x[r:r + SCALE * height, c_:c_ + SCALE * width].copy())

        return dataclasses.replace(
            self, bands=cut(self.bands), bbox=bbox, **{k: cut(getattr(self, k)) for k in DATE_LAYERS},
            cultivated=cut4(self.cultivated), not_declared=cut4(self.not_declared), all_polys=cut4(self.all_polys),
        )

    def select_dates(self, index: Sequence[int] | np.ndarray) -> Patch:
        """A new Patch holding only the dates at ``index`` (in that order)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.size == 0:
            raise PatchValidationError("select_dates: no dates selected; a patch needs at least one date")

        run = (idx.ndim == 1 and idx[0] >= 0 and idx[-1] < self.bands.shape[0]
               and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)))
        # a run of consecutive dates (a season of a series in time order) is a slice: views of the read-only
        # arrays, no copy; anything else is fancy indexing, a new array
        take = slice(int(idx[0]), int(idx[0]) + idx.size) if run else idx

        def pick(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else handed_over(x[take])

        return dataclasses.replace(
            self, bands=pick(self.bands), timestamps=tuple(self.timestamps[i] for i in idx),
            **{k: pick(getattr(self, k)) for k in DATE_LAYERS},
        )

    def in_time_order(self) -> tuple[Patch, str | None]:
        """This patch with its dates in time order (every date layer moved with them), and a note saying what moved;
        (self, None) when they are in order already. Exports that merge tiles or append late scenes can leave them
        out of order, while the viewer's slider, the season's date list and the series exports read them in array
        order."""
        key = [t.replace(tzinfo=None) for t in self.timestamps]
        order = sorted(range(len(key)), key=key.__getitem__)
        if order == list(range(len(key))):
            return self, None
        moved = sum(1 for i, j in enumerate(order) if i != j)
        return self.select_dates(order), f"dates were not in time order: sorted ({moved} of {len(key)} moved)"

    def merged_duplicate_dates(self) -> tuple[Patch, str | None]:
        """This patch with dates that share one timestamp merged into one (two granules of the same pass, as tile
        mosaics deliver them), and a note; (self, None) when every timestamp is unique. The first of them is kept
        and its pixels without data are filled, with every date layer, from the next one that has data there. A
        repeated date would otherwise count twice in the model's pooling over dates."""
        groups = timestamp_groups(self.timestamps)
        if len(groups) == self.n_dates:
            return self, None
        data = self.data_mask()
        bands = np.array(self.bands)
        layers = {n: None if getattr(self, n) is None else np.array(getattr(self, n)) for n in DATE_LAYERS}
        has = data.copy()
        for members in groups.values():
            first = members[0]
            for j in members[1:]:
                take = ~has[first] & data[j]
                bands[first][take] = bands[j][take]
                for a in layers.values():
                    if a is not None:
                        a[first][take] = a[j][take]
                has[first] |= take
        if layers["is_data"] is not None:
            layers["is_data"] = has
        keep = [m[0] for m in groups.values()]
        merged = dataclasses.replace(self, bands=handed_over(bands),
                                     **{n: handed_over(a) for n, a in layers.items() if a is not None})
        n_dup = self.n_dates - len(groups)
        shown = ", ".join(f"{k:%Y-%m-%d %H:%M}" for k, m in groups.items() if len(m) > 1)
        return merged.select_dates(keep), (f"{n_dup} date(s) repeated a timestamp ({shown}): merged, the first "
                                           "filled from the others where it had no data")

    def __repr__(self) -> str:
        T, H, W = self.shape
        dates = f"{self.timestamps[0]:%Y-%m-%d}…{self.timestamps[-1]:%Y-%m-%d}" if T else "–"
        extras = ", ".join(f for f in self.features_present() if f != "bands")
        return (
            f"Patch({self.info.name!r}, {self.info.source.value}, {self.info.product_level.value}, "
            f"T={T}, {H}×{W} px @10 m, dates {dates}, bbox {self.bbox}, layers: {extras or 'bands only'})"
        )
