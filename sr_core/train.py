"""Training: random crops from simulated patches made on the fly (plus real labelled EOPatches when given).

Data. A *pool* of simulated patches (``split="train"``, seeds from a counter that only moves forward, so no patch
is ever seen twice across refreshes) is held in memory; every ``refresh_every`` steps the oldest pool patch is
replaced by a fresh one (simulation costs CPU, so patches are reused for a while, each time as other random
crops, date subsets and flips). Real EOPatches from ``--data`` (those with a CULTIVATED label) join the pool
permanently. Each training item is a ``crop × crop`` window at 10 m with a random subset of its dates (all of them
half of the time, down to a single date sometimes) under a random flip / rotation.

Loss: binary cross-entropy weighted by the benchmark's weight map (parcels small and thin gaps weigh more,
not-declared land zero), normalised by the total weight, plus ``dice`` × a weighted soft Dice loss.

Validation: a fixed list of held-out simulated patches (``split="test"``, seeds ``VAL_SEED0 + i``, disjoint from the
training stream by the split, and from ``evaluate --simulate``'s seeds ``0…N−1``), predicted whole with the
exponential moving average of the weights; pooled weighted MCC at 0.5 and at the best threshold of a grid (that
threshold is stored in the checkpoint). Checkpoints every ``ckpt_every`` steps (``out``, resumable: optimizer,
EMA, step, seed counter, pool seeds, RNG states) and at each new best validation score (``<out>.best.pt``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, ModelError
from .features import day_of_year, log_band_stats
from .inference import predict, select_device
from .model import SRNet, SRNetConfig
from .model.checkpoint import model_from_checkpoint, read_checkpoint
from .model.network import WIDENABLE, grow_as_identity, grow_widths
from .model.precision import resolve_precision
from .patch import SCALE, Patch
from .points import HOLDOUT, POINT_TILE
from .prepare import TEN_M_ONLY_LAND, prepare_input

VAL_SEED0 = 900_000  #: validation patches: split="test", seeds VAL_SEED0 + i
SEED_STRIDE = 1_000_000  #: training patches of run seed s: split="train", seeds s·SEED_STRIDE, s·SEED_STRIDE + 1, …
THRESHOLDS = tuple(np.round(np.arange(0.30, 0.71, 0.05), 2))
#: what ``train --precision`` accepts. float16 is left out: without loss scaling its gradients underflow.
TRAIN_PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
#: /proc/cpuinfo flags of the instructions that make bfloat16 matrix products fast on a CPU (AMX, AVX-512 BF16)
BF16_CPU_FLAGS: tuple[str, ...] = ("amx_bf16", "avx512_bf16")


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """True when the CPU announces bfloat16 matrix instructions (:data:`BF16_CPU_FLAGS`), False when it announces
    none, None when that cannot be read (not Linux). Without them bfloat16 autocast runs emulated, and slower."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags = {f for line in text.splitlines() if line.lower().startswith("flags") for f in line.split(":", 1)[-1].split()}
    if not flags:
        return None
    return any(f in flags for f in BF16_CPU_FLAGS)


def check_train_precision(precision: str | None, what: str = "precision") -> str:
    """``precision`` lower-cased when it is one of :data:`TRAIN_PRECISIONS`; a ConfigError naming the choices
    otherwise."""
    p = str(precision or "auto").lower()
    if p not in TRAIN_PRECISIONS:
        why = " (float16 needs loss scaling, which training does not do: use bfloat16)" if p == "float16" else ""
        raise ConfigError(f"{what} {precision!r}: choose one of {', '.join(TRAIN_PRECISIONS)}{why}")
    return p


#: The defects :func:`stacked_defects` can put on one crop, in the gate's order.
STACK_DEFECTS: tuple[str, ...] = ("haze", "l1c", "blur", "gain_offset", "shift")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint's provenance)."""

    steps: int = 2000
    batch: int = 4
    crop: int = 64  #: training window side in 10 m pixels
    preset: str = "small"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    dice: float = 0.5
    sim_size: int = 160  #: simulated patch side (10 m px) for the training pool
    pool: int = 16  #: patches held in the pool
    refresh_every: int = 8  #: steps between replacing the oldest pool patch
    max_dates: int = 60
    val_patches: int = 4
    val_size: int = 128
    val_every: int = 250
    ckpt_every: int = 50
    ema: float = 0.995
    seed: int = 0
    real_fraction: float = 0.5  #: share of items drawn from real patches when --data holds labelled ones
    augment: float = 1.0  #: domain randomisation strength (0 = off; 1 = the probabilities of :data:`AUGMENT`)
    #: share of band-dropout draws that keep the 10 m bands only (B02 B03 B04 B08; the rest filled by the prediction's
    #: rule), as quick exports come; 0 (the default, and every phase up to O) draws no extra random number
    ten_m_only: float = 0.0
    #: share of training crops given every defect of the robustness gate's ``combined`` scenario at once
    #: (:func:`stacked_defects`); 0 (the default, and every phase up to T) draws no extra random number
    stack: float = 0.0
    #: which of the gate's defects :func:`stacked_defects` puts on a stacked crop (default: all of
    #: :data:`STACK_DEFECTS`, as phase U had them)
    stack_defects: tuple[str, ...] = STACK_DEFECTS
    data: str | None = None
    points: str | None = None  #: folder of real labelled monthly points (:mod:`sr_core.points`), an extra loss
    points_weight: float = 0.5  #: weight of the points loss next to the patch loss
    points_batch: int = 16  #: points per step
    #: autocast of the training step (:data:`TRAIN_PRECISIONS`): ``auto`` is bfloat16 on CUDA and float32 elsewhere;
    #: ``bfloat16`` on a CPU with AMX / AVX-512 BF16 runs a step ≈ 1.6× faster (:func:`cpu_has_bf16`)
    precision: str = "auto"


