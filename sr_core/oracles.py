"""Label oracles: the ceilings of predictors that would see the truth **at 10 m only**.

They read a labelled patch's own ``CULTIVATED`` label, so they are never predictors a user can run; ``evaluate
--oracles`` scores them next to the model to say how much of the gap to a perfect map is *classification* (which
land is cultivated, decidable at 10 m) and how much is *geometry* (where the 2.5 m label edges and the 1–2 px gaps
between parcels fall, which the 10 m grid does not hold):

* ``oracle_cover`` — the true cultivated share of every 10 m pixel (the mean of its 4 × 4 label pixels), upsampled
  bicubically × 4 as the NDVI baseline does, cultivated where > 0.5. A perfect 10 m *unmixer* with no learned
  prior about field shapes: the model beats it only by placing edges and gaps better than bicubic interpolation
  of exact shares.
* ``oracle_block`` — the 10 m majority label (share > 0.5), repeated 4 × 4 (nearest neighbour). A perfect 10 m
  *classifier*: the ceiling of any method that decides per 10 m pixel, such as the 10 m pixel baseline.

On labels that are themselves 10 m blocks repeated 4 × 4 (the real Flanders patch) both reach ≈ 1: there the
score measures classification alone.

On **simulated** patches a third ceiling exists, because the simulator knows what the imagery shows:

* ``oracle_sown`` — the labels the simulator draws for the same patch with the parcels' *sown* edges instead of
  their declared ones (``landscape.LABEL_OFFSET_M`` = 0: every other draw is the same). It knows every parcel's class
  and every edge exactly as the imagery has it; what it misses is only the digitising offset of the declared
  polygons (σ 1.6 m), which no predictor can see. It is the ceiling of a perfect model on that patch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .baselines.ndvi import upsample_bicubic
from .errors import ConfigError
from .patch import SCALE, Patch
from .prediction import Prediction

ORACLE_THRESHOLD = 0.5  #: a 10 m pixel (or an interpolated 2.5 m one) is called cultivated above this share

#: What each oracle is, in one line (for tables and notes).
ORACLE_DESCRIPTIONS: dict[str, str] = {
    "oracle_cover": "true cultivated share of each 10 m pixel, bicubic x4, > 0.5 (a perfect 10 m unmixer)",
    "oracle_block": "true 10 m majority label, nearest x4 (a perfect 10 m classifier)",
    "oracle_sown": "the simulator's labels redrawn from the sown parcel edges (a perfect model: misses only the "
                   "declared polygons' digitising offset, which the imagery cannot show)",
}


def cover_10m(patch: Patch) -> np.ndarray:
    """(H, W) float32: the share of each 10 m pixel's 4 × 4 label pixels that are cultivated. Raises ConfigError
    for a patch without labels."""
    if patch.cultivated is None:
        raise ConfigError(f"{patch.name}: no CULTIVATED label; the label oracles need labelled patches")
    t = np.asarray(patch.cultivated, bool)
    h, w = t.shape[0] // SCALE, t.shape[1] // SCALE
    return t[: h * SCALE, : w * SCALE].reshape(h, SCALE, w, SCALE).mean(axis=(1, 3), dtype=np.float32)


def _prediction(patch: Patch, proba: np.ndarray, name: str, t0: float, cover: np.ndarray) -> Prediction:
    return Prediction(proba=proba.astype(np.float32), bbox=patch.bbox, name=patch.name, threshold=ORACLE_THRESHOLD,
                      predictor=f"oracle:{name.removeprefix('oracle_')}", device="cpu",
                      seconds=time.perf_counter() - t0, extra={"cover_10m": cover, "reads_labels": True})


def cover_oracle(patch: Patch) -> Prediction:
    """``oracle_cover``: the exact 10 m cultivated shares, bicubic × 4 (clipped to 0–1), threshold 0.5."""
    t0 = time.perf_counter()
    cover = cover_10m(patch)
    return _prediction(patch, np.clip(upsample_bicubic(cover, SCALE), 0.0, 1.0), "oracle_cover", t0, cover)


def block_oracle(patch: Patch) -> Prediction:
    """``oracle_block``: the 10 m majority (share > 0.5), repeated 4 × 4; probability 0 or 1."""
    t0 = time.perf_counter()
    cover = cover_10m(patch)
    major = (cover > ORACLE_THRESHOLD).astype(np.float32)
    return _prediction(patch, np.repeat(np.repeat(major, SCALE, axis=0), SCALE, axis=1), "oracle_block", t0, cover)


def sown_oracle(patch: Patch) -> Prediction:
    """``oracle_sown``: the patch's labels redrawn from the sown parcel edges (simulated patches of the current
    simulator only; the seed, split and size come from the patch's metadata). Raises ConfigError for a real patch,
    another simulator version, or a patch whose labels are not those the simulator draws for its seed (cropped or
    edited): the redrawn declared labels must equal the patch's own before the sown ones are trusted."""
    from .simulate import SIMULATOR_VERSION, simulated_landscape

    t0 = time.perf_counter()
    meta = patch.info.meta or {}
    if meta.get("simulator") != "sr_core.simulate":
        raise ConfigError(f"{patch.name}: oracle_sown needs a patch simulated by sr_core.simulate (it redraws the "
                          "parcels from the simulator's seed); a real patch has no known sown edges")
    if meta.get("simulator_version") != SIMULATOR_VERSION:
        raise ConfigError(f"{patch.name}: simulated by simulator {meta.get('simulator_version')}, this one is "
                          f"{SIMULATOR_VERSION}; oracle_sown can only redraw patches of the current simulator")
    truth = np.asarray(patch.cultivated, bool) if patch.cultivated is not None else None
    seed, split, size = int(meta["seed"]), str(meta["split"]), int(meta["size_x"])
    if truth is None or truth.shape != (SCALE * size, SCALE * size):
        raise ConfigError(f"{patch.name}: its labels are not the {SCALE * size} px square the simulator drew "
                          "(cropped?); oracle_sown needs whole simulated patches")
    from .simulate.core import plan_acquisitions

    # the region was drawn from the seed, or chosen (simulate_patch(region=...)): a seed that draws another region
    # than the patch's can only have been given it
    chosen = meta.get("region")
    tries = (None, chosen) if plan_acquisitions(seed, size, split).region.key == chosen else (chosen,)
    for region in tries:
        if np.array_equal(simulated_landscape(seed, size, split, region).cultivated, truth):
            break
    else:
        raise ConfigError(f"{patch.name}: its labels differ from those the simulator draws for seed {seed} "
                          f"({split}); oracle_sown needs unedited simulated patches")
    sown = np.asarray(simulated_landscape(seed, size, split, region, label_offset_m=0.0).cultivated, bool)
    return Prediction(proba=sown.astype(np.float32), bbox=patch.bbox, name=patch.name, threshold=ORACLE_THRESHOLD,
                      predictor="oracle:sown", device="cpu", seconds=time.perf_counter() - t0,
                      extra={"reads_labels": True, "sown_edges": True})


ORACLES: dict[str, Callable[[Patch], Prediction]] = {"oracle_cover": cover_oracle, "oracle_block": block_oracle}
#: Oracles that only simulated patches have (``evaluate --simulate --oracles``).
SIM_ORACLES: dict[str, Callable[[Patch], Prediction]] = {"oracle_sown": sown_oracle}

__all__ = ["ORACLES", "ORACLE_DESCRIPTIONS", "ORACLE_THRESHOLD", "SIM_ORACLES", "block_oracle", "cover_10m",
           "cover_oracle", "sown_oracle"]
