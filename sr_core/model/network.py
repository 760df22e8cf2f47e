"""The super-resolution network: a whole time series at 10 m in, cultivated-land logits at 2.5 m out.

Shape of the computation (B batch, T dates, C per-date channels, H × W at 10 m)::

    bands (B,T,H,W,12), valid (B,T,H,W), cloud_prob, day of year (B,T)
      └─ date_features, pixels as rows ─► (B,H,W,T,17)   normalised bands, NDVI/NDWI/NDBI, cloud prob, valid mask
      └─ TemporalEncoder: per-date pixel MLP shared over dates (+ day-of-year encoding) ─► (N,T,C), then masked
         softmax attention over dates (each head its own weights; cloudy / no-data dates masked out, padded
         dates excluded) and masked mean / std ─► (B,(heads+2)·C+1,H,W)
      └─ Trunk: residual convs at 10 m with a small 20 m / 40 m U-shaped context branch ─► (B,width,H,W)
      └─ Upsampler: 1×1 conv + pixel shuffle ×4, one 3×3 conv at 2.5 m, plus a bilinear 10 m logit
         ─► logits (B,1,4H,4W)

Every operation over the date axis is a masked sum, so the output does not depend on the order of the dates,
and any number of dates (1 … 60+) works. The expensive layers come after the temporal pooling.
No normalisation layer uses batch or tile statistics, so tiled inference is consistent with whole-patch inference.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..bands import BAND_NAMES
from ..features import DEFAULT_BAND_MEAN, DEFAULT_BAND_STD, N_DATE_FEATURES, date_features

log = logging.getLogger(__name__)

SCALE = 4
#: working memory of the date-axis stage per pixel, per date and per date channel (bytes, float32, inference):
#: 14.9 measured over one single-chunk pass of 500 × 500 px, 48 dates (``bench/gpu_check.py --cpu-memory``, which
#: includes the trunk; docs/SCALING.md), rounded up
BYTES_PER_PIXEL_DATE_CHANNEL = 16
GPU_MEMORY_FRACTION = 0.5  #: share of the free GPU memory one date-axis chunk may use
_NEG = -1.0e4  # attention logit offset for cloudy / no-data dates (still finite: all-cloudy pixels fall back)
_PAD = -1.0e9  # offset for padded (absent) dates: never attended


@dataclass
class SRNetConfig:
    """Everything needed to rebuild the network; stored in every checkpoint as a plain dict."""

    date_channels: int = 32  #: per-date encoder width C
    heads: int = 4  #: attention heads in the temporal pooling (C must be divisible by heads)
    doy_freqs: int = 3  #: sin/cos harmonics of the day of year
    doy_hidden: bool = False  #: also feed the day-of-year encoding into the per-date MLP (season-aware features)
    width: int = 48  #: trunk width at 10 m
    blocks10: int = 2  #: residual blocks at 10 m (half before, half after the context branch)
    width20: int = 80  #: context branch width at 20 m
    blocks20: int = 2
    width40: int = 112  #: context branch width at 40 m
    blocks40: int = 2
    up_channels: int = 12  #: decoder width at 2.5 m (pixel shuffle, then one 3×3 conv)
    band_mean: list[float] = field(default_factory=lambda: list(DEFAULT_BAND_MEAN))  #: of log(ρ + 0.01)
    band_std: list[float] = field(default_factory=lambda: list(DEFAULT_BAND_STD))
    bands: list[str] = field(default_factory=lambda: list(BAND_NAMES))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SRNetConfig:
        """``tiny`` (tests, ~30 k parameters), ``small`` (the bundled size), ``base`` (the defaults, larger)."""
        presets: dict[str, dict[str, Any]] = {
            "tiny": dict(date_channels=8, heads=2, doy_freqs=2, width=12, blocks10=1, width20=16, blocks20=1,
                         width40=16, blocks40=1, up_channels=8),
            "small": dict(date_channels=24, heads=4, width=32, blocks10=2, width20=64, blocks20=1, width40=96,
                          blocks40=2, up_channels=8),
            "base": {},
        }
        if name not in presets:
            raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(presets)}")
        return cls(**{**presets[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SRNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**d)


class TemporalEncoder(nn.Module):
    """Per-date pixel MLP shared over dates, then masked softmax attention + masked mean / std over dates.

    Works on pixels as rows, (N, T, ·) with N = B·H·W, so every date-axis step is a GEMM or a batched matrix
    product (memory-bound elementwise passes over the T × C tensor are the cost on a CPU, so there are few).
    Each head scores every date from its features plus a day-of-year encoding and pools all C channels with
    its softmax weights; the masked mean and std over clear dates complete the summary. Cloudy / no-data dates
    get a large negative score; a pixel never seen clear thus falls back to all its dates (the ``frac`` channel,
    the share of clear dates, tells the trunk). Padded dates (``present`` False) are never used.
    """

    def __init__(self, cin: int, c: int, heads: int, doy_freqs: int, doy_hidden: bool = False) -> None:
        super().__init__()
        self.c, self.heads, self.freqs = c, heads, doy_freqs
        self.inp = nn.Linear(cin, c)
        self.hidden = nn.Linear(c, c)
        self.score = nn.Linear(c, heads)
        self.doy = nn.Linear(2 * doy_freqs, heads)  # per-date score offset: heads can prefer seasons
        # per-date offset of the hidden layer: "low NDVI in March" and "low NDVI in August" become different features
        # (zero-initialised, so a network trained without it starts from the same function)
        self.doy_hid = nn.Linear(2 * doy_freqs, c, bias=False) if doy_hidden else None
        if self.doy_hid is not None:
            nn.init.zeros_(self.doy_hid.weight)
        self.out_channels = (heads + 2) * c + 1

    def doy_encoding(self, doy: torch.Tensor) -> torch.Tensor:  # (B, T) → (B, T, 2F)
        k = torch.arange(1, self.freqs + 1, device=doy.device, dtype=torch.float32)
        ang = 2 * math.pi * doy.float().unsqueeze(-1) * k / 365.25
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, present: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """x (B, h, W, T, cin) features, valid (B, h, W, T) bool, present (B, T) bool, doy (B, T).
        Returns (B, h, W, (heads+2)·C + 1)."""
        B, H, W, T, _ = x.shape
        n = B * H * W
        enc = self.doy_encoding(doy)  # (B, T, 2F)
        h = F.gelu(self.inp(x))
        if self.doy_hid is not None:
            h = h + self.doy_hid(enc)[:, None, None].to(h.dtype)
        h = F.gelu(self.hidden(h))  # (B, h, W, T, C)
        s = self.score(h).float() + self.doy(enc)[:, None, None]  # (B, h, W, T, heads)
        vm = (valid & present[:, None, None, :]).float().unsqueeze(-1)  # (B, h, W, T, 1)
        pm = present.float()[:, None, None, :, None]  # (B, 1, 1, T, 1)
        s = (s + (1.0 - vm) * _NEG + (1.0 - pm) * _PAD).reshape(n, T, self.heads)
        # softmax over dates along the last axis of a contiguous (N, heads, T): ~3x faster on a CPU than over the
        # strided middle axis of (N, T, heads)
        a = torch.softmax(s.transpose(1, 2).contiguous(), dim=2)  # (N, heads, T)
        vm = vm.reshape(n, 1, T)
        n_valid = vm.sum(2, keepdim=True)  # (N, 1, 1)
        w = torch.where(n_valid > 0, vm, pm.expand(B, H, W, T, 1).reshape(n, 1, T))
        w = w / w.sum(2, keepdim=True).clamp_min(1.0)  # (N, 1, T) mean weights (all-cloudy pixel → all dates)
        hv = h.reshape(n, T, self.c)
        weights = torch.cat([a, w], dim=1).to(hv.dtype)  # (N, heads + 1, T)
        pooled = torch.bmm(weights, hv)  # (N, heads + 1, C): attention heads, then the mean
        sq = torch.bmm(weights[:, -1:], hv * hv)  # (N, 1, C)
        mean = pooled[:, -1:].float()
        std = torch.sqrt((sq.float() - mean * mean).clamp_min(0.0) + 1e-6).to(hv.dtype)
        frac = (n_valid[:, 0] / present.float().sum(1).clamp_min(1.0).repeat_interleave(H * W)[:, None]).to(hv.dtype)
        out = torch.cat([pooled.reshape(n, -1), std[:, 0], frac], dim=1)
        return out.view(B, H, W, -1)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.gain = nn.Parameter(torch.tensor(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gain * self.c2(F.gelu(self.c1(x)))


def _blocks(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(c) for _ in range(n)])


class SRNet(nn.Module):
    """Multi-date 4× super-resolution segmentation network (see the module docstring for the data flow)."""

    def __init__(self, config: SRNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SRNetConfig()
        self.register_buffer("band_mean", torch.tensor(cfg.band_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("band_std", torch.tensor(cfg.band_std, dtype=torch.float32), persistent=False)
        self.pixel_chunk = 2048  # pixels per date-axis chunk on a CPU (not part of the config: no effect on results)
        self.last_chunk_pixels = 0  # pixels per chunk of the latest forward pass (after any out-of-memory halving)
        self.temporal = TemporalEncoder(N_DATE_FEATURES, cfg.date_channels, cfg.heads, cfg.doy_freqs, cfg.doy_hidden)
        w, w2, w4 = cfg.width, cfg.width20, cfg.width40
        self.stem = nn.Conv2d(self.temporal.out_channels, w, 1)
        n_pre = (cfg.blocks10 + 1) // 2
        self.pre = _blocks(w, n_pre)
        self.down2 = nn.Conv2d(w, w2, 3, stride=2, padding=1)
        self.mid2 = _blocks(w2, cfg.blocks20)
        self.down4 = nn.Conv2d(w2, w4, 3, stride=2, padding=1)
        self.mid4 = _blocks(w4, cfg.blocks40)
        self.up4 = nn.Conv2d(w4, w2, 1)
        self.fuse2 = _blocks(w2, 1)
        self.up2 = nn.Conv2d(w2, w, 1)
        self.post = _blocks(w, max(cfg.blocks10 - n_pre, 1))
        u = cfg.up_channels
        self.shuffle = nn.Sequential(nn.Conv2d(w, u * SCALE * SCALE, 1), nn.PixelShuffle(SCALE))
        self.fine = nn.Conv2d(u, u, 3, padding=1)
        self.head = nn.Conv2d(u, 1, 1)
        self.coarse = nn.Conv2d(w, 1, 1)  # 10 m logit, bilinearly upsampled and added: the fine path learns detail

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def bytes_per_pixel(self, n_dates: int) -> int:
        """Estimated working memory of the date-axis stage per pixel of a chunk with ``n_dates`` dates (float32)."""
        return BYTES_PER_PIXEL_DATE_CHANNEL * self.config.date_channels * max(n_dates, 1)

    def chunk_pixels(self, n_dates: int, device: torch.device) -> int:
        """Pixels per date-axis chunk: :attr:`pixel_chunk` on a CPU (cache-sized); on CUDA as many as
        :data:`GPU_MEMORY_FRACTION` of the free memory holds (``torch.cuda.mem_get_info``, at
        :meth:`bytes_per_pixel`); an out-of-memory error halves it anyway (see :meth:`forward`)."""
        if device.type == "cpu":
            return self.pixel_chunk
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return max(1, int(free * GPU_MEMORY_FRACTION) // self.bytes_per_pixel(n_dates))
        return 1 << 20  # MPS: no free-memory query; a whole 500 × 500 tile holds 250 k pixels

    def forward(
        self,
        bands: torch.Tensor,
        valid: torch.Tensor,
        doy: torch.Tensor,
        cloud_prob: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
        *,
        chunk: int | None = None,
    ) -> torch.Tensor:
        """bands (B,T,H,W,12) reflectance (a Patch's layout), valid (B,T,H,W) bool, doy (B,T) day of year,
        cloud_prob (B,T,H,W) 0–1 or None, present (B,T) bool marks real (non-padded) dates.
        ``chunk``: pixels per date-axis chunk (default :meth:`chunk_pixels`; the result does not depend on it).
        Returns float32 logits (B, 1, 4H, 4W)."""
        B, T, H, W, _ = bands.shape
        present = torch.ones(B, T, dtype=torch.bool, device=bands.device) if present is None else present.bool()
        # pixels as rows (B, rows, W, T, ·), a few image rows at a time: the date-axis work is memory-bound, and
        # chunks that stay in the CPU cache run ~3x faster than whole-tile passes (on a GPU: as large as memory allows)
        step = max(1, (chunk or self.chunk_pixels(B * T, bands.device)) // W)
        parts = []
        r0 = 0
        while r0 < H:
            rows = slice(r0, r0 + step)
            try:
                valid_p = valid[:, :, rows].bool().permute(0, 2, 3, 1)
                cloud_p = None if cloud_prob is None else cloud_prob[:, :, rows].permute(0, 2, 3, 1)
                x = date_features(bands[:, :, rows].permute(0, 2, 3, 1, 4), valid_p, cloud_p, self.band_mean,
                                  self.band_std)
                parts.append(self.temporal(x, valid_p, present, doy))
            except torch.OutOfMemoryError:
                if step == 1:
                    raise
                step //= 2  # free what the failed chunk held (outside the except block), then retry it smaller
            else:
                r0 += step
                continue
            log.warning("out of memory in the date-axis stage (%d dates, %d px wide): retrying with %d row(s) "
                        "(%d px) per chunk", T, W, step, step * W)
            release_device_memory(bands.device)
        self.last_chunk_pixels = step * W
        f = torch.cat(parts, dim=1).permute(0, 3, 1, 2)  # (B, P, H, W), channels-last in memory
        ph, pw = (-H) % 4, (-W) % 4  # the context branch halves twice: pad to a multiple of 4, crop at the end
        if ph or pw:
            f = F.pad(f, (0, pw, 0, ph), mode="replicate")
        f10 = self.pre(F.gelu(self.stem(f)))
        f20 = self.mid2(F.gelu(self.down2(f10)))
        f40 = self.mid4(F.gelu(self.down4(f20)))
        f20 = self.fuse2(f20 + self.up4(F.interpolate(f40, scale_factor=2, mode="bilinear", align_corners=False)))
        f10 = self.post(f10 + self.up2(F.interpolate(f20, scale_factor=2, mode="bilinear", align_corners=False)))
        fine = self.head(F.gelu(self.fine(F.gelu(self.shuffle(f10)))))
        coarse = F.interpolate(self.coarse(f10), scale_factor=SCALE, mode="bilinear", align_corners=False)
        out = (fine + coarse).float()
        return out[..., : SCALE * H, : SCALE * W]


def grow_as_identity(model: SRNet, missing: list[str]) -> list[str]:
    """Zero the gain of every residual block whose weights a checkpoint did not provide (``missing`` keys of
    ``load_state_dict(strict=False)``): a block with gain 0 is the identity, so a network grown by blocks
    computes what the smaller one did and fine-tuning starts from there. Returns the blocks' names."""
    names = sorted({k.rsplit(".", 1)[0] for k in missing if k.endswith(".gain")})
    modules = dict(model.named_modules())
    with torch.no_grad():
        for n in names:
            block = modules[n]
            if isinstance(block, ResBlock):
                block.gain.zero_()
    return [n for n in names if isinstance(modules.get(n), ResBlock)]


#: config widths a checkpoint can be widened along (``date_channels``: the per-date encoder, see :func:`grow_widths`)
WIDENABLE = ("date_channels", "width", "width20", "width40", "up_channels")


def _encoder_positions(c: int, heads: int, kept: int) -> list[int]:
    """Where the first ``kept`` channels of every group sit in the temporal encoder's output when its per-date width
    is ``c``: per pooled group (the ``heads`` attention heads, then the mean), then the standard deviations, then the
    clear-date share last (:class:`TemporalEncoder` ``forward``)."""
    return [g * c + k for g in range(heads + 2) for k in range(kept)] + [(heads + 2) * c]


def _spread_encoder_inputs(stem: torch.Tensor, c_old: int, c_new: int, heads: int) -> torch.Tensor:
    """The trunk's first 1×1 convolution (``stem.weight``, (out, (heads+2)·c_old+1, 1, 1)) re-indexed for a per-date
    encoder of ``c_new`` channels: each old input column moves to where the same (group, channel) sits in the wider
    encoder's output, and the columns of the added channels are zero (silent)."""
    out = stem.new_zeros((stem.shape[0], (heads + 2) * c_new + 1, *stem.shape[2:]))
    out[:, _encoder_positions(c_new, heads, c_old)] = stem[:, _encoder_positions(c_old, heads, c_old)]
    return out


def grow_widths(model: SRNet, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Load a narrower network's ``state`` into ``model``, whose per-date encoder, trunk and decoder are as wide or
    wider (``--date-channels``, ``--width``, ``--width20``, ``--width40`` with ``--init``), so that the wide network
    computes exactly what the narrow one did.

    Every weight of the narrow network goes into the leading slice of the wide tensor. The channels it adds keep
    their fresh initialisation for what flows *into* them, and every weight from an added channel *into* an old one
    is zero: the old channels see only old channels, the outputs read only old channels, and the added ones start
    as silent extra capacity that training switches on (no normalisation layer mixes channels). The per-date
    encoder's output interleaves its channels (per attention head, the mean and the std), so for a wider encoder
    the trunk's first convolution is re-indexed first (:func:`_spread_encoder_inputs`): the attention scores read
    old channels only, so the pooling weights, and with them every old pooled value, are unchanged.
    Returns (names of the widened tensors, names the checkpoint lacks: added blocks, for :func:`grow_as_identity`);
    raises ``ValueError`` where the checkpoint is wider than the network, a tensor's shape differs in anything but
    its channel counts, or the checkpoint holds weights the network has not."""
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(f"weights {unexpected[:5]} do not fit the requested network")
    state = dict(state)
    c_old = int(state["temporal.inp.weight"].shape[0]) if "temporal.inp.weight" in state else model.config.date_channels
    c_new = model.config.date_channels
    if c_old > c_new:
        raise ValueError(f"the checkpoint's per-date encoder has {c_old} channels, more than the {c_new} asked "
                         "(a network can be widened, not narrowed)")
    if c_old < c_new and "stem.weight" in state:
        if int(state["temporal.score.weight"].shape[0]) != model.config.heads:
            raise ValueError("the per-date encoder can be widened only with the same number of attention heads")
        state["stem.weight"] = _spread_encoder_inputs(state["stem.weight"], c_old, c_new, model.config.heads)
    grown: list[str] = []
    with torch.no_grad():
        for name, old in state.items():
            new = own[name]
            if new.shape == old.shape:
                new.copy_(old)
                continue
            if new.ndim != old.ndim or new.shape[2:] != old.shape[2:] or any(
                    o > n for o, n in zip(old.shape, new.shape, strict=True)):
                raise ValueError(f"{name}: the checkpoint's shape {tuple(old.shape)} cannot grow into "
                                 f"{tuple(new.shape)} (a network can be widened, not narrowed)")
            lead = tuple(slice(0, k) for k in old.shape)
            new[lead] = old
            if new.ndim >= 2 and new.shape[1] > old.shape[1]:
                new[: old.shape[0], old.shape[1]:] = 0.0  # added inputs into old outputs: silent at the start
            grown.append(name)
    return grown, sorted(set(own) - set(state))


def release_device_memory(device: torch.device) -> None:
    """Hand the allocator's cached blocks back to the device (after an out-of-memory error or a model eviction)."""
    import gc

    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