@dataclass
class _Item:
    """One pool patch, prepared for cropping."""

    bands: np.ndarray  # (T, H, W, 12) float32
    valid: np.ndarray  # (T, H, W) bool
    cloud: np.ndarray  # (T, H, W) float32 (zeros when the patch has none)
    doy: np.ndarray  # (T,)
    label: np.ndarray  # (4H, 4W) float32
    weight: np.ndarray  # (4H, 4W) float32
    name: str = ""
    real: bool = False


@dataclass
class Batch:
    bands: torch.Tensor  # (B, T, S, S, 12)
    valid: torch.Tensor  # (B, T, S, S) bool
    cloud: torch.Tensor  # (B, T, S, S)
    doy: torch.Tensor  # (B, T)
    present: torch.Tensor  # (B, T) bool
    label: torch.Tensor  # (B, 1, 4S, 4S)
    weight: torch.Tensor  # (B, 1, 4S, 4S)

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, f).to(device) for f in ("bands", "valid", "cloud", "doy", "present", "label",
                                                              "weight")))


def prepare(patch: Patch) -> _Item:
    """A labelled patch → arrays for cropping, with its benchmark weight map."""
    from .metrics import weight_map

    if patch.cultivated is None:
        raise ConfigError(f"patch {patch.name!r} has no CULTIVATED label; training needs labelled patches")
    patch = prepare_input(patch)  # real EOPatches: one growing season, missing bands filled, SCL clouds
    cloud = patch.cloud_prob if patch.cloud_prob is not None else np.zeros(patch.shape, np.float32)
    return _Item(
        bands=np.asarray(patch.bands), valid=patch.valid_mask(), cloud=np.asarray(cloud, np.float32),
        doy=day_of_year(patch.timestamps), label=patch.cultivated.astype(np.float32),
        weight=weight_map(patch.cultivated, patch.not_declared), name=patch.name, real=not patch.is_simulated,
    )


def clear_samples(item: _Item, rng: np.random.Generator, n: int = 20_000) -> np.ndarray:
    """Up to ``n`` random clear-pixel spectra (n, 12) of a pool item (for the normalisation statistics)."""
    idx = np.flatnonzero(item.valid.reshape(-1))
    if idx.size > n:
        idx = rng.choice(idx, n, replace=False)
    return item.bands.reshape(-1, item.bands.shape[-1])[idx]


def simulator_version() -> str:
    try:
        from .simulate import SIMULATOR_VERSION
    except ImportError:  # pragma: no cover - the simulator is part of sr_core
        return "unknown"
    return str(SIMULATOR_VERSION)


def simulated(seed: int, size: int, split: str) -> Patch:
    from .simulate import simulate_patch

    return simulate_patch(seed, size=size, split=split)


def _simulated_item(source: Callable[[int, int, str], Patch], seed: int, size: int) -> _Item:
    """One training patch, simulated and prepared (a top-level function: it runs in worker processes)."""
    return prepare(source(seed, size, "train"))


PARENT_POLL_S = 2.0  #: how often a simulation worker checks that the training process that started it still runs


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker once the training process that started it is gone. Without it a run
    killed without clean-up (SIGKILL, an out-of-memory kill, a scheduler's hard stop) would leave its simulation
    workers behind, each holding hundreds of MB; an orphan's parent becomes another process (init)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Prefetch:
    """Simulates the training pool's next patches in ``workers`` processes, ahead of need. Patches are asked for by
    seed and each seed's patch is what :func:`_simulated_item` makes in-process, so a run does not depend on the
    number of workers (tested). On a GPU the step is milliseconds while a 160 px patch takes ≈ 1.5 s to simulate on
    one core: without workers the GPU waits for the simulator."""

    def __init__(self, source: Callable[[int, int, str], Patch], size: int, workers: int, ahead: int) -> None:
        # a prepared 160 px patch of ~48 dates holds ~60 MB: keep only ``ahead`` of them waiting
        self.source, self.size, self.ahead = source, int(size), max(int(ahead), int(workers))
        # spawn, not fork: the parent may hold CUDA and torch thread pools, which a forked child must not inherit
        self.pool = ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_exit_with_parent, initargs=(os.getpid(),))
        self.futures: dict[int, Future] = {}
        self._finalizer = weakref.finalize(self, self.pool.shutdown, wait=False, cancel_futures=True)

    def submit(self, seeds: Sequence[int]) -> None:
        """Start simulating ``seeds`` now (e.g. a whole pool at the start of a run)."""
        for s in seeds:
            if s not in self.futures:
                self.futures[s] = self.pool.submit(_simulated_item, self.source, s, self.size)

    def get(self, seed: int) -> _Item:
        for s in [s for s in self.futures if s < seed]:  # seeds skipped (a resumed run): not needed any more
            self.futures.pop(s).cancel()
        self.submit(range(seed, seed + self.ahead))
        return self.futures.pop(seed).result()

    def close(self) -> None:
        self._finalizer()


