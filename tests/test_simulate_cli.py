"""The simulate / demo commands, the demo dataset, and the calibration and sensor helpers (small and fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sr_core.cli import main
from sr_core.simulate import sensor
from sr_core.simulate.calibrate import cloud_summary, landscape_stats


def test_simulate_command_writes_loadable_patches(tmp_path, capsys):
    from sr_core.io import load_eopatch

    rc = main(["simulate", "--out", str(tmp_path), "--n", "2", "--seed", "7", "--size", "24", "--split", "test",
               "--region", "krsko", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in out["patches"]] == ["eopatch-01", "eopatch-02"]
    assert [p["seed"] for p in out["patches"]] == [7, 8]
    for p in out["patches"]:
        patch = load_eopatch(p["path"])
        assert patch.is_simulated and patch.info.meta["split"] == "test" and patch.info.meta["region"] == "krsko"
        assert patch.shape[1:] == (24, 24) and patch.label_shape == (96, 96)
    # the folders exist: a second run without --overwrite refuses, naming the fix
    assert main(["simulate", "--out", str(tmp_path), "--n", "1", "--seed", "7", "--size", "24"]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_simulate_command_needs_out_or_calibrate(capsys):
    assert main(["simulate"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["simulate", "--out", "x", "--region", "atlantis"]) == 2


def test_list_regions(capsys):
    assert main(["simulate", "--list-regions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"pomurje", "podravje", "ljubljana_basin", "savinja", "krsko"} <= {r["key"] for r in rows}


def test_demo_builds_once_and_lists_its_patches(monkeypatch):
    import sr_core.demo as demo
    from sr_core.io import load_eopatch

    monkeypatch.setattr(demo, "DEMO_SIZE", 16)
    monkeypatch.setattr(demo, "DEMO_RECIPE", (("eopatch-01", "pomurje", "train", 1), ("eopatch-02", "vipava", "test", 2)))
    assert demo.demo_patch_paths() == []
    calls = []
    paths = demo.ensure_demo(progress=lambda d, t, m: calls.append((d, t)))
    assert [p.name for p in paths] == ["eopatch-01", "eopatch-02"]
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)
    assert demo.demo_patch_paths() == paths
    assert {load_eopatch(p).info.meta["region"] for p in paths} == {"pomurje", "vipava"}
    stamp = (paths[0] / "bbox.geojson").stat().st_mtime_ns
    assert demo.ensure_demo() == paths  # already there: nothing rebuilt
    assert (paths[0] / "bbox.geojson").stat().st_mtime_ns == stamp
    # a changed recipe makes the old set stale
    monkeypatch.setattr(demo, "DEMO_RECIPE", (("eopatch-01", "pomurje", "train", 3),))
    assert demo.demo_patch_paths() == []


# -- calibration helpers on hand-made labels -------------------------------------------------------------------------
def test_landscape_stats_on_a_known_layout():
    ap = np.zeros((40, 40), np.uint16)
    ap[0:20, 0:20] = 2  # 400 px maize, holds whole 10 m pixels
    ap[25:28, 0:40] = 3  # 3 px wide winter cereal strip: no whole 10 m pixel
    ap[30:40, 30:40] = 2000  # forest (not a field)
    cult = (ap == 2) | (ap == 3)
    s = landscape_stats(ap, cult)
    assert s["n_fields"] == 2
    assert s["share_fields_no_whole_10m_pixel"] == pytest.approx(0.5)
    assert s["median_cultivated_parcel_px"] == pytest.approx((400 + 120) / 2)
    area_km2 = 40 * 40 * 6.25 / 1e6
    assert s["parcels_per_25km2"] == pytest.approx(3 * 25 / area_km2)


def test_cloud_summary_shares():
    s = cloud_summary(np.array([0.0, 0.0, 0.5, 1.0]))
    assert (s["share_clear"], s["share_partial"], s["share_overcast"], s["mean"]) == (0.5, 0.25, 0.25, 0.375)


# -- sensor --------------------------------------------------------------------------------------------------------
def test_box_fractions_are_shares_of_each_cell():
    seg = np.zeros((8, 8), np.int32)
    seg[:, 5:] = 1
    seg[6:, :] = 2
    tex = np.ones((8, 8), np.float32)
    B, T = sensor.box_fractions(seg, tex, 3)
    dense = B.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0)
    np.testing.assert_allclose(dense[0], [1, 0, 0])
    np.testing.assert_allclose(dense[1], [4 / 16, 12 / 16, 0])  # top-right cell: one column of 0, three of 1
    np.testing.assert_allclose(dense[2], [8 / 16, 0, 8 / 16])
    np.testing.assert_allclose(dense[3], [2 / 16, 6 / 16, 8 / 16])
    np.testing.assert_allclose(T.toarray(), dense)  # texture 1 everywhere: same shares


def test_psf_keeps_flat_fields_and_matches_the_published_mtf():
    flat = np.full((1, 6, 6, 12), 0.3, np.float32)
    np.testing.assert_allclose(sensor.psf_residual(flat, sensor.KERNEL_A), flat, rtol=1e-6)
    # a Nyquist pattern (alternating 10 m columns) keeps box-MTF × kernel-MTF of its contrast = the band's MTF
    x = np.tile(np.array([1.0, -1.0], np.float32), 8)[None, None, :, None] * np.ones((1, 3, 16, 12), np.float32)
    y = sensor.psf_residual(x, sensor.KERNEL_A)
    np.testing.assert_allclose(np.abs(y[0, 1, 8]) * sensor.BOX_MTF, sensor.MTF, rtol=1e-5)


def test_render_surface_reproduces_a_uniform_spectrum():
    seg = np.zeros((32, 32), np.int32)
    spec = np.linspace(0.05, 0.4, 12, dtype=np.float32)
    refl = np.broadcast_to(spec, (1, 3, 12)).copy()
    out = sensor.render_surface(seg, np.zeros((32, 32), np.float32), refl, np.zeros_like(refl),
                                np.array([[0, 0], [1, -1], [-1, 0]]), (8, 8))
    np.testing.assert_allclose(out, np.broadcast_to(spec, out.shape), rtol=1e-5)


def test_twenty_metre_bands_are_blockwise_constant():
    from sr_core.simulate import simulate_patch

    p = simulate_patch(2, size=24, split="train", region="podravje")
    b20 = p.bands[..., sensor.IDX_20]
    assert np.all(b20[:, 0::2, 0::2] == b20[:, 1::2, 1::2])
    b10 = p.bands[..., sensor.IDX_10]
    assert not np.all(b10[:, 0::2, 0::2] == b10[:, 1::2, 1::2])
    b60 = p.bands[..., sensor.IDX_60]
    assert np.all(b60[:, 0:6, 0:6] == b60[:, :1, :1])
