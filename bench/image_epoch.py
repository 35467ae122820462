"""Image pipeline: a whole lab epoch against a plain PyTorch loop with a DataLoader, same process.

The lab's epoch (`Trainer`, the `epoch_seconds` of its metrics rows): one training pass over the
shuffled training split with random crops (padding 4) and horizontal flips drawn per example on
the device (`core/augment.py`) from uint8 images stored once on the device (`core/images.py`),
normalized per channel as batches are taken, then loss and error on the full training and
validation splits in eval mode, weight norms and early stopping's bookkeeping.

The plain loop is what a tutorial writes for the same work on the same network (built by the same
`build_model`, same seed, optimizer, batch size): a torch `Dataset` over the uint8 images whose
`__getitem__` pads, crops, flips and normalizes one image (torchvision's RandomCrop(32, padding=4),
RandomHorizontalFlip, Normalize, written in torch: torchvision is not installed here), a
`DataLoader(shuffle=True, num_workers=cores, persistent_workers=True, pin_memory on CUDA)`, then
the same evaluation through DataLoaders without augmentation, `.item()` per batch. Persistent
workers spare the plain loop its workers' start every epoch (in its favour).

    python bench/image_epoch.py [--model mlp|cnn2d|resnet18] [--width 256] [--n-train 5000] [--n-val 1000]
                           [--size 32] [--epochs 3] [--rounds 2] [--device cpu|cuda] [--workers N]
                           [--precision float32|bfloat16]

CIFAR-shaped synthetic data (uint8 3x32x32 images, 10 classes): the data pipeline's cost does not
depend on what the pixels show. Prints the median epoch of each, interleaved in rounds after a
warm-up epoch, and the ratio plain / lab (> 1: the lab is faster). Target (issue 23): >= 3x on a
GPU (`bench/gpu.sh`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from gengap_tui.config import build, cpu_threads
from gengap_tui.core.data import Dataset, channel_stats
from gengap_tui.core.models import build_model, conv_format
from gengap_tui.core.trainer import Trainer, device_name


def synthetic_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def lab_data(n_train: int, n_val: int, size: int) -> Dataset:
    x, y = synthetic_images(n_train + n_val + 100, size)
    xtr, ytr = x[:n_train], y[:n_train]
    mean, std = channel_stats(xtr)
    return Dataset(name="cifar-shaped", x_train=xtr, y_train=ytr, y_train_clean=ytr, changed=np.zeros(n_train, bool),
                   x_val=x[n_train:n_train + n_val], y_val=y[n_train:n_train + n_val], x_test=x[-100:], y_test=y[-100:],
                   num_classes=10, mean=mean, std=std)


def config(args, epochs: int):
    return build({"name": "bench-images"}, [
        "data.dataset=cifar10", "data.path=unused", f"data.n_train={args.n_train}", f"data.n_val={args.n_val}",
        f"model.kind={args.model}", f"model.width={args.width}", "regularization.augment=crop-flip",
        "regularization.crop_pad=4", "optim.optimizer=adam", "optim.lr=0.001", f"optim.batch_size={args.batch_size}",
        f"optim.epochs={epochs}", "early_stopping.enabled=false", f"device={args.device}",
        f"run.threads={args.threads}", f"run.precision={args.precision}"])


# ------------------------------------------------------------------------------------ plain loop


class Augmented(TorchDataset):
    """Per-sample transforms, as torchvision applies them: pad 4, random 32x32 crop, random
    horizontal flip, to float, normalize per channel."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean, std, augment: bool, pad: int = 4):
        self.x, self.y, self.augment, self.pad = torch.from_numpy(x), torch.from_numpy(y), augment, pad
        self.mean = torch.as_tensor(mean).view(-1, 1, 1)
        self.std = torch.as_tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]
        if self.augment:
            p = self.pad
            _, h, w = img.shape
            padded = F.pad(img, (p, p, p, p))
            dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
            img = padded[:, dy:dy + h, dx:dx + w]
            if torch.rand(()) < 0.5:
                img = img.flip(-1)
        return (img.float() - self.mean) / self.std, self.y[i]


def plain_epochs(cfg, data: Dataset, device: torch.device, epochs: int, workers: int, image: bool) -> list[float]:
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.run.precision == "bfloat16")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_dim, data.num_classes, data.image_shape).to(device)
    fmt = conv_format(device)  # channels_last on CUDA, NCHW on a CPU: as the lab
    if image:
        model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    bs = cfg.optim.batch_size
    kw = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    train = DataLoader(Augmented(data.x_train, data.y_train, data.mean, data.std, True), batch_size=bs,
                       shuffle=True, drop_last=False, **kw)
    evals = [DataLoader(Augmented(x, y, data.mean, data.std, False), batch_size=1024, **kw)
             for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val))]

    def inputs(xb: torch.Tensor) -> torch.Tensor:
        xb = xb.to(device, non_blocking=True)
        return xb.contiguous(memory_format=fmt) if image else xb.flatten(1)

    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in train:
            with amp:
                out = model(inputs(xb))
            loss = F.cross_entropy(out.float(), yb.to(device, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for loader in evals:
                total, wrong = 0.0, 0
                for xb, yb in loader:
                    with amp:
                        out = model(inputs(xb)).float()
                    yb = yb.to(device)
                    total += F.cross_entropy(out, yb, reduction="sum").item()
                    wrong += (out.argmax(1) != yb).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


# -------------------------------------------------------------------------------------- the lab


def lab_epochs(cfg, data: Dataset, epochs: int) -> list[float]:
    rows: list[dict] = []
    Trainer(cfg, data=data).run(on_epoch=rows.append)
    return [r["epoch_seconds"] for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn2d", "resnet18"])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per round (after one warm-up)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the lab's default, cores - 1)")
    ap.add_argument("--workers", type=int, default=-1, help="DataLoader workers (default: cores)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(cpu_threads(args.threads))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = cores if args.workers < 0 else args.workers
    data = lab_data(args.n_train, args.n_val, args.size)
    image = args.model in ("cnn2d", "resnet18")
    print(f"device: {device_name(device)}; {args.model} width {args.width}; {args.n_train} training + {args.n_val} "
          f"validation images 3x{args.size}x{args.size}, batch {args.batch_size}, crop-flip; plain loop: "
          f"DataLoader with {workers} workers")
    lab, plain = [], []
    for r in range(args.rounds):
        # one warm-up epoch each, then the timed ones
        lab += lab_epochs(config(args, args.epochs + 1), data, args.epochs + 1)[1:]
        plain += plain_epochs(config(args, 1), data, device, args.epochs + 1, workers, image)[1:]
        print(f"round {r + 1}: lab {statistics.median(lab) * 1e3:.1f} ms/epoch, plain "
              f"{statistics.median(plain) * 1e3:.1f} ms/epoch", flush=True)
    ml, mp = statistics.median(lab), statistics.median(plain)
    n = args.n_train
    print(f"lab epoch   {ml * 1e3:9.1f} ms  ({n / ml:,.0f} training images/s, evaluation included)")
    print(f"plain epoch {mp * 1e3:9.1f} ms  ({n / mp:,.0f} training images/s, evaluation included)")
    print(f"ratio plain / lab: {mp / ml:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
