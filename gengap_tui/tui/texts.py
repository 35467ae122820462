"""The lab's words, as pure functions of its state: the status bar's head line, the patience
meter, the run's and the sweep's outcome lines. No Textual here (docs/ARCHITECTURE.md, "The lab").
"""

from __future__ import annotations

import os
from pathlib import Path

from ..protocol import fmt_value
from .state import RunState, SweepState


def short_path(p: Path | str) -> str:
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return rel if not rel.startswith("..") else str(p)


def recent_epoch_seconds(run: RunState, n: int = 10) -> float | None:
    """Seconds an epoch takes now: the mean of the last `n` epochs' own times (a pause, the
    start-up or the time before an attach are not epochs, so they do not count)."""
    times = [r.get("epoch_seconds") for r in run.series.rows[-n:]]
    times = [t for t in times if isinstance(t, (int, float)) and not isinstance(t, bool) and t >= 0]
    return sum(times) / len(times) if times else None


def run_head(run: RunState) -> str:
    """`preset | device | epoch e/E | samples/s | ETA | run dir` of the run on screen."""
    cfg = run.cfg
    last = run.series.last
    epoch = f"epoch {last['epoch']}/{cfg.optim.epochs}" if last else f"epoch -/{cfg.optim.epochs}"
    sps = f"{last['samples_per_s']:,.0f} samples/s" if last and last.get("samples_per_s") else "- samples/s"
    eta = "ETA -"
    per = recent_epoch_seconds(run)
    if last and last.get("epoch") and run.summary is None and per is not None:
        eta = f"ETA {per * (cfg.optim.epochs - last['epoch']):.0f}s"
    run_dir = short_path(run.run_dir) if run.run_dir else "-"
    return f"[b]{cfg.name}[/] | {run.device or 'device -'} | {epoch} | {sps} | {eta} | {run_dir}"


def run_note(run: RunState, status: str) -> str:
    seeds = f" | {run.seeds} seeds (mean, band = min–max)" if run.seeds > 1 else ""
    return status + seeds


def sweep_head(sweep: SweepState, epochs_default: int, live: bool) -> str:
    meta = sweep.meta or {}
    sw = sweep.series
    epochs = meta.get("epochs") or epochs_default
    where = short_path(sweep.sweep_dir) if sweep.sweep_dir is not None else "-"
    paused = " (paused)" if sweep.paused and live else ""
    what = f"{sweep.param} x {sweep.param2}" if sweep.param2 else sweep.param
    epoch = f"epoch {sw.epoch or '-'}/{epochs}"
    if sweep.param2 and sw.line is not None and live:  # a grid trains line after line: which one
        lines = sw.lines
        at = f" ({lines.index(sw.line) + 1}/{len(lines)})" if sw.line in lines else ""
        epoch = f"{sweep.param2.split('.')[-1]} {fmt_value(sw.line)}{at}: epoch {sw.line_epoch}/{epochs}"
    # the pace: samples/s of all values together, and the ETA of the value-epochs still to train
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    n_train = (cfg.get("data") or {}).get("n_train")
    seeds = (cfg.get("run") or {}).get("seeds") or 1
    rate = sw.pace()
    sps = f"{rate * n_train * seeds:,.0f} samples/s" if rate and isinstance(n_train, int) else "- samples/s"
    left = (sw.size or len(sw.values)) * epochs - sw.value_epochs if isinstance(epochs, int) else None
    eta = f"ETA {left / rate:.0f}s" if rate and live and sweep.summary is None and left is not None and left > 0 \
        else "ETA -"
    return (f"[b]sweep {what}[/] | {meta.get('device') or 'device -'} | "
            f"{epoch}{paused} | {sw.known}/{sw.size or '-'} "
            f"{'points' if sweep.param2 else 'values'} | {sps} | {eta} | {where}")


def patience_text(run: RunState) -> str:
    """`patience 3/10` with a bar, the best value and its epoch; the stop text when it fires."""
    es = run.cfg.early_stopping
    patience, row = run.patience, run.series.last
    if row is None:
        return f"patience -/{patience}  (monitor {es.monitor})"
    wait = row.get("es_wait") or 0
    width = 20
    filled = min(width, round(width * wait / max(patience, 1)))
    bar = "█" * filled + "░" * (width - filled)
    best = row.get("es_best")
    best_txt = f"best {es.monitor} {best:.4f} @ epoch {row.get('es_best_epoch')}" if best is not None else "best -"
    over = f" (+{wait - patience})" if wait > patience else ""
    lines = [f"patience {min(wait, patience)}/{patience}{over} {bar}  {best_txt}"]
    if not es.enabled:
        lines[0] += "  (early stopping off)"
    stop, would = run.stop, run.event_epoch("would_stop")
    if stop is not None:
        lines.append(f"[b red]EARLY STOP @ epoch {stop[0]} (kept epoch {stop[1]})[/]")
    elif would is not None:
        lines.append(f"[b yellow]would stop @ {would}[/] (observe mode: training goes on)")
    return "\n".join(lines)


