"""What the lab's examples view costs on a CIFAR-10-sized run (review finding 1): a synthetic
examples.npz of 50,000 training examples over 200 epochs, with 1 and with 8 stacked seeds, made the
way `core/examples.py` counts (random learning histories, 20% noisy labels learned late), written
compressed as a run writes it. Timed, medians of `--rounds`:

- `load`: `forgetting.load` (np.load of the compressed file, every array read);
- `stats before`: learned_by / kept_by by one comparison of every example per epoch (the code
  before the fix, kept here as the reference), with the rest of `forgetting.stats`;
- `stats after`: `forgetting.stats` (a bincount and a cumsum per curve); the numbers are checked
  equal to the reference's;
- `on the event loop`: what the lab's event loop does per look now (`forgetting.view_key`: one
  stat); before, a changed file cost it load + stats before (the reading is a thread worker now).

    python bench/examples_view.py [--examples 50000] [--epochs 200] [--seeds 1 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gengap_tui import forgetting  # noqa: E402


def synthetic(n: int, epochs: int, seeds: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Counters as ExampleCounters.update leaves them, from random per-epoch correctness: each
    example's chance of being right grows over the run (noisy ones late and unsteadily)."""
    noisy = rng.random(n) < 0.2
    speed = np.where(noisy, rng.uniform(0.005, 0.02, n), rng.uniform(0.05, 0.5, n))
    shape = (seeds, n)
    first, last, forgot, events = (np.zeros(shape, np.int32) for _ in range(4))
    prev = np.zeros(shape, bool)
    for e in range(1, epochs + 1):
        p = np.minimum(0.98, speed * e)
        c = rng.random(shape) < p
        learned, forgotten = c & ~prev, prev & ~c
        first[c & (first == 0)] = e
        last[learned] = e
        forgot[forgotten] = e
        events += forgotten
        prev = c
    return {"first_learned": first, "last_learned": last, "last_forgotten": forgot, "forgetting_events": events,
            "correct": prev, "noisy": np.broadcast_to(noisy, shape).copy(), "epochs": np.asarray(epochs, np.int32)}


def stats_before(a: dict[str, np.ndarray]) -> dict:
    """forgetting.stats as it was: learned_by / kept_by compare every example at every epoch."""
    out = forgetting.stats(a)  # the other numbers (their cost is in both)
    E, noisy = int(a["epochs"]), a["noisy"].astype(bool)
    epochs = np.arange(1, E + 1)
    for name, mask in (("clean", ~noisy), ("noisy", noisy)):
        n = int(mask.sum())
        if not n:
            continue
        f, la, c = a["first_learned"][mask], a["last_learned"][mask], a["correct"][mask].astype(bool)
        learned = f > 0
        out[name]["learned_by"] = [(f[learned] <= e).sum() / n for e in epochs]
        out[name]["kept_by"] = [(c & (la <= e)).sum() / n for e in epochs]
    return out


def timed(fn, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for seeds in args.seeds:
            run = Path(tmp) / f"seeds{seeds}"
            run.mkdir()
            a = synthetic(args.examples, args.epochs, seeds, rng)
            with open(run / forgetting.NAME, "wb") as f:
                np.savez_compressed(f, **a)
            size = (run / forgetting.NAME).stat().st_size / 2**20
            load_ms, loaded = timed(lambda: forgetting.load(run), args.rounds)
            before_ms, before = timed(lambda: stats_before(loaded), args.rounds)
            after_ms, after = timed(lambda: forgetting.stats(loaded), args.rounds)
            for name in forgetting.GROUPS:
                for k in ("learned_by", "kept_by"):
                    assert after[name][k] == before[name][k], (seeds, name, k)
            loop_ms, _ = timed(lambda: forgetting.view_key(run), max(args.rounds, 50))
            print(f"{args.examples} examples x {args.epochs} epochs x {seeds} seeds ({size:.1f} MiB compressed): "
                  f"load {load_ms:.1f} ms; stats before {before_ms:.1f} ms, after {after_ms:.1f} ms "
                  f"({before_ms / after_ms:.1f}x, same numbers); event loop per changed file: before "
                  f"{load_ms + before_ms:.1f} ms (load + stats), after {loop_ms * 1e3:.0f} µs (a stat; "
                  f"load + stats {load_ms + after_ms:.1f} ms in a thread)")


if __name__ == "__main__":
    main()
