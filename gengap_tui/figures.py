"""`gengap-tui figure RUN|SWEEP [--view …] --out FILE.{png,pdf,svg}`: a publication-style figure
of a run or a sweep directory with the lab's markers (docs/ARCHITECTURE.md, "Command line").

matplotlib is an optional extra (`pip install 'gengap-tui[figures]'`): this module is its only
importer (an import-linter contract), and imports it inside `figure()`, with the Agg backend
(no display). Runs: `error`, `loss`, `memorization` (against the epoch: the best epoch, the stop,
the would-stop epoch and the tweaks as vertical lines; stacked seeds' min-max as bands) and
`examples` (examples.npz: learned by epoch, forgetting events). Sweeps: `sweep` (train / val /
test error against the value, the seeds' bands, the early-stopped test error, the interpolation
threshold and the peak; one line per value of a grid's second setting).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from . import forgetting, runs
from .tables import param_pairs

RUN_VIEWS = ("error", "loss", "memorization", "examples")
SWEEP_VIEWS = ("sweep",)
FORMATS = (".png", ".pdf", ".svg")
LINES = {
    "error": [("train_err", "train error"), ("val_err", "validation error"), ("gap_err", "gap (val − train)")],
    "loss": [("train_loss", "train loss"), ("val_loss", "validation loss")],
    "memorization": [("train_clean_err", "error on clean training examples"),
                     ("noisy_memorized", "noisy labels memorized"), ("val_err", "validation error")],
}
# the markers' colours stay apart from the lines' (matplotlib's first colours: blue, orange, green)
MARKERS = {"best": ("0.2", "--"), "stop": ("tab:red", "-"), "would_stop": ("tab:brown", "-."),
           "tweak": ("0.5", ":"), "threshold": ("tab:purple", "--")}
GROUP_COLORS = {"clean": "tab:green", "noisy": "tab:red"}


class FigureError(ValueError):
    """Bad input: the message names what and what is allowed (exit 2)."""


def _is_sweep(d: Path) -> bool:
    return (d / "sweep.json").is_file()


def missing() -> str | None:
    """Why figures cannot be drawn here (matplotlib not installed), or None."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "gengap-tui figure needs matplotlib: pip install 'gengap-tui[figures]'"
    return None


def check(source: str | Path, view: str | None, out: str | Path) -> tuple[Path, str, Path]:
    """(directory, view, out) after checking them; FigureError otherwise."""
    d, o = Path(source), Path(out)
    if not d.is_dir() or not ((d / "config.json").is_file() or _is_sweep(d)):
        raise FigureError(f"{d}: not a run or sweep directory (no config.json or sweep.json)")
    if o.suffix.lower() not in FORMATS:
        raise FigureError(f"--out {o}: the file name must end in {', '.join(FORMATS)}")
    if not o.parent.exists():
        raise FigureError(f"--out {o}: the folder {o.parent} does not exist")
    sweep = _is_sweep(d)
    view = view or ("sweep" if sweep else "error")
    allowed = SWEEP_VIEWS if sweep else RUN_VIEWS
    if view not in allowed:
        kind = "a sweep directory" if sweep else "a run directory"
        raise FigureError(f"--view {view}: {kind} has the views {', '.join(allowed)}")
    if view == "examples" and forgetting.load(d) is None:
        raise FigureError(f"{d}: no readable examples.npz (runs write it since issue 25)")
    return d, view, o


