"""Model checkpoints that rebuild the network from the file alone.

A checkpoint is a ``torch.save``-d dict of plain values and tensors only, so it loads with
``torch.load(weights_only=True)`` (no arbitrary unpickling)::

    format            "sr-core-model"
    format_version    1
    config            SRNetConfig as a dict (widths, depths, band list, normalisation statistics)
    bands             band order of the input cube
    normalisation     {"log_offset", "band_mean", "band_std"} (a copy of what the config holds, for readers)
    threshold         probability threshold for the binary map (tuned on validation data)
    state_dict        network weights
    provenance        {"steps", "seed", "data", "metrics", "created", "git_commit", "torch", ...}
    train_state       optional: optimizer / RNG state for ``train --resume`` (stripped from bundled weights)
"""

from __future__ import annotations

import datetime as _dt
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..features import FEATURE_NAMES, LOG_OFFSET
from ..paths import MODELS_DIR, REPO_DIR
from .network import SRNet, SRNetConfig

FORMAT = "sr-core-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "sr-small.pt"


def default_model_path() -> Path:
    """The bundled weights: ``models/sr-small.pt`` beside the package."""
    return MODELS_DIR / DEFAULT_MODEL_NAME


@dataclass
class CheckpointInfo:
    """What a loaded model knows about itself (attached to the network as ``model.info``)."""

    path: str
    threshold: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)
    bands: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else "untrained"


def git_commit(repo: Path = REPO_DIR) -> str | None:
    """Current commit hash of the repository (None when git or the repository is unavailable)."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _plain(obj: Any) -> Any:
    """Convert numpy scalars / tuples / paths to values ``weights_only`` loading accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, torch.Tensor):
        return obj
    for t in (bool, int, float):  # bool first (it is an int); numpy floats / IntEnums become plain values
        if isinstance(obj, t):
            return t(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)  # str and its subclasses (torch's TorchVersion) as plain str


def checkpoint_dict(
    model: SRNet,
    *,
    threshold: float = 0.5,
    provenance: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cfg = model.config
    prov = {"created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
            "torch": str(torch.__version__), "n_params": model.n_params(), **(provenance or {})}
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": _plain(cfg.to_dict()),
        "bands": list(cfg.bands),
        "features": list(FEATURE_NAMES),
        "normalisation": {"log_offset": LOG_OFFSET, "band_mean": list(cfg.band_mean), "band_std": list(cfg.band_std)},
        "threshold": float(threshold),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": _plain(prov),
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def save_checkpoint(
    model: SRNet,
    path: str | Path,
    *,
    threshold: float = 0.5,
    provenance: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its config, band list, normalisation, threshold and provenance (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint_dict(model, threshold=threshold, provenance=provenance, train_state=train_state), tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint dict (weights only: no code runs). Raises :class:`ModelError` with a fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"model checkpoint {path} not found; train one with `python -m sr_core train --out {path}` "
            f"or pass the bundled weights {default_model_path()}"
        )
    try:
        with warnings.catch_warnings():  # torch warns about a foreign file's pickle protocol before refusing it
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated / foreign file
        raise ModelError(
            f"model checkpoint {path} is unreadable or not a weights-only torch file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); re-download or retrain it"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path} is not an sr_core model checkpoint (no format '{FORMAT}'); "
                         "use a file written by `python -m sr_core train`")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path} has checkpoint format version {ckpt.get('format_version')}, this sr_core reads "
                         f"version {FORMAT_VERSION}; retrain the model or install the matching sr_core version")
    if list(ckpt.get("features", [])) != list(FEATURE_NAMES):
        raise ModelError(f"{path} was trained on input features {ckpt.get('features')}, this sr_core computes "
                         f"{list(FEATURE_NAMES)}; retrain the model with this version")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "") -> SRNet:
    """Rebuild an :class:`SRNet` (eval mode, CPU) from a checkpoint dict."""
    try:
        cfg = SRNetConfig.from_dict(dict(ckpt["config"]))
        model = SRNet(cfg)
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"model checkpoint {path or '<dict>'} does not match this network ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}); retrain it with this sr_core version"
        ) from None
    model.info = CheckpointInfo(  # type: ignore[assignment]
        path=str(path), threshold=float(ckpt.get("threshold", 0.5)),
        provenance=dict(ckpt.get("provenance", {})), bands=list(ckpt.get("bands", cfg.bands)),
    )
    return model.eval()


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> SRNet:
    """Load a checkpoint (default: the bundled weights) onto ``device`` in eval mode.

    The returned network carries ``model.info`` (:class:`CheckpointInfo`: path, threshold, provenance, bands).
    """
    path = Path(path) if path is not None else default_model_path()
    model = model_from_checkpoint(read_checkpoint(path), path)
    return model.to(device)


