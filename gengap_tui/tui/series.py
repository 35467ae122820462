"""Series buffers for the curves, kept apart from the widgets (no Textual here)."""

from __future__ import annotations

import math

from ..protocol import FIT_ERR, fmt_value


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
    """Tick positions (in log10 space) and labels for a loss axis plotted as log10(y): at the
    powers of ten between `lo` and `hi`, and at 2x and 5x (then every 1..9x) when fewer than
    three would show (a loss that moves within one decade still gets a readable axis)."""
    a, b = math.floor(lo), math.ceil(hi)
    inside: list[tuple[float, float, int]] = []
    for mults in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [(k + math.log10(m), m, k) for k in range(a, b + 1) for m in mults]
        inside = [t for t in ticks if lo - 1e-9 <= t[0] <= hi + 1e-9]
        if len(inside) >= 3:
            break
    if len(inside) < 2:  # a flat loss: its two ends
        inside = [(lo, 10 ** lo / 10 ** math.floor(lo), math.floor(lo)), (hi, 10 ** hi / 10 ** math.floor(hi),
                                                                          math.floor(hi))]

    def label(m: float, k: int) -> str:
        if m == 1 and k not in (-1, 0, 1):
            return f"1e{k}"
        return f"{m * 10.0 ** k:.3g}"

    return [t for t, _, _ in inside], [label(m, k) for _, m, k in inside]


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


SWEEP_KEYS = ("train_err", "val_err", "test_err", "train_loss", "val_loss", "test_loss", "test_err_kept",
              "n_params", "weight_norm", "spectral_norm_product", "train_err_min", "train_err_max", "val_err_min",
              "val_err_max", "test_err_min", "test_err_max")


def value_ticks(values: list[float], log: bool, max_ticks: int) -> tuple[list[float], list[str]]:
    """Ticks at the swept values themselves (positions in log10 space when `log`), labelled with
    the real values; when they would crowd, every value at least 1/(max_ticks-1) of the axis from
    the previous tick (the first and the last are always kept)."""
    vs = sorted({float(v) for v in values if not log or v > 0})
    if not vs:
        return [], []
    pos = [math.log10(v) if log else v for v in vs]
    keep = list(range(len(vs)))
    if len(vs) > max(2, max_ticks):
        gap = (pos[-1] - pos[0]) / max(1, max_ticks - 1)
        keep = [0]
        for i in range(1, len(vs)):
            if pos[i] - pos[keep[-1]] >= gap * 0.999:
                keep.append(i)
        if keep[-1] != len(vs) - 1:
            if len(keep) > 1 and pos[-1] - pos[keep[-1]] < gap * 0.999:
                keep.pop()
            keep.append(len(vs) - 1)
    return [pos[i] for i in keep], [fmt_value(vs[i]) for i in keep]


def sweep_key(v):
    """A swept value as the series keys it: a number as a float; a switch or a choice as itself
    (categories); None for anything else."""
    if isinstance(v, (bool, str)) and not (isinstance(v, str) and _num(v) is not None):
        return v
    return _num(v)


