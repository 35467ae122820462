"""Regenerates the README's "Measured here" table: runs every command in it, as a user would (the
`gengap-tui` command, CPU), and prints the table in Markdown with the machine and library versions.

    python bench/readme_numbers.py            # the table (~4 minutes on 2 CPU cores)
    python bench/readme_numbers.py --full     # also the two 500-epoch double-descent sweeps (~8 min more)

Times are the runs' own (`wall_seconds`: data, training, evaluation; not the interpreter's
start or `import torch`), the sweeps' the whole command's. What varies with the machine: the seconds; and, in the last digits, the numbers themselves when
the CPU thread count differs (`run.threads`, recorded in each run's config.json as `torch_threads`)
or another torch build sums in another order. Same machine, same torch: the same table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gengap_tui import runs  # noqa: E402


def gengap(*args: str) -> tuple[Path, float]:
    """Run `gengap-tui ARGS --device cpu --quiet` and return its run (or sweep) directory and wall time."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "gengap_tui.cli", *args, "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, cwd=ROOT, timeout=3600)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"gengap-tui {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith(("run directory: ", "sweep directory: ")))
    return Path(line.split(": ", 1)[1]), wall


def acc(err: float) -> str:
    return f"{1 - err:.1%}"


def row_at(rows: list[dict], epoch: int) -> dict:
    return next(r for r in rows if r["epoch"] == epoch)


def cmd(args: list[str]) -> str:
    return "`gengap-tui " + " ".join(args) + " --device cpu`"


def run_rows(d: Path) -> tuple[dict, list[dict], list[dict]]:
    rec = runs.load_run(d)
    return rec.summary or {}, rec.metrics, rec.events