def strip_checkpoint(src: str | Path, dst: str | Path, *, provenance: dict[str, Any] | None = None) -> Path:
    """Copy a checkpoint without its training state (optimizer, RNG, raw weights): the file to bundle.

    ``provenance`` entries are merged into the stored provenance (e.g. measured test metrics)."""
    ckpt = read_checkpoint(src)
    model_from_checkpoint(ckpt, src)  # refuse to bundle a file that does not load
    ckpt.pop("train_state", None)
    ckpt["provenance"] = _plain({**ckpt.get("provenance", {}), **(provenance or {}), "stripped_from": str(src)})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(dst)
    return dst


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """Plain, JSON-able facts about a model checkpoint, for ``sr_core info MODEL.pt``: the network (parameters,
    widths), bands and threshold, how and on what it was trained, its validation history, whether it can resume
    training and from which step. Loads weights only (:func:`read_checkpoint`): no code in the file runs."""
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)  # refuses a file whose weights do not fit the network
    prov = dict(ckpt.get("provenance", {}))
    cfg = model.config
    state = ckpt.get("train_state")
    resumable = None
    if isinstance(state, dict):
        tc = state.get("train_config") or {}
        resumable = {"step": int(state.get("step", 0)), "steps": int(tc.get("steps", 0)) or None,
                     "simulator_version": state.get("simulator_version")}
    history = [dict(h) for h in prov.get("history", []) if isinstance(h, dict)]
    best = max((h for h in history if isinstance(h.get("wmcc@best"), (int, float))), key=lambda h: h["wmcc@best"],
               default=None)
    lineage = [dict(p) for p in prov.get("lineage", []) if isinstance(p, dict)]
    return {
        "path": str(path),
        "name": Path(path).name,
        "format": f"{ckpt.get('format')} v{ckpt.get('format_version')}",
        "n_params": model.n_params(),
        "network": {k: getattr(cfg, k) for k in ("date_channels", "heads", "doy_freqs", "doy_hidden", "width",
                                                  "blocks10", "width20", "blocks20", "width40", "blocks40",
                                                  "up_channels")},
        "bands": list(ckpt.get("bands", cfg.bands)),
        "threshold": float(ckpt.get("threshold", 0.5)),
        "created": prov.get("created"),
        "git_commit": prov.get("git_commit"),
        "torch": prov.get("torch"),
        "simulator_version": prov.get("simulator_version"),
        "steps": prov.get("steps"),
        "init_from": prov.get("init_from"),
        "seed": prov.get("seed"),
        "device": prov.get("device"),
        "data": prov.get("data"),
        "validation": prov.get("validation"),
        "train_config": dict(prov.get("train_config") or {}),
        "history": history,
        "best_validation": ({"step": best.get("step"), "wmcc": best.get("wmcc@best"),
                             "threshold": best.get("best_threshold")} if best else None),
        "lineage": lineage,
        "lineage_steps": sum(int(p.get("steps", 0)) for p in lineage) or None,
        "resumable": resumable,
        "stripped_from": prov.get("stripped_from"),
        "measured": dict(prov.get("test_metrics") or {}),  #: figures measured after training, stored with the weights
    }
