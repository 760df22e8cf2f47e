"""The 10 m pixel baseline: a per-pixel classifier on cloud-masked temporal features, upsampled bicubically to 2.5 m.

What a remote-sensing scientist tries first, and the bar every super-resolution model must clearly beat. Each 10 m
pixel becomes a fixed-length vector (:data:`FEATURE_NAMES`) whatever the number of dates T and the clouds; small
MLPs (an ensemble of five in the bundled file, each from its own seed; their mean probability counts) map it to the
share of its 4 × 4 block of 2.5 m label pixels that is cultivated; that 10 m probability map is
upsampled with :func:`sr_core.baselines.ndvi.upsample_bicubic` (OpenCV INTER_CUBIC), clipped to 0–1 and thresholded
at the value stored in the model file (chosen on held-out training seeds to maximise the pooled weighted MCC).

Features (all from *clear* observations: ``Patch.valid_mask()`` = has data and not cloud):

* per seasonal window — Mar–Apr, May, Jun, Jul, Aug–Sep (by calendar month; dates outside Mar–Sep join the nearest
  window) — the median log reflectance ``log(ρ + 0.01)`` of B02 B03 B04 B05 B06 B07 B08 B8A B11 B12 and the median
  NDVI (55 features). A window without a clear observation takes the pixel's median over all its clear dates and
  sets its flag ``missing_<window>`` (5 flags);
* NDVI over all clear dates: min, 10/25/50/75/90th percentiles, max, mean, standard deviation, amplitude
  (max − min), date of the maximum (day of year, scaled), summed rises and summed drops between consecutive clear
  dates and the number of drops > 0.15 (mowing, harvest);
* NDWI (B03 vs B08) and NDMI (B08 vs B11): 10th, 50th and 90th percentiles;
* the number of clear dates (log 1 + n), the clear share n / T, and ``no_clear`` (the pixel is never seen clear:
  every statistic then comes from its cloudy observations instead).

Anything still undefined (a patch with no data at all) takes the training mean, i.e. the standardised value 0.

Bands that come empty are filled by the input path from the nearest band (:func:`sr_core.prepare.fill_bands`).
Features of filled bands are not what the MLPs learnt, so the file also holds **band-dropout members**
(:func:`train_pixel_baseline` ``dropout_members``), trained on every training patch as it is and once more with a
random set of bands filled by that same rule (:func:`draw_missing_bands`), with their own threshold. They predict
whenever a band the features read was filled (:meth:`PixelBaseline.for_filled`); patches with every band get the
other members, unchanged.

The model file (``models/pixel-baseline.npz``) holds plain arrays only: each member's layer weights, feature means
and standard deviations, and a JSON config (feature names, threshold, training provenance) as a unicode array. It is
read with ``np.load(allow_pickle=False)`` and evaluated in numpy: no pickle, no torch at prediction time. Training
(:func:`train_pixel_baseline`, ``python -m sr_core baseline train-pixel``) uses torch.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bands import band_index
from ..errors import ModelError
from ..patch import SCALE, Patch
from ..paths import MODELS_DIR
from ..prediction import Prediction
from ..prepare import TEN_M_ONLY_LAND, fill_bands, input_record, input_warnings, prepare_input
from .ndvi import upsample_bicubic

FORMAT = "sr_core.pixel_baseline"
FORMAT_VERSION = 3  #: 3: + band-dropout members; 2: an ensemble of members; 1: one MLP (read as a one-member ensemble)
MAX_MEMBERS = 64  #: a file announcing more members than this is refused (the bundled one has 5)
DEFAULT_MODEL = MODELS_DIR / "pixel-baseline.npz"
LOG_OFFSET = 0.01
BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
_BAND_IDX = [band_index(b) for b in BANDS]
_GREEN, _RED, _NIR, _SWIR1 = (BANDS.index(b) for b in ("B03", "B04", "B08", "B11"))
#: seasonal windows: name → calendar months (dates before March join the first, after September the last)
WINDOWS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("MarApr", (1, 2, 3, 4)), ("May", (5,)), ("Jun", (6,)), ("Jul", (7,)), ("AugSep", (8, 9, 10, 11, 12)),
)  # fmt: skip
NDVI_STATS = ("min", "p10", "p25", "p50", "p75", "p90", "max", "mean", "std", "amplitude", "doy_max", "rises",
              "drops", "n_drops")  # fmt: skip
DROP = 0.15  #: an NDVI fall between consecutive clear dates larger than this counts as a drop (cut, harvest)
_Q = (0.1, 0.5, 0.9)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{b}_{w}" for w, _ in WINDOWS for b in (*BANDS, "NDVI")),
    *(f"missing_{w}" for w, _ in WINDOWS),
    *(f"NDVI_{s}" for s in NDVI_STATS),
    *(f"{i}_p{int(q * 100)}" for i in ("NDWI", "NDMI") for q in _Q),
    "log_n_clear", "clear_share", "no_clear",
)  # fmt: skip
N_FEATURES = len(FEATURE_NAMES)
_CHUNK_VALUES = 12_000_000  #: values of one row chunk of the (T, rows, W, bands) cube (bounds memory)


# ---------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------
def _window_index(timestamps: Sequence[Any]) -> np.ndarray:
    month_to_window = {m: i for i, (_, months) in enumerate(WINDOWS) for m in months}
    return np.array([month_to_window[t.month] for t in timestamps], np.int64)


def _quantiles(values: np.ndarray, mask: np.ndarray, qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (numpy's linear rule) over axis 0 of ``values`` where ``mask`` (broadcast to values), and the
    count. Returns (len(qs), *values.shape[1:]) float32 with NaN where the count is 0, and the counts."""
    m = np.broadcast_to(mask, values.shape)
    v = np.where(m, values, np.inf)
    v.sort(axis=0)
    n = m.sum(axis=0)
    out = np.empty((len(qs), *values.shape[1:]), np.float32)
    top = np.maximum(n - 1, 0)
    for k, q in enumerate(qs):
        pos = q * top
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, top)
        a = np.take_along_axis(v, lo[None], 0)[0]
        b = np.take_along_axis(v, hi[None], 0)[0]
        with np.errstate(invalid="ignore"):
            r = a + (b - a) * (pos - lo)
        out[k] = np.where(n > 0, r, np.nan)
    return out, n


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    den = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a - b) / den, 0.0).astype(np.float32)


