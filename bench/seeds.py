"""K stacked seeds (`run.seeds = K`, one `MultiTrainer`) against K solo `Trainer` runs one after
another (seed, seed+1, ..., seed+K-1), same config, same number of epochs, same process.

Each contender does what `Trainer.run` does per epoch: one training pass over the shuffled training
split plus loss and error on the full training and validation splits in eval mode (the per-epoch
`epoch_seconds` that `run()` reports; it ends at the epoch's one device-to-host copy, so it is honest
on a GPU too). Early stopping is off for both. The contenders are interleaved in rounds (stacked,
then the K solo runs) after a warm-up, and each number is a median, so machine-load drift hits both
alike; on a busy machine read the ratios, not the absolute times.

    python bench/seeds.py [--seeds 8] [--epochs 10] [--rounds 3] [--preset default]
                          [--device cpu|cuda|auto] [--threads N] [--check-epochs 3] [--set k=v ...]

Prints per-epoch time of: K stacked seeds; K sequential solo seeds (the sum of the solo runs'
median epochs); one solo seed. Then the ratios: throughput of stacked vs sequential (target on
CPU >= 3x), and the cost of K stacked seeds relative to one seed (target on a GPU <= 1.5x).

Last, a correctness check on short separate runs (`--check-epochs`, default 3; on CUDA the
tolerance applies after 1 epoch and the longer check is printed as information): stacked seed k's
final val_err equals solo seed k's within 1e-3 (one validation example in 1000), and the val_loss
difference is printed too. The check is short on purpose: the batched kernels sum in another order
than the solo ones, and Adam on noisy labels amplifies that rounding (measured on CPU: val_loss
equal to 1e-6 for 6 epochs, then apart by ~1e-3 and val_err by a few examples at epoch 10). The
timed runs' final val_err difference is printed as information only.

CPU threads: by default `max(1, cores - 1)`, the count the lab's training process uses (docs/ARCHITECTURE.md, "Processes");
on a 2-core machine shared with other work, torch's default of 2 threads can make epochs 5-20x
slower and erratic (oversubscription). `--threads 0` keeps torch's default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from gengap_tui import presets
from gengap_tui.core.data import load
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer, device_name, pick_device

TOL = 1e-3


def _with(cfg, **updates):
    """A copy of `cfg` with top-level fields and dotted section fields replaced."""
    top = {k: v for k, v in updates.items() if "__" not in k}
    sections: dict[str, dict] = {}
    for k, v in updates.items():
        if "__" in k:
            sec, field = k.split("__", 1)
            sections.setdefault(sec, {})[field] = v
    for sec, fields in sections.items():
        top[sec] = getattr(cfg, sec).model_copy(update=fields)
    return cfg.model_copy(update=top)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_stacked(cfg, K: int, device, datasets: dict) -> tuple[list[float], dict, float]:
    """Epoch times, the members' last-epoch metrics (lists over seeds), and the run's wall time
    (construction excluded, final test included)."""
    tr = MultiTrainer(_with(cfg, run__seeds=K), device, datasets[cfg.seed])
    times: list[float] = []
    _sync(device)
    t0 = time.perf_counter()
    s = tr.run(on_epoch=lambda row: times.append(row["epoch_seconds"]))
    wall = time.perf_counter() - t0
    if s["status"] != "completed":
        sys.exit(f"stacked run ended {s['status']}: {s.get('reason')}")
    return times, {k: list(tr.last_members[k]) for k in ("val_err", "val_loss")}, wall


def run_solo(cfg, seed: int, device, datasets: dict) -> tuple[list[float], dict, float]:
    tr = Trainer(_with(cfg, seed=seed), device, datasets[seed])
    times: list[float] = []
    rows: list[dict] = []

    def on_epoch(row: dict) -> None:
        times.append(row["epoch_seconds"])
        rows.append(row)

    _sync(device)
    t0 = time.perf_counter()
    s = tr.run(on_epoch=on_epoch)
    wall = time.perf_counter() - t0
    if s["status"] != "completed":
        sys.exit(f"solo run (seed {seed}) ended {s['status']}: {s.get('reason')}")
    return times, {k: rows[-1][k] for k in ("val_err", "val_loss")}, wall


def run_sequential(cfg, seeds: list[int], device, datasets: dict) -> tuple[list[float], dict, float]:
    """The K solo runs one after another: each run's median epoch, their metrics, total wall."""
    meds, walls, last = [], [], {"val_err": [], "val_loss": []}
    for s in seeds:
        t, m, w = run_solo(cfg, s, device, datasets)
        meds.append(statistics.median(t))
        walls.append(w)
        for k in last:
            last[k].append(m[k])
    return meds, last, sum(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, default=8, help="K seeds (default 8)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: max(1, cores - 1), as the lab's trainer; 0 = torch's default)")
    ap.add_argument("--check-epochs", type=int, default=3,
                    help="epochs of the stacked-vs-solo equality check (default 3; 0 skips it)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V")
    args = ap.parse_args()
    threads = max(1, (os.cpu_count() or 2) - 1) if args.threads is None else args.threads
    if threads > 0:
        torch.set_num_threads(threads)
    if args.seeds < 2:
        ap.error("--seeds must be >= 2")
    if args.epochs < 1 or args.rounds < 1:
        ap.error("--epochs and --rounds must be >= 1")
    device = pick_device(args.device)
    cfg = presets.load(args.preset, [*args.set, f"optim.epochs={args.epochs}", "early_stopping.enabled=false",
                                     f"device={device.type}", "run.seeds=1"])
    K = args.seeds
    seeds = [cfg.seed + k for k in range(K)]
    # every seed's dataset (the label-noise draw depends on the seed), loaded once, outside the timing
    datasets = {s: load(_with(cfg, seed=s)) for s in seeds}

    # warm-up: allocator, kernels, fused-optimizer paths, both shapes
    warm = _with(cfg, optim__epochs=min(2, args.epochs))
    run_stacked(warm, K, device, datasets)
    run_solo(warm, seeds[0], device, datasets)

    stacked_ep, seq_ep, solo_ep = [], [], []
    stacked_wall, seq_wall = [], []
    stacked_m: dict = {}
    solo_m: dict = {}
    for _ in range(args.rounds):
        t, stacked_m, w = run_stacked(cfg, K, device, datasets)
        stacked_ep.append(statistics.median(t))
        stacked_wall.append(w)
        meds, solo_m, w = run_sequential(cfg, seeds, device, datasets)
        seq_ep.append(sum(meds))
        solo_ep.extend(meds)
        seq_wall.append(w)
    st, sq, so = statistics.median(stacked_ep), statistics.median(seq_ep), statistics.median(solo_ep)
    sw, qw = statistics.median(stacked_wall), statistics.median(seq_wall)

    print(f"device: {device_name(device)}; torch {torch.__version__}; preset {cfg.name} "
          f"({cfg.model.kind} {cfg.model.depth}x{cfg.model.width}, n_train {cfg.data.n_train}, "
          f"batch {cfg.optim.batch_size}, {cfg.optim.optimizer}); K = {K} seeds; {args.epochs} epochs x "
          f"{args.rounds} interleaved rounds (medians)")
    print(f"stacked, {K} seeds:        {st * 1e3:9.2f} ms/epoch  ({1 / st:7.1f} epochs/s of all {K})")
    print(f"sequential, {K} solo runs: {sq * 1e3:9.2f} ms/epoch  (sum of the {K} runs' median epochs)")
    print(f"one solo seed:            {so * 1e3:9.2f} ms/epoch  ({1 / so:7.1f} epochs/s)")
    print(f"whole runs (construction excluded, final test included): stacked {sw:.2f} s, "
          f"sequential {qw:.2f} s ({qw / sw:.2f}x)")
    print(f"throughput stacked / sequential: {sq / st:.2f}x   (target on CPU >= 3x)")
    print(f"cost of {K} stacked seeds / one seed: {st / so:.2f}x   (target on a GPU <= 1.5x)")
    dv = max(abs(a - b) for a, b in zip(stacked_m["val_err"], solo_m["val_err"]))
    print(f"(info) timed runs, epoch {args.epochs}: max |val_err stacked - solo| over seeds = {dv:.4f}")

    if args.check_epochs > 0:
        # CUDA: cuBLAS rounds a batched product differently from a single one, and Adam on noisy
        # labels amplifies that, faster than on a CPU (H200: val_err apart by 0.005 after 3 epochs,
        # in eager and graphed runs alike). There the tolerance applies after 1 epoch and the longer
        # check is information.
        gate = 1 if device.type == "cuda" else args.check_epochs
        ok = True
        for e in sorted({gate, args.check_epochs}):
            c = _with(cfg, optim__epochs=e)
            _, sm, _ = run_stacked(c, K, device, datasets)
            _, qm, _ = run_sequential(c, seeds, device, datasets)
            de = [abs(a - b) for a, b in zip(sm["val_err"], qm["val_err"])]
            dl = [abs(a - b) for a, b in zip(sm["val_loss"], qm["val_loss"])]
            verdict = "info"
            if e == gate:
                ok = max(de) <= TOL + 1e-9
                verdict = "OK" if ok else "MISMATCH"
            print(f"check after {e} epochs: stacked seed k vs solo seed k, max |val_err diff| = "
                  f"{max(de):.4f} (tolerance {TOL:g}), max |val_loss diff| = {max(dl):.2e}: {verdict}")
            print("  val_err stacked: " + " ".join(f"{v:.4f}" for v in sm["val_err"]))
            print("  val_err solo:    " + " ".join(f"{v:.4f}" for v in qm["val_err"]))
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
