"""Batch prediction on Dask distributed (sr_core.batch): local cluster, killed worker, corrupt patch, reruns,
VRT mosaic, index GeoPackage, and a separately started ``dask scheduler`` + ``dask worker``.

Inputs: five simulated 16 × 16 px patches laid on a 3 × 2 grid of adjacent cells plus one corrupt patch in the sixth
cell; the model is a tiny random SRNet whose threshold is the median probability, so the masks hold both classes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from sr_core.batch import (
    DONE,
    FAILED,
    MOSAIC_NODATA,
    SKIPPED,
    check_output,
    parse_scheduler,
    run_batch,
    write_vrt,
)
from sr_core.cli.predict import add_batch_arguments, run_batch_from_args
from sr_core.errors import ConfigError
from sr_core.geo import BBox
from sr_core.prediction import Prediction

REPO = Path(__file__).resolve().parents[1]
SIZE = 16  #: 10 m pixels per patch side (outputs are 64 × 64)
GOOD = [f"eopatch-{i:02d}" for i in range(5)]
CORRUPT = "eopatch-05"
X0, Y0 = 460_000.0, 5_100_000.0


def _cell(i: int) -> BBox:
    r, c = divmod(i, 3)
    return BBox(X0 + c * 10 * SIZE, Y0 - (r + 1) * 10 * SIZE, X0 + (c + 1) * 10 * SIZE, Y0 - r * 10 * SIZE)


def _bounds(b: BBox) -> tuple[float, float, float, float]:
    return (b.min_x, b.min_y, b.max_x, b.max_y)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(folder of patch folders, checkpoint path)."""
    import torch

    from sr_core.inference import predict
    from sr_core.io.eopatch import write_eopatch
    from sr_core.model import SRNet, SRNetConfig
    from sr_core.model.checkpoint import save_checkpoint
    from sr_core.simulate import simulate_patch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("batch")
    folder = root / "patches"
    patches = [simulate_patch(7 + i, size=SIZE, split="test").replace(bbox=_cell(i)) for i in range(6)]
    for name, p in zip([*GOOD, CORRUPT], patches, strict=True):
        write_eopatch(p, folder / name)
    (folder / CORRUPT / "data" / "BANDS.npy.gz").write_bytes(b"\x1f\x8b not really gzip")
    torch.manual_seed(0)
    net = SRNet(SRNetConfig.preset("tiny"))
    proba = predict(patches[0], device="cpu", model=net).proba
    ckpt = save_checkpoint(net, root / "tiny.pt", threshold=float(np.median(proba)))
    return folder, ckpt


def _read(path: Path) -> tuple[np.ndarray, tuple]:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), tuple(src.bounds)