class SweepSeries:
    """The latest known numbers of each point of a sweep: from progress.jsonl while the sweep runs
    (per epoch, all values together, or the one being trained), then sweep.jsonl's final rows.
    A point is a value of the swept setting, or in a grid `(value, value2)`: `values2` are the
    grid's lines (one per value of the second setting; `[None]` in a one-setting sweep)."""

    def __init__(self, values: list | None = None, values2: list | None = None) -> None:
        self.values: list = [sweep_key(v) for v in values or []]  # the sweep's values, known or not
        self.values2: list = [sweep_key(v) for v in values2 or []]
        self.latest: dict = {}
        self.epoch = 0  # the newest epoch seen
        self.line = None  # a grid: the line of the newest progress row, and its epoch
        self.line_epoch = 0
        self.version = 0
        # the pace: value-epochs trained (a grouped row counts each of its values), and the last
        # rows' (value-epochs, seconds), for the status bar's samples/s and ETA
        self.value_epochs = 0
        self.recent: list[tuple[int, float]] = []

    def pace(self, n: int = 10) -> float | None:
        """Value-epochs a second over the last `n` progress rows, or None before any."""
        work, secs = sum(k for k, _ in self.recent[-n:]), sum(t for _, t in self.recent[-n:])
        return work / secs if secs > 0 else None

    def set_values(self, values: list, values2: list | None = None) -> None:
        self.values = [sweep_key(v) for v in values]
        if values2:
            self.values2 = [sweep_key(v) for v in values2]
        self.version += 1

    @property
    def grid(self) -> bool:
        return bool(self.values2)

    @property
    def lines(self) -> list:
        """The grid's lines in order (the values of its second setting), or [None]."""
        return list(self.values2) if self.values2 else [None]

    @property
    def categorical(self) -> bool:
        """The swept values are categories (switches or choices), drawn evenly spaced."""
        return any(isinstance(v, (bool, str)) for v in self.values or [self._split(p)[0] for p in self.latest])

    def _point(self, v, v2=None):
        return v if v2 is None else (v, v2)

    @staticmethod
    def _split(point) -> tuple:
        return point if isinstance(point, tuple) else (point, None)

    def _remember(self, v, v2) -> None:
        if v not in self.values:
            self.values.append(v)
        if v2 is not None and v2 not in self.values2:
            self.values2.append(v2)

    def add_progress(self, row: dict) -> None:
        """One progress.jsonl line: lists aligned with `values` (and a grid's `values2`)."""
        epoch = row.get("epoch")
        values = row.get("values") or []
        values2 = row.get("values2") if isinstance(row.get("values2"), list) else [None] * len(values)
        for i, (v, v2) in enumerate(zip(values, values2)):
            v, v2 = sweep_key(v), sweep_key(v2) if v2 is not None else None
            if v is None:
                continue
            nums = self.latest.setdefault(self._point(v, v2), {})
            for k in SWEEP_KEYS:
                col = row.get(k)
                if isinstance(col, list) and i < len(col) and (x := _num(col[i])) is not None:
                    nums[k] = x
            if isinstance(epoch, int):
                nums["epoch"] = epoch
            self._remember(v, v2)
        if isinstance(epoch, int):
            self.epoch = max(self.epoch, epoch)
            if values and values2[0] is not None:  # a grid trains one line after another
                self.line, self.line_epoch = sweep_key(values2[0]), epoch
        k, dt = len(row.get("values") or []), _num(row.get("epoch_seconds"))
        self.value_epochs += k
        if k and dt is not None and dt > 0:
            self.recent = (self.recent + [(k, dt)])[-10:]
        self.version += 1

    def add_final(self, rows: list[dict]) -> None:
        """sweep.jsonl: each trained point's final numbers replace the live ones."""
        for r in rows:
            v = sweep_key(r.get("value"))
            v2 = sweep_key(r.get("value2")) if r.get("value2") is not None else None
            if v is None or r.get("status") == "not_run":
                continue
            nums = self.latest.setdefault(self._point(v, v2), {})
            for k in SWEEP_KEYS:
                if (x := _num(r.get(k))) is not None:
                    nums[k] = x
            if isinstance(r.get("epochs_run"), int):
                nums["epoch"] = r["epochs_run"]
            self._remember(v, v2)
        self.version += 1

    def order(self) -> list:
        """The values in plot order: ascending numbers, or categories as the sweep lists them."""
        known = list(self.values) + [v for v, _ in map(self._split, self.latest) if v not in self.values]
        if self.categorical:
            return list(dict.fromkeys(known))
        return sorted(set(known))

    def get(self, key: str, line=None) -> tuple[list, list[float]]:
        """(values, numbers) of the values of `line` (a grid's value2; None in a one-setting sweep)
        that have a finite `key`, in plot order (`order`)."""
        rank = {v: i for i, v in enumerate(self.order())}
        pairs = []
        for p, n in self.latest.items():
            v, v2 = self._split(p)
            same_line = v2 is None if line is None else (type(v2) is type(line) and v2 == line)
            if same_line and key in n and math.isfinite(n[key]):
                pairs.append((rank.get(v, len(rank)), v, n[key]))
        pairs.sort(key=lambda t: t[0])
        return [p[1] for p in pairs], [p[2] for p in pairs]

    def threshold(self, line=None):
        """The interpolation threshold: the first value (in plot order) whose training error is <= 1%."""
        vs, errs = self.get("train_err", line)
        return next((v for v, e in zip(vs, errs) if e <= FIT_ERR), None)

    @property
    def known(self) -> int:
        return sum(1 for n in self.latest.values() if "test_err" in n or "train_err" in n)

    @property
    def size(self) -> int:
        """How many points the sweep has (values x lines)."""
        return len(self.values) * max(1, len(self.values2))

    @property
    def log_x(self) -> bool:
        """Plot against log10(value): every value is a positive number."""
        vs = self.values or [self._split(p)[0] for p in self.latest]
        return bool(vs) and not self.categorical and all(v > 0 for v in vs)
