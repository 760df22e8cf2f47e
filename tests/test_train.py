"""Training: batches, loss, a CPU step that learns, exact resume, the CLI end to end (tiny sizes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_core.errors import ConfigError, ModelError
from sr_core.model import SRNet, SRNetConfig, load_model
from sr_core.simulate import simulate_patch
from sr_core.train import TrainConfig, Trainer, loss_fn, prepare, sample_batch, train_step

torch.set_num_threads(1)


def sim(seed: int, size: int, split: str):
    return simulate_patch(seed, size=size, split=split)


@pytest.fixture(scope="module")
def items():
    return [prepare(sim(s, 24, "train")) for s in range(2)]


def test_sample_batch_crops_pads_and_aligns(items):
    rng = np.random.default_rng(0)
    b = sample_batch(items, rng, batch=3, crop=16, max_dates=60)
    B, T = b.present.shape
    assert b.bands.shape == (3, T, 16, 16, 12) and b.label.shape == (3, 1, 64, 64) == b.weight.shape
    assert b.valid.dtype == torch.bool and b.present.any(dim=1).all()
    for i in range(B):  # padded dates carry nothing
        assert not b.valid[i, ~b.present[i]].any() and (b.bands[i, ~b.present[i]] == 0).all()
    assert set(np.unique(b.label.numpy())) <= {0.0, 1.0} and b.weight.min() >= 0


def test_label_and_bands_stay_aligned_under_flips(items):
    """The label crop moves with the band crop: a cultivated mask rebuilt from the crop matches the patch."""

    def variants_of(lab):
        return [np.rot90(np.flip(lab, 1) if f else lab, k) for k in range(4) for f in (False, True)]

    # a label whose eight flips / rotations all differ, so that the label tells which one a crop got (an empty or
    # symmetric label would match the first variant whatever was drawn)
    it = next(i for i in items if len({v.tobytes() for v in variants_of(i.label)}) == 8)
    rng = np.random.default_rng(1)
    b = sample_batch([it], rng, batch=8, crop=24, max_dates=60)  # crop = whole patch: only the flip varies
    variants = variants_of(it.label)
    for i in range(8):
        got = b.label[i, 0].numpy()
        k = next(j for j, v in enumerate(variants) if np.array_equal(v, got))
        rot, flip = divmod(k, 2)
        ref = np.rot90(np.flip(it.bands[..., 7], 2) if flip else it.bands[..., 7], rot, axes=(1, 2))
        dates = b.present[i].numpy()
        tb = b.bands[i, dates, :, :, 7].numpy()
        assert any(np.array_equal(tb[0], ref[t]) for t in range(ref.shape[0]))


def test_loss_ignores_zero_weight_pixels():
    logits = torch.randn(1, 1, 8, 8)
    label = (torch.rand(1, 1, 8, 8) > 0.5).float()
    w = torch.ones(1, 1, 8, 8)
    w[..., :4] = 0
    flipped = label.clone()
    flipped[..., :4] = 1 - flipped[..., :4]
    torch.testing.assert_close(loss_fn(logits, label, w), loss_fn(logits, flipped, w))
    assert not torch.allclose(loss_fn(logits, label, torch.ones_like(w)), loss_fn(logits, flipped, torch.ones_like(w)))


def test_a_training_step_on_cpu_reduces_the_loss(items):
    torch.manual_seed(0)
    model = SRNet(SRNetConfig.preset("tiny"))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    batch = sample_batch(items, np.random.default_rng(2), batch=2, crop=16, max_dates=60)
    losses = [train_step(model, opt, batch) for _ in range(25)]
    assert losses[-1] < 0.8 * losses[0], losses


def _cfg(**kw):
    base = dict(steps=4, batch=2, crop=16, preset="tiny", sim_size=24, pool=2, refresh_every=2, val_patches=1,
                val_size=16, val_every=2, ckpt_every=1, warmup=2, lr=3e-3)
    return TrainConfig(**{**base, **kw})


def test_resume_continues_exactly(tmp_path):
    straight = Trainer(tmp_path / "a.pt", _cfg(), device="cpu", source=sim, log=lambda m: None)
    straight.run(progress=False)
    half = Trainer(tmp_path / "b.pt", _cfg(), device="cpu", source=sim, log=lambda m: None)
    half.run(progress=False, until=2)
    resumed = Trainer(tmp_path / "b.pt", _cfg(), device="cpu", source=sim, resume=True, log=lambda m: None)
    assert resumed.step == 2
    resumed.run(progress=False)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    ck = load_model(tmp_path / "b.pt")
    prov = ck.info.provenance
    assert prov["steps"] == 4 and prov["seed"] == 0 and len(prov["history"]) == 2 and "simulated" in prov["data"]
    assert (tmp_path / "b.best.pt").is_file()


def test_simulation_workers_change_nothing_but_where_patches_are_made(tmp_path):
    """Training patches simulated ahead in worker processes (--workers) are the same patches in the same order: the
    run ends with the same weights as one that simulates in-process."""
    cfg = _cfg(steps=3, refresh_every=1, val_patches=0)
    inproc = Trainer(tmp_path / "a.pt", cfg, device="cpu", source=sim, log=lambda m: None, workers=0)
    inproc.run(progress=False)
    logs: list[str] = []
    pooled = Trainer(tmp_path / "b.pt", cfg, device="cpu", source=sim, log=logs.append, workers=2)
    try:
        assert pooled.prefetch is not None and any("2 worker processes" in m for m in logs)
        pooled.run(progress=False)
        assert pooled.pool_seeds == inproc.pool_seeds and pooled.next_seed == inproc.next_seed == 5
        for a, b in zip(inproc.pool, pooled.pool, strict=True):
            np.testing.assert_array_equal(a.bands, b.bands)
            np.testing.assert_array_equal(a.label, b.label)
        for (k, a), b in zip(inproc.model.state_dict().items(), pooled.model.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=k)
    finally:
        pooled.close()
    assert inproc.prefetch is None
    Trainer(tmp_path / "r.pt", cfg, device="cpu", source=sim, log=lambda m: None, workers=0).run(progress=False, until=1)
    resumed = Trainer(tmp_path / "r.pt", cfg, device="cpu", source=sim, log=lambda m: None, resume=True, workers=2)
    try:  # a resumed run rebuilds its pool in the workers: still the same run
        resumed.run(progress=False)
        for (k, a), b in zip(inproc.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=k)
    finally:
        resumed.close()
    with pytest.raises(ConfigError, match="workers"):
        Trainer(tmp_path / "c.pt", cfg, device="cpu", source=sim, log=lambda m: None, workers=-1)


def test_resume_needs_a_training_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Trainer(tmp_path / "none.pt", _cfg(), device="cpu", source=sim, resume=True)


def test_train_cli_writes_a_loadable_checkpoint(tmp_path, capsys):
    from sr_core.cli import main

    out = tmp_path / "cli.pt"
    rc = main(["train", "--out", str(out), "--config", "tiny", "--steps", "2", "--size", "16", "--batch", "2",
               "--sim-size", "24", "--pool", "2", "--val-patches", "1", "--val-size", "16", "--val-every", "2",
               "--threads", "1"])
    assert rc == 0 and "done: step 2" in capsys.readouterr().out
    model = load_model(out)
    assert model.config.width == SRNetConfig.preset("tiny").width
    assert model.info.provenance["train_config"]["crop"] == 16


def test_train_cli_logs_plain_status_lines_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    """Under nohup, a container or CI the run's log gets one plain line per heartbeat (step, loss, validation, speed,
    time left), not a progress bar redrawn with carriage returns."""
    import sr_core.cli.train as cli_train
    from sr_core.cli import main

    monkeypatch.setattr(cli_train, "HEARTBEAT_S", 1e-9)  # every step
    rc = main(["train", "--out", str(tmp_path / "hb.pt"), "--config", "tiny", "--steps", "3", "--size", "16",
               "--batch", "2", "--sim-size", "24", "--pool", "2", "--val-patches", "1", "--val-size", "16",
               "--val-every", "2", "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 0 and "\r" not in err
    beats = [line for line in err.splitlines() if re.match(r"step \d+/3 \(", line)]
    assert [b.split("/")[0] for b in beats] == ["step 1", "step 2", "step 3"]
    assert re.fullmatch(r"step 1/3 \(33\.3 %\): loss \d\.\d{4}, last validation none yet, \d+\.\d\d s/step, "
                        r"about 0 h 00 min left", beats[0]), beats[0]
    assert re.search(r"last validation -?\d\.\d{4},", beats[1])  # step 2 validated


def _assert_same_function(base: SRNet, model: SRNet, *, seed: int, size: int, doys: tuple[float, ...]) -> None:
    """``model`` (in eval mode) gives ``base``'s logits on a random series of ``len(doys)`` dates, ``size`` px."""
    g = torch.Generator().manual_seed(seed)
    t = len(doys)
    b, v = torch.rand(1, t, size, size, 12, generator=g) * 0.4, torch.rand(1, t, size, size, generator=g) > 0.3
    d = torch.tensor([list(doys)])
    with torch.inference_mode():
        torch.testing.assert_close(base(b, v, d), model.eval()(b, v, d))

