"""``python -m sr_core train``: train the super-resolution model on simulated (and optionally real) patches."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from ._args import COUNT, NONNEG, NONNEG_F, SIDE, positive

#: seconds between the plain status lines of a run whose stderr is not a terminal
HEARTBEAT_S = 60.0


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_main_thread() -> bool:  # signal handlers can only be set there (the app may call main() from a thread)
    return threading.current_thread() is threading.main_thread()


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train the model (simulated patches on the fly, plus real EOPatches with --data)",
        description=(
            "Trains on random crops of simulated patches generated on the fly (fresh seeds, a pool refreshed "
            "gradually) and, with --data, of real labelled EOPatches. Loss: BCE weighted by the benchmark weight "
            "map + soft Dice. Validates on held-out simulated patches (pooled weighted MCC), writes a resumable "
            "checkpoint every --ckpt-every steps to --out and the best one to <out>.best.pt."
        ),
    )
    p.add_argument("--out", required=True, help="checkpoint path, e.g. models/my-model.pt")
    p.add_argument("--data", default=None, help="folder/archive of real labelled EOPatches to train on as well")
    p.add_argument("--steps", type=COUNT, default=2000, help="total optimisation steps (default 2000)")
    p.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda or mps")
    p.add_argument("--size", type=SIDE, default=64, help="training crop side in 10 m pixels (default 64)")
    p.add_argument("--batch", type=COUNT, default=4, help="crops per step (default 4)")
    p.add_argument("--config", default="small", choices=("tiny", "small", "base"),
                   help="network size preset (small: the bundled model)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (optimizer, step, RNG)")
    p.add_argument("--lr", type=positive, default=2e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and the training seed stream")
    p.add_argument("--sim-size", type=SIDE, default=160, help="side of simulated training patches (10 m px)")
    p.add_argument("--pool", type=COUNT, default=16, help="simulated patches held in memory")
    p.add_argument("--refresh-every", type=COUNT, default=8, help="steps between replacing one pool patch")
    p.add_argument("--val-patches", type=NONNEG, default=4, help="held-out simulated validation patches (0: none)")
    p.add_argument("--val-size", type=SIDE, default=128, help="side of validation patches (10 m px)")
    p.add_argument("--val-every", type=COUNT, default=250, help="steps between validations")
    p.add_argument("--ckpt-every", type=COUNT, default=50, help="steps between checkpoints")
    p.add_argument("--dice", type=NONNEG_F, default=0.5, help="weight of the soft Dice term (0: BCE only)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start a new run from this checkpoint's weights (fine-tuning; new optimizer and schedule)")
    p.add_argument("--doy-hidden", action="store_true",
                   help="network option: feed the day of year into the per-date MLP (zero-initialised with --init)")
    p.add_argument("--blocks10", type=int, default=None, metavar="N",
                   help="network option: residual blocks at 10 m (small: 2); with --init the added blocks start as "
                        "the identity, so the grown network starts from the same function")
    p.add_argument("--width", type=int, default=None, metavar="C",
                   help="network option: trunk channels at 10 m (small: 32); with --init a wider trunk starts from "
                        "the narrower one's function (the added channels start silent)")
    p.add_argument("--date-channels", type=int, default=None, metavar="C",
                   help="network option: per-date encoder channels (small: 24; a multiple of the 4 attention heads); "
                        "with --init a wider encoder starts from the narrower one's function")
    p.add_argument("--width20", type=int, default=None, metavar="C", help="network option: channels at 20 m (small: 64)")
    p.add_argument("--width40", type=int, default=None, metavar="C", help="network option: channels at 40 m (small: 96)")
    p.add_argument("--augment", type=NONNEG_F, default=1.0,
                   help="domain randomisation strength: gain/offset, band dropout, calendar shift, blur, shifts, haze, "
                        "L1C look (sr_core.train.AUGMENT; 0 = off, default 1)")
    p.add_argument("--ten-m-only", type=float, default=0.0, metavar="P",
                   help="share of band-dropout draws that keep the 10 m bands only (B02 B03 B04 B08; the others "
                        "filled as prediction fills them), as quick exports come (default 0)")
    p.add_argument("--stack", type=float, default=0.0, metavar="P",
                   help="share of training crops given every defect of the robustness gate's combined scenario at "
                        "once (haze, L1C look, blur, gain/offset, 1 px shifts; strengths drawn around the gate's) "
                        "instead of independent draws (default 0)")
    p.add_argument("--stack-defects", default=None, metavar="LIST",
                   help="comma-separated defects a stacked crop gets, from haze,l1c,blur,gain_offset,shift "
                        "(default: all of them)")
    p.add_argument("--points", default=None, metavar="DIR",
                   help="folder of real labelled pixels with monthly series (S2_monthly.npy.gz + labels.csv, the "
                        "WorldCereal points format; see sr_core.points): an extra loss that teaches real phenology; "
                        "20 %% of the points are held out and scored at each validation")
    p.add_argument("--points-weight", type=NONNEG_F, default=0.5, help="weight of the points loss (default 0.5)")
    p.add_argument("--precision", default=None, choices=("auto", "float32", "bfloat16"),
                   help="autocast of the training step: auto (default) is bfloat16 on a GPU and float32 on a CPU; "
                        "bfloat16 on a CPU with AMX / AVX-512 BF16 (recent Xeons) runs a step about 1.6x faster. "
                        "With --resume it replaces the run's own (the run then no longer continues bit-exactly)")
    p.add_argument("--threads", type=NONNEG, default=0, help="torch CPU threads (default: all cores)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes that simulate the next training patches ahead of need (default: on a GPU all "
                        "cores but two, at most 12; on a CPU 0 = in this process); the result does not depend on it")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..train import STACK_DEFECTS, TrainConfig, Trainer, check_stack_defects

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    stack_defects = STACK_DEFECTS
    if args.stack_defects is not None:  # checked here, before the pool is simulated
        stack_defects = check_stack_defects([d.strip() for d in args.stack_defects.split(",") if d.strip()],
                                            f"--stack-defects {args.stack_defects!r}")
    cfg = TrainConfig(
        steps=args.steps, batch=args.batch, crop=args.size, preset=args.config, lr=args.lr, seed=args.seed,
        sim_size=args.sim_size, pool=args.pool, refresh_every=args.refresh_every, val_patches=args.val_patches,
        val_size=args.val_size, val_every=args.val_every, ckpt_every=args.ckpt_every, dice=args.dice, data=args.data,
        augment=args.augment, points=args.points, points_weight=args.points_weight, ten_m_only=args.ten_m_only,
        stack=args.stack, stack_defects=stack_defects, precision=args.precision or "auto",
    )
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    overrides: dict[str, Any] = {}
    if args.doy_hidden:
        overrides["doy_hidden"] = True
    if args.blocks10 is not None:
        if args.blocks10 < 1:
            raise ConfigError(f"--blocks10 {args.blocks10}: use at least 1 residual block")
        overrides["blocks10"] = args.blocks10
    for key in ("date_channels", "width", "width20", "width40"):
        value = getattr(args, key)
        if value is not None:
            flag = "--" + key.replace("_", "-")
            if value < 4:
                raise ConfigError(f"{flag} {value}: use at least 4 channels")
            overrides[key] = value
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: use 0 (simulate in this process) or more")
    if not 0.0 <= args.ten_m_only <= 1.0:
        raise ConfigError(f"--ten-m-only {args.ten_m_only}: give a share between 0 and 1")
    if not 0.0 <= args.stack <= 1.0:
        raise ConfigError(f"--stack {args.stack}: give a share between 0 and 1")
    from pathlib import Path

    if Path(args.out).exists() and not args.resume:  # hours of training are not replaced by a typo
        raise ConfigError(f"--out {args.out}: a checkpoint is already there; add --resume to continue that run, or "
                          "choose another --out (delete the file first to start over under this name)")
    trainer = Trainer(args.out, cfg, device=args.device, resume=args.resume, log=log, model_overrides=overrides or None,
                      init_from=args.init, workers=args.workers, precision_given=args.precision is not None)
    log(f"training {trainer.model.n_params():,}-parameter model on {trainer.device} to step {trainer.cfg.steps}; "
        f"checkpoints: {args.out} (resumable), best: {trainer.out.with_name(trainer.out.stem + '.best.pt')}")
    # a scheduler's or `kill`'s SIGTERM ends the run as Ctrl-C does: the simulation workers are shut down (finally)
    # and the message says where to resume from, instead of the process vanishing with its workers left running
    previous = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
    try:
        # a terminal gets a live bar; a log file (nohup, a container, CI) a plain line a minute, not a wall of \r
        interactive = sys.stderr.isatty()
        result = trainer.run(progress=interactive, heartbeat_s=None if interactive else HEARTBEAT_S)
    except KeyboardInterrupt:
        saved = trainer.saved_step
        print(f"train: stopped at step {trainer.step}; " + (
            f"the checkpoint {trainer.out} holds step {saved}: resume with the same command and --resume"
            if saved is not None else "no checkpoint was written yet"), file=sys.stderr, flush=True)
        raise
    finally:
        trainer.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    best = result["best"]
    print(f"done: step {result['steps']}, checkpoint {result['checkpoint']}"
          + (f", best validation weighted MCC {best:.4f}" if best >= 0 else ""))
    return 0
