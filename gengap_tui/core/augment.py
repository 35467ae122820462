"""Data augmentation as batched tensor ops on the device (`regularization.augment`).

`"crop"`: a random crop of the image padded by `crop_pad` zero pixels on each side (the
standard CIFAR augmentation: `RandomCrop(32, padding=4)`), i.e. the image shifted by
(dy, dx) with |dy|, |dx| <= pad and the uncovered border black; `"flip"`: a horizontal flip with
probability 1/2; `"crop-flip"`: both (crop, then flip).

One draw per example per epoch, from the run's own data-order generator, right after the
epoch's permutation (`draw`): the same seed gives the same augmented batches, on any device.
A draw is three integers per example, `(dy + pad, dx + pad, flip)`; `apply` turns a batch and
its draws into the augmented batch with one gather (index arithmetic: output pixel (i, j) reads
input pixel (i + dy, j' + dx), j' = W-1-j when flipped; out-of-image reads are zero). No padded
copy of the data set is made, nothing leaves the device, and it works for any dtype (the stored
uint8 pixels: augmentation runs before normalization, so the border is black as in torchvision).

Evaluation and the train-split metrics never see augmentation: only the training step asks for it.
"""

from __future__ import annotations

import torch

MODES = ("none", "crop", "flip", "crop-flip")


def draw(mode: str, pad: int, n: int, gen: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """`(n, 3)` int64 draws for `n` examples: `dy + pad, dx + pad` in `0..2 pad` (both `pad`,
    i.e. no shift, without cropping) and `flip` in {0, 1} (0 without flipping). Crops are drawn
    first, then flips, from `gen`."""
    if mode not in MODES:
        raise ValueError(f"regularization.augment = {mode!r}: not a known choice (allowed: {', '.join(MODES)})")
    out = torch.full((n, 3), pad, dtype=torch.int64, device=device)
    out[:, 2] = 0
    if mode in ("crop", "crop-flip") and pad > 0:
        out[:, :2] = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen, device=device)
    if mode in ("flip", "crop-flip"):
        out[:, 2] = torch.randint(0, 2, (n,), generator=gen, device=device)
    return out


_CONSTANTS: dict[tuple, tuple[torch.Tensor, ...]] = {}


def _constants(H: int, W: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """`arange(H)`, `arange(W)`, its reverse and a zero of `dtype` on `device`, made once, not every batch. Not
    kept when made while a CUDA graph records (a kernel recorded there runs only at replay: an
    eager batch would read memory never written); the trainer's eager first epoch makes them."""
    key = (H, W, dtype, device)
    out = _CONSTANTS.get(key)
    if out is None:
        j = torch.arange(W, device=device)
        out = (torch.arange(H, device=device), j, W - 1 - j, torch.zeros((), dtype=dtype, device=device))
        if not (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
            _CONSTANTS[key] = out
    return out


def apply(x: torch.Tensor, draws: torch.Tensor, pad: int, channels_last: bool = False) -> torch.Tensor:
    """The augmented images: `x` is `(..., C, H, W)` (any dtype), `draws` `(..., 3)` with the same
    leading dimensions. With `channels_last` the result is laid out NHWC in memory (a permuted
    view of one gather, no extra copy) for convolutions; its shape is `x`'s either way."""
    *lead, C, H, W = x.shape
    d = draws.reshape(-1, 3)
    B = d.shape[0]
    dev = x.device
    dy, dx, flip = d[:, 0] - pad, d[:, 1] - pad, d[:, 2].bool()
    i, j, j_flipped, zero = _constants(H, W, x.dtype, dev)
    rows = dy[:, None] + i  # (B, H): the input row of each output row
    cols = torch.where(flip[:, None], j_flipped, j) + dx[:, None]  # (B, W)
    inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]  # (B, H, W)
    # one gather over each image's H*W pixels (out-of-image reads clamped, then zeroed)
    src = (rows.clamp(0, H - 1)[:, :, None] * W + cols.clamp(0, W - 1)[:, None, :]).view(B, H * W)
    if channels_last:  # gather (B, H*W, C) rows of pixels: its permute is a channels_last NCHW tensor
        xs = x.reshape(B, C, H, W).permute(0, 2, 3, 1).reshape(B, H * W, C)
        out = torch.gather(xs, 1, src[:, :, None].expand(B, H * W, C)).view(B, H, W, C)
        out = torch.where(inside[..., None], out, zero).permute(0, 3, 1, 2)
    else:
        xs = x.reshape(B, C, H * W)
        out = torch.gather(xs, 2, src[:, None, :].expand(B, C, H * W)).view(B, C, H, W)
        out = torch.where(inside[:, None], out, zero)
    return out if lead == [B] else out.reshape(*lead, C, H, W)
