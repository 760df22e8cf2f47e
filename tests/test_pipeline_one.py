"""The single per-patch step (sr_core.pipeline.one.predict_one) behind both predict-a-folder loops: the folder loop
(write_predictions) skips finished outputs without ``force`` and redoes broken ones, and it writes the same bytes as
the batch's process_patch for the same predictor.

Inputs: two simulated 16 × 16 px patches (outputs 64 × 64); predictors: the NDVI baseline and a tiny random SRNet.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from sr_core.batch import DONE, SKIPPED, BatchJob, check_output, process_patch
from sr_core.pipeline import write_predictions

SIZE = 16
OLD = 1_500_000_000  #: a modification time in the past (2017), set on outputs that must not be rewritten


@pytest.fixture(scope="module")
def patches(tmp_path_factory) -> Path:
    from sr_core.io.eopatch import write_eopatch
    from sr_core.simulate import simulate_patch

    folder = tmp_path_factory.mktemp("one") / "patches"
    for i in range(2):
        write_eopatch(simulate_patch(11 + i, size=SIZE, split="test"), folder / f"eopatch-{i:02d}")
    return folder


def _counting(predict):
    calls: list[str] = []

    def run(patch):
        calls.append(patch.name)
        return predict(patch)

    return run, calls


def _bbox(folder: Path):
    from sr_core.io.eopatch import read_bbox

    return read_bbox(folder)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the truncated file
def test_without_force_valid_outputs_are_skipped_and_broken_ones_rewritten(patches, tmp_path):
    from sr_core.baselines import load_baseline

    ndvi, calls = _counting(load_baseline("ndvi"))
    sources = sorted(patches.iterdir())
    good, broken = (tmp_path / "out" / f"{s.name}.tif" for s in sources)
    first = write_predictions(sources, ndvi, tmp_path / "out", probability_dir=tmp_path / "proba", progress=False)
    assert first == [good, broken] and len(calls) == 2
    os.utime(good, (OLD, OLD))
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])  # truncated: not a finished output
    assert check_output(broken, _bbox(sources[1]))[0] is not None

    calls.clear()
    seen: list[str] = []
    again = write_predictions(sources, ndvi, tmp_path / "out", probability_dir=tmp_path / "proba", progress=False,
                              force=False, on_result=lambda name, pred, path: seen.append(name))
    assert again == [good, broken]  # the skipped patch's output is listed too
    assert [Path(c).name for c in calls] == seen == [sources[1].name]  # only the broken patch was read and predicted
    assert good.stat().st_mtime == OLD  # not rewritten
    assert check_output(broken, _bbox(sources[1]))[0] is None  # rewritten whole

    (tmp_path / "proba" / f"{sources[0].name}_proba.tif").unlink()  # a missing companion makes the patch unfinished
    calls.clear()
    write_predictions(sources, ndvi, tmp_path / "out", probability_dir=tmp_path / "proba", progress=False, force=False)
    assert len(calls) == 1 and good.stat().st_mtime != OLD

    os.utime(good, (OLD, OLD))
    calls.clear()
    write_predictions(sources, ndvi, tmp_path / "out", progress=False)  # force=True, the default: overwrite all
    assert len(calls) == 2 and good.stat().st_mtime != OLD


def test_process_patch_and_write_predictions_write_the_same_mask_by_the_same_rule(patches, tmp_path):
    import torch

    from sr_core.inference import predict
    from sr_core.io.eopatch import load_eopatch
    from sr_core.model import SRNet, SRNetConfig
    from sr_core.model.checkpoint import save_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        src = sorted(patches.iterdir())[0]
        torch.manual_seed(0)
        net = SRNet(SRNetConfig.preset("tiny"))
        proba = predict(load_eopatch(src), device="cpu", model=net).proba
        ckpt = save_checkpoint(net, tmp_path / "tiny.pt", threshold=float(np.median(proba)))  # both classes in the mask

        job = BatchJob(out_dir=str(tmp_path / "batch"), proba_dir=None, model=str(ckpt), device="cpu", threads=1)
        rec = process_patch(str(src), job)
        assert rec.status == DONE, rec.error
        model, calls = _counting(lambda p: predict(p, device="cpu", model=ckpt))
        (path,) = write_predictions([src], model, tmp_path / "folder", progress=False)
        batch_mask = Path(rec.output).read_bytes()
        assert path.read_bytes() == batch_mask
        assert 0 < rec.cultivated_share < 1

        # the same skip rule: each loop skips what the other wrote
        os.utime(path, (OLD, OLD))
        assert process_patch(str(src), dataclasses.replace(job, out_dir=str(tmp_path / "folder"))).status == SKIPPED
        calls.clear()
        write_predictions([src], model, tmp_path / "batch", progress=False, force=False)
        assert not calls and Path(rec.output).read_bytes() == batch_mask
        assert path.stat().st_mtime == OLD
    finally:
        torch.set_num_threads(threads)
