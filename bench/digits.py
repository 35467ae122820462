"""The section's image questions on real images a CPU trains in seconds: scikit-learn's 8x8 digits.

For each network (the 2-D convnet `cnn2d` and an MLP), over seeds:
- clean labels: test error after a fixed budget of epochs (the last epoch's weights), and the
  weights early stopping (patience 10 on val_err, observing) would have kept;
- epochs to fit (training error <= 1%, `epochs_to_fit`) the true labels, and 100% random labels
  (Zhang et al. 2017: random labels are fitted too, only more slowly).

    python bench/digits.py [--seeds 3] [--cnn-width 16] [--mlp-width 512] [--epochs 60] [--max-epochs 400]

Needs the `digits` extra (scikit-learn). 1,000 training, 250 validation and 297 test images;
Adam lr 1e-3, batch 64, no augmentation. Prints one line per run and a table for the README.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gengap_tui.config import build, cpu_threads
from gengap_tui.core.trainer import Trainer, device_name

BASE = ["data.dataset=digits", "data.n_train=1000", "data.n_val=250", "data.n_test=297", "optim.optimizer=adam",
        "optim.lr=0.001", "optim.batch_size=64", "device=cpu"]


def run(kind: str, width: int, seed: int, random_labels: bool, epochs: int, threads: int) -> dict:
    extra = [f"model.kind={kind}", f"model.width={width}", f"seed={seed}", f"optim.epochs={epochs}",
             f"run.threads={threads}"]
    if random_labels:  # train until the labels are fitted, then stop
        extra += ["noise.label_noise=1.0", "noise.kind=random", "early_stopping.enabled=false"]
    else:
        extra += ["early_stopping.enabled=true", "early_stopping.observe=true", "early_stopping.patience=10",
                  "early_stopping.restore_best=false"]
    tr = Trainer(build({"name": "digits-bench"}, BASE + extra))

    def on_epoch(row: dict) -> None:
        if random_labels and row["train_err"] <= 0.01:
            tr.request_stop("fitted")

    t0 = time.perf_counter()
    s = tr.run(on_epoch=on_epoch)
    s["seconds"] = time.perf_counter() - t0
    s["n_params"] = tr.n_params
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cnn-width", type=int, default=16)
    ap.add_argument("--mlp-width", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=60, help="clean labels: epochs trained")
    ap.add_argument("--max-epochs", type=int, default=400, help="random labels: at most this many epochs")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(cpu_threads(args.threads))  # as a session does (2 threads on the busy 2-core box: 5-20x slower)
    nets = [("cnn2d", args.cnn_width), ("mlp", args.mlp_width)]
    table = []
    for kind, width in nets:
        clean, rand = [], []
        for seed in range(args.seeds):
            c = run(kind, width, seed, False, args.epochs, args.threads)
            r = run(kind, width, seed, True, args.max_epochs, args.threads)
            clean.append(c)
            rand.append(r)
            print(f"{kind} w={width} seed {seed}: {c['n_params']:,} params; clean: test_err {c['test_err']:.4f} "
                  f"(early stopping's weights {c.get('would_stop_test_err')}), fit at epoch {c['epochs_to_fit']} "
                  f"({c['seconds']:.1f} s, {c['epochs_run']} epochs); random labels: fit at epoch "
                  f"{r['epochs_to_fit']} ({r['seconds']:.1f} s){'' if r['epochs_to_fit'] else ' NOT FITTED'}",
                  flush=True)
        med = lambda xs: statistics.median(xs) if all(x is not None for x in xs) else None  # noqa: E731
        table.append((kind, width, clean[0]["n_params"], [c["test_err"] for c in clean],
                      [c.get("would_stop_test_err") or c["test_err"] for c in clean],
                      med([c["epochs_to_fit"] for c in clean]), med([r["epochs_to_fit"] for r in rand]),
                      [r["epochs_to_fit"] for r in rand], statistics.median(r["seconds"] for r in rand)))
    print(f"\ndevice: {device_name(torch.device('cpu'))}; {args.seeds} seeds; clean: {args.epochs} "
          f"epochs; random labels: until train_err <= 0.01 (at most {args.max_epochs})")
    print("| network | parameters | clean test error (last epoch) | early stopping's weights | epochs to fit true "
          "labels | epochs to fit 100% random labels | seconds to fit random labels |")
    print("|---|---|---|---|---|---|---|")
    for kind, width, n, te, ws, fit_true, fit_rand, fits, secs in table:
        print(f"| `{kind}` width {width} | {n:,} | {statistics.mean(te):.3f} ({min(te):.3f}–{max(te):.3f}) | "
              f"{statistics.mean(ws):.3f} | {fit_true} | {fit_rand} ({', '.join(map(str, fits))}) | {secs:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