def auto_workers(device: torch.device) -> int:
    """Simulation worker processes by default: on a GPU all cores but two (at most 12); on a CPU none (the
    training step itself uses the cores)."""
    return 0 if device.type == "cpu" else max(1, min(12, (os.cpu_count() or 1) - 2))


def _dihedral(a: np.ndarray, k: int, flip: bool, axes: tuple[int, int]) -> np.ndarray:
    if flip:
        a = np.flip(a, axis=axes[1])
    return np.rot90(a, k, axes=axes) if k else a


#: Domain randomisation (simulator → real): probability of each perturbation per training item (× ``augment``).
#: The same functions as the robustness gate (:mod:`sr_core.perturb`); band dropout uses prediction's fill rule.
AUGMENT: dict[str, float] = {
    "gain_offset": 0.6,  # per-band gain ± 6 %, offset ± 0.015, plus ± 2 % / ± 0.005 per date
    "band_dropout": 1.0,  # B01 / B09 filled from B02 / B8A with P = 0.5 each, other bands P = 0.04
    "calendar": 0.5,  # day of year shifted by up to ± 15 days
    "blur": 0.25,  # extra Gaussian blur σ 0.3–0.7 px
    "shift": 0.25,  # 20–40 % of the dates moved by 1 px
    "haze": 0.2,  # unflagged haze on 20 % of the dates
    "l1c": 0.08,  # top-of-atmosphere look
}


#: the bands a 10 m-only export lacks (filled by the prediction's rule when ``ten_m_only`` draws it)
TEN_M_ONLY_MISSING: tuple[str, ...] = ("B01", "B09", *TEN_M_ONLY_LAND)


def check_stack_defects(defects: Sequence[str], source: str = "stacked defects") -> tuple[str, ...]:
    """``defects`` as a tuple, or a :class:`ConfigError` naming ``source``, the unknown names and the valid ones
    (:data:`STACK_DEFECTS`) when one is unknown or none is given."""
    names = tuple(defects)
    unknown = [d for d in names if d not in STACK_DEFECTS]
    if unknown or not names:
        detail = f"unknown: {', '.join(unknown)}" if unknown else "none given"
        raise ConfigError(f"{source}: name one or more of {','.join(STACK_DEFECTS)} ({detail})")
    return names


def stacked_defects(bands: np.ndarray, valid: np.ndarray, rng: np.random.Generator,
                    defects: Sequence[str] = STACK_DEFECTS) -> tuple[np.ndarray, np.ndarray]:
    """Every defect of the robustness gate's ``combined`` scenario on one crop, in the gate's order (haze → L1C look →
    blur → gain / offset → 1 px shifts), each strength drawn around the gate's rather than equal to it: real products
    bring several defects at once, which independent draws (:data:`AUGMENT`) almost never do. ``defects`` names the
    ones applied (a subset of :data:`STACK_DEFECTS`; the default, all of them, draws as phase U drew)."""
    from . import perturb

    defects = check_stack_defects(defects)
    if "haze" in defects:
        bands = perturb.haze(bands, rng, fraction=float(rng.uniform(0.2, 0.4)))
    if "l1c" in defects:
        bands = perturb.l1c(bands, rng, strength=float(rng.uniform(0.6, 1.2)))
    if "blur" in defects:
        bands = perturb.blur(bands, float(rng.uniform(0.4, 0.9)))
    if "gain_offset" in defects:
        bands = perturb.gain_offset(bands, rng, gain=0.05, offset=0.02)
        bands = perturb.gain_offset(bands, rng, gain=0.02, offset=0.005, per_date=True)
    if "shift" in defects:
        bands, valid = perturb.shift(bands, valid, rng, fraction=float(rng.uniform(0.2, 0.4)), pixels=1.0)
    return np.asarray(bands, np.float32), valid


