"""What the per-epoch norm-based measures (`core/norms.py`) cost a run, measured inside one run so
that the machine's load cancels out: epochs alternate between measuring the norms and not, and the
medians of the two kinds of epoch are compared.

    python bench/norms_cost.py [--preset default] [--epochs 60] [--device cpu] [--set k=v ...]

Prints the median epoch time with and without the norms and the difference in percent.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cost_common  # noqa: E402

from gengap_tui.core.factory import make_trainer  # noqa: E402


def main() -> None:
    args = cost_common.parse(__doc__, "default", 60)
    cfg = cost_common.config(args)
    import torch

    tr = make_trainer(cfg)
    measure = tr.norms.measure
    skipped = {k: [0.0] * tr.G for k in ("weight_norm", "spectral_norm_product")}
    with_norms: list[float] = []
    without: list[float] = []

    def on_epoch(row: dict) -> None:
        e = row["epoch"]
        if e > 2:  # the first epochs warm up (and the first measurement iterates longer)
            (with_norms if e % 2 else without).append(row["epoch_seconds"])
        # the next epoch measures the norms when it is odd
        tr.norms.measure = measure if (e + 1) % 2 else (lambda: skipped)

    tr.run(on_epoch=on_epoch)
    a, b = statistics.median(with_norms), statistics.median(without)
    print(f"{cfg.name} on {args.device}, {torch.get_num_threads()} thread(s), {len(with_norms)}+{len(without)} epochs")
    print(f"epoch with norms:    {a * 1e3:8.2f} ms (median)")
    print(f"epoch without norms: {b * 1e3:8.2f} ms (median)")
    print(f"the norms cost:      {100 * (a - b) / b:+8.2f} %")


if __name__ == "__main__":
    main()
