"""The bundled model's skill is pinned on a small fixed simulated set (a floor, not a timing), and
``strip_checkpoint`` makes the file to bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.errors import ModelError
from sr_core.model import SRNet, SRNetConfig, default_model_path, load_model, read_checkpoint, save_checkpoint
from sr_core.model.checkpoint import strip_checkpoint

torch.set_num_threads(1)

#: Simulated test patches of 128 × 128 px, seeds 600–605 (the start of the model card's test seeds; six regions:
#: Slovenske gorice, Vipava, Gorenjska × 2, Podravje, Pomurje). Measured with models/sr-small.pt (phase J) on
#: simulator 2.2: 0.755, NDVI-threshold baseline 0.442; on simulator 2.3: 0.760 / 0.447; on 2.4: 0.772 / 0.474;
#: on 2.5: 0.772 / 0.476; on 2.6 (fewer meadow-like declarations): 0.832 / 0.417; phase O (bundled 2026-12-06) on
#: 2.6: 0.834 / 0.417.
#: Measured 2026-12-07 with the bundled phase T (models/sr-small.pt) on simulator 2.9: model 0.850, bundled 10 m
#: pixel baseline (models/pixel-baseline.npz, trained on simulator 2.9) 0.774, NDVI baseline 0.409.
#: Until simulator 2.1 the set was two 96 px patches (600, 601),
#: where phase I scored 0.885 on 2.0 and phase J 0.845 on 2.1; simulator 2.2 redrew their parcels and the same
#: weights score 0.643 there (NDVI 0.343) while the 16 × 500 px test set barely moved: two 1 km patches of the hill
#: regions were too small a sample to pin a floor on. The floor (0.83) leaves 0.02 below the 2026-12-07
#: measurement (0.850; the set is fixed and the figure deterministic up to float rounding) for a retrained model; a
#: drop below it, or a lead over the 10 m pixel baseline under MARGIN_OVER_PIXEL, is a regression to look into. The
#: floor was 0.70 until 2026-12-07: the pixel baseline (0.774) cleared it, so it did not tell a super-resolution
#: model from a 10 m per-pixel classifier; the same model with its map averaged to 10 m (0.813) fails both now.
SEEDS, SIZE = (600, 601, 602, 603, 604, 605), 128
WMCC_FLOOR = 0.83
#: measured 0.357 (phase I, 2.0, old set), 0.406 (J, 2.1, old set), 0.313 (J, 2.2), 0.313 (J, 2.3), 0.298 (J, 2.4),
#: 0.296 (J, 2.5), 0.415 (J, 2.6), 0.417 (O, 2.6), 0.441 (T, 2.9; 2026-12-07)
MARGIN_OVER_NDVI = 0.20
#: the model's lead over the bundled 10 m pixel baseline, pooled the same way on the same patches: measured 0.076
#: (phase T, simulator 2.9, pixel baseline trained on 2.9; 2026-12-07); required: about half of it. For scale: the
#: same model with its 2.5 m map averaged over each 10 m pixel scores 0.813 here (a lead of 0.039: it fails).
MARGIN_OVER_PIXEL = 0.05


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled weights absent")
def test_bundled_model_skill_floor_on_a_fixed_simulated_set():
    from sr_core.baselines import get_baseline
    from sr_core.baselines.pixel import pixel_baseline
    from sr_core.inference import predict
    from sr_core.metrics import Scores, evaluate_patch
    from sr_core.simulate import simulate_patch

    patches = [simulate_patch(s, size=SIZE, split="test") for s in SEEDS]

    def pooled(predictor) -> float:
        return Scores.pool([evaluate_patch(p, predictor(p), diagnostics=False) for p in patches]).wmcc

    model = pooled(lambda p: predict(p, device="cpu"))
    base = pooled(get_baseline("ndvi"))
    pixel = pooled(pixel_baseline)
    assert model >= WMCC_FLOOR, f"bundled model: pooled weighted MCC {model:.3f} < floor {WMCC_FLOOR}"
    assert model - base >= MARGIN_OVER_NDVI, f"model {model:.3f} vs NDVI baseline {base:.3f}"
    assert model - pixel >= MARGIN_OVER_PIXEL, (
        f"model {model:.3f} leads the 10 m pixel baseline {pixel:.3f} by {model - pixel:.3f} < {MARGIN_OVER_PIXEL}")


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 8, 8, 12, generator=g) * 0.4, torch.ones(1, 3, 8, 8, dtype=torch.bool), \
        torch.tensor([[90.0, 150.0, 210.0]])


def test_strip_checkpoint_drops_the_training_state_and_keeps_the_network(tmp_path):
    torch.manual_seed(0)
    net = SRNet(SRNetConfig.preset("tiny")).eval()
    opt = torch.optim.Adam(net.parameters())
    src = save_checkpoint(net, tmp_path / "run" / "last.pt", threshold=0.42, provenance={"steps": 10, "seed": 3},
                          train_state={"step": 10, "optimizer": opt.state_dict(), "rng": torch.get_rng_state()})
    assert "train_state" in read_checkpoint(src)
    dst = strip_checkpoint(src, tmp_path / "bundle" / "sr.pt", provenance={"test_wmcc": 0.8})
    ck = read_checkpoint(dst)
    assert "train_state" not in ck and dst.stat().st_size < src.stat().st_size
    assert ck["threshold"] == pytest.approx(0.42)
    assert ck["provenance"]["steps"] == 10 and ck["provenance"]["test_wmcc"] == pytest.approx(0.8)
    assert ck["provenance"]["stripped_from"] == str(src)
    assert not list(dst.parent.glob("*.tmp"))  # written atomically
    a, b = load_model(src), load_model(dst)
    with torch.inference_mode():
        np.testing.assert_array_equal(a(*_inputs()).numpy(), b(*_inputs()).numpy())
    assert "train_state" in read_checkpoint(src)  # the source is left as it was


def test_strip_checkpoint_refuses_a_file_that_does_not_load(tmp_path):
    src = save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path / "m.pt")
    ck = torch.load(src, weights_only=True)
    ck["state_dict"] = {k: v for k, v in ck["state_dict"].items() if not k.startswith("head.")}
    torch.save(ck, src)
    with pytest.raises(ModelError, match="does not match this network"):
        strip_checkpoint(src, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    with pytest.raises(ModelError, match="not found"):
        strip_checkpoint(tmp_path / "absent.pt", tmp_path / "out.pt")


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled weights absent")
def test_the_bundled_weights_are_stripped():
    ck = read_checkpoint(default_model_path())
    assert "train_state" not in ck and "stripped_from" in ck["provenance"]


def test_the_bundled_models_baseline_figures_name_the_baseline_they_were_measured_with():
    """The app prints the figures stored in the model file. A pixel-baseline figure measured with an earlier bundled
    baseline file is keyed with its simulator (``pixel_sim_2_8``): a bare ``pixel`` on a REAL record would read as
    the bundled baseline's, which scores otherwise (the held-out points: 0.194 with the 2.8 file, 0.023 with 2.9)."""
    from sr_core.baselines.pixel import load_pixel_baseline

    ck = read_checkpoint(default_model_path())
    real = ck["provenance"]["test_metrics"]["real"]
    current = f"pixel_sim_{str(load_pixel_baseline().config.get('simulator_version')).replace('.', '_')}"
    for name, figs in real.items():
        for key in figs:
            if key.startswith("pixel"):
                assert key.startswith("pixel_sim_"), (name, key)
    # the bundled baseline's own figures are there too (the app printed only the 2.8 file's, README quotes 2.9's)
    assert current in real["flanders-2019-fields-lpis"] and current in real["worldcereal_points_43_held_out"]


@pytest.mark.real_data
def test_the_bundled_baselines_stored_real_figure_is_what_it_scores():
    """The model file's figure for the bundled 10 m pixel baseline on the real Flanders patch is what evaluate --real
    measures with that baseline now (a figure keyed with the current baseline must be the current baseline's)."""
    from sr_core import evaluation as ev
    from sr_core.baselines.pixel import load_pixel_baseline
    from tests.conftest import REAL, need

    current = f"pixel_sim_{str(load_pixel_baseline().config.get('simulator_version')).replace('.', '_')}"
    stored = read_checkpoint(default_model_path())["provenance"]["test_metrics"]["real"]["flanders-2019-fields-lpis"]
    doc = ev.evaluate_real([need(REAL / "flanders-2019-fields-lpis")], ev.build_predictors(None, "cpu"))
    assert stored[current] == pytest.approx(doc["pooled"]["pixel"]["weighted_mcc"], abs=0.0015)
    assert stored["weighted_mcc"] == pytest.approx(doc["pooled"]["model"]["weighted_mcc"], abs=0.0015)