def test_init_from_a_checkpoint_with_a_new_option_keeps_the_function(tmp_path):
    from sr_core.model import save_checkpoint

    torch.manual_seed(5)
    base = SRNet(SRNetConfig.preset("tiny")).eval()
    src = save_checkpoint(base, tmp_path / "base.pt")
    tr = Trainer(tmp_path / "ft.pt", _cfg(seed=1, val_patches=0), device="cpu", source=sim, log=lambda m: None,
                 init_from=src, model_overrides={"doy_hidden": True})
    assert tr.model.config.doy_hidden and tr.pool_seeds[0] == 1_000_000  # its own stream of training patches
    _assert_same_function(base, tr.model, seed=0, size=8, doys=(80.0, 150.0, 220.0))
    tr.run(progress=False)
    assert tr.model.temporal.doy_hid.weight.abs().sum() > 0  # and the new parameter learns
    assert load_model(tmp_path / "ft.pt").info.provenance["init_from"] == str(src)


def test_init_grows_residual_blocks_as_the_identity_then_they_learn(tmp_path):
    """``--blocks10``: a network grown by residual blocks starts from the smaller one's function (added blocks
    have gain 0), and the added blocks then train."""
    from sr_core.model import save_checkpoint

    torch.manual_seed(6)
    base = SRNet(SRNetConfig.preset("tiny")).eval()
    src = save_checkpoint(base, tmp_path / "base.pt")
    logs: list[str] = []
    tr = Trainer(tmp_path / "grown.pt", _cfg(seed=2, val_patches=0), device="cpu", source=sim, log=logs.append,
                 init_from=src, model_overrides={"blocks10": 4})
    assert len(tr.model.pre) == 2 and len(tr.model.post) == 2 and tr.model.n_params() > base.n_params()
    assert any("pre.1" in m and "post.1" in m and "identity" in m for m in logs)
    _assert_same_function(base, tr.model, seed=1, size=12, doys=(70.0, 120.0, 170.0, 230.0))
    tr.run(progress=False)
    assert tr.model.pre[1].gain.abs().item() > 0 and tr.model.post[1].gain.abs().item() > 0
    assert load_model(tmp_path / "grown.pt").config.blocks10 == 4


