"""How fast `gengap-tui run` reaches its first epoch: a cold start (empty dataset cache) and a
second start (cache warm), each timed from process launch to the first line of metrics.jsonl.

    python bench/startup.py [--preset default] [--repeats 3]

Target (issue 5): a second `gengap-tui run` reaches its first epoch in <= 3 s on the 2-core CPU.
Also prints `python -c "import torch"` alone, the floor no run can beat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_epoch_seconds(preset: str, runs_dir: Path, env: dict) -> float:
    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gengap_tui.cli", "run", preset, "--quiet", "--device", "cpu",
                             "--set", "optim.epochs=200", "--set", "early_stopping.enabled=false",
                             "--runs-dir", str(runs_dir)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            new = [p for p in (set(runs_dir.iterdir()) if runs_dir.exists() else set()) - before]
            if new:
                m = new[0] / "metrics.jsonl"
                if m.exists() and m.stat().st_size > 0:
                    return time.perf_counter() - t0
            if proc.poll() is not None:
                raise RuntimeError(f"the run exited with {proc.returncode} before its first epoch")
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GENGAP_CACHE_DIR": str(Path(tmp) / "cache")}
        runs_dir = Path(tmp) / "runs"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        torch_import = time.perf_counter() - t0
        cold = first_epoch_seconds(args.preset, runs_dir, env)
        warm = [first_epoch_seconds(args.preset, runs_dir, env) for _ in range(args.repeats)]
    print(f"python -c 'import torch':           {torch_import:6.2f} s")
    print(f"first epoch, cold dataset cache:    {cold:6.2f} s")
    print(f"first epoch, second start (median of {len(warm)}): {statistics.median(warm):6.2f} s "
          f"(all: {', '.join(f'{w:.2f}' for w in warm)}; target <= 3 s)")


if __name__ == "__main__":
    main()
