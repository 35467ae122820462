"""Per-epoch time of gengap-tui's trainer against a plain PyTorch DataLoader loop, same process.

Both do the same work per epoch on the same task: one training pass over the shuffled training
split (same model, optimizer, batch size) plus loss and error on the full training and validation
splits in eval mode. The plain loop is what a tutorial writes: TensorDataset + DataLoader
(shuffle=True) for training and for evaluation, `.item()` per batch.

    python bench/throughput.py [--preset default] [--epochs 20] [--device cpu] [--set k=v ...]

Prints per-epoch medians and the ratio (plain / trainer: > 1 means the trainer is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from gengap_tui import presets
from gengap_tui.core.data import load
from gengap_tui.core.models import build_model
from gengap_tui.core.trainer import Trainer, device_name


def plain_epoch_loop(cfg, data, device, epochs: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_dim, data.num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    train = TensorDataset(t(data.x_train), t(data.y_train))
    val = TensorDataset(t(data.x_val), t(data.y_val))
    bs = cfg.optim.batch_size
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in DataLoader(train, batch_size=bs, shuffle=True):
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for ds in (train, val):
                total_loss, wrong = 0.0, 0
                for xb, yb in DataLoader(ds, batch_size=bs):
                    xb, yb = xb.to(device), yb.to(device)
                    out = model(xb)
                    total_loss += F.cross_entropy(out, yb, reduction="sum").item()
                    wrong += (out.argmax(1) != yb).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def trainer_epochs(cfg, data, device, epochs: int) -> list[float]:
    tr = Trainer(cfg, device=device, data=data)
    times: list[float] = []
    tr.run(on_epoch=lambda row: times.append(row["epoch_seconds"]))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    cfg = presets.load(args.preset, [f"optim.epochs={args.epochs}", "early_stopping.enabled=false",
                                     f"device={args.device}", *args.set])
    device = torch.device(args.device)
    data = load(cfg)
    warm = min(3, args.epochs)
    # warm-up both (allocator, kernels), then interleave two rounds each to even out drift
    plain_epoch_loop(cfg, data, device, warm)
    trainer_epochs(cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": warm})}), data, device, warm)
    plain, ours = [], []
    for _ in range(2):
        plain += plain_epoch_loop(cfg, data, device, args.epochs)
        ours += trainer_epochs(cfg, data, device, args.epochs)
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"device: {device_name(device)}; torch {torch.__version__}; preset {cfg.name} "
          f"({cfg.model.kind} {cfg.model.depth}x{cfg.model.width}, n_train {len(data.y_train)}, "
          f"batch {cfg.optim.batch_size}); median of {len(ours)} epochs each")
    print(f"plain DataLoader loop: {p * 1e3:8.2f} ms/epoch  ({1 / p:7.1f} epochs/s)")
    print(f"gengap-tui Trainer:    {o * 1e3:8.2f} ms/epoch  ({1 / o:7.1f} epochs/s)")
    print(f"ratio (plain / trainer): {p / o:.2f}x")


if __name__ == "__main__":
    main()