def _expected(folder: Path, ckpt: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(binary, proba) predicted in this process, per good patch."""
    from sr_core.inference import predict
    from sr_core.io.eopatch import load_eopatch

    out = {}
    for name in GOOD:
        pred = predict(load_eopatch(folder / name), device="cpu", model=ckpt)
        out[name] = (pred.binary, pred.proba)
    return out


def _wait_for(path: Path, seconds: float) -> None:
    t = time.monotonic()
    while not path.exists():
        if time.monotonic() - t > seconds:
            raise TimeoutError(f"{path} did not appear in {seconds} s")
        time.sleep(0.2)


@contextlib.contextmanager
def dask_cluster(folder: Path, env: dict[str, str], nworkers: int, cwd: Path | None = None) -> Iterator[str]:
    """A `dask scheduler` and `dask worker --nworkers N` (with nannies) on 127.0.0.1, started as a user would start
    them, with ``env`` and ``cwd``; yields the scheduler address and stops both (process groups included)."""
    dask_cli = shutil.which("dask", path=str(Path(sys.executable).parent))
    if dask_cli is None:
        pytest.skip("the dask command-line tool is not installed beside this Python")
    sched_file = folder / "scheduler.json"
    quiet = {"env": env, "cwd": cwd, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "start_new_session": True}
    procs = []
    try:
        procs.append(subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                       "--scheduler-file", str(sched_file)], **quiet))
        _wait_for(sched_file, 60)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([dask_cli, "worker", address, "--nworkers", str(nworkers), "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], **quiet))
        yield address
    finally:  # workers first, then the scheduler; each in its own process group (nannies' children included)
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """A separately started `dask scheduler` and `dask worker --nworkers 2`, able to import sr_core (PYTHONPATH);
    yields the scheduler address."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with dask_cluster(tmp_path_factory.mktemp("dask"), env, 2) as address:
        yield address


def test_local_cluster_predicts_folder_reports_corrupt_patch_and_writes_mosaic_and_index(inputs, tmp_path):
    import geopandas as gpd
    import rasterio

    folder, ckpt = inputs
    out = tmp_path / "sub"
    env = dict(os.environ)
    s = run_batch(folder, out, scheduler="local:2", model=ckpt, proba=True, progress=False)
    assert dict(os.environ) == env  # Dask's worker settings (OMP_NUM_THREADS=1, ...) do not leak into this process

    assert (s.scheduler, s.workers) == ("local:2", 2)
    assert (s.done, s.skipped, s.failed) == (5, 0, 1)
    bad = s.failures[0]
    assert bad.name == CORRUPT and "BANDS" in bad.error and bad.attempts == 1 and not bad.retryable
    assert 1 <= s.model_loads <= 2  # once per worker process, not once per patch
    assert s.patches_per_minute > 0 and s.compute_seconds > 0
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.tif" for n in GOOD]  # only masks in the submission

    expected = _expected(folder, ckpt)
    for i, name in enumerate(GOOD):
        mask, bounds = _read(out / f"{name}.tif")
        want_bin, want_p = expected[name]
        assert mask.shape == (4 * SIZE, 4 * SIZE) and np.allclose(bounds, _bounds(_cell(i)))
        assert np.mean(mask != want_bin) < 1e-3
        p, _ = _read(out.with_name("sub-proba") / f"{name}_proba.tif")
        assert np.abs(p.astype(int) - np.rint(want_p * 255).astype(int)).max() <= 1
    assert 0 < np.mean([expected[n][0].mean() for n in GOOD]) < 1  # both classes present: the pixel checks bite

    # VRT mosaic: one layer over all outputs, same pixels as the sources, nodata where the corrupt patch lies
    with rasterio.open(s.mosaic) as vrt:
        assert vrt.crs.to_epsg() == 32633 and vrt.res == (2.5, 2.5) and vrt.nodata == MOSAIC_NODATA
        assert (vrt.width, vrt.height) == (3 * 4 * SIZE, 2 * 4 * SIZE)
        assert np.allclose(tuple(vrt.bounds), (X0, Y0 - 20 * SIZE, X0 + 30 * SIZE, Y0))
        mosaic = vrt.read(1)
    n = 4 * SIZE
    for i, name in enumerate([*GOOD, CORRUPT]):
        r, c = divmod(i, 3)
        tile = mosaic[r * n:(r + 1) * n, c * n:(c + 1) * n]
        if name == CORRUPT:
            assert (tile == MOSAIC_NODATA).all()
        else:
            assert np.array_equal(tile, _read(out / f"{name}.tif")[0])
    with rasterio.open(s.proba_mosaic) as vrt:
        assert np.array_equal(vrt.read(1)[:n, n:2 * n], _read(out.with_name("sub-proba") / "eopatch-01_proba.tif")[0])
        assert vrt.scales[0] == pytest.approx(1 / 255)
        assert vrt.descriptions[0].startswith("P(cultivated) x 255 (scale 1/255) (mosaic of ")
        # 0-255 are all probabilities: where no patch lies (the corrupt one) the mask, not a value, says no data
        valid = vrt.read_masks(1)
        for i, name in enumerate([*GOOD, CORRUPT]):
            r, c = divmod(i, 3)
            assert (valid[r * n:(r + 1) * n, c * n:(c + 1) * n] == (0 if name == CORRUPT else 255)).all(), name

    # index GeoPackage: one footprint per patch with status, error and statistics
    idx = gpd.read_file(s.index)
    assert idx.crs.to_epsg() == 32633 and sorted(idx["name"]) == [*GOOD, CORRUPT]
    row = idx.set_index("name")
    assert set(row.loc[GOOD, "status"]) == {DONE} and row.loc[CORRUPT, "status"] == FAILED
    assert "BANDS" in row.loc[CORRUPT, "error"] and row.loc[GOOD[0], "error"] == ""
    for i, name in enumerate([*GOOD, CORRUPT]):
        assert np.allclose(row.loc[name, "geometry"].bounds, _bounds(_cell(i)))
    for name in GOOD:
        assert row.loc[name, "cultivated_share"] == pytest.approx(_read(out / f"{name}.tif")[0].mean())
        assert row.loc[name, "seconds"] > 0


class _KillOnce:
    """Worker plugin: the first worker that starts a task of ``patch`` writes its address to ``marker`` and dies."""

    def __init__(self, patch: str, marker: str) -> None:
        self.patch, self.marker, self.address = patch, marker, ""

    def setup(self, worker) -> None:
        self.address = worker.address

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and self.patch in str(key) and not Path(self.marker).exists():
            Path(self.marker).write_text(f"{os.getpid()} {self.address}")
            os._exit(1)


def test_workers_that_cannot_import_sr_core_are_named_before_any_task(inputs, tmp_path):
    """Workers started outside the checkout (no PYTHONPATH, the package not installed) failed every patch with
    Dask's "Error during deserialization of the task graph", cut to its first line. The run stops first and says
    how to start them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    folder, ckpt = inputs
    refused = pytest.raises(ConfigError, match=r"1 of 1 Dask workers at .* cannot import sr_core.*export PYTHONPATH=")
    with dask_cluster(tmp_path, env, 1, cwd=tmp_path) as address, refused:
        run_batch(folder, tmp_path / "out", scheduler=address, model=ckpt, progress=False, mosaic=None, index=False)
    assert not list((tmp_path / "out").glob("*.tif"))


def test_separately_started_scheduler_killed_worker_mid_run_still_finishes_every_patch(inputs, external, tmp_path):
    import cloudpickle
    from distributed import Client, WorkerPlugin

    folder, ckpt = inputs
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    plugin = type("KillOnce", (_KillOnce, WorkerPlugin), {})("eopatch-02", str(tmp_path / "killed"))
    with Client(external, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
        client.register_plugin(plugin, name="kill-once")
        try:
            # the user's default retries (1): Dask reruns the killed worker's task itself; should the result of a
            # task be lost on the way back instead (seen once in CI), the batch resubmits it and says so
            s = run_batch(folder, tmp_path / "out", scheduler=external, model=ckpt, progress=False)
        finally:
            client.unregister_worker_plugin("kill-once")
    records = [(r.name, r.status, r.worker, r.attempts, r.error, r.warnings) for r in s.results]
    assert s.scheduler == external and s.workers == 2
    assert all(r.worker.startswith("tcp://127.0.0.1") for r in s.results), records  # every final result came back
    for r in s.results:
        assert r.attempts == 1 + sum(w.startswith("attempt ") for w in r.warnings), records
    pid, address = (tmp_path / "killed").read_text().split()
    assert int(pid) != os.getpid()
    assert (s.done, s.failed) == (5, 1) and s.failures[0].name == CORRUPT, records
    redone = next(r for r in s.results if r.name == "eopatch-02")
    assert redone.status == DONE and not redone.worker.startswith(address)  # finished on another (or a new) worker
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)  # the worker process really died
    for i, name in enumerate(GOOD):
        assert check_output(tmp_path / "out" / f"{name}.tif", _cell(i))[0] is None
    assert not list((tmp_path / "out").glob(".*.part*"))  # no half-written files left behind


def test_rerun_skips_valid_outputs_redoes_broken_ones_and_force_redoes_all(inputs, external, tmp_path):
    folder, ckpt = inputs
    client = external
    out = tmp_path / "out"
    first = run_batch(folder, out, scheduler=client, model=ckpt, progress=False)
    assert (first.done, first.failed) == (5, 1)
    mtimes = {n: (out / f"{n}.tif").stat().st_mtime_ns for n in GOOD}

    (out / "eopatch-03.tif").write_bytes((out / "eopatch-03.tif").read_bytes()[:200])  # a truncated file
    again = run_batch(folder, out, scheduler=client, model=ckpt, progress=False)
    status = {r.name: r.status for r in again.results}
    assert status == {**dict.fromkeys(GOOD, SKIPPED), "eopatch-03": DONE, CORRUPT: FAILED}
    assert all((out / f"{n}.tif").stat().st_mtime_ns == mtimes[n] for n in GOOD if n != "eopatch-03")
    skipped = next(r for r in again.results if r.name == "eopatch-00")
    assert skipped.cultivated_share == pytest.approx(_read(out / "eopatch-00.tif")[0].mean())

    forced = run_batch(folder, out, scheduler=client, model=ckpt, progress=False, force=True, mosaic=None, index=False)
    assert (forced.done, forced.skipped) == (5, 0) and forced.mosaic is None and forced.index is None
    assert all((out / f"{n}.tif").stat().st_mtime_ns != mtimes[n] for n in GOOD)


def test_cuda_without_gpu_workers_is_refused_with_the_fix(inputs, external, tmp_path):
    folder, ckpt = inputs
    with pytest.raises(ConfigError, match="resources GPU=1"):
        run_batch(folder, tmp_path / "o", scheduler=external, model=ckpt, device="cuda", progress=False)


def test_cli_glue_in_process_prints_json_summary_and_exit_code(inputs, tmp_path, capsys):
    folder, ckpt = inputs
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--json", action="store_true")
    add_batch_arguments(parser)
    glob = str(folder / "eopatch-0[0-2]")
    args = parser.parse_args([glob, str(folder / CORRUPT), "--out", str(tmp_path / "o"), "--model", str(ckpt), "--json",
                              "--retries", "2", "--index", str(tmp_path / "idx.gpkg")])
    assert args.scheduler is None  # default: in this process, as before
    assert run_batch_from_args(args) == 1  # one patch failed
    doc = json.loads(capsys.readouterr().out)
    assert (doc["scheduler"], doc["done"], doc["skipped"], doc["failed"]) == ("in-process", 3, 0, 1)
    assert doc["failures"][0]["name"] == CORRUPT and doc["failures"][0]["attempts"] == 1  # input errors: no retry
    assert doc["index"] == str(tmp_path / "idx.gpkg") and Path(doc["mosaic"]).is_file()
    assert {"patches_per_minute", "wall_seconds", "workers"} <= doc.keys()

    args = parser.parse_args([glob, "--out", str(tmp_path / "o"), "--model", str(ckpt), "--json", "--mosaic", "none",
                              "--index", "none"])
    assert run_batch_from_args(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["done"], doc["skipped"], doc["mosaic"], doc["index"]) == (0, 3, None, None)


def test_scheduler_spec_and_vrt_inputs_are_checked(tmp_path):
    assert parse_scheduler(None) == ("none", None)
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", None)
    for bad in ("local:0", "local:x", "8786"):
        with pytest.raises(ConfigError, match="local:N"):
            parse_scheduler(bad)
    with pytest.raises(ConfigError, match="no rasters"):
        write_vrt([], tmp_path / "m.vrt")

    from sr_core.io.submission import write_submission

    a = write_submission(np.zeros((8, 8), np.uint8), BBox(0, 0, 20, 20), tmp_path, name="a")
    b = write_submission(np.zeros((8, 8), np.uint8), BBox(0, 0, 20, 20, epsg=32634), tmp_path, name="b")
    with pytest.raises(ConfigError, match="one grid"):
        write_vrt([a, b], tmp_path / "m.vrt")
    # the challenge's test bboxes were moved to arbitrary places: a patch 1.3 m off the other's 2.5 m grid would be
    # resampled by the VRT (one source pixel drawn over two mosaic pixels); refused, naming the file
    c = write_submission(np.zeros((8, 8), np.uint8), BBox(21.3, 0, 41.3, 20), tmp_path, name="c")
    with pytest.raises(ConfigError, match=r"c\.tif: its pixels are off a\.tif's grid"):
        write_vrt([a, c], tmp_path / "m.vrt")
    d = write_submission(np.zeros((8, 8), np.uint8), BBox(20, 0, 40, 20), tmp_path, name="d")
    assert write_vrt([a, d], tmp_path / "m.vrt").is_file()  # on the grid: one mosaic
    # a source's own no-data mask reaches the mosaic's mask band (a probability map's never-seen-clear pixels)
    import rasterio

    from sr_core.io.geotiff import write_probability

    blind = np.zeros((8, 8), bool)
    blind[2:4, 5:7] = True
    pa = write_probability(Prediction(np.full((8, 8), 0.3, np.float32), BBox(0, 0, 20, 20), name="pa", no_data=blind),
                           None, tmp_path)
    pd_ = write_probability(np.full((8, 8), 0.6, np.float32), BBox(20, 0, 40, 20), tmp_path, name="pd")
    with rasterio.open(write_vrt([pa, pd_], tmp_path / "p.vrt", nodata=None, mask=True)) as vrt:
        valid = vrt.read_masks(1)
        np.testing.assert_array_equal(valid[:, :8] == 0, blind)
        assert (valid[:, 8:] == 255).all() and vrt.read(1)[0, 9] == 153
    assert check_output(a, BBox(0, 0, 20, 20))[0] is None
    assert "bounds" in check_output(a, BBox(0, 0, 40, 40))[0]
    assert "CRS" in check_output(b, BBox(0, 0, 20, 20))[0]


@pytest.mark.parametrize("where", ["in-process", "external"])
def test_failing_patch_is_retried_then_reported_while_the_rest_complete(inputs, tmp_path, request, where):
    folder, ckpt = inputs
    scheduler = None if where == "in-process" else request.getfixturevalue("external")
    out = tmp_path / "out"
    (out / "eopatch-01.tif").mkdir(parents=True)  # the output cannot be written there: not an input error
    s = run_batch(folder, out, scheduler=scheduler, model=ckpt, retries=2, progress=False, mosaic=None, index=False)
    by = {r.name: r for r in s.results}
    assert by["eopatch-01"].status == FAILED and by["eopatch-01"].attempts == 3 and by["eopatch-01"].retryable
    assert "IsADirectoryError" in by["eopatch-01"].error
    # the final record says what the earlier attempts met, and where
    earlier = [w for w in by["eopatch-01"].warnings if w.startswith("attempt ")]
    assert [w.split(" failed")[0] for w in earlier] == ["attempt 1", "attempt 2"]
    assert all("IsADirectoryError" in w for w in earlier)
    if where == "external":
        assert all(" on tcp://127.0.0.1" in w for w in earlier)
    assert by[CORRUPT].attempts == 1  # input errors are not retried
    assert {n for n, r in by.items() if r.status == DONE} == set(GOOD) - {"eopatch-01"}


def test_in_process_batch_writes_uncertainty_maps_atomically_and_skips_them_when_done(inputs, tmp_path):
    from sr_core.inference import predict
    from sr_core.io.eopatch import load_eopatch

    folder, ckpt = inputs
    out = tmp_path / "u"
    s = run_batch([folder / GOOD[0]], out, scheduler=None, model=ckpt, uncertainty=True, progress=False, mosaic=None,
                  index=None)
    (r,) = s.results
    assert r.status == DONE and r.proba_output is None and Path(r.uncertainty_output).is_file()
    assert Path(r.uncertainty_output).parent == out.with_name("u-proba")
    assert not list(out.parent.rglob("*.part*"))  # every file appeared by rename
    import rasterio

    with rasterio.open(r.uncertainty_output) as src:
        got = src.read(1)
    want = predict(load_eopatch(folder / GOOD[0]), device="cpu", model=ckpt, uncertainty=True).uncertainty
    np.testing.assert_allclose(got, want, atol=1e-6)
    again = run_batch([folder / GOOD[0]], out, scheduler=None, model=ckpt, uncertainty=True, progress=False, mosaic=None,
                      index=None)
    assert again.results[0].status == SKIPPED
    Path(r.uncertainty_output).unlink()  # a missing companion makes the patch unfinished
    assert run_batch([folder / GOOD[0]], out, scheduler=None, model=ckpt, uncertainty=True, progress=False,
                     mosaic=None, index=None).results[0].status == DONE


def test_index_of_patches_in_two_utm_zones_keeps_each_footprint_and_its_own_grid(tmp_path):
    """Patches in two UTM zones share no CRS: the index is in WGS84, each footprint densified so that it follows
    the patch's straight UTM edges (four lon/lat corners strayed 0.5 m on a 5 km patch), and each row keeps the
    patch's own EPSG code and bbox."""
    import geopandas as gpd
    import shapely
    from pyproj import Transformer

    from sr_core.pipeline.mosaic import write_index
    from sr_core.pipeline.results import PatchResult

    a = PatchResult("a", "a", status=DONE, bbox=(500000.0, 5125000.0, 505000.0, 5130000.0), epsg=32633)
    b = PatchResult("b", "b", status=DONE, bbox=(600000.0, 5640000.0, 600640.0, 5640640.0), epsg=32631)
    idx = gpd.read_file(write_index([a, b], tmp_path / "i.gpkg"))
    assert idx.crs.to_epsg() == 4326
    assert list(idx["epsg"]) == [32633, 32631] and tuple(idx.loc[0, ["min_x", "min_y", "max_x", "max_y"]]) == a.bbox
    to_utm = Transformer.from_crs(4326, 32633, always_xy=True)
    back = shapely.transform(idx.geometry[0], lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
    assert shapely.hausdorff_distance(back.boundary, shapely.box(*a.bbox).boundary, densify=0.01) < 0.02
