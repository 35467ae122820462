"""Image splits on the device (docs/ARCHITECTURE.md, "Images").

An image set is `(N, C, H, W)`, stored once on the device as it came from its files — uint8 for
8-bit images (CIFAR-10's 50,000 training images: 150 MB, not the 600 MB of float32) — and
normalized per channel (the training split's mean and standard deviation) as batches are taken:
`DeviceImages[idx]` is the normalized float32 batch, with no DataLoader and no trip through the
host. A trainer holds one where it held a float tensor: indexing with a batch's index tensor (of
any shape: `[B]`, a stack's `[G, B]`) or slicing an evaluation chunk gives what the model eats:

- `layout = "image"` (2-D convnets): `(..., C, H, W)`, in the memory format the device's
  convolutions want (`models.conv_format`: channels_last on CUDA; stored so too);
- `layout = "flat"` (MLPs, the 1-D CNN): `(..., C*H*W)`, flattened in C, H, W order, as before.

`take(idx, draws, pad)` is the training step's batch with augmentation (`augment.py`) applied to
the stored pixels before they are normalized. Everything else (evaluation, train-split metrics,
baselines) indexes without draws and so never sees augmentation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import augment
from .models import conv_format

LAYOUTS = ("flat", "image")


class DeviceImages:
    """Stored pixels `(N, C, H, W)` on a device, normalized per channel when indexed."""

    def __init__(self, pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, layout: str = "flat"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
        if pixels.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(pixels.shape)}")
        self.layout = layout
        self.format = conv_format(pixels.device) if layout == "image" else torch.contiguous_format
        self.pixels = pixels.contiguous(memory_format=self.format)
        C = pixels.shape[1]
        mean = mean.to(device=pixels.device, dtype=torch.float32).reshape(C, 1, 1)
        std = std.to(device=pixels.device, dtype=torch.float32).reshape(C, 1, 1)
        # (x - mean) / std as one multiply-add: x * scale + shift
        self.scale = 1.0 / std
        self.shift = -mean / std
        self.mean, self.std = mean, std

    @classmethod
    def from_numpy(cls, x: np.ndarray, mean: np.ndarray, std: np.ndarray, device: Any,
                   layout: str = "flat") -> "DeviceImages":
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        return cls(t, torch.as_tensor(np.asarray(mean, np.float32)), torch.as_tensor(np.asarray(std, np.float32)),
                   layout)

    # tensor-like surface: what the trainers ask of their splits
    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])  # type: ignore[return-value]

    @property
    def shape(self) -> torch.Size:
        n = len(self)
        if self.layout == "image":
            return torch.Size((n, *self.image_shape))
        return torch.Size((n, int(np.prod(self.image_shape))))

    def dim(self) -> int:
        return len(self.shape)

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    dtype = torch.float32

    @property
    def nbytes(self) -> int:
        return self.pixels.numel() * self.pixels.element_size()

    def _finish(self, px: torch.Tensor) -> torch.Tensor:
        """Stored pixels `(..., C, H, W)` -> the normalized float32 batch in this split's layout."""
        if px.is_floating_point() and px.dtype != torch.float32:
            px = px.float()  # (float64 / half pixels: the batch is float32 whatever the storage)
        if px.device.type == "cpu" and px.is_contiguous():
            # a CPU's mul_ / add_ by one number per channel over contiguous H*W rows vectorize;
            # its addcmul's loop over that broadcast does not (2.4x slower: bench/images.py take)
            x = px.float() if px.dtype != torch.float32 else px.clone()
            x = x.mul_(self.scale).add_(self.shift)  # in place: one float copy of the batch
        else:
            # px * scale + shift in one kernel into a new float32 batch (uint8 promoted on the
            # fly, the stored pixels untouched, px's memory format kept): CUDA, and channels_last
            # on a CPU (1.7x faster there than the copy, mul_ and add_ over 3-channel rows)
            x = torch.addcmul(self.shift, px, self.scale)
        if self.layout == "flat":
            return x.reshape(*x.shape[:-3], -1)
        if x.dim() == 4:
            return x.contiguous(memory_format=self.format)
        return x

    def __getitem__(self, idx: Any) -> torch.Tensor:
        """The normalized batch at `idx` (an index tensor of any shape, or a slice)."""
        return self._finish(self.pixels[idx])

    def take(self, idx: torch.Tensor, draws: torch.Tensor | None = None, pad: int = 0) -> torch.Tensor:
        """A training batch: the pixels at `idx`, augmented with `draws` (`augment.draw`'s rows,
        already gathered for `idx`: shape `idx.shape + (3,)`), then normalized."""
        px = self.pixels[idx]
        if draws is not None:
            px = augment.apply(px, draws, pad, channels_last=self.format == torch.channels_last)
        return self._finish(px)

    def full(self) -> torch.Tensor:
        """The whole split, normalized, flattened: for baselines that want plain rows (k-NN, NTK)."""
        x = torch.addcmul(self.shift, self.pixels.float(), self.scale)
        return x.reshape(len(self), -1)

    def cat(self, other: "DeviceImages") -> "DeviceImages":
        """These images followed by `other`'s (RATT's randomly labelled points), normalized like these."""
        out = DeviceImages.__new__(DeviceImages)
        out.__dict__.update(self.__dict__)
        out.pixels = torch.cat([self.pixels, other.pixels.to(self.pixels.dtype)]).contiguous(memory_format=self.format)
        return out


def to_device(x: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None, device: Any,
              layout: str = "flat") -> torch.Tensor | DeviceImages:
    """A split on the device: `DeviceImages` for images (4-D arrays with per-channel statistics),
    a plain tensor otherwise (feature vectors, labels)."""
    if x.ndim == 4 and mean is not None:
        return DeviceImages.from_numpy(x, mean, std, device, layout)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def cat(a: Any, b: Any) -> Any:
    """`torch.cat([a, b])` for plain tensors and image splits alike."""
    return a.cat(b) if isinstance(a, DeviceImages) else torch.cat([a, b])


def rows(x: Any) -> torch.Tensor:
    """A split as plain float rows `(N, D)` (normalized images flattened)."""
    return x.full() if isinstance(x, DeviceImages) else x
