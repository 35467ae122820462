"""`gengap-tui table SWEEP [--csv|--markdown]`: a sweep directory's rows for slides and papers
(docs/ARCHITECTURE.md, "Command line"). Rows are read generically: every `param*` / `value*` pair a
row has (a grid's `param2` / `value2` too) becomes a column named by the setting; with stacked
seeds the errors are the seeds' mean ± std. No torch, no numpy.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from . import runs
from .protocol import fmt_value

ERR_KEYS = ("train_err", "val_err", "test_err", "test_err_kept")
MORE_KEYS = ("n_params", "epochs_run", "status")
LABELS = {"train_err": "train err", "val_err": "val err", "test_err": "test err",
          "test_err_kept": "test err (early-stopped)", "n_params": "parameters", "epochs_run": "epochs",
          "status": "status"}


class TableError(ValueError):
    """Not a sweep directory, or one without rows yet."""


def param_pairs(rows: list[dict]) -> list[tuple[str, str]]:
    """The (param key, value key) pairs the rows carry: `param`/`value`, `param2`/`value2`, …"""
    keys = {k for r in rows for k in r}
    pairs = []
    for k in sorted(k for k in keys if k.startswith("param")):
        v = "value" + k[len("param"):]
        if v in keys:
            pairs.append((k, v))
    return pairs


def load_rows(sweep_dir: str | Path) -> tuple[list[dict], dict, dict]:
    """(sweep.jsonl rows, sweep.json, summary.json) of a sweep directory; TableError if it is not one."""
    d = Path(sweep_dir)
    meta = runs.read_json(d / "sweep.json")
    if meta is None:
        raise TableError(f"{d}: not a sweep directory (no sweep.json); `gengap-tui sweep PRESET` writes one")
    rows = runs.read_jsonl(d / "sweep.jsonl") if (d / "sweep.jsonl").is_file() else []
    if not rows:
        raise TableError(f"{d}: no sweep.jsonl rows yet (the sweep writes them when it ends)")
    return rows, meta, runs.read_json(d / "summary.json") or {}


def columns(rows: list[dict]) -> list[tuple[str, str, str | None]]:
    """(header, key, std key or None) per column, for the keys some row has."""
    cols: list[tuple[str, str, str | None]] = []
    for pk, vk in param_pairs(rows):
        name = next((r[pk] for r in rows if r.get(pk)), pk)
        cols.append((str(name), vk, None))
    has = {k for r in rows for k, v in r.items() if v is not None}
    if "n_params" in has:
        cols.append((LABELS["n_params"], "n_params", None))
    for k in ERR_KEYS:
        if k in has:
            cols.append((LABELS[k], k, k + "_std" if k + "_std" in has else None))
    for k in MORE_KEYS[1:]:
        if k in has:
            cols.append((LABELS[k], k, None))
    return cols


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4f}" if abs(v) < 10 else fmt_value(v)
    return str(v)


def _cell(row: dict, key: str, std: str | None) -> str:
    v = row.get(key)
    if key.startswith("value"):
        return fmt_value(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _num(v)
    if std and row.get(std) is not None and v is not None:
        return f"{v:.4f} ± {row[std]:.4f}"
    return _num(v)


def render(rows: list[dict], fmt: str = "text", seeds: int = 1) -> str:
    """The rows as `text` (aligned), `markdown` (a pipe table) or `csv` (one column per number:
    the std in its own `*_std` column)."""
    cols = columns(rows)
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        header, keys = [], []
        for h, k, std in cols:
            header.append(k if not k.startswith("value") else h)
            keys.append(k)
            if std:
                header.append(std)
                keys.append(std)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
        return out.getvalue()
    header = [h + (f" (mean ± std, {seeds} seeds)" if std and seeds > 1 else "") for h, _, std in cols]
    body = [[_cell(r, k, std) for _, k, std in cols] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    fmt_line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt_line(header), fmt_line(["-" * w for w in widths])] + [fmt_line(b) for b in body]) + "\n"


def table(sweep_dir: str | Path, fmt: str = "text") -> str:
    rows, meta, _summary = load_rows(sweep_dir)
    seeds = ((meta.get("config") or {}).get("run") or {}).get("seeds", 1)
    return render(rows, fmt, seeds)