def figure(source: str | Path, view: str | None, out: str | Path, size: tuple[float, float] = (6.4, 4.0)) -> Path:
    """Draw `view` of the run or sweep directory `source` into `out` (its suffix picks the format)."""
    d, view, o = check(source, view, out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.fonttype": "none", "pdf.fonttype": 42}):
        if view == "examples":
            fig, axes = plt.subplots(1, 2, figsize=(size[0] * 1.6, size[1]), constrained_layout=True)
            _examples(axes, forgetting.stats(forgetting.load(d)), d)
        else:
            fig, ax = plt.subplots(figsize=size, constrained_layout=True)
            (_sweep if view == "sweep" else _run)(ax, d, view)
        fig.savefig(o, dpi=200, metadata={"Title": f"gengap-tui {view}: {d.name}"})
        plt.close(fig)
    return o


# ---------------------------------------------------------------------------------------------
# a run


def _run(ax, d: Path, view: str) -> None:
    rows = runs.read_jsonl(d / "metrics.jsonl")
    events = runs.read_jsonl(d / "events.jsonl") if (d / "events.jsonl").is_file() else []
    summary = runs.read_json(d / "summary.json") or {}
    cfg = runs.read_json(d / "config.json") or {}
    if not rows:
        raise FigureError(f"{d}: no epochs in metrics.jsonl yet")
    lines = list(LINES[view])
    if view == "error" and any("ratt_bound" in r for r in rows):
        lines += [("ratt_bound", "RATT bound"), ("ratt_random_err", "error on random labels")]
    for key, label in lines:
        pts = [(r["epoch"], _f(r.get(key))) for r in rows]
        pts = [(x, y) for x, y in pts if y is not None]
        if not pts:
            continue
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, lw=1.6)
        band = [(r["epoch"], _f(r.get(key + "_min")), _f(r.get(key + "_max"))) for r in rows]
        band = [b for b in band if b[1] is not None and b[2] is not None]
        if band:  # stacked seeds: min to max over the seeds
            ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                            color=line.get_color(), alpha=0.18, lw=0)
    if view == "loss":
        ax.set_yscale("log")
    _run_markers(ax, rows, events, summary)
    name = cfg.get("name") or d.name
    seeds = (cfg.get("run") or {}).get("seeds", 1)
    ax.set_title(f"{name}: {view}" + (f" ({seeds} seeds, min–max bands)" if seeds and seeds > 1 else ""))
    ax.set_xlabel("epoch")
    ax.set_ylabel({"error": "error", "loss": "cross-entropy loss", "memorization": "share"}[view])
    ax.legend(frameon=False, fontsize=8)


def _run_markers(ax, rows: list[dict], events: list[dict], summary: dict) -> None:
    """The lab's markers: best epoch, stop, would-stop, tweaks."""
    def vline(x, kind, label):
        color, style = MARKERS[kind]
        ax.axvline(x, color=color, ls=style, lw=1.1, label=label)

    best = summary.get("best_epoch")
    if best is None:
        best = next((r.get("es_best_epoch") for r in reversed(rows) if r.get("es_best_epoch")), None)
    if best:
        vline(best, "best", f"best epoch {best}")
    stop = next((e for e in events if e.get("event") == "early_stop"), None)
    if stop:
        vline(stop["epoch"], "stop", f"early stop {stop['epoch']}")
    would = next((e for e in events if e.get("event") == "would_stop"), None)
    if would:
        vline(would["epoch"], "would_stop", f"would stop {would['epoch']}")
    for i, e in enumerate(e for e in events if e.get("event") == "tweaked"):
        changes = ", ".join(f"{k}={v}" for k, v in (e.get("changes") or {}).items())
        vline(e["epoch"], "tweak", "tweaks" if i == 0 else None)
        ax.annotate(changes, (e["epoch"], 1), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                    va="top", ha="right", color="0.35")


# ---------------------------------------------------------------------------------------------
# examples.npz


def _examples(axes, s: dict[str, Any], d: Path) -> None:
    left, right = axes
    epochs = list(range(1, s["epochs"] + 1))
    groups = [g for g in forgetting.GROUPS if s[g]["n"]]
    for g in groups:
        c = GROUP_COLORS[g]
        med = s[g]["median_first"]
        left.plot(epochs, s[g]["learned_by"], color=c, lw=1.8,
                  label=f"{g} ({s[g]['n']}): first learned" + (f", median epoch {med:g}" if med is not None else ""))
        left.plot(epochs, s[g]["kept_by"], color=c, lw=1.2, ls="--", label=f"{g}: learned for good")
    left.set_xlabel("epoch")
    left.set_ylabel("share of the group")
    left.set_ylim(0, 1.02)
    left.set_title("training examples learned by each epoch")
    left.legend(frameon=False, fontsize=8)
    labels = forgetting.hist_labels()
    w = 0.8 / max(1, len(groups))
    for i, g in enumerate(groups):
        xs = [k + (i - (len(groups) - 1) / 2) * w for k in range(len(labels))]
        right.bar(xs, s[g]["hist"], width=w, color=GROUP_COLORS[g],
                  label=f"{g}: {s[g]['events_mean']:.2f} events on average")
    right.set_xticks(range(len(labels)), labels)
    right.set_xlabel("forgetting events (right → wrong)")
    right.set_ylabel("share of the group")
    right.set_title("how often examples were forgotten")
    right.legend(frameon=False, fontsize=8)