def test_init_widens_the_trunk_from_the_same_function_then_the_added_channels_learn(tmp_path):
    """``--width / --width20 / --width40`` with ``--init``: the wider trunk starts as the narrower network's exact
    function (the added channels are silent: nothing flows from them into an old channel), and training then
    switches them on."""
    from sr_core.model import save_checkpoint

    torch.manual_seed(7)
    base = SRNet(SRNetConfig.preset("tiny")).eval()
    src = save_checkpoint(base, tmp_path / "base.pt")
    logs: list[str] = []
    wide = {"width": 20, "width20": 24, "width40": 28}
    tr = Trainer(tmp_path / "wide.pt", _cfg(seed=3, val_patches=0), device="cpu", source=sim, log=logs.append,
                 init_from=src, model_overrides=wide)
    assert tr.model.stem.out_channels == 20 and tr.model.mid4[0].c1.in_channels == 28
    assert any("width 12 → 20" in m and "width40 16 → 28" in m for m in logs)
    silent = tr.model.coarse.weight[:, 12:].detach().clone()
    assert silent.abs().sum() == 0 and tr.model.stem.weight[12:].abs().sum() > 0  # new inputs silent, new rows live
    _assert_same_function(base, tr.model, seed=2, size=12, doys=(70.0, 120.0, 170.0, 230.0))
    tr.run(progress=False)
    assert tr.model.coarse.weight[:, 12:].abs().sum() > 0  # the added channels now reach the output
    assert tr.model.pre[0].c1.weight[:12, 12:].abs().sum() > 0
    assert {k: getattr(load_model(tmp_path / "wide.pt").config, k) for k in wide} == wide


def test_init_refuses_to_narrow_the_trunk_or_the_per_date_encoder(tmp_path):
    """A checkpoint cannot be loaded into a narrower trunk or a narrower per-date encoder: both say so, naming --init."""
    from sr_core.model import save_checkpoint

    src = save_checkpoint(SRNet(SRNetConfig.preset("tiny", width=16, date_channels=12)), tmp_path / "base.pt")
    for overrides in ({"width": 12}, {"date_channels": 8}):
        with pytest.raises(ModelError, match="widened, not narrowed") as e:
            Trainer(tmp_path / "x.pt", _cfg(val_patches=0), device="cpu", source=sim, init_from=src,
                    model_overrides=overrides)
        assert "--init" in str(e.value)


