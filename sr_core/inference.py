"""Run the super-resolution model on a patch: device choice, tiling with seamless blending, optional uncertainty.

``predict(patch)`` returns a :class:`~sr_core.prediction.Prediction` on the patch's 2.5 m grid. Any patch size
works: the 10 m grid is cut into overlapping tiles (at most ``tile`` pixels a side, laid out evenly), each tile is
predicted whole (all dates at once), and the tiles' 2.5 m probabilities are blended with complementary cosine
ramps over the overlaps, so no seam shows and the weights sum to one everywhere.

Device: ``"auto"`` picks CUDA, then Apple MPS, then the CPU; the choice is reported in ``Prediction.device``.
Asking explicitly for a device that is not there raises :class:`~sr_core.errors.ConfigError` (no silent
fallback: a user who asked for the GPU should learn that it is not used). Precision is a parameter
(:func:`sr_core.model.precision.resolve_precision`): by default float16 autocast on CUDA, float32 elsewhere, and
any device can run the reduced-precision path (bfloat16 / float16 autocast on a CPU too); always under
``torch.inference_mode``. On a GPU a tile's date-axis stage runs in chunks sized to the free memory; an
out-of-memory error halves the chunk, then the tile, and retries. Loaded models are kept in one bounded cache
(:mod:`sr_core.model.cache`), keyed by checkpoint file, modification time, size and device.

Uncertainty (``uncertainty=True``): the patch is predicted under the 8 flips / 90° rotations of the square
(test-time augmentation); ``proba`` is their mean and ``uncertainty`` their standard deviation per pixel.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bands import BAND_NAMES
from .errors import ConfigError, ModelError
from .features import patch_arrays, series_report
from .patch import SCALE, Patch
from .prediction import Prediction
from .prepare import input_record, prepare_input
from .viz import upscale

if TYPE_CHECKING:
    import torch

    from .model import SRNet
    from .model.precision import Precision

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_TILE_CPU = 272  #: largest tile side (10 m px) on a CPU: 2 × 2 tiles of 264 for a 500 × 500 patch (cache-friendly)
DEFAULT_TILE_GPU = 512  #: a whole 500 × 500 patch in one go on a GPU
DEFAULT_OVERLAP = 24  #: minimum tile overlap in 10 m pixels
MIN_TILE = 32  #: smallest tile side an out-of-memory fallback goes down to

log = logging.getLogger(__name__)


def available_devices() -> list[str]:
    """Devices torch can use here, best first (``cpu`` always last)."""
    import torch

    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return [*out, "cpu"]


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``auto`` to cuda → mps → cpu; an explicit device that is absent raises ConfigError."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).lower()
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    have = available_devices()
    if kind == "auto":
        log.debug("device auto: %s (available: %s)", have[0], ", ".join(have))
        return torch.device(have[0])
    if kind not in have:
        raise ConfigError(
            f"device {device!r} requested but torch {torch.__version__} sees no {kind.upper()} device here "
            f"(available: {', '.join(have)}); use --device auto (picks the best available) or --device cpu"
        )
    return torch.device(name)


def get_model(model: SRNet | str | Path | None = None, device: str | torch.device = "auto") -> SRNet:
    """The network on ``device``: a given SRNet (moved there), or a checkpoint path (default: the bundled
    weights), loaded once per (file, modification time, size, device) into the shared bounded cache."""
    return load_cached(model, device)[0]


def load_cached(model: SRNet | str | Path | None = None, device: str | torch.device = "auto") -> tuple[SRNet, float]:
    """:func:`get_model` plus the seconds spent loading (0.0 when the network was cached or given)."""
    from .model import SRNet, default_model_path
    from .model.cache import MODELS

    dev = select_device(device)
    if isinstance(model, SRNet):
        return model.to(dev).eval(), 0.0
    return MODELS.get(Path(model) if model is not None else default_model_path(), dev)


def clear_model_cache() -> None:
    """Drop every cached network (and hand its GPU memory back)."""
    from .model.cache import MODELS

    MODELS.clear()


def tile_starts(n: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Evenly spread tile starts along an axis of ``n`` pixels: tiles of equal size ≤ ``tile`` (a multiple of 4
    when possible) overlapping by at least ``overlap``. Returns (starts, size)."""
    if n <= tile:
        return [0], n
    overlap = min(overlap, tile // 2)
    k = math.ceil((n - overlap) / (tile - overlap))
    size = math.ceil((n + (k - 1) * overlap) / k)
    size = min(n, size + (-size) % 4)
    starts = [round(i * (n - size) / (k - 1)) for i in range(k)] if k > 1 else [0]
    return starts, size


def _ramp(length: int) -> np.ndarray:
    """Rising weights over an overlap of ``length`` 2.5 m pixels: 0 over the first quarter (the tile edge, where
    the receptive field is cut), a cosine rise over the middle half, 1 over the last quarter."""
    i = np.arange(length, dtype=np.float64) + 0.5
    t = np.clip((i - length / 4) / max(length / 2, 1), 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _axis_weights(starts: list[int], size: int, k: int) -> list[np.ndarray]:
    """Per tile, the 1-D blending weights on the 2.5 m grid; neighbouring ramps are complementary (sum to 1)."""
    out = []
    for i, s in enumerate(starts):
        w = np.ones(size * k, np.float32)
        if i > 0:
            ov = (starts[i - 1] + size - s) * k
            if ov > 0:
                w[:ov] *= _ramp(ov)
        if i < len(starts) - 1:
            ov = (s + size - starts[i + 1]) * k
            if ov > 0:
                w[size * k - ov:] *= 1.0 - _ramp(ov)
        out.append(w)
    return out


# the 8 symmetries of the square on the last two axes (H, W): (number of 90° rotations, flip W first)
_DIHEDRAL: tuple[tuple[int, bool], ...] = ((0, False), (1, False), (2, False), (3, False),
                                           (0, True), (1, True), (2, True), (3, True))


def _fwd(x: torch.Tensor, r: int, flip: bool, dims: tuple[int, int]) -> torch.Tensor:
    import torch

    if flip:
        x = torch.flip(x, dims=(dims[1],))
    return torch.rot90(x, r, dims=dims) if r else x


def _inv(y: torch.Tensor, r: int, flip: bool, dims: tuple[int, int]) -> torch.Tensor:
    import torch

    if r:
        y = torch.rot90(y, -r, dims=dims)
    return torch.flip(y, dims=(dims[1],)) if flip else y


def _predict_tile(net: SRNet, bands: np.ndarray, valid: np.ndarray, cloud: np.ndarray | None, doy: np.ndarray,
                  device: torch.device, tta: int, precision: Precision, chunk: int | None = None) -> np.ndarray:
    """Probabilities (n_tta, 4h, 4w) for one tile (arrays (T, h, w, ...) as in a Patch), under ``precision``'s
    autocast, ``chunk`` pixels per date-axis chunk (None: the network's choice)."""
    import torch

    def tensor(a: np.ndarray) -> torch.Tensor:
        # A view of the patch's read-only arrays, not a copy (copying the tiles cost ~13 % of a CPU prediction; on a
        # GPU ``.to`` copies anyway). torch cannot mark a tensor read-only, and nothing here writes to its input: the
        # network and the test-time transforms only read it (tests/test_inference.py checks the patch is unchanged).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(a)[None].to(device)

    b, v, d = tensor(bands), tensor(valid), tensor(doy)  # (1, T, h, w, 12), (1, T, h, w), (1, T)
    c = None if cloud is None else tensor(cloud)
    outs = []
    for r, flip in _DIHEDRAL[:tta]:
        bt = _fwd(b, r, flip, (2, 3))
        vt = _fwd(v, r, flip, (2, 3))
        ct = None if c is None else _fwd(c, r, flip, (2, 3))
        with precision.autocast():
            logits = net(bt, vt, d, ct, chunk=chunk)  # (1, 1, 4h', 4w')
        outs.append(_inv(torch.sigmoid(logits.float())[0, 0], r, flip, (0, 1)))
    return torch.stack(outs).cpu().numpy()


def predict(
    patch: Patch,
    device: str = "auto",
    model: SRNet | str | Path | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    uncertainty: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    threshold: float | None = None,
    tta: int | None = None,
    season: int | None = None,
    precision: str = "auto",
    chunk: int | None = None,
) -> Prediction:
    """Predict the 2.5 m cultivated-land probability of ``patch``.

    ``model``: an :class:`~sr_core.model.SRNet`, a checkpoint path, or None for the bundled weights.
    ``tile`` / ``overlap``: tile side and overlap in 10 m pixels (default 272 on CPU, 512 on GPU; 24).
    ``uncertainty``: test-time augmentation over ``tta`` (default 8) flips/rotations; per-pixel std in
    ``Prediction.uncertainty``. ``progress(done, total)`` is called after each tile pass. ``threshold``
    overrides the checkpoint's tuned threshold for ``Prediction.binary``. A 10 m pixel never seen clear (cloud or
    no data on every date) gets probability 0: no evidence, no cultivated claim (``extra["blind_fraction"]``;
    ``Prediction.no_data`` marks them, and the probability / uncertainty GeoTIFFs write them as no data).
    The patch is first made model-ready by :func:`sr_core.prepare.prepare_input` (one growing season: the latest
    complete one, or ``season``; missing bands filled; SCL as cloud source where CLM / CLP are absent);
    ``extra["input"]`` records what was done and the warnings say it.
    ``precision``: ``auto`` (float16 autocast on CUDA, float32 elsewhere), ``float32``, ``float16`` or ``bfloat16``
    (on any device). ``chunk``: pixels per date-axis chunk (default: cache-sized on a CPU, bounded by the free
    memory on a GPU; the result does not depend on it). An out-of-memory error halves the chunk, then the tile.
    """
    from .model.network import release_device_memory
    from .model.precision import resolve_precision

    if not isinstance(patch, Patch):
        raise TypeError(f"predict expects a sr_core.Patch, got {type(patch).__name__}; load one with sr_core.load_eopatch")
    t0 = time.perf_counter()
    patch = prepare_input(patch, season)
    dev = select_device(device)
    net = get_model(model, dev)
    info = getattr(net, "info", None)
    bands_expected = list(getattr(info, "bands", None) or net.config.bands)
    if bands_expected != list(BAND_NAMES):
        raise ModelError(f"model expects bands {bands_expected}, patches carry {list(BAND_NAMES)}; use a matching model")
    n_tta = int(tta) if tta is not None else (8 if uncertainty else 1)
    if not 1 <= n_tta <= 8:
        raise ConfigError(f"tta={tta}: choose 1–8 test-time transforms")
    tile = int(tile or (DEFAULT_TILE_GPU if dev.type != "cpu" else DEFAULT_TILE_CPU))
    if tile < 8 or overlap < 0:
        raise ConfigError(f"tile={tile}, overlap={overlap}: use tile ≥ 8 and overlap ≥ 0 (10 m pixels)")
    prec = resolve_precision(dev, precision)

    arr = patch_arrays(patch)
    report = series_report(patch, arr.valid)
    while True:
        try:
            probs, total, (th, tw) = _predict_tiles(net, arr, patch.shape, dev, tile, overlap, n_tta, prec, chunk,
                                                    progress)
            break
        except _out_of_memory() as exc:
            if tile // 2 < MIN_TILE:
                raise
            log.warning("%s: out of memory with %d px tiles on %s (%s): retrying with %d px tiles",
                        patch.name, tile, dev, str(exc).splitlines()[0][:120] if str(exc) else "", tile // 2)
            tile //= 2
        release_device_memory(dev)  # what the failed pass held, now that its traceback is gone
    proba = probs.mean(0)
    # No evidence, no claim: a 10 m pixel never seen clear (cloud or no data on every date) is mapped as not
    # cultivated. The network would otherwise read field patterns into cloud texture (the inspector's
    # all-clouded probe paints 20 % cultivated without this rule).
    no_data = upscale(report.blind, SCALE) if report.blind.any() else None
    if no_data is not None:
        proba[no_data] = 0.0
    unc = probs.std(0) if n_tta > 1 else None
    if unc is not None and no_data is not None:
        unc[no_data] = 0.0  # the rule's 0 has no spread; written files mark these pixels as no data
    thr = float(threshold if threshold is not None else getattr(info, "threshold", 0.5))
    name = getattr(info, "name", "untrained") if info is not None else "in-memory"
    seconds = time.perf_counter() - t0
    log.debug("%s: predicted %d × %d px, %d dates, on %s (%s), %d tile(s), %.2f s", patch.name, *patch.shape[1:],
              patch.n_dates, dev, prec.name, total, seconds)
    return Prediction(
        proba=np.clip(proba, 0.0, 1.0), bbox=patch.bbox, name=patch.name, threshold=thr, uncertainty=unc,
        predictor=f"model:{name}", device=str(dev), seconds=seconds, warnings=report.warnings,
        extra={"tiles": total, "tile_size": (th, tw), "overlap": overlap, "tta": n_tta, "n_params": net.n_params(),
               "usable_dates": report.usable_dates, "n_dates": report.n_dates, "precision": prec.name,
               "blind_fraction": report.blind_fraction, "input": input_record(patch)},
        no_data=no_data,
    )


def _out_of_memory() -> type[BaseException]:
    import torch

    return torch.OutOfMemoryError


def _predict_tiles(net: SRNet, arr: Any, shape: tuple[int, int, int], dev: torch.device, tile: int, overlap: int,
                   n_tta: int, prec: Precision, chunk: int | None,
                   progress: Callable[[int, int], Any] | None) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Blended probabilities (n_tta, 4H, 4W) of every tile, the number of tiles and the tile size."""
    import torch

    _, H, W = shape
    rows, th = tile_starts(H, tile, overlap)
    cols, tw = tile_starts(W, tile, overlap)
    wr, wc = _axis_weights(rows, th, SCALE), _axis_weights(cols, tw, SCALE)
    acc = np.zeros((n_tta, SCALE * H, SCALE * W), np.float32)
    wsum = np.zeros((SCALE * H, SCALE * W), np.float32)
    total, done = len(rows) * len(cols), 0
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for i, r0 in enumerate(rows):
                for j, c0 in enumerate(cols):
                    sl = (slice(None), slice(r0, r0 + th), slice(c0, c0 + tw))
                    p = _predict_tile(net, arr.bands[sl], arr.valid[sl],
                                      None if arr.cloud_prob is None else arr.cloud_prob[sl], arr.doy, dev, n_tta,
                                      prec, chunk)
                    w = wr[i][:, None] * wc[j][None, :]
                    R, C = slice(SCALE * r0, SCALE * (r0 + th)), slice(SCALE * c0, SCALE * (c0 + tw))
                    acc[:, R, C] += p * w
                    wsum[R, C] += w
                    done += 1
                    if progress is not None:
                        progress(done, total)
    finally:
        net.train(was_training)
    return acc / np.maximum(wsum, 1e-12), total, (th, tw)
