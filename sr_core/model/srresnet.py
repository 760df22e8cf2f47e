"""An SRResNet of the size EagleEyes (3rd place) used, for cost comparison only (``python -m sr_core bench``).

49 residual blocks × 125 channels (conv–BN–PReLU–conv–BN), a long skip, two ×2 pixel-shuffle upsamplers and
104 input channels (8 dates × 13 channels stacked), one output logit at 4×. About 16 M parameters. Never trained
here: it only measures what that design costs on this machine.
"""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.PReLU(c),
                                  nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, in_channels: int = 104, channels: int = 125, blocks: int = 49, out_channels: int = 1) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*[_Block(channels) for _ in range(blocks)])
        self.mid = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.up = nn.Sequential(
            nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels),
            nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels),
        )
        self.tail = nn.Conv2d(channels, out_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 104, H, W) → (B, 1, 4H, 4W)
        h = self.head(x)
        return self.tail(self.up(h + self.mid(self.body(h))))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
