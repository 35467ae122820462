"""The "standard CNN" of Nakkiran et al. (2021): four 3x3 convolutions of widths [k, 2k, 4k, 8k],
each followed by BatchNorm and ReLU, a 2x2 max-pool after each of the first three and a pool over
what is left after the last (4x4 on 32x32 inputs: adaptive, so any image size works), then one
linear layer 8k -> classes. On 3x32x32 with 10 classes: 1,558,026 parameters at k = 64.

Written as `stem` (the first convolution) + `trunk` (the rest, down to the pooled features) +
`head`, the form `stacked2d.Grouped2D` stacks members in (grouped convolutions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MULTS = (1, 2, 4, 8)


class ImageNet(nn.Module):
    """What the image networks share: a `stem`, a `trunk` ending in a global pool, a linear `head`;
    flat images (N, C*H*W) are viewed as `shape`; dropout before the head."""

    shape: tuple[int, int, int]
    dropout: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # flat images: (N, C*H*W)
            x = x.view(-1, *self.shape)
        h = self.trunk(self.stem(x)).flatten(1)
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        return self.head(h)


class CNN2D(ImageNet):
    def __init__(self, shape: tuple[int, int, int], num_classes: int, width: int = 64, dropout: float = 0.0):
        super().__init__()
        C, H, W = shape
        self.shape = tuple(shape)
        self.dropout = dropout
        self.stem = nn.Conv2d(C, width, 3, padding=1)
        layers: list[nn.Module] = [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        h, w, c = H, W, width
        for i, mult in enumerate(MULTS):
            if i:
                layers += [nn.Conv2d(c, width * mult, 3, padding=1), nn.BatchNorm2d(width * mult), nn.ReLU(inplace=True)]
                c = width * mult
            if i < len(MULTS) - 1:
                if min(h, w) >= 2:  # (tiny images: no pool once a side is down to 1)
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
            else:
                layers.append(nn.AdaptiveMaxPool2d(1))
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)



def cnn2d_cost(shape: tuple[int, int, int], width: int) -> int:
    """Multiply-adds per image of the convolutions (what bucketing a width sweep weighs)."""
    C, H, W = shape
    total, c, h, w = 0, C, H, W
    for i, mult in enumerate(MULTS):
        total += 9 * c * width * mult * h * w
        c = width * mult
        if i < len(MULTS) - 1 and min(h, w) >= 2:
            h, w = h // 2, w // 2
    return total