def run_outcome(summary: dict | None) -> str:
    """The run's summary in one line: status, test error of the kept weights; in observe mode the
    test error of the weights stopping would have kept against the final weights'."""
    if summary is None:
        return ""
    s = summary
    n = s.get("epochs_run")  # None when the run failed before training (session._failed, the worker)
    parts = [f"[b]{s.get('status')}[/]" + (f" after {n} epoch{'' if n == 1 else 's'}" if isinstance(n, int) else "")]
    if s.get("test_err") is not None:
        kept = f" (kept epoch {s.get('best_epoch')})" if s.get("restored_best") else ""
        if isinstance(s.get("test_err_std"), (int, float)):  # K seeds: their mean and spread
            k = s.get("members") or len(s.get("test_err_members") or []) or "K"
            spread = f"test err {s['test_err']:.4f} ± {s['test_err_std']:.4f} (mean ± std of {k} seeds"
            if isinstance(s.get("test_err_min"), (int, float)) and isinstance(s.get("test_err_max"), (int, float)):
                spread += f", {s['test_err_min']:.4f}-{s['test_err_max']:.4f}"
            parts.append(spread + f"){kept}")
        else:
            parts.append(f"test err {s['test_err']:.4f}{kept}")
    if s.get("would_stop_test_err") is not None:  # observe mode: what it exists for, kept against final
        at = f" (epoch {s['would_stop_best_epoch']})" if s.get("would_stop_best_epoch") is not None else ""
        line = f"stopping would have kept{at} {s['would_stop_test_err']:.4f}"
        if isinstance(s.get("final_test_err"), (int, float)):
            line += f" vs final (epoch {s.get('epochs_run')}) {s['final_test_err']:.4f}"
        parts.append(line)
    if s.get("reason") and s.get("status") not in ("completed", "early_stopped"):
        parts.append(str(s["reason"]))
    return " | ".join(parts)


def sweep_outcome(sweep: SweepState | None) -> str:
    """The sweep's outcome (summary.json): status, threshold, peak and dip of the test error."""
    s = sweep.summary if sweep is not None else None
    if s is None:
        return ""
    leaf = sweep.param.split(".")[-1]
    wall = s.get("wall_seconds")
    parts = [f"[b]sweep {s.get('status')}[/]" + (f" in {wall:.0f}s" if isinstance(wall, (int, float)) else "")]
    if sweep.param2:  # a grid: the shape of each line
        leaf2 = sweep.param2.split(".")[-1]
        for line in s.get("lines") or []:
            thr, bit = line.get("interpolation_threshold"), f"{leaf2} {fmt_value(line.get('value2'))}: "
            bit += f"fits from {leaf} {fmt_value(thr)}" if thr is not None else "never fits"
            if line.get("peak_value") is not None and (line.get("peak_prominence") or 0) > 0:
                bit += (f", test err peak {line['peak_test_err']:.4f} @ {fmt_value(line['peak_value'])} "
                        f"(dip {line['dip_test_err']:.4f} @ {fmt_value(line['dip_value'])})")
            if isinstance(line.get("last_test_err"), (int, float)):
                bit += f", last {line['last_test_err']:.4f}"
            parts.append(bit)
        if s.get("reason") and s.get("status") != "completed":
            parts.append(str(s["reason"]))
        return " | ".join(parts)
    thr = s.get("interpolation_threshold")
    parts.append(f"interpolation threshold {leaf} {fmt_value(thr)}" if thr is not None
                 else "no value fit the training set (train err > 1%)")
    if s.get("peak_value") is not None and (s.get("peak_prominence") or 0) > 0:
        parts.append(f"test err peak {s['peak_test_err']:.4f} @ {leaf} {fmt_value(s['peak_value'])} "
                     f"(dip {s['dip_test_err']:.4f} @ {fmt_value(s['dip_value'])})")
    elif s.get("peak_prominence") is not None:  # 3+ values, none above both its dip and the last
        parts.append("no test-error peak")
    if isinstance(s.get("last_test_err"), (int, float)):
        parts.append(f"last test err {s['last_test_err']:.4f}")
    vs, kept = sweep.series.get("test_err_kept")  # an observing sweep: what stopping changes per value
    final = dict(zip(*sweep.series.get("test_err")))
    diffs = [f"{fmt_value(v)} {k - final[v]:+.3f}" for v, k in zip(vs, kept) if v in final]
    if diffs:
        parts.append("test err early-stopped − final: " + ", ".join(diffs))
    if s.get("reason") and s.get("status") != "completed":
        parts.append(str(s["reason"]))
    return " | ".join(parts)


def point_text(sweep: SweepState | None) -> str:
    """The sweep view's cursor line: the point under it and its latest numbers, and what the keys
    do (docs/ARCHITECTURE.md, "The lab")."""
    keys = "←/→ a value" + (", ↑/↓ a line" if sweep is not None and sweep.series.grid else "") + ", enter its curves"
    point = sweep.point if sweep is not None else None
    if point is None:
        return f"[dim]{keys}[/]"
    v, v2 = point
    leaf = sweep.param.split(".")[-1]
    where = f"{leaf} {fmt_value(v)}"
    if v2 is not None:  # a grid's line (its setting unnamed while progress is read before sweep.json)
        where += ", " + " ".join(p for p in ((sweep.param2 or "").split(".")[-1], fmt_value(v2)) if p)
    nums = sweep.series.latest.get(v if v2 is None else (v, v2), {})
    shown = [f"{label} {nums[k]:.3f}" for k, label in (("train_err", "train"), ("val_err", "val"),
                                                      ("test_err", "test"), ("test_err_kept", "test kept"))
             if k in nums]
    if "n_params" in nums:
        shown.append(f"{int(nums['n_params']):,}p")
    if "epoch" in nums:
        shown.append(f"epoch {int(nums['epoch'])}")
    return f"[b]▶ {where}[/]: " + ("  ".join(shown) if shown else "no numbers yet") + "  [dim]←/→ ⏎[/]"
