"""The double-descent width sweep trained grouped (`Sweep(..., together=True)`: every width in one
`GroupedMLP`, one optimizer step per batch for all) against one width at a time
(`together=False`: an ordinary `Trainer` per width), same widths, same epochs, same process.

The widths are the preset's `[sweep] values` (double-descent: 20 widths from 2 to 300, 2-layer MLP,
SGD, batch 100, 15% label noise). The real preset trains 500 epochs; the comparison uses
`--epochs` (default 20, 3 rounds) so it runs in about a minute on a CPU. The two modes are interleaved in
rounds after a warm-up, and per-epoch numbers are medians, so machine-load drift hits both alike.

    python bench/sweep.py [--epochs 20] [--rounds 2] [--preset double-descent]
                          [--device cpu|cuda|auto] [--threads N] [--max-waste 0.25] [--set k=v ...]
    python bench/sweep.py --full [--device cuda]     # the grouped sweep alone, the preset's epochs (500)

Per-epoch time: grouped = the median of the sweep's `epoch_seconds` (training pass + train / val /
test evaluation of every width); one at a time = the sum over widths of each width's median
`epoch_seconds` (training pass + train / val evaluation, as `Trainer.run` measures it; its test split
is evaluated once at the end). The whole sweep's `wall_seconds` (setup, run files, final tests
included) is printed for both as well.

Padding: the grouped model cuts the widths into buckets of similar width and zero-pads each member
to its bucket's widest; `padded_fraction` is arithmetic done / arithmetic needed (1.0 = none).
Padding every width to the widest instead (one bucket) would cost
`len(widths) * mlp_cost(widest) / sum(mlp_cost(w))`, computed with `stacked.mlp_cost`.

`--full` times the grouped sweep over the preset's epochs once (targets: under 5 minutes on a CPU,
under 60 s on an H100) and prints the sweep's shape (interpolation threshold, test-error peak).

CPU threads: by default `max(1, cores - 1)`, as the lab's training process; `--threads 0` keeps
torch's default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gengap_tui import presets
from gengap_tui.core.data import load
from gengap_tui.core.stacked import mlp_cost
from gengap_tui.core.sweep import MAX_WASTE, Sweep
from gengap_tui.core.trainer import device_name, pick_device


def _epoch_seconds(path: Path) -> list[float]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                row = json.loads(line)
                if row.get("epoch_seconds") is not None:
                    out.append(float(row["epoch_seconds"]))
    return out


def run_sweep(cfg, param: str, values: list[float], device: str, together: bool, max_waste: float | None = None) -> dict:
    """One sweep in a temporary directory: per-epoch medians, wall time, summary, grouped model."""
    sw = Sweep(cfg, param, values, device=device, together=together, max_waste=max_waste)
    if sw.together != together:
        sys.exit(f"{param} with model.kind={cfg.model.kind}: the sweep cannot be grouped")
    prog: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gengap-bench-sweep-") as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        summary = sw.run(out, on_progress=lambda row: prog.append(row["epoch_seconds"])
                         if "epoch_seconds" in row else None)
        wall = time.perf_counter() - t0
        if summary["status"] != "completed":
            sys.exit(f"sweep (together={together}) ended {summary['status']}: {summary.get('reason')}")
        if together:
            per_epoch = statistics.median(prog)
            per_value = None
        else:
            per_value = [statistics.median(_epoch_seconds(sw._value_dir(out, v) / "metrics.jsonl"))
                         for v in sw.values]
            per_epoch = sum(per_value)
        rows = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines() if line.strip()]
    model = sw._trainer.model if together else None
    return {"per_epoch": per_epoch, "per_value": per_value, "wall": wall, "summary": summary, "rows": rows,
            "model": model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="double-descent")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs per width (default 20; with --full the preset's, 500 for double-descent)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    ap.add_argument("--max-waste", type=float, default=None,
                    help="grouped bucketing: padded arithmetic allowed over the real (default: Sweep's, "
                         "0.25 on a CPU, 8 on CUDA; large = fewer, wider buckets = fewer kernel launches)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: max(1, cores - 1), as the lab's trainer; 0 = torch's default)")
    ap.add_argument("--full", action="store_true", help="time only the grouped sweep, over the preset's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="K=V")
    args = ap.parse_args()
    threads = max(1, (os.cpu_count() or 2) - 1) if args.threads is None else args.threads
    if threads > 0:
        torch.set_num_threads(threads)
    if args.rounds < 1 or (args.epochs is not None and args.epochs < 1):
        ap.error("--epochs and --rounds must be >= 1")
    device = pick_device(args.device)
    epochs = args.epochs if args.epochs is not None else (None if args.full else 20)
    overrides = [*args.set, f"device={device.type}", "early_stopping.enabled=false"]
    if epochs is not None:
        overrides.append(f"optim.epochs={epochs}")
    cfg = presets.load(args.preset, overrides)
    param, values = cfg.sweep.param, list(cfg.sweep.values)
    if param != "model.width" or not values:
        sys.exit(f"preset {cfg.name}: needs a [sweep] over model.width with values (has {param} = {values})")
    data = load(cfg)  # generated / cached once, outside the timing
    widths = sorted(int(v) for v in values)
    K = cfg.run.seeds
    real = sum(mlp_cost(data.input_dim, w, cfg.model.depth, data.num_classes) for w in widths)
    one_bucket = len(widths) * mlp_cost(data.input_dim, max(widths), cfg.model.depth, data.num_classes) / real
    head = (f"device: {device_name(device)}; torch {torch.__version__}; preset {cfg.name}: {cfg.model.kind} "
            f"depth {cfg.model.depth}, {len(widths)} widths {widths[0]}..{widths[-1]}"
            f"{f' x {K} seeds' if K > 1 else ''}, n_train {cfg.data.n_train}, batch {cfg.optim.batch_size}, "
            f"{cfg.optim.optimizer}; {cfg.optim.epochs} epochs")

    if args.full:
        r = run_sweep(cfg, param, values, args.device, True, args.max_waste)
        s = r["summary"]
        print(head + " (full grouped sweep, one run)")
        print(f"grouped sweep: {r['wall']:.1f} s wall ({s['wall_seconds']:.1f} s in Sweep.run), "
              f"{r['per_epoch'] * 1e3:.2f} ms/epoch median, {len(r['model'].buckets)} buckets, "
              f"padded_fraction {r['model'].padded_fraction():.3f}")
        limit = 60 if device.type == "cuda" else 300
        verdict = ("met" if r["wall"] < limit else "MISSED") if args.epochs is None else "no verdict (--epochs given)"
        print(f"targets: under 300 s on a CPU, under 60 s on an H100 -> {verdict} on this device")
        f3 = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        fw = lambda x: "-" if x is None else f"{x:g}"  # noqa: E731
        print(f"shape: interpolation threshold width {fw(s['interpolation_threshold'])}; test-error peak "
              f"{f3(s['peak_test_err'])} at width {fw(s['peak_value'])} (dip {f3(s['dip_test_err'])} at width "
              f"{fw(s['dip_value'])}); last {f3(s['last_test_err'])}; prominence {f3(s['peak_prominence'])}")
        print("width  train_err  test_err: " + ", ".join(
            f"{int(row['value'])}: {row['train_err']:.3f}/{row['test_err']:.3f}" for row in r["rows"]))
        return

    warm = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": 1})})
    run_sweep(warm, param, values, args.device, True, args.max_waste)
    run_sweep(warm, param, values, args.device, False)
    grouped, each = [], []
    for _ in range(args.rounds):
        grouped.append(run_sweep(cfg, param, values, args.device, True, args.max_waste))
        each.append(run_sweep(cfg, param, values, args.device, False))
    g = statistics.median(r["per_epoch"] for r in grouped)
    e = statistics.median(r["per_epoch"] for r in each)
    gw = statistics.median(r["wall"] for r in grouped)
    ew = statistics.median(r["wall"] for r in each)
    model = grouped[-1]["model"]
    model_waste = args.max_waste if args.max_waste is not None else MAX_WASTE.get(device.type, 0.25)
    per_value = [statistics.median(col) for col in zip(*(r["per_value"] for r in each))]

    print(head + f" x {args.rounds} interleaved rounds (medians); the real preset trains 500 epochs")
    print(f"grouped (together=True):      {g * 1e3:9.2f} ms/epoch  (train + train/val/test eval of all widths)")
    print(f"one at a time (together=False): {e * 1e3:7.2f} ms/epoch  (sum over widths of each run's median epoch)")
    print(f"ratio one-at-a-time / grouped: {e / g:.2f}x per epoch; whole sweeps {ew:.1f} s vs {gw:.1f} s "
          f"({ew / gw:.2f}x)")
    print("  one-at-a-time ms/epoch by width: " + ", ".join(
        f"{w}: {t * 1e3:.1f}" for w, t in zip(widths, per_value)))
    buckets = ", ".join(f"{[int(v) for v in model.widths[bk.start:bk.stop]][0]}..{bk.width}"
                        f" ({bk.stop - bk.start})" for bk in model.buckets)
    print(f"grouped model: {len(model.buckets)} buckets [{buckets}]; padded_fraction (arithmetic done / "
          f"needed) {model.padded_fraction():.3f} (max_waste {model_waste:g}); padding every width to {max(widths)} would be {one_bucket:.2f}x")
    est = g * 500
    print(f"500-epoch grouped sweep at this rate: ~{est:.0f} s (target: under 300 s on a CPU, under 60 s on an H100)")


if __name__ == "__main__":
    main()