def _stats(refl: np.ndarray, use: np.ndarray, win: np.ndarray, doy: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The feature block (F, h, w) of reflectance ``refl`` (T, h, w, len(BANDS)) using the observations ``use``
    (T, h, w); NaN where undefined (window flags and counts are filled in by the caller)."""
    T, h, w, _ = refl.shape
    logr = np.log(np.maximum(refl, 0) + LOG_OFFSET).astype(np.float32)
    ndvi = _ratio(refl[..., _NIR], refl[..., _RED])
    ndwi = _ratio(refl[..., _GREEN], refl[..., _NIR])
    ndmi = _ratio(refl[..., _NIR], refl[..., _SWIR1])
    cube = np.concatenate([logr, ndvi[..., None]], axis=-1)  # (T, h, w, 11)
    nb = cube.shape[-1]
    out: list[np.ndarray] = []
    overall, _ = _quantiles(cube, use[..., None], (0.5,))
    overall = overall[0]
    missing = []
    for k in range(len(WINDOWS)):
        sel = win == k
        if sel.any():
            med, n = _quantiles(cube[sel], use[sel][..., None], (0.5,))
            med, n = med[0], n[..., 0]
        else:
            med, n = np.full((h, w, nb), np.nan, np.float32), np.zeros((h, w), np.int64)
        med = np.where((n > 0)[..., None], med, overall)
        out.extend(np.moveaxis(med, -1, 0))
        missing.append((n == 0).astype(np.float32))
    out.extend(missing)

    q, n = _quantiles(ndvi, use, (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0))
    cnt = np.maximum(n, 1)
    masked = np.where(use, ndvi, 0.0)
    mean = masked.sum(0) / cnt
    std = np.sqrt(np.maximum(np.where(use, (ndvi - mean) ** 2, 0.0).sum(0) / cnt, 0))
    doy_max = doy[np.argmax(np.where(use, ndvi, -np.inf), axis=0)]
    last = np.full((h, w), np.nan, np.float32)
    rises = np.zeros((h, w), np.float32)
    drops = np.zeros((h, w), np.float32)
    n_drops = np.zeros((h, w), np.float32)
    for t in order:
        u = use[t]
        d = ndvi[t] - last
        has = u & np.isfinite(last)
        rises += np.where(has, np.maximum(d, 0), 0)
        drops += np.where(has, np.maximum(-d, 0), 0)
        n_drops += has & (d < -DROP)
        last = np.where(u, ndvi[t], last)
    undefined = n == 0
    extra = [mean, std, q[6] - q[0], (doy_max - 180.0) / 60.0]
    out.extend(q)
    out.extend(np.where(undefined, np.nan, e).astype(np.float32) for e in extra)
    out.extend(np.where(undefined, np.nan, e) for e in (rises, drops, n_drops))
    for idx in (ndwi, ndmi):
        qq, _ = _quantiles(idx, use, _Q)
        out.extend(qq)
    out.append(np.log1p(n).astype(np.float32))
    out.append((n / T).astype(np.float32))
    out.append(np.zeros((h, w), np.float32))  # no_clear: set by the caller
    return np.stack(out).astype(np.float32)


def pixel_features(patch: Patch) -> np.ndarray:
    """(H, W, N_FEATURES) float32 features of every 10 m pixel (see the module docstring and
    :data:`FEATURE_NAMES`). NaN only where a patch holds no data at all for a feature."""
    T, H, W = patch.shape
    valid = patch.valid_mask()
    data = patch.data_mask()
    win = _window_index(patch.timestamps)
    doy = np.array([t.timetuple().tm_yday for t in patch.timestamps], np.float32)
    order = np.argsort(np.array([t.timestamp() for t in patch.timestamps]), kind="stable")
    rows = max(1, _CHUNK_VALUES // max(1, T * W * len(BANDS)))
    feats = np.empty((N_FEATURES, H, W), np.float32)
    i_log_n, i_share, i_noclear = (FEATURE_NAMES.index(k) for k in ("log_n_clear", "clear_share", "no_clear"))
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        refl = patch.bands[:, r0:r1][..., _BAND_IDX]
        f = _stats(refl, valid[:, r0:r1], win, doy, order)
        none = ~valid[:, r0:r1].any(axis=0)
        if none.any():  # never seen clear: use its cloudy observations (and flag it), counts stay 0
            g = _stats(refl, data[:, r0:r1], win, doy, order)
            keep = f[[i_log_n, i_share]]
            f = np.where(none[None], g, f)
            f[[i_log_n, i_share]] = keep
            f[i_noclear] = none
        feats[:, r0:r1] = f
    feats = np.moveaxis(feats, 0, -1)
    if np.isnan(feats).any():  # no data at all for some pixels: the patch median of that feature
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN (the model fills them)
            med = np.nanmedian(feats.reshape(-1, N_FEATURES), axis=0)
        feats = np.where(np.isnan(feats), med, feats)
    return np.ascontiguousarray(feats, dtype=np.float32)


def block_targets(patch: Patch, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) training target and sample weight of every 10 m pixel: the unweighted share of its 4 × 4 block of
    2.5 m ``CULTIVATED`` pixels, and the mean of the benchmark weight map over the block (0 for blocks that are all
    ``NOT_DECLARED`` or on the scored border)."""
    if patch.cultivated is None:
        raise ModelError(f"{patch.name}: the pixel baseline trains on labelled patches; this one has no CULTIVATED mask")
    from ..metrics import weight_map

    H, W = patch.height, patch.width
    if weights is None:
        weights = weight_map(patch.cultivated, patch.not_declared)
    y = patch.cultivated.reshape(H, SCALE, W, SCALE).mean(axis=(1, 3)).astype(np.float32)
    w = np.asarray(weights, np.float32).reshape(H, SCALE, W, SCALE).mean(axis=(1, 3))
    return y, w


# ---------------------------------------------------------------------------------------------------------------
# The model: an MLP in plain arrays
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PixelMember:
    """One MLP of the ensemble: standardised :data:`FEATURE_NAMES` → logit of P(cultivated) of a 10 m pixel."""

    weights: tuple[np.ndarray, ...]  #: W0 (F, h0), W1 (h0, h1), …, last (h_k, 1)
    biases: tuple[np.ndarray, ...]
    mean: np.ndarray  #: (F,) feature means of this member's training rows
    std: np.ndarray  #: (F,) feature standard deviations

    def predict_10m(self, feats: np.ndarray) -> np.ndarray:
        """P(cultivated) for features (..., F): float32 of shape (...)."""
        shape = feats.shape[:-1]
        x = feats.reshape(-1, feats.shape[-1]).astype(np.float32)
        x = np.where(np.isnan(x), self.mean, x)
        x = (x - self.mean) / self.std
        out = np.empty(x.shape[0], np.float32)
        step = 65536
        for s in range(0, x.shape[0], step):
            h = x[s:s + step]
            for i, (wm, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                h = h @ wm + b
                if i < len(self.weights) - 1:
                    h = np.maximum(h, 0)
            out[s:s + step] = 1.0 / (1.0 + np.exp(-np.clip(h[:, 0], -30, 30)))
        return out.reshape(shape)

    @property
    def n_parameters(self) -> int:
        return int(sum(w.size for w in self.weights) + sum(b.size for b in self.biases))


@dataclass(frozen=True, eq=False)
class PixelBaseline:
    """An ensemble of MLPs (:class:`PixelMember`, each trained from its own seed) whose mean probability is
    P(cultivated) of a 10 m pixel, and the threshold chosen for that mean. One member is the single MLP of files
    written before the ensemble (format version 1)."""

    members: tuple[PixelMember, ...]
    threshold: float = 0.5
    config: dict[str, Any] = field(default_factory=dict)
    #: members trained with band dropout (and their own threshold): they predict when the input path filled any of
    #: :data:`BANDS` (:meth:`for_filled`); None in files written before them (format ≤ 2)
    dropout: PixelBaseline | None = None

    def __post_init__(self) -> None:
        if not self.members:
            raise ModelError("a pixel baseline needs at least one member MLP")

    def for_filled(self, filled: Iterable[str]) -> PixelBaseline:
        """The ensemble that predicts a patch whose input path filled the bands ``filled``: the band-dropout members
        when any of them is one of :data:`BANDS` (B01 / B09 are not features) and the file has them, else these."""
        if self.dropout is not None and set(filled) & set(BANDS):
            return self.dropout
        return self

    def member_probabilities(self, feats: np.ndarray) -> np.ndarray:
        """(M, ...) float32: each member's P(cultivated) for features (..., F)."""
        return np.stack([m.predict_10m(feats) for m in self.members])

    def predict_10m(self, feats: np.ndarray) -> np.ndarray:
        """P(cultivated) for features (..., F): the members' mean, float32 of shape (...)."""
        if len(self.members) == 1:
            return self.members[0].predict_10m(feats)
        return self.member_probabilities(feats).mean(axis=0, dtype=np.float32)

    @property
    def n_parameters(self) -> int:
        """Every member's parameters, the band-dropout members' included."""
        own = sum(m.n_parameters for m in self.members)
        return int(own + (self.dropout.n_parameters if self.dropout is not None else 0))


def _member_key(k: int, name: str, prefix: str = "") -> str:
    """Array name of member ``k``'s ``name`` (member 0 keeps format 1's names, so a format-1 file is one member);
    band-dropout members are ``d{k}_{name}`` (``prefix`` "d")."""
    if prefix:
        return f"{prefix}{k}_{name}"
    return name if k == 0 else f"m{k}_{name}"


def _member_arrays(members: Sequence[PixelMember], prefix: str = "") -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for k, m in enumerate(members):
        arrays[_member_key(k, "mean", prefix)] = m.mean.astype(np.float32)
        arrays[_member_key(k, "std", prefix)] = m.std.astype(np.float32)
        for i, (w, b) in enumerate(zip(m.weights, m.biases, strict=True)):
            arrays[_member_key(k, f"W{i}", prefix)] = np.asarray(w, np.float32)
            arrays[_member_key(k, f"b{i}", prefix)] = np.asarray(b, np.float32)
    return arrays


def save_pixel_baseline(model: PixelBaseline, path: str | Path) -> Path:
    """Write ``model`` as a pickle-free ``.npz`` (plain float32 arrays and a JSON string)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = {**model.config, "format": FORMAT, "format_version": FORMAT_VERSION, "threshold": float(model.threshold),
           "feature_names": list(FEATURE_NAMES), "n_members": len(model.members),
           "n_layers": [len(m.weights) for m in model.members]}
    cfg.pop("dropout", None)
    arrays = _member_arrays(model.members)
    if model.dropout is not None:
        d = model.dropout
        cfg["dropout"] = {**d.config, "threshold": float(d.threshold), "n_members": len(d.members),
                          "n_layers": [len(m.weights) for m in d.members]}
        arrays.update(_member_arrays(d.members, "d"))
    arrays["config"] = np.array(json.dumps(cfg, sort_keys=True))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path


def load_pixel_baseline(path: str | Path | None = None) -> PixelBaseline:
    """Read a pixel-baseline model file (default: the bundled ``models/pixel-baseline.npz``) without pickle."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    fix = ("use a file written by `python -m sr_core baseline train-pixel` (`baseline pixel --model`, "
           "`evaluate --pixel-model`)")
    if not path.is_file():
        hint = ("the bundled model is missing from this installation; rebuild it with "
                "`python -m sr_core baseline train-pixel --out models/pixel-baseline.npz`") if path == DEFAULT_MODEL else fix
        raise ModelError(f"pixel-baseline model {path} not found; {hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays (pickles) are refused by allow_pickle=False
        raise ModelError(f"pixel-baseline model {path} is not a plain-array .npz ({exc}); {fix}") from None
    except (OSError, EOFError) as exc:
        raise ModelError(f"pixel-baseline model {path} is unreadable ({exc}); {fix}") from None
    try:
        cfg = json.loads(str(arrays["config"]))
        if cfg.get("format") != FORMAT:
            raise ModelError(f"{path} is not a pixel-baseline model (format {cfg.get('format')!r}); {fix}")
        if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(f"{path} has format version {cfg['format_version']}, newer than this sr_core "
                             f"({FORMAT_VERSION}); update sr_core")
        if tuple(cfg["feature_names"]) != FEATURE_NAMES:
            raise ModelError(f"{path} was trained on other features than this sr_core computes; retrain it with "
                             "`python -m sr_core baseline train-pixel`")
        members = _read_members(arrays, cfg, "")
        dcfg = cfg.get("dropout")
        dropout = None
        if dcfg is not None:
            if not isinstance(dcfg, dict):
                raise ValueError("'dropout' is not a mapping")
            dropout = PixelBaseline(tuple(_read_members(arrays, dcfg, "d")), float(dcfg["threshold"]), dcfg)
    except KeyError as exc:
        raise ModelError(f"pixel-baseline model {path} lacks entry {exc}; {fix}") from None
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ModelError(f"pixel-baseline model {path} has a corrupt config ({exc}); {fix}") from None
    for m in (*members, *(dropout.members if dropout is not None else ())):
        dims = [N_FEATURES] + [w.shape[1] if w.ndim == 2 else -1 for w in m.weights]
        ok = (m.mean.shape == m.std.shape == (N_FEATURES,) and np.all(m.std > 0) and dims[-1] == 1
              and all(w.ndim == 2 and w.shape[0] == dims[i] for i, w in enumerate(m.weights))
              and all(b.shape == (dims[i + 1],) for i, b in enumerate(m.biases))
              and all(np.all(np.isfinite(a)) for a in (*m.weights, *m.biases, m.mean, m.std)))
        if not ok:
            raise ModelError(f"pixel-baseline model {path} has inconsistent array shapes or values; {fix}")
    if dropout is not None and not 0.0 <= dropout.threshold <= 1.0:
        raise ModelError(f"pixel-baseline model {path} has a band-dropout threshold outside 0–1; {fix}")
    cfg = {k: v for k, v in cfg.items() if k != "dropout"}
    return PixelBaseline(tuple(members), float(cfg["threshold"]), cfg, dropout)


def _read_members(arrays: dict[str, np.ndarray], cfg: dict[str, Any], prefix: str) -> list[PixelMember]:
    """The members a config announces (``n_members``, ``n_layers``), read from ``arrays``; KeyError / ValueError
    on anything missing or inconsistent (the caller words the error)."""
    n_members = int(cfg.get("n_members", 1))
    if not 1 <= n_members <= MAX_MEMBERS:
        raise ValueError(f"{n_members} members (1 to {MAX_MEMBERS} are read)")
    layers = cfg["n_layers"]
    layers = [int(layers)] * n_members if isinstance(layers, int) else [int(v) for v in layers]
    if len(layers) != n_members:
        raise ValueError(f"{n_members} members but layer counts {layers}")
    members = []
    for k, n in enumerate(layers):
        def get(name: str, k: int = k) -> np.ndarray:
            return arrays[_member_key(k, name, prefix)].astype(np.float32)

        members.append(PixelMember(tuple(get(f"W{i}") for i in range(n)), tuple(get(f"b{i}") for i in range(n)),
                                   get("mean"), get("std")))
    return members


_CACHE: dict[Path, tuple[float, PixelBaseline]] = {}


def _default_model() -> PixelBaseline:
    mtime = DEFAULT_MODEL.stat().st_mtime if DEFAULT_MODEL.is_file() else -1.0
    hit = _CACHE.get(DEFAULT_MODEL)
    if hit is None or hit[0] != mtime:
        _CACHE[DEFAULT_MODEL] = (mtime, load_pixel_baseline(DEFAULT_MODEL))
    return _CACHE[DEFAULT_MODEL][1]


# ---------------------------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------------------------
def _proba_25m(p10: np.ndarray) -> np.ndarray:
    """A 10 m probability map on the 2.5 m grid: bicubic × 4, clipped to 0–1."""
    return np.clip(upsample_bicubic(p10, SCALE), 0.0, 1.0)


def pixel_baseline(patch: Patch, model: PixelBaseline | None = None, season: int | None = None) -> Prediction:
    """The 10 m pixel baseline's prediction for ``patch``: P(cultivated) per 10 m pixel, bicubic ×4, clipped to
    0–1, with the model's threshold. ``extra`` holds ``proba_10m`` (H × W) and ``n_clear`` (clear dates per pixel).
    The patch goes through the model's input path first (:func:`sr_core.prepare.prepare_input`)."""
    t0 = time.perf_counter()
    patch = prepare_input(patch, season)
    model = model if model is not None else _default_model()
    filled = sorted(set((input_record(patch) or {}).get("filled_bands") or {}) & set(BANDS), key=BANDS.index)
    notes = []
    if filled and model.dropout is None:
        notes.append(f"{patch.name}: this pixel-baseline file has no band-dropout members, so it was not trained for "
                     f"the filled bands ({', '.join(filled)}); read its map with care")
    elif filled:
        notes.append(f"{patch.name}: the pixel baseline used its band-dropout members, trained for filled bands "
                     f"({', '.join(filled)} filled here)")
    model = model.for_filled(filled)
    feats = pixel_features(patch)
    p10 = model.predict_10m(feats)
    proba = _proba_25m(p10)
    n_clear = patch.valid_mask().sum(axis=0)
    never = float((n_clear == 0).mean())
    if never > 0.01:
        notes.append(f"{patch.name}: {never:.0%} of the pixels are never seen clear; the pixel baseline used their "
                     "cloudy observations there")
    return Prediction(
        proba=proba, bbox=patch.bbox, name=patch.name, threshold=model.threshold, predictor="baseline:pixel",
        device="cpu", seconds=time.perf_counter() - t0, warnings=tuple([*input_warnings(patch), *notes]),
        extra={"proba_10m": p10, "n_clear": n_clear.astype(np.int16), "input": input_record(patch)},
    )


# ---------------------------------------------------------------------------------------------------------------
# Training and evaluation on simulated patches
# ---------------------------------------------------------------------------------------------------------------
Progress = Callable[[str], None]


def parse_seeds(text: str) -> list[int]:
    """``"10000-10031"``, ``"1,2,5"`` or a mix (``"0-3,9"``) → the list of seeds."""
    from ..errors import ConfigError

    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError(part)
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"cannot read seeds {text!r}; write e.g. 10000-10031 or 1,2,5") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"seeds {text!r}: give at least one non-negative seed, e.g. 10000-10031")
    return seeds


def _simulated(seeds: Iterable[int], size: int, split: str, progress: Progress | None, what: str) -> Iterable[Patch]:
    from ..simulate import simulate_patch

    seeds = list(seeds)
    for i, s in enumerate(seeds):
        if progress:
            progress(f"{what}: simulating {split} seed {s} ({i + 1}/{len(seeds)}, {size} px)")
        yield simulate_patch(int(s), int(size), split)


def _mcc_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    num = tp * tn - fp * fn
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, 0.0)


