"""Where a headless run's wall time goes, beyond its epochs: a plain `gengap-tui run` of the default
preset (early stopping off), then the same under cProfile.

    python bench/profile_run.py [--device cuda] [--epochs 200] [--set K=V ...] [--top 25]

Prints the run's `wall_seconds` (what the 200-epoch target counts: the whole `Trainer.run`) against
the sum of its `epoch_seconds` (training pass + full-split evaluation), the first three epochs
(with CUDA graphs: the eager warm-up epoch and the recording epoch), and from the profiled run the
callees of `Trainer.run` and the functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gengap_tui import cli  # noqa: E402


def one_run(args, runs_dir: Path, profile: cProfile.Profile | None) -> dict:
    argv = ["run", "default", "--set", f"optim.epochs={args.epochs}", "--set", "early_stopping.enabled=false",
            "--device", args.device, "--quiet", "--runs-dir", str(runs_dir)]
    for kv in args.set:
        argv += ["--set", kv]
    sys.argv = ["gengap-tui", *argv]
    try:
        if profile is not None:
            profile.runcall(cli.main)
        else:
            cli.main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    d = sorted(runs_dir.glob("*/summary.json"))[-1].parent
    s = json.loads((d / "summary.json").read_text())
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
    ep = [r["epoch_seconds"] for r in rows]
    out = {"wall": s["wall_seconds"], "sum": sum(ep), "median": statistics.median(ep), "first": ep[:3],
           "n": len(ep), "device": s["device"]}
    print(f"{'profiled' if profile else 'plain'} run on {s['device']}: {len(ep)} epochs, wall_seconds "
          f"{out['wall']:.3f} s ({len(ep) / out['wall']:.1f} epochs/s); epochs sum {out['sum']:.3f} s, median "
          f"{out['median'] * 1e3:.2f} ms ({1 / out['median']:.1f} epochs/s); outside the epochs "
          f"{out['wall'] - out['sum']:.3f} s ({(out['wall'] - out['sum']) / len(ep) * 1e3:.2f} ms/epoch); first epochs "
          + ", ".join(f"{t * 1e3:.1f}" for t in out["first"]) + " ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--set", action="append", default=[], metavar="K=V")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(args, Path(tmp) / "plain", None)
        prof = cProfile.Profile()
        one_run(args, Path(tmp) / "profiled", prof)
    st = pstats.Stats(prof)
    st.sort_stats("cumulative").print_callees(r"trainer.py:\d+\(run\)")
    st.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
