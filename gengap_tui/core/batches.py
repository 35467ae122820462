"""The training data on the device, and the batches taken from it (docs/ARCHITECTURE.md,
"The image path").

`DeviceSplits.build` copies a `data.Dataset` to the device once: the training split (with every
stacked member's labels: `y_train` is `[G, N]` then), validation, test, RATT's randomly labelled
points, and `x_fit / y_fit`, what the optimizer sees (the training split, plus RATT's points).
An image set's splits are `images.DeviceImages`: the stored pixels (uint8 for 8-bit images),
normalized per channel when indexed, `(N, C, H, W)` for an image model (`models.is_image_model`)
in the memory format the device's convolutions want (`models.conv_format`: channels_last on CUDA)
and flat `(N, C*H*W)` for the others; any other set's are float tensors `(N, D)`.

`Batches.take(idx)` is the one place a training batch is made: the rows `idx` (a batch `[B]`, or
`[G, B]`, one per stacked member) of `x_fit` with their labels, augmented (`regularization.augment`:
the draws `redraw` made for this epoch, `core/augment.py`), normalized, plus input noise.
Evaluation reads the splits through plain indexing and never goes through it, so nothing a batch
gets (augmentation, noise) reaches the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import augment, images as imgs
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

        def x(a: np.ndarray):
            return imgs.to_device(a, data.mean, data.std, device, "image" if images else "flat")

        def y(attr: str) -> torch.Tensor:
            if members is None:
                return torch.from_numpy(np.ascontiguousarray(getattr(data, attr))).to(device)
            return torch.from_numpy(np.stack([getattr(d, attr) for d in members])).to(device)

        s = cls(x_train=x(data.x_train), y_train=y("y_train"), y_clean=y("y_train_clean"), changed=y("changed"),
                x_val=x(data.x_val), y_val=y_of(data.y_val, device), x_test=x(data.x_test),
                y_test=y_of(data.y_test, device), x_fit=None, y_fit=None)  # type: ignore[arg-type]
        if data.x_random is not None:
            s.x_random, s.y_random = x(data.x_random), y("y_random")
            s.x_fit = imgs.cat(s.x_train, s.x_random)
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
        # augmentation's draws for every example trained on (`[n, 3]`, `[G, n, 3]` for a stack),
        # redrawn in place every epoch, so that a recorded CUDA graph reads the new epoch's
        self.augmenting = self.reg.augment != "none" and isinstance(self.x, imgs.DeviceImages)
        self.draws = None
        if self.augmenting:
            self.draws = torch.zeros((*self.y.shape, 3), dtype=torch.int64, device=self.y.device)
        self.format = conv_format(self.y.device)

    def __len__(self) -> int:
        return self.y.shape[-1]

    def redraw(self, gens: list, seed_index: torch.Tensor | None = None) -> None:
        """This epoch's crops and flips: one row of draws per generator (`gens`, a stack's seeds),
        each stacked member taking its seed's row (`seed_index`, or the one row for all)."""
        mode, pad, n = self.reg.augment, self.reg.crop_pad, len(self)
        d = torch.stack([augment.draw(mode, pad, n, g, self.y.device) for g in gens])
        if self.draws.dim() == 2:
            self.draws.copy_(d[0])
        else:
            self.draws.copy_(d[seed_index] if seed_index is not None else d.expand(self.draws.shape))

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of rows `idx` (`[B]`, or `[G, B]` with one row of labels per member): inputs
        `[B, ...]` / `[G, B, ...]` and labels of the same leading shape. Device work only (it runs
        inside a recorded CUDA graph)."""
        if self.draws is None:
            xb = self.x[idx]
        else:  # each example's crop and flip of this epoch, applied to its stored pixels
            d = self.draws[idx] if idx.dim() == 1 else torch.gather(self.draws, 1, idx[..., None].expand(*idx.shape, 3))
            xb = self.x.take(idx, d, self.reg.crop_pad)
        yb = self.y[idx] if idx.dim() == 1 else torch.gather(self.y, 1, idx)
        if xb.dim() == 4:  # images: in the layout the device's convolutions want
            xb = xb.contiguous(memory_format=self.format)
        if self.reg.input_noise > 0:
            xb = xb + self.reg.input_noise * torch.randn_like(xb)
        return xb, yb
