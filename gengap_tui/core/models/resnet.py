"""The pre-activation ResNet-18 of width k (He et al. 2016; Nakkiran et al. 2021's double-descent
network): a 3x3 stem 3 -> k, four stages of two pre-activation blocks (BatchNorm, ReLU, 3x3
convolution, twice) of widths [k, 2k, 4k, 8k] with strides [1, 2, 2, 2] (a 1x1 shortcut where the
shape changes), global average pooling, one linear layer 8k -> classes. k = 64 is the standard
ResNet-18: 11,171,146 parameters on 3x32x32 with 10 classes.

Written as `stem` + `trunk` + `head` for `stacked2d.Grouped2D` (see `cnn2d.py`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cnn2d import ImageNet

MULTS = (1, 2, 4, 8)
STRIDES = (1, 2, 2, 2)


class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


class PreActResNet18(ImageNet):
    def __init__(self, shape: tuple[int, int, int], num_classes: int, width: int = 64, dropout: float = 0.0):
        super().__init__()
        C = shape[0]
        self.shape = tuple(shape)
        self.dropout = dropout
        self.stem = nn.Conv2d(C, width, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        c = width
        for mult, stride in zip(MULTS, STRIDES):
            blocks += [PreActBlock(c, width * mult, stride), PreActBlock(width * mult, width * mult, 1)]
            c = width * mult
        self.trunk = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(c, num_classes)



def resnet18_cost(shape: tuple[int, int, int], width: int) -> int:
    """Multiply-adds per image of the convolutions (what bucketing a width sweep weighs)."""
    C, H, W = shape
    total = 9 * C * width * H * W
    c, h, w = width, H, W
    for mult, stride in zip(MULTS, STRIDES):
        co = width * mult
        h, w = -(-h // stride), -(-w // stride)
        total += 9 * (c * co + 3 * co * co) * h * w + (c * co * h * w if c != co or stride != 1 else 0)
        c = co
    return total