# ---------------------------------------------------------------------------------------------
# a sweep


def _sweep(ax, d: Path, view: str) -> None:  # noqa: ARG001 - one sweep view for now
    from .tables import load_rows

    rows, meta, summary = load_rows(d)
    pairs = param_pairs(rows)
    (pk, vk), second = pairs[0], (pairs[1] if len(pairs) > 1 else None)
    numeric = all(isinstance(r.get(vk), (int, float)) and not isinstance(r.get(vk), bool) for r in rows)
    xs_all = [r[vk] for r in rows] if numeric else []
    log = numeric and all(x > 0 for x in xs_all) and max(xs_all) / min(xs_all) >= 20
    cats = [] if numeric else list(dict.fromkeys(str(r.get(vk)) for r in rows))
    x_of = (lambda r: r[vk]) if numeric else (lambda r: cats.index(str(r.get(vk))))  # noqa: E731
    lines = [("train_err", "train error"), ("val_err", "validation error"), ("test_err", "test error"),
             ("test_err_kept", "test error, early-stopped")]
    groups = ([(None, rows)] if second is None else
              [(g, [r for r in rows if r.get(second[1]) == g]) for g in dict.fromkeys(r.get(second[1]) for r in rows)])
    styles = ["-", "--", ":", "-."]
    for gi, (g, grows) in enumerate(groups):
        for key, label in lines:
            pts = sorted((x_of(r), _f(r.get(key)), _f(r.get(key + "_min")), _f(r.get(key + "_max")))
                         for r in grows if _f(r.get(key)) is not None)
            if not pts:
                continue
            if second is not None and key in ("train_err", "val_err"):
                continue  # a grid: test error (and kept) per line keeps the figure readable
            lab = label if g is None else f"{label}, {second_name(rows, second)} = {g}"
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1.5,
                            ls=styles[gi % len(styles)], label=lab)
            band = [p for p in pts if p[2] is not None and p[3] is not None]
            if band:
                ax.fill_between([p[0] for p in band], [p[2] for p in band], [p[3] for p in band],
                                color=line.get_color(), alpha=0.15, lw=0)
    thr = summary.get("interpolation_threshold")
    if numeric and isinstance(thr, (int, float)) and second is None:
        color, style = MARKERS["threshold"]
        ax.axvline(thr, color=color, ls=style, lw=1.1, label=f"interpolation threshold {thr:g}")
    if numeric and second is None and summary.get("peak_value") is not None and (summary.get("peak_prominence") or 0) > 0:
        ax.annotate(f"peak {summary['peak_test_err']:.3f}", (summary["peak_value"], summary["peak_test_err"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)
    if log:
        ax.set_xscale("log")
    if cats:
        ax.set_xticks(range(len(cats)), cats)
    seeds = ((meta.get("config") or {}).get("run") or {}).get("seeds", 1)
    name = (meta.get("config") or {}).get("name") or d.name
    ax.set_title(f"{name}: error against {rows[0].get(pk)}" + (f" ({seeds} seeds, min–max bands)" if seeds > 1 else ""))
    ax.set_xlabel(str(rows[0].get(pk)) + (" (log scale)" if log else ""))
    ax.set_ylabel("error")
    ax.legend(frameon=False, fontsize=8)


def second_name(rows: list[dict], pair: tuple[str, str]) -> str:
    return str(next((r[pair[0]] for r in rows if r.get(pair[0])), pair[0]))


def _f(v: Any) -> float | None:
    """A finite number, or None (missing, null, "nan")."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None
