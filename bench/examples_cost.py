"""What the per-example learning / forgetting counters (`core/examples.py`, examples.npz) cost a
run: (1) inside one run, epochs alternate between updating the counters and not, and the medians
of the wall time from one epoch's row to the next are compared (the machine's load cancels out);
(2) the update alone, timed directly on the run's last predictions (synchronised on a GPU), against
the median epoch. The budget is 2% of an epoch (issue 25).

    python bench/examples_cost.py [--preset label-noise] [--epochs 40] [--device cpu] [--set k=v ...]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cost_common  # noqa: E402

from gengap_tui.core.factory import make_trainer  # noqa: E402


def main() -> None:
    args = cost_common.parse(__doc__, "label-noise", 40)
    cfg = cost_common.config(args)
    import torch

    tr = make_trainer(cfg)
    counters = tr.examples
    with_c: list[float] = []
    without: list[float] = []
    last = [time.perf_counter()]

    def sync() -> None:
        if tr.device.type == "cuda":
            torch.cuda.synchronize(tr.device)

    def on_epoch(row: dict) -> None:
        sync()
        now = time.perf_counter()
        e = row["epoch"]
        if e > 2:  # the first epochs warm up
            (with_c if e % 2 else without).append(now - last[0])
        tr.examples = counters if (e + 1) % 2 else None  # the next epoch counts when it is odd
        last[0] = time.perf_counter()

    tr.run(on_epoch=on_epoch)
    a, b = statistics.median(with_c), statistics.median(without)
    # the update alone, on the last evaluation's predictions
    correct = tr._train_correct
    times = []
    for i in range(200):
        sync()
        t0 = time.perf_counter()
        counters.update(args.epochs + 1 + i, correct)
        sync()
        times.append(time.perf_counter() - t0)
    u = statistics.median(times)
    print(f"{cfg.name} on {args.device}, {torch.get_num_threads()} thread(s), {tr.G} member(s) x "
          f"{tr.x_train.shape[0]} examples, {len(with_c)}+{len(without)} epochs")
    print(f"epoch with counters:    {a * 1e3:8.2f} ms (median, row to row)")
    print(f"epoch without counters: {b * 1e3:8.2f} ms (median, row to row)")
    print(f"difference:             {100 * (a - b) / b:+8.2f} % (the machine's noise included)")
    print(f"the update alone:       {u * 1e3:8.3f} ms = {100 * u / b:.3f} % of an epoch (budget 2 %)")


if __name__ == "__main__":
    main()