def augment_item(bands: np.ndarray, valid: np.ndarray, doy: np.ndarray, rng: np.random.Generator,
                 strength: float = 1.0, ten_m_only: float = 0.0,
                 stack: float = 0.0,
                 stack_defects: Sequence[str] = STACK_DEFECTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Domain randomisation of one training crop (see :data:`AUGMENT`); returns new (bands, valid, doy).
    ``ten_m_only``: the share of band-dropout draws that keep the 10 m bands only (:data:`TEN_M_ONLY_MISSING`
    filled). ``stack``: the share of crops given :func:`stacked_defects` instead of the independent draws of gain /
    offset, blur, shift, haze and L1C (band dropout and the calendar shift are drawn as for every crop);
    ``stack_defects``: which defects a stacked crop gets."""
    from . import perturb

    if strength <= 0:
        return bands, valid, doy

    def hit(name: str) -> bool:
        return bool(rng.random() < AUGMENT[name] * strength)

    def dropout_and_calendar(bands: np.ndarray, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if hit("band_dropout"):
            if ten_m_only > 0 and rng.random() < ten_m_only:  # no extra draw at 0: earlier phases' streams unchanged
                bands = perturb.band_fill(bands, TEN_M_ONLY_MISSING)
            else:
                bands = perturb.random_band_dropout(bands, rng, p_b01_b09=0.5, p_other=0.04)
        if hit("calendar"):
            doy = perturb.calendar(doy, float(rng.uniform(-15, 15)))
        return bands, doy

    if stack > 0 and rng.random() < stack:  # no extra draw at 0: earlier phases' streams unchanged
        bands, valid = stacked_defects(bands, valid, rng, stack_defects)
        bands, doy = dropout_and_calendar(bands, doy)
        return np.asarray(bands, np.float32), valid, np.asarray(doy, np.float32)
    if hit("gain_offset"):
        bands = perturb.gain_offset(bands, rng, gain=0.06, offset=0.015)
        bands = perturb.gain_offset(bands, rng, gain=0.02, offset=0.005, per_date=True)
    bands, doy = dropout_and_calendar(bands, doy)
    if hit("blur"):
        bands = perturb.blur(bands, float(rng.uniform(0.3, 0.7)))
    if hit("shift"):
        bands, valid = perturb.shift(bands, valid, rng, fraction=float(rng.uniform(0.2, 0.4)), pixels=1.0)
    if hit("haze"):
        bands = perturb.haze(bands, rng, fraction=0.2, opacity=(0.05, 0.25))
    if hit("l1c"):
        bands = perturb.l1c(bands, rng, strength=float(rng.uniform(0.5, 1.0)))
    return np.asarray(bands, np.float32), valid, np.asarray(doy, np.float32)


def sample_batch(items: Sequence[_Item], rng: np.random.Generator, batch: int, crop: int, max_dates: int,
                 real_fraction: float = 0.5, augment: float = 0.0, ten_m_only: float = 0.0,
                 stack: float = 0.0, stack_defects: Sequence[str] = STACK_DEFECTS) -> Batch:
    """Random crops, date subsets and flips/rotations from the pool; dates padded to the longest item.
    ``augment`` > 0 applies :func:`augment_item` (domain randomisation) to every crop; ``stack`` is its share of
    crops with the gate's defects at once, ``stack_defects`` which (not for the points, which have no neighbours to
    blur or shift)."""
    sim = [i for i in items if not i.real]
    real = [i for i in items if i.real]
    picks = []
    for _ in range(batch):
        src = real if (real and (not sim or rng.random() < real_fraction)) else sim
        it = src[rng.integers(len(src))]
        T, H, W = it.valid.shape
        s = min(crop, H, W)
        r0, c0 = int(rng.integers(0, H - s + 1)), int(rng.integers(0, W - s + 1))
        u = rng.random()
        if u < 0.5:
            k = T
        elif u < 0.85:
            k = int(rng.integers(max(1, T // 3), T + 1))
        else:
            k = int(rng.integers(1, max(2, T // 3) + 1))
        k = min(k, max_dates)
        dates = np.sort(rng.choice(T, size=k, replace=False))
        rot, flip = int(rng.integers(4)), bool(rng.integers(2))
        sl = (dates, slice(r0, r0 + s), slice(c0, c0 + s))
        sl4 = (slice(SCALE * r0, SCALE * (r0 + s)), slice(SCALE * c0, SCALE * (c0 + s)))
        bd, vd, dd = it.bands[sl], it.valid[sl], it.doy[dates]
        if augment > 0:
            bd, vd, dd = augment_item(bd, vd, dd, rng, augment, ten_m_only, stack, stack_defects)
        picks.append((
            _dihedral(bd, rot, flip, (1, 2)), _dihedral(vd, rot, flip, (1, 2)),
            _dihedral(it.cloud[sl], rot, flip, (1, 2)), dd,
            _dihedral(it.label[sl4], rot, flip, (0, 1)), _dihedral(it.weight[sl4], rot, flip, (0, 1)),
        ))
    s = min(p[0].shape[1] for p in picks)
    tmax = max(p[0].shape[0] for p in picks)
    B = len(picks)
    bands = np.zeros((B, tmax, s, s, 12), np.float32)
    valid = np.zeros((B, tmax, s, s), bool)
    cloud = np.zeros((B, tmax, s, s), np.float32)
    doy = np.zeros((B, tmax), np.float32)
    present = np.zeros((B, tmax), bool)
    label = np.zeros((B, 1, SCALE * s, SCALE * s), np.float32)
    weight = np.zeros_like(label)
    for b, (bd, vd, cd, dd, lb, wt) in enumerate(picks):
        t = bd.shape[0]
        bands[b, :t] = bd[:, :s, :s]
        valid[b, :t] = vd[:, :s, :s]
        cloud[b, :t] = cd[:, :s, :s]
        doy[b, :t] = dd
        present[b, :t] = True
        label[b, 0] = lb[: SCALE * s, : SCALE * s]
        weight[b, 0] = wt[: SCALE * s, : SCALE * s]
    return Batch(*(torch.from_numpy(a) for a in (bands, valid, cloud, doy, present, label, weight)))


def sample_points(points: Any, rng: np.random.Generator, n: int, augment: float = 0.0,
                  ten_m_only: float = 0.0) -> Batch:
    """``n`` random real points (:class:`sr_core.points.PointSet`) as uniform tiles, each with a random subset of
    its months (at least two) and the same domain randomisation as the patches; the loss weight covers the centre
    half of the tile (away from the zero padding of the convolutions)."""
    from .points import point_tiles

    idx = rng.choice(len(points), size=min(n, len(points)), replace=False)
    bands, valid, doy, label = point_tiles(points, idx, POINT_TILE)
    present = np.ones(doy.shape, bool)
    for b in range(len(idx)):
        T = doy.shape[1]
        keep = np.zeros(T, bool)
        keep[rng.choice(T, size=int(rng.integers(min(2, T), T + 1)), replace=False)] = True
        if augment > 0:
            bd, vd, dd = augment_item(bands[b], valid[b], doy[b], rng, augment, ten_m_only)
            bands[b], valid[b], doy[b] = bd, vd, dd
        present[b] = keep
        valid[b, ~keep] = False
    weight = np.zeros_like(label)
    q = SCALE * POINT_TILE // 4
    weight[:, :, q:-q, q:-q] = 1.0
    cloud = np.zeros(valid.shape, np.float32)
    return Batch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (bands, valid, cloud, doy, present, label,
                                                                        weight)))


def points_score(model: SRNet, points: Any, device: torch.device, threshold: float) -> dict[str, float]:
    """MCC and accuracy of ``model`` on real points (whole tiles, every month), read at the tile centre."""
    from .metrics import ConfusionCounts
    from .points import point_tiles

    model.eval()
    probs = []
    with torch.no_grad():
        for i0 in range(0, len(points), 64):
            idx = np.arange(i0, min(i0 + 64, len(points)))
            bands, valid, doy, _ = point_tiles(points, idx, POINT_TILE)
            lg = model(*(torch.from_numpy(a).to(device) for a in (bands, valid, doy)))
            c = SCALE * POINT_TILE // 2
            probs.append(torch.sigmoid(lg[:, 0, c, c]).float().cpu().numpy())
    pred = np.concatenate(probs) > threshold
    truth = points.label > 0.5
    mcc = ConfusionCounts.from_arrays(truth, pred, np.ones(truth.shape, np.float32)).mcc
    return {"points_mcc": float(mcc), "points_accuracy": float((pred == truth).mean())}


def loss_fn(logits: torch.Tensor, label: torch.Tensor, weight: torch.Tensor, dice: float = 0.5) -> torch.Tensor:
    """Weight-map BCE (normalised by the total weight) + ``dice`` × weighted soft Dice."""
    logits = logits.float()
    wsum = weight.sum().clamp_min(1e-6)
    bce = (F.binary_cross_entropy_with_logits(logits, label, reduction="none") * weight).sum() / wsum
    if dice <= 0:
        return bce
    p = torch.sigmoid(logits)
    inter = (p * label * weight).sum()
    den = ((p + label) * weight).sum()
    return bce + dice * (1.0 - (2 * inter + 1.0) / (den + 1.0))


def _run(model: SRNet, b: Batch) -> torch.Tensor:
    return model(b.bands, b.valid, b.doy, b.cloud, b.present)


def train_step(model: SRNet, opt: torch.optim.Optimizer, batch: Batch, dice: float = 0.5,
               amp: bool = False, points: Batch | None = None, points_weight: float = 0.0,
               amp_dtype: str = "bfloat16") -> float:
    """One optimisation step on ``batch`` (already on the model's device), plus ``points_weight`` × the BCE of
    the real-points batch when given; returns the loss. ``amp``: autocast to ``amp_dtype`` on the batch's device
    (CUDA, or a CPU: ``train --precision bfloat16``). The weights, the optimizer and the loss stay float32."""
    model.train()
    opt.zero_grad(set_to_none=True)
    with resolve_precision(batch.bands.device, amp_dtype if amp else "float32", training=True).autocast():
        logits = _run(model, batch)
        plogits = _run(model, points) if points is not None and points_weight > 0 else None
    loss = loss_fn(logits, batch.label, batch.weight, dice)
    if plogits is not None:
        loss = loss + points_weight * loss_fn(plogits, points.label, points.weight, 0.0)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


@dataclass
class ValSet:
    patches: list[Patch]
    weights: list[np.ndarray]
    seeds: list[int] = field(default_factory=list)


def make_valset(n: int, size: int, seed0: int = VAL_SEED0, source: Callable[[int, int, str], Patch] = simulated) -> ValSet:
    from .metrics import weight_map

    patches = [source(seed0 + i, size, "test") for i in range(n)]
    return ValSet(patches, [weight_map(p.cultivated, p.not_declared) for p in patches], [seed0 + i for i in range(n)])


def validate(model: SRNet, val: ValSet, device: torch.device) -> dict[str, Any]:
    """Pooled weighted MCC of ``model`` on the validation set at each threshold of :data:`THRESHOLDS`."""
    from .metrics import ConfusionCounts

    probs = [predict(p, device=str(device), model=model).proba for p in val.patches]
    out: dict[str, Any] = {}
    for thr in THRESHOLDS:
        total = ConfusionCounts()
        for p, pr, w in zip(val.patches, probs, val.weights, strict=True):
            total = total + ConfusionCounts.from_arrays(p.cultivated, pr > thr, w)
        out[f"{thr:.2f}"] = total.mcc
    best = max(out, key=out.get)  # type: ignore[arg-type]
    return {"wmcc@0.50": out["0.50"], "best_threshold": float(best), "wmcc@best": out[best], "by_threshold": out}


class Trainer:
    """Holds the model, optimizer, EMA, pool and RNG of one run; ``run()`` trains to ``cfg.steps``."""

    def __init__(self, out: str | Path, cfg: TrainConfig, device: str = "auto", resume: bool = False,
                 source: Callable[[int, int, str], Patch] = simulated, log: Callable[[str], Any] = print,
                 model_overrides: dict[str, Any] | None = None, init_from: str | Path | None = None,
                 workers: int | None = None, precision_given: bool = False) -> None:
        """``precision_given``: with ``resume``, ``cfg.precision`` replaces the one the run was started with
        (otherwise a resumed run keeps its own, so that it continues bit-exactly)."""
        self.out = Path(out)
        self.cfg, self.source, self.log = cfg, source, log
        self.device = select_device(device)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.step, self.next_seed = 0, SEED_STRIDE * cfg.seed  # each --seed has its own stream of training patches
        self.pool_seeds: list[int] = []
        self.history: list[dict[str, Any]] = []
        self.init_from: str | None = None
        self.best = -1.0
        self.threshold = 0.5
        self.saved_step: int | None = None  #: the step the resumable checkpoint (``out``) holds, None before one
        ckpt = None
        if resume:
            if not self.out.is_file():
                raise ModelError(f"--resume: {self.out} does not exist; start a run without --resume first")
            ckpt = read_checkpoint(self.out)
            if "train_state" not in ckpt:
                raise ModelError(f"--resume: {self.out} holds no training state (bundled weights are stripped); "
                                 "resume from the run's own checkpoint")
            state = ckpt["train_state"]
            stored = dict(state["train_config"])
            if precision_given:  # a resumed run may change its precision (e.g. on a CPU with bfloat16 instructions)
                stored.pop("precision", None)
            self.cfg = cfg = TrainConfig(**{**asdict(cfg), **stored,
                                            "steps": cfg.steps})  # a resumed run may extend --steps
        check_train_precision(cfg.precision)
        self.precision = resolve_precision(self.device, cfg.precision, training=True)
        self.amp = self.precision.dtype is not None
        n_workers = auto_workers(self.device) if workers is None else int(workers)
        if n_workers < 0:
            raise ConfigError(f"workers={workers}: use 0 (simulate in this process) or more")
        self.prefetch = Prefetch(source, cfg.sim_size, n_workers, 2 * n_workers) if n_workers else None
        if self.prefetch is not None:
            log(f"simulating training patches in {n_workers} worker processes")
        self.real: list[_Item] = self._load_real(cfg.data)
        self.points, self.points_val = self._load_points(cfg.points)
        self.pool: list[_Item] = []
        if ckpt is not None:
            self.model = model_from_checkpoint(ckpt, self.out).train()
            self._restore(ckpt["train_state"])
        else:
            self.pool_seeds = []
            # read now: a missing or unreadable file is said at once, not after the pool is simulated
            init_ck = read_checkpoint(init_from) if init_from is not None else None
            log(f"simulating the first {cfg.pool} training patches ({cfg.sim_size} px)"
                + (f" and {cfg.val_patches} validation patches ({cfg.val_size} px)" if cfg.val_patches else "")
                + " before the first step …")
            if self.prefetch is not None:  # the whole first pool at once
                self.prefetch.submit(range(self.next_seed, self.next_seed + cfg.pool))
            first = [self._fresh() for _ in range(cfg.pool)]
            stats = log_band_stats(np.concatenate([clear_samples(p, self.rng) for p in first + self.real]))
            if init_from is not None:
                self.model = self._init_from(init_from, init_ck, model_overrides or {})
            else:
                self.model = SRNet(SRNetConfig.preset(cfg.preset, **(model_overrides or {}), **stats))
            self.pool = first
            self.opt = self._make_opt()
            self.ema = self._make_ema()
        fmt = torch.channels_last  # the trunk's convolutions run fastest (CPU and GPU) on NHWC tensors
        self.model.to(self.device, memory_format=fmt)
        self.ema.to(self.device, memory_format=fmt)
        self.val = make_valset(cfg.val_patches, cfg.val_size, source=source) if cfg.val_patches else None
        if self.amp:
            log(f"training step under {self.precision.name} autocast on {self.device.type} (weights, optimizer and "
                "loss in float32)")
        elif self.device.type == "cpu" and cpu_has_bf16():
            log("this CPU has bfloat16 matrix instructions (AMX / AVX-512 BF16): --precision bfloat16 trains about "
                "1.6x faster here")

    # -- pieces ---------------------------------------------------------------------------------------------------
    def _load_real(self, data: str | None) -> list[_Item]:
        if not data:
            return []
        from .io.archive import iter_patches

        items = [prepare(p) for p in iter_patches(data) if p.cultivated is not None]
        if not items:
            raise ConfigError(f"--data {data}: no EOPatch with a CULTIVATED label found; point at training patches")
        self.log(f"real training patches: {len(items)} from {data}")
        return items

    def _load_points(self, path: str | None) -> tuple[Any, Any]:
        """(training points, held-out points) of a real monthly-points folder, or (None, None)."""
        if not path:
            return None, None
        from .points import load_points

        train, held = load_points(path).holdout(HOLDOUT)
        self.log(f"real points: {len(train)} for training ({int(train.label.sum())} cultivated), {len(held)} held out "
                 f"for the points score, from {Path(path).name}")
        return train, held

    def _init_from(self, path: str | Path, ck: dict[str, Any], overrides: dict[str, Any]) -> SRNet:
        """A new run starting from the weights (and normalisation) of checkpoint ``ck``, read from ``path``;
        parameters that the overridden config adds keep their initialisation (zero for ``doy_hidden``; added residual
        blocks start with gain 0), so the function is unchanged."""
        model = SRNet(SRNetConfig.from_dict({**dict(ck["config"]), **overrides}))
        try:
            widened, missing = grow_widths(model, ck["state_dict"])
        except ValueError as e:
            raise ModelError(f"--init {path}: {e}") from None
        if widened:
            was = SRNetConfig.from_dict(dict(ck["config"]))
            wider = ", ".join(f"{k} {getattr(was, k)} → {getattr(model.config, k)}" for k in WIDENABLE
                              if getattr(was, k) != getattr(model.config, k))
            self.log(f"widened ({wider}): the added channels start silent, so the network starts from the same "
                     "function")
        grown = grow_as_identity(model, missing)
        if grown:
            self.log(f"added residual blocks {', '.join(grown)} start as the identity (gain 0)")
        self.log(f"initialised from {path}" + (f" (new parameters: {', '.join(missing)})" if missing else ""))
        self.init_from = str(path)
        return model

    def _fresh(self) -> _Item:
        seed = self.next_seed
        self.next_seed += 1
        self.pool_seeds.append(seed)
        return self._item(seed)

    def _item(self, seed: int) -> _Item:
        """The prepared training patch of ``seed``: from the worker processes when there are any."""
        if self.prefetch is not None:
            return self.prefetch.get(seed)
        return _simulated_item(self.source, seed, self.cfg.sim_size)

    def close(self) -> None:
        """Stop the simulation workers (also done when the trainer is garbage-collected)."""
        if self.prefetch is not None:
            self.prefetch.close()

    def _make_opt(self) -> torch.optim.Optimizer:
        decay = [p for n, p in self.model.named_parameters() if p.ndim > 1]
        other = [p for n, p in self.model.named_parameters() if p.ndim <= 1]
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.cfg.weight_decay},
                                  {"params": other, "weight_decay": 0.0}], lr=self.cfg.lr, foreach=True)

    def _make_ema(self) -> SRNet:
        ema = SRNet(self.model.config)
        ema.load_state_dict(self.model.state_dict())
        for p in ema.parameters():
            p.requires_grad_(False)
        return ema.eval()

    def lr_at(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup:
            return c.lr * (step + 1) / c.warmup
        t = min(1.0, (step - c.warmup) / max(1, c.steps - c.warmup))
        return c.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    @torch.no_grad()
    def _ema_update(self) -> None:
        d = min(self.cfg.ema, (1 + self.step) / (10 + self.step))  # short runs: the average follows closely
        torch._foreach_lerp_(list(self.ema.parameters()), [p.detach() for p in self.model.parameters()], 1.0 - d)

    # -- state ----------------------------------------------------------------------------------------------------
    def _train_state(self) -> dict[str, Any]:
        return {
            "train_config": asdict(self.cfg),
            "step": self.step,
            "next_seed": self.next_seed,
            "pool_seeds": list(self.pool_seeds),
            "optimizer": self.opt.state_dict(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "np_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "best": self.best,
            "simulator_version": simulator_version(),
            "init_from": self.init_from,
        }

    def _restore(self, st: dict[str, Any]) -> None:
        self.step, self.next_seed = int(st["step"]), int(st["next_seed"])
        self.saved_step = self.step
        ema_model = self.model  # the checkpoint's state_dict holds the EMA weights (what gets deployed)
        self.ema = ema_model.eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.model = SRNet(ema_model.config)
        self.model.load_state_dict(st["model"])
        self.opt = self._make_opt()
        self.opt.load_state_dict(st["optimizer"])
        self.rng.bit_generator.state = json.loads(st["np_rng"])
        torch.set_rng_state(st["torch_rng"])
        self.history = json.loads(st["history"])
        self.best = float(st.get("best", -1.0))
        self.init_from = st.get("init_from")
        if st.get("simulator_version") != simulator_version():
            self.best = -1.0  # new data, new validation patches: scores are not comparable with the old best
            self.log(f"simulator changed ({st.get('simulator_version')} → {simulator_version()}): the pool and the "
                     "validation patches are rebuilt with it, and the best-so-far score restarts")
        self.threshold = float(self.history[-1]["best_threshold"]) if self.history else 0.5
        seeds = list(st["pool_seeds"])
        if self.prefetch is not None:
            self.prefetch.submit(seeds)
        self.pool = [self._item(s) for s in seeds]
        self.pool_seeds = seeds
        self.log(f"resumed {self.out} at step {self.step} (pool rebuilt from seeds {seeds[0]}…{seeds[-1]})")

    def provenance(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "simulator_version": simulator_version(),
            "steps": self.step,
            "init_from": self.init_from,
            "seed": self.cfg.seed,
            "data": (f"simulated patches (sr_core.simulate, split='train', seeds {SEED_STRIDE * self.cfg.seed}…"
                     f"{self.next_seed - 1}, "
                     f"{self.cfg.sim_size}x{self.cfg.sim_size} px)") + (f" + real EOPatches from {self.cfg.data}"
                                                                     if self.cfg.data else "")
                    + (f" + real labelled points from {Path(self.cfg.points).name} (80 % split)" if self.cfg.points else ""),
            "validation": f"split='test' seeds {VAL_SEED0}…{VAL_SEED0 + self.cfg.val_patches - 1}, "
                          f"{self.cfg.val_size}x{self.cfg.val_size} px, pooled weighted MCC",
            "train_config": asdict(self.cfg),
            "device": str(self.device),
            "metrics": metrics or (self.history[-1] if self.history else {}),
            "history": [{k: h[k] for k in ("step", "loss", "wmcc@0.50", "wmcc@best", "best_threshold", "points_mcc")
                         if k in h}
                        for h in self.history],
        }

    def save(self, path: Path | None = None, with_state: bool = True) -> Path:
        from .model.checkpoint import save_checkpoint

        out = save_checkpoint(self.ema, path or self.out, threshold=self.threshold, provenance=self.provenance(),
                              train_state=self._train_state() if with_state else None)
        if with_state and (path is None or Path(path) == self.out):
            self.saved_step = self.step
        return out

    # -- loop -----------------------------------------------------------------------------------------------------
    def status_line(self, loss: float, last_val: float | None, s_per_step: float) -> str:
        """One plain progress line: ``step 2300/30000 (7.7 %): loss 0.5368, last validation 0.7100, 0.93 s/step,
        about 7 h 09 min left``."""
        steps = self.cfg.steps
        left = max(steps - self.step, 0) * s_per_step
        hours, minutes = divmod(round(left / 60), 60)
        val = f"{last_val:.4f}" if last_val is not None else "none yet"
        return (f"step {self.step}/{steps} ({100 * self.step / steps:.1f} %): loss {loss:.4f}, last validation {val}, "
                f"{s_per_step:.2f} s/step, about {hours} h {minutes:02d} min left")

    def run(self, progress: bool = True, until: int | None = None, heartbeat_s: float | None = None) -> dict[str, Any]:
        """Train to ``cfg.steps`` (or stop early at step ``until``, e.g. to test resuming).

        ``progress``: a live progress bar (for a terminal). ``heartbeat_s``: without a bar (a log file, ``nohup``, a
        container), a plain status line through ``log`` at most every ``heartbeat_s`` seconds instead: the step, the
        recent loss, the last validation, the speed since the previous line and the time left at that speed
        (:meth:`status_line`)."""
        from tqdm import tqdm

        c = self.cfg
        stop = min(c.steps, until) if until is not None else c.steps
        bar = tqdm(total=c.steps, initial=self.step, disable=not progress, dynamic_ncols=True, desc="train")
        losses: list[float] = []
        last_val: float | None = self.history[-1]["wmcc@best"] if self.history else None
        t0 = time.perf_counter()
        beat_step, beat_t, beat_at = self.step, t0, t0 + (heartbeat_s or 0.0)
        while self.step < stop:
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(self.step)
            items = self.pool + self.real
            batch = sample_batch(items, self.rng, c.batch, c.crop, c.max_dates, c.real_fraction,
                                 c.augment, c.ten_m_only, c.stack, c.stack_defects).to(self.device)
            pts = (sample_points(self.points, self.rng, c.points_batch, c.augment, c.ten_m_only).to(self.device)
                   if self.points is not None else None)
            loss = train_step(self.model, self.opt, batch, c.dice, self.amp, pts, c.points_weight,
                              amp_dtype=self.precision.dtype or "float32")
            if not math.isfinite(loss):
                raise ModelError(f"training diverged at step {self.step} (loss {loss}); lower --lr and resume")
            self.step += 1
            self._ema_update()
            losses.append(loss)
            if c.refresh_every and self.step % c.refresh_every == 0 and self.pool:
                self.pool.pop(0)
                self.pool_seeds.pop(0)
                self.pool.append(self._fresh())
            rec: dict[str, Any] | None = None
            if self.val is not None and (self.step % c.val_every == 0 or self.step == c.steps):
                rec = {"step": self.step, "loss": float(np.mean(losses[-c.val_every:])),
                       **validate(self.ema, self.val, self.device),
                       "elapsed_s": round(time.perf_counter() - t0, 1)}
                if self.points_val is not None and len(self.points_val):
                    rec.update(points_score(self.ema, self.points_val, self.device, rec["best_threshold"]))
                self.history.append(rec)
                last_val = rec["wmcc@best"]
                self.threshold = rec["best_threshold"]
                msg = (f"step {self.step}: loss {rec['loss']:.4f}  val wMCC {rec['wmcc@0.50']:.4f} @0.50, "
                       f"{rec['wmcc@best']:.4f} @{rec['best_threshold']:.2f}")
                if "points_mcc" in rec:
                    msg += f"  real points MCC {rec['points_mcc']:.3f}"
                (bar.write if progress else self.log)(msg)
                if rec["wmcc@best"] > self.best:
                    self.best = rec["wmcc@best"]
                    self.save(self.out.with_name(self.out.stem + ".best.pt"), with_state=False)
            if self.step % c.ckpt_every == 0 or self.step == c.steps or rec is not None:
                self.save()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", val=f"{last_val:.3f}" if last_val is not None else "-")
            bar.update(1)
            now = time.perf_counter()
            if heartbeat_s and not progress and now >= beat_at:  # the speed of the steps since the last line
                rate = (now - beat_t) / (self.step - beat_step)
                beat_step, beat_t, beat_at = self.step, now, now + heartbeat_s
                self.log(self.status_line(float(np.mean(losses[-20:])), last_val, rate))
        bar.close()
        self.save()
        return {"steps": self.step, "checkpoint": str(self.out), "best": self.best,
                "history": self.history}