def test_init_widens_the_per_date_encoder_from_the_same_function_then_the_added_channels_learn(tmp_path):
    """``--date-channels`` with ``--init``: the encoder's pooled output interleaves its channels (per attention head,
    the mean, the std), so the trunk's first convolution is re-indexed; the wider encoder starts as the narrower
    network's exact function, with the day-of-year option too, and training then switches the added channels on."""
    from sr_core.model import save_checkpoint

    torch.manual_seed(8)
    base = SRNet(SRNetConfig.preset("tiny", doy_hidden=True)).eval()
    with torch.no_grad():  # a live day-of-year path (it starts at zero), so that its rows are checked too
        base.temporal.doy_hid.weight.normal_(0, 0.3)
    src = save_checkpoint(base, tmp_path / "base.pt")
    logs: list[str] = []
    tr = Trainer(tmp_path / "enc.pt", _cfg(seed=4, val_patches=0), device="cpu", source=sim, log=logs.append,
                 init_from=src, model_overrides={"date_channels": 12, "width": 16})
    enc = tr.model.temporal
    assert enc.c == 12 and tr.model.stem.in_channels == (2 + 2) * 12 + 1  # tiny: 2 heads
    assert any("date_channels 8 → 12" in m and "width 12 → 16" in m for m in logs)
    assert enc.score.weight[:, 8:].abs().sum() == 0 and enc.hidden.weight[:8, 8:].abs().sum() == 0
    assert enc.inp.weight[8:].abs().sum() > 0  # the added channels compute something nobody reads yet
    _assert_same_function(base, tr.model, seed=3, size=12, doys=(70.0, 120.0, 170.0, 230.0))
    added = [g * 12 + k for g in range(4) for k in range(8, 12)]
    assert tr.model.stem.weight[:12, added].abs().sum() == 0  # the old trunk channels do not read them yet
    tr.run(progress=False)
    assert tr.model.stem.weight[:12, added].abs().sum() > 0 and enc.score.weight[:, 8:].abs().sum() > 0
    assert load_model(tmp_path / "enc.pt").config.date_channels == 12


def test_train_cli_refuses_a_width_below_four(tmp_path, capsys):
    from sr_core.cli import main

    rc = main(["train", "--out", str(tmp_path / "x.pt"), "--config", "tiny", "--steps", "1", "--width20", "2"])
    assert rc == 2 and "--width20 2" in capsys.readouterr().err
    rc = main(["train", "--out", str(tmp_path / "x.pt"), "--config", "tiny", "--steps", "1", "--date-channels", "3"])
    assert rc == 2 and "--date-channels 3" in capsys.readouterr().err


def test_train_cli_refuses_zero_blocks(tmp_path, capsys):
    from sr_core.cli import main

    rc = main(["train", "--out", str(tmp_path / "x.pt"), "--config", "tiny", "--steps", "1", "--blocks10", "0"])
    assert rc == 2 and "--blocks10 0" in capsys.readouterr().err


def _stem_dtypes(trainer: Trainer) -> list[torch.dtype]:
    """Records the dtype the trunk's first convolution computes in, at each training step."""
    seen: list[torch.dtype] = []
    trainer.model.stem.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


def test_bfloat16_precision_runs_the_training_step_under_autocast_on_a_cpu_and_resume_keeps_it(tmp_path):
    plain = Trainer(tmp_path / "f.pt", _cfg(val_patches=0), device="cpu", source=sim, log=lambda m: None)
    seen_plain = _stem_dtypes(plain)
    plain.run(progress=False, until=2)
    logs: list[str] = []
    bf = Trainer(tmp_path / "b.pt", _cfg(val_patches=0, precision="bfloat16"), device="cpu", source=sim, log=logs.append)
    seen_bf = _stem_dtypes(bf)
    bf.run(progress=False, until=2)
    assert seen_plain == [torch.float32] * 2 and seen_bf == [torch.bfloat16] * 2
    assert any("bfloat16 autocast on cpu" in m for m in logs)
    # the weights and the EMA stay float32 and learn; the loss is finite
    assert all(p.dtype == torch.float32 for p in bf.model.parameters())
    moved = [not torch.equal(a, b) for a, b in zip(plain.model.parameters(), bf.model.parameters(), strict=True)]
    assert any(moved)  # same seed, same batches: only the arithmetic differs
    # a resumed run keeps the precision it was started with, unless --precision is given again
    again = Trainer(tmp_path / "b.pt", _cfg(val_patches=0), device="cpu", source=sim, resume=True, log=lambda m: None)
    assert again.cfg.precision == "bfloat16" and again.amp
    back = Trainer(tmp_path / "b.pt", _cfg(val_patches=0, precision="float32"), device="cpu", source=sim, resume=True,
                   log=lambda m: None, precision_given=True)
    assert back.cfg.precision == "float32" and not back.amp
    back.run(progress=False, until=3)
    assert load_model(tmp_path / "b.pt").info.provenance["train_config"]["precision"] == "float32"


