"""The lab's models (`model.kind`), solo and stacked (docs/ARCHITECTURE.md, "Models").

- `mlp` (`mlp.MLP`) and `cnn1d` (`cnn1d.CNN1D`, sequence inputs) read every data set flat;
- `cnn2d` (`cnn2d.CNN2D`, Nakkiran et al.'s standard CNN) and `resnet18`
  (`resnet.PreActResNet18`, pre-activation, width k) read images `(N, C, H, W)` and need a data
  set that has an image shape (`data.Dataset.image_shape`).

Stacked forms train several members as one model (`run.seeds` seeds, the widths of a sweep):
`grouped.GroupedMLP` (batched matrix multiplies, width buckets padded and masked),
`stacked1d.StackedCNN1D` and `stacked2d.Stacked2D` (grouped convolutions).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .cnn1d import CNN1D
from .cnn2d import CNN2D, cnn2d_cost
from .grouped import GroupedMLP, mlp_cost, plan_buckets
from .mlp import ACTIVATIONS, MLP
from .resnet import PreActResNet18, resnet18_cost
from .stacked1d import StackedCNN1D
from .stacked2d import Grouped2D, Stacked2D, conv_format

__all__ = ["ACTIVATIONS", "MLP", "CNN1D", "CNN2D", "PreActResNet18", "GroupedMLP", "StackedCNN1D", "Grouped2D",
           "Stacked2D", "IMAGE_KINDS", "build_model", "conv_format", "count_params", "is_image_model", "mlp_cost",
           "plan_buckets", "width_cost"]

IMAGE_KINDS = {"cnn2d": (CNN2D, cnn2d_cost), "resnet18": (PreActResNet18, resnet18_cost)}


def is_image_model(kind: str) -> bool:
    """Whether `model.kind` reads images `(N, C, H, W)` (the others read flat inputs)."""
    return kind in IMAGE_KINDS


def _check_image_shape(kind: str, image_shape) -> tuple[int, int, int]:
    if image_shape is None:
        raise ValueError(f"model.kind: {kind!r} needs an image data set (its inputs are (N, C, H, W)); this data set "
                         "has flat inputs: use 'mlp' or 'cnn1d'")
    return tuple(int(s) for s in image_shape)


def build_model(cfg, in_dim: int, num_classes: int, image_shape: tuple[int, int, int] | None = None) -> nn.Module:
    """The solo model of a config (built with torch's current random state: seed it first)."""
    m, reg = cfg.model, cfg.regularization
    if m.kind == "mlp":
        return MLP(in_dim, num_classes, m.depth, m.width, m.activation, reg.dropout)
    if m.kind in IMAGE_KINDS:
        cls, _ = IMAGE_KINDS[m.kind]
        return cls(_check_image_shape(m.kind, image_shape), num_classes, m.width, reg.dropout)
    return CNN1D(in_dim, num_classes, m.channels, m.conv_layers, m.kernel_size, m.activation, reg.dropout)


def width_cost(kind: str, in_dim: int, depth: int, num_classes: int,
               image_shape: tuple[int, int, int] | None = None) -> Callable[[int], int]:
    """A member's multiply-adds per example as a function of its width (how width buckets are cut)."""
    if kind in IMAGE_KINDS:
        shape = _check_image_shape(kind, image_shape)
        cost = IMAGE_KINDS[kind][1]
        return lambda w: cost(shape, w)
    return lambda w: mlp_cost(in_dim, w, depth, num_classes)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
