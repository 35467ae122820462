"""Regenerates the README's "The section's questions, measured" tables: the observing sweep of
early stopping against label noise, the weight-decay sweep on noisy labels, and the norms of the
double-descent sweep, each run as a user would (`gengap-tui sweep PRESET --device cpu`).

    python bench/section_questions.py                       # runs the three sweeps (~6-10 min on 2 cores)
    python bench/section_questions.py --from ESN WDI DD     # formats three existing sweep directories
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_numbers import ROOT, gengap  # noqa: E402

sys.path.insert(0, str(ROOT))
from gengap_tui import runs  # noqa: E402

PRESETS = ("early-stopping-vs-noise", "weight-decay-interpolation", "double-descent")


def rows_of(d: Path) -> tuple[list[dict], dict]:
    return runs.read_jsonl(d / "sweep.jsonl"), runs.read_json(d / "summary.json") or {}


def early_stopping_table(d: Path) -> list[str]:
    rows, summary = rows_of(d)
    meta = runs.read_json(d / "sweep.json") or {}
    epochs = meta.get("epochs")
    out = [f"| label noise | would stop at epoch (keeps) | test err kept | test err final | kept − final | "
           f"epochs saved of {epochs} |", "|---|---|---|---|---|---|"]
    for r in rows:
        diff = r["test_err_kept"] - r["test_err_final"]
        out.append(f"| {r['value']:.1f} | {r['would_stop_epoch'] or '-'} ({r['best_epoch']}) | {r['test_err_kept']:.3f} "
                   f"| {r['test_err_final']:.3f} | {diff:+.3f} | {r['epochs_saved']} |")
    out.append(f"(sweep: {summary.get('wall_seconds', 0):.0f} s)")
    return out


def weight_decay_table(d: Path) -> list[str]:
    rows, summary = rows_of(d)
    out = ["| weight decay | train err | noisy labels memorized | test err | weight norm | spectral-norm product |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        mem = r.get("noisy_memorized")
        out.append(f"| {r['value']:g} | {r['train_err']:.3f} | {'-' if mem is None else f'{mem:.0%}'} | "
                   f"{r['test_err']:.3f} | {r['weight_norm']:.1f} | {r['spectral_norm_product']:.0f} |")
    out.append(f"(interpolation_lost_at: {summary.get('interpolation_lost_at')}; "
               f"sweep: {summary.get('wall_seconds', 0):.0f} s)")
    return out


def norms_table(d: Path) -> list[str]:
    rows, summary = rows_of(d)
    thr, dip = summary.get("interpolation_threshold"), summary.get("dip_value")
    picks = [r for r in rows if r["value"] in {dip, thr, rows[-1]["value"]} or
             r["value"] in {38.0, 84.0}]
    out = ["| width | parameters | train err | test err | weight norm | spectral-norm product |",
           "|---|---|---|---|---|---|"]
    for r in picks:
        tag = " (threshold)" if r["value"] == thr else " (dip)" if r["value"] == dip else ""
        out.append(f"| {r['value']:g}{tag} | {r['n_params']} | {r['train_err']:.3f} | {r['test_err']:.3f} | "
                   f"{r['weight_norm']:.1f} | {r['spectral_norm_product']:.0f} |")
    peak_w = max(rows, key=lambda r: r["weight_norm"])["value"]
    peak_s = max(rows, key=lambda r: r["spectral_norm_product"])["value"]
    out.append(f"(largest weight norm at width {peak_w:g}, largest spectral-norm product at {peak_s:g}; "
               f"test-error peak at {summary.get('peak_value')}; sweep: {summary.get('wall_seconds', 0):.0f} s)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="dirs", nargs=3, metavar="SWEEP_DIR", help="existing sweep directories")
    args = ap.parse_args()
    if args.dirs:
        dirs = [Path(p) for p in args.dirs]
    else:
        tmp = tempfile.mkdtemp(prefix="gengap-section-")
        dirs = [gengap("sweep", p, "--runs-dir", tmp)[0] for p in PRESETS]
    for title, fn, d in zip(PRESETS, (early_stopping_table, weight_decay_table, norms_table), dirs):
        print(f"### {title}: {d}")
        print("\n".join(fn(d)))
        print()


if __name__ == "__main__":
    main()
