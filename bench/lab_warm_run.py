"""A default run in a freshly opened lab whose training process is warm, against the same run cold.

    python bench/lab_warm_run.py [--device cuda] [--epochs 200] [--runs-dir DIR]

Opens the lab (headless, 120x36) on the default preset with `--device`, early stopping off and
`--epochs` epochs; waits for the warm training process (torch imported, the device initialised:
on CUDA the context, cuBLAS, a recorded graph; the data built); presses ctrl+r; waits for the
summary. Reports the whole run's epochs/s (summary.json: epochs_run / wall_seconds), ctrl+r to the
first epoch and to the summary, the warm-up time and the warm process's memory. Then trains the
same config cold (`gengap-tui run`, a fresh process) and checks that both runs give the same
numbers (metrics.jsonl without the timing columns, and the summary's test error). bench/gpu.sh
runs it on a GPU machine (target there: >= 200 epochs/s whole run); it runs on a CPU as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gengap_tui import runs  # noqa: E402
from gengap_tui.tui.app import GengapApp  # noqa: E402

TIMING = ("epoch_seconds", "samples_per_s")


async def lab_run(overrides: list[str], runs_dir: str) -> dict:
    app = GengapApp("default", overrides, runs_dir=runs_dir, prewarm=True)
    out: dict = {}
    t_open = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        while app.warm.state != "ready":
            if time.perf_counter() - t_open > 300:
                raise SystemExit(f"no warm training process after 300 s (state {app.warm.state})")
            await asyncio.sleep(0.02)
        out["warm_s"] = time.perf_counter() - t_open
        out["report"] = dict(app.warm.process.report)
        t0 = time.perf_counter()
        await pilot.press("ctrl+r")
        while not app.state.run.series.rows and app.state.run.summary is None:
            await asyncio.sleep(0.002)
        out["first_epoch_s"] = time.perf_counter() - t0
        while app.state.run.summary is None:
            if time.perf_counter() - t0 > 600:
                raise SystemExit("the run did not end within 600 s")
            await asyncio.sleep(0.01)
        out["to_summary_s"] = time.perf_counter() - t0
        out["warm"] = app.source.warm
        out["run_dir"] = str(app.source.path)
        await pilot.press("ctrl+q")
    return out


def cold_run(overrides: list[str], runs_dir: str) -> Path:
    args = [a for o in overrides for a in ("--set", o)]
    p = subprocess.run([sys.executable, "-m", "gengap_tui.cli", "run", "default", *args, "--quiet",
                        "--runs-dir", runs_dir], capture_output=True, text=True, cwd=ROOT, timeout=900)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("run directory: ")), None)
    if p.returncode != 0 or line is None:
        raise SystemExit(f"the cold run failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return Path(line.split(": ", 1)[1])


def rows(d: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in runs.read_jsonl(d / "metrics.jsonl")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--runs-dir", default=None)
    args = ap.parse_args()
    overrides = [f"device={args.device}", "early_stopping.enabled=false", f"optim.epochs={args.epochs}"]
    with tempfile.TemporaryDirectory(prefix="gengap-warm-run-") as tmp:
        runs_dir = args.runs_dir or tmp
        lab = asyncio.run(lab_run(overrides, runs_dir))
        d = Path(lab["run_dir"])
        s = runs.read_json(d / "summary.json") or {}
        cold = cold_run(overrides, runs_dir)
        cs = runs.read_json(cold / "summary.json") or {}
        same = rows(d) == rows(cold) and s.get("test_err") == cs.get("test_err")
    eps = s["epochs_run"] / s["wall_seconds"]
    ceps = cs["epochs_run"] / cs["wall_seconds"]
    rep = lab["report"]
    print(f"warm lab: training process ready {lab['warm_s']:.1f} s after the lab opened (prewarm {rep.get('seconds')} s "
          f"on {rep.get('device')}, RSS {(rep.get('rss_kb') or 0) / 1024:.0f} MiB{', ' + rep['error'] if 'error' in rep else ''})")
    print(f"warm lab run: {s['epochs_run']} epochs on {s['device']}, wall_seconds {s['wall_seconds']:.3f} -> {eps:.1f} "
          f"epochs/s whole run (target >= 200 on a GPU: {'met' if eps >= 200 else 'MISSED'}); ctrl+r -> first epoch "
          f"{lab['first_epoch_s'] * 1000:.0f} ms, -> summary {lab['to_summary_s']:.2f} s; from the warm process: "
          f"{lab['warm']}; status {s['status']}, test_err {s.get('test_err')}")
    print(f"cold run (gengap-tui run, a fresh process): wall_seconds {cs['wall_seconds']:.3f} -> {ceps:.1f} epochs/s; "
          f"test_err {cs.get('test_err')}; warm and cold runs give the same numbers: {same}")
    if not lab["warm"] or not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