def table(runs_dir: str, full: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    rd = ["--runs-dir", runs_dir]

    def run(*args: str):  # the run's summary, rows, events and its own training time (wall_seconds)
        d, _ = gengap("run", *args, *rd)
        summary, rows, events = run_rows(d)
        return summary, rows, events, summary["wall_seconds"]

    a = ["run", "default"]
    s, m, _, wall = run("default")
    out.append((cmd(a), f"early-stopped at epoch {s['stop_epoch']}, kept epoch {s['best_epoch']}: test acc "
                        f"{acc(s['test_err'])} (15% noisy labels), {wall:.1f} s"))
    clean = ["--set", "noise.label_noise=0", "--set", "optim.epochs=150"]
    s, m, _, _ = run("default", *clean)
    out.append((cmd(["run", "default", *clean]), f"MLP: test acc {acc(s['test_err'])} (paper: 68%); "
                f"early stopping ended it at epoch {s['epochs_run']}" if s["status"] == "early_stopped" else
                f"MLP: test acc {acc(s['test_err'])} (paper: 68%)"))
    s, _, _, _ = run("default", *clean, "--set", "model.kind=cnn1d")
    out.append((cmd(["run", "default", *clean, "--set", "model.kind=cnn1d"]), f"CNN: test acc {acc(s['test_err'])}"))
    s, _, _, _ = run("cnn-clean")
    out.append((cmd(["run", "cnn-clean"]), f"CNN at the paper's lr 0.01: test acc {acc(s['test_err'])} (paper: 94%)"))
    obs = ["--set", "early_stopping.observe=true"]
    s, m, _, wall = run("label-noise", *obs)
    best, last = row_at(m, s["best_epoch"]), m[-1]
    out.append((cmd(["run", "label-noise", *obs]),
                f"best validation epoch {s['best_epoch']}: clean-train error {best['train_clean_err']:.3f}, "
                f"{best['noisy_memorized']:.1%} of the noisy labels memorized, val error {best['val_err']:.3f}; by "
                f"epoch {last['epoch']} {last['noisy_memorized']:.0%} of the noisy labels memorized and val error "
                f"{last['val_err']:.3f}; test error {s['would_stop_test_err']:.3f} with the weights stopping "
                f"would keep vs {s['final_test_err']:.3f} with the last ones ({wall:.0f} s)"))
    s_rand, m_rand, _, _ = run("random-labels")
    s_true, _, _, _ = run("random-labels", "--set", "noise.label_noise=0")
    out.append(("`gengap-tui run random-labels --device cpu` / `--set noise.label_noise=0`",
                f"random labels fitted (train error ≤ 0.01) after {s_rand['epochs_to_fit']} epochs, true labels "
                f"after {s_true['epochs_to_fit']}; validation error never below "
                f"{min(r['val_err'] for r in m_rand):.3f} on random labels (chance 0.9)"))
    s, _, _, _ = run("knn-vs-mlp")
    out.append((cmd(["run", "knn-vs-mlp"]), f"MLP test error {s['test_err']:.3f}; 1-NN "
                f"{s['baseline_knn_test_err']:.3f} (train error exactly {s['baseline_knn_train_err']:g}); NTK (depth 2) "
                f"{s['baseline_ntk_test_err']:.3f}"))
    s, _, _, _ = run("ratt-binary")
    holds = "holds" if s["ratt_bound"] >= s["test_err"] else "DOES NOT HOLD"
    out.append((cmd(["run", "ratt-binary"]), f"kept epoch {s['ratt_epoch']}: test error {s['test_err']:.3f}, RATT "
                f"bound {s['ratt_bound']:.3f} (δ = {s['ratt_delta']}), which {holds}"
                + (" and is below 0.5" if s["ratt_bound"] < 0.5 else "")))
    if full:
        for extra in ([], ["--one-at-a-time"]):
            d, wall = gengap("sweep", "double-descent", *extra, *rd)
            ss = runs.read_json(d / "summary.json") or {}
            peak = (f"test error peaks at {ss['peak_test_err']:.3f} at width {ss['peak_value']:g}, against "
                    f"{ss['dip_test_err']:.3f} at width {ss['dip_value']:g} (the dip before it)"
                    if ss.get("peak_value") is not None else "no test-error peak")
            out.append(("`gengap-tui sweep double-descent " + " ".join(extra + ["--device", "cpu"]).strip() + "`",
                        f"20 widths × 500 epochs {'one after another' if extra else 'trained together'} in "
                        f"{wall:.0f} s: training error first reaches 0 at width {ss['interpolation_threshold']:g} "
                        f"(the interpolation threshold); {peak}; {ss['last_test_err']:.3f} at width 300"))
    s, m, ev, wall = run("epochwise-double-descent")
    first_best = min(m[:15], key=lambda r: r["val_err"])
    bump = max((r for r in m if r["epoch"] > first_best["epoch"] and r["epoch"] <= 40), key=lambda r: r["val_err"])
    later = min((r for r in m if r["epoch"] > bump["epoch"]), key=lambda r: r["val_err"])
    out.append((cmd(["run", "epochwise-double-descent"]),
                f"validation error {first_best['val_err']:.3f} at epoch {first_best['epoch']}, up to "
                f"{bump['val_err']:.3f} at epoch {bump['epoch']} while the noisy labels are memorized "
                f"({bump['noisy_memorized']:.0%} by then), back down to {later['val_err']:.3f} at epoch {later['epoch']} "
                f"({m[-1]['val_err']:.3f} at {m[-1]['epoch']}). Patience {10} would have stopped at epoch "
                f"{s['would_stop_epoch']}; test error {s['would_stop_test_err']:.3f} with the weights it would have "
                f"kept vs {s['final_test_err']:.3f} at the end. {wall:.0f} s"))
    seeds = ["--set", "run.seeds=5"]
    s, _, _, _ = run("default", *seeds)
    out.append((cmd(["run", "default", *seeds]), f"5 stacked seeds, early stopping on the mean: stopped at epoch "
                f"{s['stop_epoch']}, kept epoch {s['best_epoch']}, test error {s['test_err']:.3f} ± "
                f"{s['test_err_std']:.3f} ({s['test_err_min']:.3f}–{s['test_err_max']:.3f})"))
    ln = ["--set", "run.seeds=3", "--set", "early_stopping.observe=true"]
    s, _, _, wall = run("label-noise", *ln)
    out.append((cmd(["run", "label-noise", *ln]), f"3 CNN seeds as grouped convolutions: the mean validation curve "
                f"is best at epoch {s['best_epoch']}; test error {s['would_stop_test_err']:.3f} with those weights vs "
                f"{s['final_test_err']:.3f} at epoch {s['epochs_run']}; {wall:.0f} s"))
    return out


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), which with torch's kernel set (AVX2, AVX512...) and the
    thread count decides the summation order, hence the last digits and early stopping's epoch."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also the two 500-epoch double-descent sweeps")
    args = ap.parse_args()
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="gengap-readme-") as runs_dir:
        rows = table(runs_dir, args.full)
    print(f"Measured here ({cores}-core {platform.machine()} CPU: {cpu_model()}, torch's kernels "
          f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"{max(1, cores - 1)} training thread(s): `run.threads = 0`, Python {platform.python_version()}, "
          f"{datetime.date.today().isoformat()}; `python bench/readme_numbers.py"
          f"{' --full' if args.full else ''}` regenerates it):")
    print()
    print("| command | result |")
    print("|---|---|")
    for c, r in rows:
        print(f"| {c} | {r} |")


if __name__ == "__main__":
    main()
