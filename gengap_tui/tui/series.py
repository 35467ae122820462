"""Series buffers for the curves, kept apart from the widgets (no Textual here)."""

from __future__ import annotations

import math


def thin(xs: list[float], ys: list[float], max_points: int) -> tuple[list[float], list[float]]:
    """Reduce a series to about `max_points` points, keeping each bucket's min and max (in their
    order) so spikes survive. Short series are returned as they are."""
    n = len(xs)
    if n <= max_points or max_points < 4:
        return list(xs), list(ys)
    buckets = max_points // 2
    ox: list[float] = []
    oy: list[float] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if hi <= lo:
            continue
        seg = range(lo, hi)
        finite = [i for i in seg if ys[i] is not None and math.isfinite(ys[i])]
        if not finite:
            continue
        i_min = min(finite, key=lambda i: ys[i])
        i_max = max(finite, key=lambda i: ys[i])
        for i in sorted({i_min, i_max}):
            ox.append(xs[i])
            oy.append(ys[i])
    return ox, oy


def log10_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick positions (in log10 space) and labels for a loss axis plotted as log10(y)."""
    a, b = math.floor(lo), math.ceil(hi)
    if b - a < 1:
        b = a + 1
    ticks = [float(k) for k in range(a, b + 1)]
    labels = [f"1e{k}" if k not in (-1, 0, 1) else {-1: "0.1", 0: "1", 1: "10"}[k] for k in range(a, b + 1)]
    return ticks, labels


class RunSeries:
    """Per-epoch metrics of one run, as columns."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.columns: dict[str, list] = {}
        self.version = 0  # bumped on every change, so the UI redraws only on new data

    def add(self, row: dict) -> None:
        self.rows.append(row)
        for k, v in row.items():
            col = self.columns.setdefault(k, [None] * (len(self.rows) - 1))
            col.append(_num(v))
        for k, col in self.columns.items():
            if len(col) < len(self.rows):
                col.append(None)
        self.version += 1

    def get(self, key: str) -> tuple[list[float], list[float]]:
        col = self.columns.get(key, [])
        xs = self.columns.get("epoch", [])
        pairs = [(x, y) for x, y in zip(xs, col) if y is not None and math.isfinite(y)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @property
    def last(self) -> dict | None:
        return self.rows[-1] if self.rows else None


def _num(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):  # "nan" / "inf" as written by runs.py
        try:
            return float(v)
        except ValueError:
            return None
    return None