@dataclass
class ThresholdSearch:
    """Weighted histograms of predicted probabilities of cultivated / other pixels, pooled over patches, giving
    the pooled weighted MCC of ``proba > t`` for every t on a grid of step 1 / bins."""

    bins: int = 200
    pos: np.ndarray = field(default_factory=lambda: np.zeros(200))
    neg: np.ndarray = field(default_factory=lambda: np.zeros(200))

    def add(self, proba: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> None:
        idx = np.minimum((np.asarray(proba, np.float64) * self.bins).astype(np.int64), self.bins - 1).ravel()
        t = np.asarray(truth, bool).ravel()
        w = np.asarray(weights, np.float64).ravel()
        self.pos += np.bincount(idx[t], w[t], self.bins)
        self.neg += np.bincount(idx[~t], w[~t], self.bins)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds k / bins (k = 1 … bins − 1) and the pooled weighted MCC of ``proba ≥ threshold``."""
        tp = np.cumsum(self.pos[::-1])[::-1][1:]  # bins k.. → proba ≥ k / bins
        fp = np.cumsum(self.neg[::-1])[::-1][1:]
        fn = self.pos.sum() - tp
        tn = self.neg.sum() - fp
        return np.arange(1, self.bins) / self.bins, _mcc_from_counts(tp, fp, fn, tn)

    def best(self) -> tuple[float, float]:
        thr, mcc = self.curve()
        k = int(np.argmax(mcc))
        return float(thr[k]), float(mcc[k])

    def at(self, threshold: float) -> float:
        """The pooled weighted MCC at the grid threshold nearest ``threshold``."""
        thr, mcc = self.curve()
        return float(mcc[int(np.argmin(np.abs(thr - threshold)))])


#: bands the dropout members' training copies may lack (those the features read; B01 / B09 are always filled too)
TEN_M_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
OTHER_BANDS: tuple[str, ...] = TEN_M_ONLY_LAND  #: what a 10 m-only export lacks: B05 B06 B07 B8A B11 B12
DROPOUT_STREAM = 77  #: the band draw of a patch comes from ``np.random.default_rng([patch seed, DROPOUT_STREAM])``


def draw_missing_bands(rng: np.random.Generator) -> list[str]:
    """One band-dropout draw (the training copy of a patch, or a validation patch): with P 1/3 the 10 m bands only
    (a common quick export); else each 20 m land band missing with P 0.3 and each 10 m band with P 0.1, never B04
    and B08 together, at least one band. B01 and B09 (not features) are always added."""
    if rng.random() < 1 / 3:
        miss = list(OTHER_BANDS)
    else:
        miss = [b for b in OTHER_BANDS if rng.random() < 0.3] + [b for b in TEN_M_BANDS if rng.random() < 0.1]
        if "B04" in miss and "B08" in miss:
            miss.remove("B08")
        if not miss:
            miss = [OTHER_BANDS[int(rng.integers(len(OTHER_BANDS)))]]
    return ["B01", "B09", *sorted(miss, key=BANDS.index)]


def missing_bands_of(seed: int) -> list[str]:
    """The band-dropout draw of the training or validation patch simulated from ``seed``: :func:`draw_missing_bands`
    from ``np.random.default_rng([seed, DROPOUT_STREAM])``."""
    return draw_missing_bands(np.random.default_rng([int(seed), DROPOUT_STREAM]))


def without_bands(patch: Patch, missing: Sequence[str]) -> Patch:
    """``patch`` with the bands ``missing`` zeroed, as an export that lacks them comes (the input path then finds
    them empty and fills them)."""
    bands = np.array(patch.bands, copy=True)
    for name in missing:
        bands[..., band_index(name)] = 0
    return patch.replace(bands=bands)


def _train_member(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, hidden: Sequence[int], epochs: int, max_rows: int,
                  batch: int, lr: float, seed: int, progress: Progress | None, label: str) -> tuple[PixelMember, float]:
    """One MLP on the rows ``x`` (features), ``y`` (soft targets), ``w`` (row weights), from ``seed`` (its row
    subsample and initialisation). Returns the member and its final training loss."""
    import torch

    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        pick = rng.choice(len(x), max_rows, replace=False)
        x, y, w = x[pick], y[pick], w[pick]
    mean = np.nanmean(x, axis=0).astype(np.float32)
    std = np.nanstd(x, axis=0).astype(np.float32)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    xn = np.where(np.isnan(x), mean, x)
    xn = ((xn - mean) / std).astype(np.float32)
    w = (w / w.mean()).astype(np.float32)
    torch.manual_seed(seed)
    dims = [N_FEATURES, *hidden, 1]
    layers: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(xn) / batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps))
    tx, ty, tw = torch.from_numpy(xn), torch.from_numpy(y), torch.from_numpy(w)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    last = float("nan")
    for ep in range(epochs):
        perm = torch.randperm(len(tx), generator=gen)
        total, wsum = 0.0, 0.0
        for s in range(0, len(tx), batch):
            idx = perm[s:s + batch]
            logit = net(tx[idx])[:, 0]
            loss = (loss_fn(logit, ty[idx]) * tw[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            wsum += len(idx)
        last = total / max(wsum, 1)
        if progress:
            progress(f"{label}epoch {ep + 1}/{epochs}: weighted BCE {last:.4f}")
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = tuple(m.weight.detach().numpy().T.copy() for m in lin)
    biases = tuple(m.bias.detach().numpy().copy() for m in lin)
    return PixelMember(weights, biases, mean, std), last


def train_pixel_baseline(
    train_seeds: Sequence[int],
    val_seeds: Sequence[int],
    *,
    size: int = 160,
    val_size: int = 200,
    hidden: Sequence[int] = (64, 64),
    epochs: int = 20,
    max_rows: int = 600_000,
    batch: int = 2048,
    lr: float = 3e-3,
    weighted: bool = True,
    seed: int = 0,
    members: int = 1,
    dropout_members: int = 0,
    threads: int = 1,
    progress: Progress | None = None,
) -> PixelBaseline:
    """Train the pixel baseline on simulated ``split="train"`` patches (never the test split's streams).

    Rows: every 10 m pixel of the ``train_seeds`` patches (``size`` px) whose block weight is > 0; target
    :func:`block_targets` share; loss: binary cross-entropy on the soft target, each row weighted by its block's mean
    benchmark weight when ``weighted``. ``members`` MLPs are trained on the same rows, member ``k`` from seed
    ``seed + k`` (its own subsample of at most ``max_rows`` rows and its own initialisation: member ``k`` is exactly
    the single MLP that ``seed=seed + k, members=1`` trains); their mean probability is the prediction. The
    threshold maximises the pooled weighted MCC at 2.5 m of that mean on the ``val_seeds`` patches (``val_size`` px,
    also ``split="train"``, disjoint from the training seeds); each member's own best figure there is recorded too.

    ``dropout_members`` > 0 adds as many band-dropout members (seeds ``seed`` … likewise), which predict whenever the
    input path filled a band the features read (:meth:`PixelBaseline.for_filled`). They learn from every training
    patch twice: as it is, and with the bands of one :func:`draw_missing_bands` draw filled by the prediction's rule
    (:func:`sr_core.prepare.fill_bands`); their threshold is chosen on the validation patches, each under its own
    draw through the user's input path. The other members do not change. The validation figures of both ensembles
    with the 10 m bands only are recorded (``dropout.validation.ten_m_only``)."""
    import torch

    from ..errors import ConfigError
    from ..metrics import weight_map
    from ..simulate import SIMULATOR_VERSION

    if set(train_seeds) & set(val_seeds):
        raise ConfigError("training and validation seeds overlap; give disjoint ranges (e.g. 10000-10031 and 20000-20005)")
    if members < 1:
        raise ConfigError(f"members={members}: the ensemble needs at least one MLP")
    if dropout_members < 0:
        raise ConfigError(f"dropout_members={dropout_members}: give 0 (none) or more")
    t_start = time.perf_counter()
    xs, ys, ws, xds = [], [], [], []
    for s_, patch in zip(train_seeds, _simulated(train_seeds, size, "train", progress, "training patches"), strict=True):
        f = pixel_features(patch)
        y, w = block_targets(patch)
        keep = w > 0
        xs.append(f[keep])
        ys.append(y[keep])
        ws.append(w[keep])
        if dropout_members:
            miss = missing_bands_of(s_)
            xds.append(pixel_features(patch.replace(bands=fill_bands(patch.bands, miss)))[keep])
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    w = np.concatenate(ws) if weighted else np.ones(sum(len(a) for a in ys), np.float32)
    del xs, ys, ws

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        trained = [_train_member(x, y, w, hidden=hidden, epochs=epochs, max_rows=max_rows, batch=batch, lr=lr,
                                 seed=seed + k, progress=progress,
                                 label=f"member {k + 1}/{members} (seed {seed + k}): " if members > 1 else "")
                   for k in range(members)]
        if dropout_members:
            xd = np.concatenate([x, *xds])
            yd, wd = np.concatenate([y, y]), np.concatenate([w, w])
            del xds
            d_trained = [_train_member(xd, yd, wd, hidden=hidden, epochs=epochs, max_rows=max_rows, batch=batch,
                                       lr=lr, seed=seed + k, progress=progress,
                                       label=f"band-dropout member {k + 1}/{dropout_members} (seed {seed + k}): ")
                         for k in range(dropout_members)]
            del xd, yd, wd
    finally:
        torch.set_num_threads(prev_threads)
    rows, d_rows = min(len(x), max_rows), min(2 * len(x), max_rows)
    del x, y, w

    model = PixelBaseline(tuple(m for m, _ in trained), 0.5)
    dmodel = PixelBaseline(tuple(m for m, _ in d_trained), 0.5) if dropout_members else None
    search = ThresholdSearch()
    per_member = [ThresholdSearch() for _ in range(members)]  # each member alone (recorded for an ensemble)
    d_search, ten_clean, ten_drop = ThresholdSearch(), ThresholdSearch(), ThresholdSearch()
    for s_, patch in zip(val_seeds, _simulated(val_seeds, val_size, "train", progress, "validation patches"),
                         strict=True):
        # the features once: every member's probability, and their mean (what pixel_baseline predicts from them)
        probs = model.member_probabilities(pixel_features(prepare_input(patch)))
        wm = weight_map(patch.cultivated, patch.not_declared)
        search.add(_proba_25m(probs.mean(axis=0, dtype=np.float32)), patch.cultivated, wm)
        for srch, p10 in zip(per_member, probs, strict=True):
            srch.add(_proba_25m(p10), patch.cultivated, wm)
        if dmodel is not None:  # through the user's input path: the bands zeroed, then found empty and filled
            f = pixel_features(prepare_input(without_bands(patch, missing_bands_of(s_))))
            d_search.add(_proba_25m(dmodel.predict_10m(f)), patch.cultivated, wm)
            f = pixel_features(prepare_input(without_bands(patch, OTHER_BANDS)))
            ten_clean.add(_proba_25m(model.predict_10m(f)), patch.cultivated, wm)
            ten_drop.add(_proba_25m(dmodel.predict_10m(f)), patch.cultivated, wm)
    thr, val_mcc = search.best()
    dropout = None
    if dmodel is not None:
        d_thr, d_mcc = d_search.best()
        dropout = PixelBaseline(dmodel.members, d_thr, {
            "simulator_version": SIMULATOR_VERSION,
            "train": {"split": "train", "seeds": _ranges(train_seeds), "size": int(size),
                      "rows": d_rows,
                      "band_dropout": "every patch as it is, plus one copy with draw_missing_bands(default_rng("
                                      f"[seed, {DROPOUT_STREAM}])) filled by sr_core.prepare.fill_bands"},
            "validation": {"split": "train", "seeds": _ranges(val_seeds), "size": int(val_size),
                           "pooled_weighted_mcc": round(d_mcc, 4),
                           "missing": "one draw_missing_bands draw per patch, zeroed, then the input path",
                           "ten_m_only": {"bands": list(TEN_M_BANDS),
                                          "dropout_members": round(ten_drop.at(d_thr), 4),
                                          "clean_members": round(ten_clean.at(thr), 4)}},
            "ensemble": {"members": int(dropout_members), "seeds": [int(seed + k) for k in range(dropout_members)],
                         "combine": "mean of the members' probabilities",
                         "final_train_loss": [round(loss, 5) for _, loss in d_trained]},
        })
    validation: dict[str, Any] = {"split": "train", "seeds": _ranges(val_seeds), "size": int(val_size),
                                  "pooled_weighted_mcc": round(val_mcc, 4)}
    if members > 1:
        validation["member_pooled_weighted_mcc"] = [round(srch.best()[1], 4) for srch in per_member]
    config = {
        "created_by": "sr_core.baselines.pixel.train_pixel_baseline",
        "simulator_version": SIMULATOR_VERSION,
        "train": {"split": "train", "seeds": _ranges(train_seeds), "size": int(size), "rows": rows,
                  "target": "share of CULTIVATED in the 4x4 block (unweighted)",
                  "row_weight": "mean benchmark weight of the block" if weighted else "1"},
        "validation": validation,
        "mlp": {"hidden": [int(h) for h in hidden], "activation": "relu", "epochs": int(epochs), "batch": int(batch),
                "lr": lr, "optimizer": "AdamW(weight_decay=1e-4) + one-cycle", "seed": int(seed),
                "final_train_loss": round(trained[0][1], 5)},
        "ensemble": {"members": int(members), "seeds": [int(seed + k) for k in range(members)],
                     "combine": "mean of the members' probabilities",
                     "final_train_loss": [round(loss, 5) for _, loss in trained]},
        "train_seconds": round(time.perf_counter() - t_start, 1),
    }
    return PixelBaseline(model.members, thr, config, dropout)


def _ranges(seeds: Sequence[int]) -> str:
    s = sorted(int(x) for x in seeds)
    parts: list[str] = []
    start = prev = s[0]
    for v in [*s[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if v is not None:
            start = prev = v
    return ",".join(parts)


def evaluate_simulated(
    seeds: Sequence[int],
    *,
    size: int = 500,
    split: str = "test",
    model: PixelBaseline | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Pooled weighted MCC of the pixel baseline and of the organisers' NDVI baseline on simulated patches (default:
    the test split, which no training seed touches), with per-patch figures and the pixel baseline's seconds."""
    from ..metrics import ConfusionCounts, weight_map
    from .ndvi import ndvi_baseline

    model = model if model is not None else _default_model()
    pix, ndvi = ConfusionCounts(), ConfusionCounts()
    rows = []
    for s, patch in zip(seeds, _simulated(seeds, size, split, progress, "evaluation patches"), strict=True):
        w = weight_map(patch.cultivated, patch.not_declared)
        pred = pixel_baseline(patch, model)
        cp = ConfusionCounts.from_arrays(patch.cultivated, pred.binary, w)
        cn = ConfusionCounts.from_arrays(patch.cultivated, ndvi_baseline(patch).binary, w)
        pix, ndvi = pix + cp, ndvi + cn
        rows.append({"seed": int(s), "region": patch.info.meta.get("region"), "T": patch.n_dates,
                     "pixel_wmcc": round(cp.mcc, 4), "ndvi_wmcc": round(cn.mcc, 4), "pixel_seconds": round(pred.seconds, 2)})
    return {"split": split, "size": int(size), "seeds": _ranges(seeds), "threshold": model.threshold,
            "pixel_wmcc": round(pix.mcc, 4), "ndvi_wmcc": round(ndvi.mcc, 4), "patches": rows}


__all__ = [
    "BANDS", "DEFAULT_MODEL", "FEATURE_NAMES", "N_FEATURES", "WINDOWS", "PixelBaseline", "ThresholdSearch",
    "block_targets", "evaluate_simulated", "load_pixel_baseline", "parse_seeds", "pixel_baseline", "pixel_features",
    "save_pixel_baseline", "train_pixel_baseline",
]  # fmt: skip
