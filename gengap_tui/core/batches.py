"""The training data on the device, and the batches taken from it (docs/ARCHITECTURE.md,
"The image path").

`DeviceSplits.build` copies a `data.Dataset` to the device once: the training split (with every
stacked member's labels: `y_train` is `[G, N]` then), validation, test, RATT's randomly labelled
points, and `x_fit / y_fit`, what the optimizer sees (the training split, plus RATT's points).
Inputs are flat `(N, D)`, except for an image model (`models.is_image_model`) on an image set,
whose inputs are `(N, C, H, W)`, channels_last on CUDA (`models.conv_format`).

`Batches.take(idx)` is the one place a training batch is made: the rows `idx` (a batch `[B]`, or
`[G, B]`, one per stacked member) of `x_fit` with their labels, plus input noise. Evaluation reads
the splits whole and never goes through it, so nothing a batch gets (noise; per-channel
normalization and augmentation belong here too) reaches the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import conv_format


@dataclass
class DeviceSplits:
    x_train: torch.Tensor
    y_train: torch.Tensor  # [N], or [G, N]: each stacked member's labels
    y_clean: torch.Tensor
    changed: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_fit: torch.Tensor
    y_fit: torch.Tensor
    x_random: torch.Tensor | None = None
    y_random: torch.Tensor | None = None

    @classmethod
    def build(cls, data, device: torch.device, images: bool = False, members: list | None = None) -> "DeviceSplits":
        """`data` on `device`; `members` (datasets, one per stacked member) stack the labels.
        `images`: inputs as `(N, C, H, W)` (`data.image_shape`) in the device's `conv_format`."""

        def x(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
            if images:
                t = t.view(-1, *data.image_shape).contiguous(memory_format=conv_format(device))
            return t

        def y(attr: str) -> torch.Tensor:
            if members is None:
                return torch.from_numpy(np.ascontiguousarray(getattr(data, attr))).to(device)
            return torch.from_numpy(np.stack([getattr(d, attr) for d in members])).to(device)

        s = cls(x_train=x(data.x_train), y_train=y("y_train"), y_clean=y("y_train_clean"), changed=y("changed"),
                x_val=x(data.x_val), y_val=y_of(data.y_val, device), x_test=x(data.x_test),
                y_test=y_of(data.y_test, device), x_fit=None, y_fit=None)  # type: ignore[arg-type]
        if data.x_random is not None:
            s.x_random, s.y_random = x(data.x_random), y("y_random")
            s.x_fit = torch.cat([s.x_train, s.x_random])
            s.y_fit = torch.cat([s.y_train, s.y_random], dim=-1)
        else:
            s.x_fit, s.y_fit = s.x_train, s.y_train
        return s


def y_of(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


class Batches:
    """Training batches from `x_fit / y_fit` (see the module's docstring)."""

    def __init__(self, splits: DeviceSplits, cfg):
        self.x, self.y = splits.x_fit, splits.y_fit
        self.reg = cfg.regularization
        self.format = conv_format(self.x.device)

    def __len__(self) -> int:
        return self.y.shape[-1]

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of rows `idx` (`[B]`, or `[G, B]` with one row of labels per member): inputs
        `[B, ...]` / `[G, B, ...]` and labels of the same leading shape. Device work only (it runs
        inside a recorded CUDA graph)."""
        xb = self.x[idx]
        yb = self.y[idx] if idx.dim() == 1 else torch.gather(self.y, 1, idx)
        if xb.dim() == 4:  # images: in the layout the device's convolutions want
            xb = xb.contiguous(memory_format=self.format)
        if self.reg.input_noise > 0:
            xb = xb + self.reg.input_noise * torch.randn_like(xb)
        return xb, yb