def test_training_refuses_float16_and_unknown_precisions(tmp_path, capsys):
    from sr_core.cli import main

    with pytest.raises(ConfigError, match="float16 needs loss scaling"):
        Trainer(tmp_path / "x.pt", _cfg(val_patches=0, precision="float16"), device="cpu", source=sim, log=lambda m: None)
    with pytest.raises(ConfigError, match="auto, float32, bfloat16"):
        Trainer(tmp_path / "x.pt", _cfg(val_patches=0, precision="int8"), device="cpu", source=sim, log=lambda m: None)
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "x.pt"), "--config", "tiny", "--steps", "1", "--precision", "float16"])
    assert "--precision" in capsys.readouterr().err


def test_cpu_bf16_detection_reads_the_cpu_flags(tmp_path):
    from sr_core.train import cpu_has_bf16

    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n\nprocessor\t: 1\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert cpu_has_bf16(amx) is True and cpu_has_bf16(old) is False
    empty = tmp_path / "empty"
    empty.write_text("")
    assert cpu_has_bf16(tmp_path / "absent") is None and cpu_has_bf16(empty) is None


# -- a run stopped from outside ----------------------------------------------------------------------------------------
_PROC = Path("/proc/self").is_dir()  # the process table is read from /proc (Linux)


def _children(pid: int) -> dict[int, str]:
    """Live (not zombie) child processes of ``pid`` and their command lines, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out[int(d.name)] = cmd
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_training_with_a_worker(tmp_path):
    """A tiny CLI run with one simulation worker process, once it has written its first checkpoint; returns the
    process, its checkpoint path and the pids of its worker (and multiprocessing helper) processes."""
    out = tmp_path / "run.pt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sr_core", "train", "--out", str(out), "--config", "tiny", "--steps", "100000",
         "--size", "16", "--batch", "2", "--sim-size", "24", "--pool", "2", "--refresh-every", "1", "--val-patches", "0",
         "--ckpt-every", "2", "--threads", "1", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while not out.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    helpers = _children(proc.pid)
    if proc.poll() is not None or not out.is_file():
        proc.kill()
        pytest.fail(f"the training run did not start: {proc.communicate()[1][-2000:]}")
    assert any("spawn_main" in c for c in helpers.values()), helpers
    return proc, out, helpers


def _wait_gone(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.25)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not _PROC, reason="reads the process table from /proc (Linux)")
def test_sigterm_stops_a_training_run_cleanly_and_says_where_to_resume(tmp_path):
    """`kill`, `docker stop` or a scheduler's time limit send SIGTERM: the run stops as with Ctrl-C, shuts its
    simulation workers down and says which step the checkpoint holds; the checkpoint resumes."""
    proc, out, helpers = _start_training_with_a_worker(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert re.search(r"train: stopped at step \d+; the checkpoint .*run\.pt holds step \d+: resume with the same "
                     r"command and --resume", err), err[-2000:]
    assert _wait_gone(list(helpers), 10) == []
    held = int(re.search(r"holds step (\d+)", err).group(1))
    assert held >= 2 and held % 2 == 0
    tr = Trainer(out, _cfg(), device="cpu", source=sim, resume=True, log=lambda m: None, workers=0)
    assert tr.step == held


@pytest.mark.skipif(not _PROC, reason="reads the process table from /proc (Linux)")
def test_simulation_workers_end_when_the_training_process_is_killed_outright(tmp_path):
    """SIGKILL (or the kernel's out-of-memory killer) leaves no chance to clean up: the workers notice that their
    parent is gone and end by themselves within a few seconds instead of lingering with their memory."""
    from sr_core.train import PARENT_POLL_S

    proc, _, helpers = _start_training_with_a_worker(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert _wait_gone(list(helpers), 3 * PARENT_POLL_S + 10) == []
