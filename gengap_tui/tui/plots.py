"""What the curves show, as pure functions of the lab's state: `run_plot` (error / loss /
memorization against the epoch) and `sweep_plot` (error against the swept value). Each returns a
`Plot`, whose `fill(plt)` draws it on a cleared plotext figure (in the Curves widget's build
thread). No Textual here: a plot can be checked without an app (docs/ARCHITECTURE.md, "The lab").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..protocol import fmt_value
from .series import RunSeries, log10_ticks, thin, value_ticks
from .state import RunState, SweepState

VIEWS = ("error", "loss", "memorization")
SWEEP_VIEW = "sweep"  # the sweep views join the f9 cycle once a sweep is on screen
SWEEP_VIEWS = (SWEEP_VIEW, "sweep-params", "sweep-norms")
# a seeds run's min-max band: the mean lines keep plotext's default colors (blue+, green+, red+,
# cyan+, magenta+ in order); each band line is its mean line's color at half brightness
BAND_COLORS = ((30, 71, 117), (18, 105, 70), (121, 38, 38), (21, 92, 110), (107, 56, 107))
BAND_KEYS = ("train_err", "val_err", "train_loss", "val_loss", "train_clean_err", "noisy_memorized")
SWEEP_LINES = (("train_err", "train err", "blue+"), ("val_err", "val err", "green+"),
               ("test_err", "test err", "red+"), ("test_err_kept", "test err, early-stopped", "yellow"))
SWEEP_BAND_COLORS = ((30, 71, 117), (18, 105, 70), (121, 38, 38), (110, 100, 20))  # SWEEP_LINES', half bright
NORM_LINES = (("weight_norm", "weight norm", "cyan"), ("spectral_norm_product", "spectral norm product", "magenta"))
THRESHOLD_COLOR = "magenta"
CURSOR_COLOR = "white"
# a grid sweep's lines: (the line's color, its training error's dim color)
GRID_COLORS = (("red+", (121, 38, 38)), ("blue+", (30, 71, 117)), ("green+", (18, 105, 70)),
               ("magenta+", (107, 56, 107)), ("cyan+", (21, 92, 110)), ("yellow", (110, 100, 20)))
COMPARE_COLORS = ("cyan", "magenta", "yellow", "white")
VIEW_KEYS = {
    "error": [("train_err", "train"), ("val_err", "val"), ("gap_err", "gap")],
    "loss": [("train_loss", "train"), ("val_loss", "val")],
    "memorization": [("train_clean_err", "clean-train err"), ("noisy_memorized", "noisy memorized"),
                     ("val_err", "val err")],
}
OVERLAY_KEY = {"error": "val_err", "loss": "val_loss", "memorization": "noisy_memorized"}


def fit_title(parts: list[str], width: int) -> str:
    """`parts` joined by " | ", dropping trailing ones that do not fit: plotext leaves out a title
    wider than the plot altogether."""
    title = parts[0]
    for part in parts[1:]:
        if len(title) + 3 + len(part) > width:
            break
        title += " | " + part
    return title


@dataclass
class Plot:
    """Everything one redraw plots, in drawing order."""
    title: str
    xlabel: str
    bands: list = field(default_factory=list)    # (xs, ys, rgb): dim lines drawn first
    lines: list = field(default_factory=list)    # (xs, ys, label, color or None)
    points: bool = False                         # mark each point of the lines (sweeps)
    vlines: list = field(default_factory=list)   # (x, color)
    hlines: list = field(default_factory=list)   # (y, color)
    texts: list = field(default_factory=list)    # (text, x, y, color)
    xticks: tuple | None = None                  # (positions,) or (positions, labels)
    yticks: tuple | None = None
    xlim: tuple | None = None
    ylim: tuple | None = None
    ylabel: str | None = None

    def fill(self, plt) -> None:
        for xs, ys, color in self.bands:  # first: the mean lines are drawn over them
            plt.plot(xs, ys, marker="braille", color=color)
        for xs, ys, label, color in self.lines:
            if color:
                plt.plot(xs, ys, label=label, marker="braille", color=color)
                if self.points:
                    plt.scatter(xs, ys, marker="●", color=color)
            else:
                plt.plot(xs, ys, label=label, marker="braille")
        for x, color in self.vlines:
            plt.vline(x, color)
        for y, color in self.hlines:
            plt.hline(y, color)
        for text, x, y, color in self.texts:
            plt.text(text, x, y, color=color, alignment="left")
        if self.yticks:
            plt.yticks(*self.yticks)
        if self.xticks and self.points:  # a sweep's ticks come before its title
            plt.xticks(*self.xticks)
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        if self.ylabel:
            plt.ylabel(self.ylabel)
        if self.xlim:
            plt.xlim(*self.xlim)
        if self.ylim:
            plt.ylim(*self.ylim)
        if self.xticks and not self.points:
            plt.xticks(*self.xticks)


def run_plot(run: RunState, view: str, log_loss: bool, width: int,
             compared: list[tuple[str, RunSeries]] = (), self_label: str = "") -> Plot:
    """The error / loss / memorization view of `run`, with compared runs' overlays."""
    max_points = 2 * max(width, 40)
    log = view == "loss" and log_loss
    keys = list(VIEW_KEYS[view])
    title = {"error": "error (val - train = gap)", "loss": "loss" + (" (log10)" if log else ""),
             "memorization": "memorization (label noise)"}[view]
    series = run.series
    if view == "error" and "ratt_bound" in series.columns:
        keys += [("ratt_bound", "RATT bound"), ("ratt_random_err", "err on random labels")]

    def prepared(s: RunSeries, key: str) -> tuple[list[float], list[float]]:
        xs, ys = s.get(key)
        if log:
            pairs = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
            xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        return thin(xs, ys, max_points)

    plot = Plot(title, "epoch")
    seeds = run.seeds
    for key, label in keys:
        xs, ys = prepared(series, key)
        if xs:
            if compared and self_label and key in ("val_err", "val_loss", "noisy_memorized"):
                label = f"{label} {self_label}"
            if seeds > 1 and key in BAND_KEYS:  # min and max over the seeds, dim, under the mean
                color = BAND_COLORS[len(plot.lines) % len(BAND_COLORS)]
                for bound in ("_min", "_max"):
                    bx, by = prepared(series, key + bound)
                    if bx:
                        plot.bands.append((bx, by, color))
            plot.lines.append((xs, ys, label, None))
    if plot.bands:
        plot.title += f" | {seeds} seeds: mean, band = min–max"
    overlay = OVERLAY_KEY[view]
    for (label, other), color in zip(compared, COMPARE_COLORS):
        xs, ys = prepared(other, overlay)
        if xs:
            plot.lines.append((xs, ys, f"{overlay} {label}", color))
    # the epochs that matter: best so far (green), early stop (red), would stop (orange), tweaks
    best = series.last.get("es_best_epoch") if series.last else None
    if best:
        plot.vlines.append((best, "green"))
    for kind, color in (("early_stop", "red"), ("would_stop", "orange")):
        e = run.event_epoch(kind)
        if e:
            plot.vlines.append((e, color))
    plot.vlines += [(e.get("epoch"), "gray") for e in run.events if e.get("event") == "tweaked" and e.get("epoch")]
    if view == "error":  # nonparametric reference lines
        for e in run.events:
            if e.get("event") != "baseline":
                continue
            for key, name, color in (("baseline_knn_test_err", "k-NN", "cyan"),
                                     ("baseline_ntk_test_err", "NTK", "magenta")):
                if isinstance(e.get(key), (int, float)):
                    plot.hlines.append((float(e[key]), color))
                    plot.title += f" | {name} test {e[key]:.3f} ({color} line)"
    ys_all = [y for _, ys, _, _ in plot.lines for y in ys] + [y for _, ys, _ in plot.bands for y in ys]
    plot.yticks = log10_ticks(min(ys_all), max(ys_all)) if log and ys_all else None
    last_epochs = [series.rows[-1]["epoch"]] if series.rows else []
    last_epochs += [sr.rows[-1]["epoch"] for _, sr in compared if sr.rows]
    x_max = max(2, *last_epochs) if last_epochs else max(2, run.cfg.optim.epochs)
    plot.xlim = (1, x_max)
    plot.xticks = (sorted({1 + round(i * (x_max - 1) / 4) for i in range(5)}),)
    return plot


def sweep_plot(sweep: SweepState, width: int, view: str = SWEEP_VIEW) -> Plot:
    """A sweep's latest numbers per value, by view: `sweep` train / val / test error against the
    value (and, when early stopping observed, the test error of the weights it would have kept);
    `sweep-params` the same against each value's parameter count; `sweep-norms` log10 of the
    norm-based measures (weight norm, product of spectral norms) against the value. The x axis is
    log10 when every x is positive (ticks at the real values); switches and choices are
    categories, evenly spaced with a labelled tick each. A grid sweep draws one curve per line (a
    value of its second setting), labelled, its training error dim under it. The interpolation
    threshold is a vertical line; the test error's peak and dip are in the title once the sweep
    has ended."""
    sw, summary = sweep.series, sweep.summary or {}
    leaf = sweep.param.split(".")[-1]
    leaf2 = (sweep.param2 or "value2").split(".")[-1]  # (a grid followed before its sweep.json names it)
    by_params = view == "sweep-params"
    norms = view == "sweep-norms"
    lines = sw.lines
    order = sw.order()
    categorical = sw.categorical and not by_params
    n_params = {line: dict(zip(*sw.get("n_params", line))) for line in lines}

    def raw_x(v, line) -> float | None:
        if by_params:
            return n_params[line].get(v)
        if categorical:
            return float(order.index(v)) if v in order else None
        return v

    xs_known = [x for line in lines for x in (raw_x(v, line) for v in order) if x is not None]
    log = not categorical and bool(xs_known) and all(x > 0 for x in xs_known)

    def x_of(v, line=None) -> float | None:
        x = raw_x(v, line)
        return None if x is None else (math.log10(x) if log else x)

    def curve(key: str, line=None, transform=None) -> tuple[list[float], list[float]]:
        pairs = [(x_of(v, line), y if transform is None else transform(y)) for v, y in zip(*sw.get(key, line))]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    to_log = (lambda y: math.log10(y) if y > 0 else None) if norms else None
    xlabel = ("parameters" if by_params else sweep.param) + (" (log scale)" if log else "")
    plot = Plot("", xlabel, points=True, ylabel="log10 norm" if norms else "error")
    if sw.grid:  # one curve per line of the grid, labelled by its value of the second setting
        key = "weight_norm" if norms else "test_err"
        for i, line in enumerate(lines):
            color, dim = GRID_COLORS[i % len(GRID_COLORS)]
            xs, ys = curve(key, line, to_log)
            if xs:
                plot.lines.append((xs, ys, f"{leaf2} = {fmt_value(line)}", color))
            bx, by = ([], []) if norms else curve("train_err", line)
            if bx:
                plot.bands.append((bx, by, dim))
    else:
        for i, (key, label, color) in enumerate(NORM_LINES if norms else SWEEP_LINES):
            xs, ys = curve(key, None, to_log)
            if xs:
                plot.lines.append((xs, ys, label, color))
            for bound in ("_min", "_max"):  # stacked seeds: min and max over them, dim, under the mean
                bx, by = ([], []) if norms else curve(key + bound)
                if bx:
                    plot.bands.append((bx, by, SWEEP_BAND_COLORS[i % len(SWEEP_BAND_COLORS)]))
    ended = sweep.summary is not None
    what = "norms" if norms else "error"
    against = "parameter count" if by_params else leaf
    if sw.grid:
        measure = "weight norm" if norms else "test error"
        parts = [f"sweep: {measure} against {against}" + (" (log x)" if log else "")
                 + f", one line per {leaf2}"]
    else:
        parts = [f"sweep: {what} against {against}" + (" (log x)" if log else "")]
    if not plot.lines:
        parts.append("waiting for the first epoch")
    elif not ended and sw.grid and sw.line is not None:  # the line being trained, and its epoch
        parts.append(f"{leaf2} {fmt_value(sw.line)}: epoch {sw.line_epoch}")
    elif not ended and sw.epoch:
        parts.append(f"epoch {sw.epoch}")
    if sw.grid:
        if plot.bands:
            parts.append("dim: train err")
        for i, line in enumerate(lines):  # each line's threshold and peak, as far as the title fits
            shape = next((ln for ln in summary.get("lines") or [] if ln.get("value2") == line), None)  # ({} while running)
            thr = shape.get("interpolation_threshold") if shape else sw.threshold(line)
            bit = f"{fmt_value(line)}: fits from {fmt_value(thr)}" if thr is not None else ""
            if shape and shape.get("peak_value") is not None and (shape.get("peak_prominence") or 0) > 0:
                bit += (", " if bit else f"{fmt_value(line)}: ") + f"peak @ {fmt_value(shape['peak_value'])}"
            if bit:
                parts.append(bit)
        thr = None
    else:
        if plot.bands:
            parts.append(f"{(sweep.meta or {}).get('seeds') or 'K'} seeds: mean, band = min–max")
        thr = summary.get("interpolation_threshold") if ended else sw.threshold()
        if thr is not None:
            parts.append(f"interpolation threshold {fmt_value(thr)}")
        if summary.get("interpolation_lost_at") is not None:
            parts.append(f"stops interpolating at {fmt_value(summary['interpolation_lost_at'])}")
        if not norms and summary.get("peak_value") is not None and (summary.get("peak_prominence") or 0) > 0:
            parts.append(f"test peak {summary['peak_test_err']:.3f} @ {fmt_value(summary['peak_value'])}, "
                         f"dip {summary['dip_test_err']:.3f} @ {fmt_value(summary['dip_value'])}")
    plot.title = fit_title(parts, width - 6)
    if categorical:  # a tick per category (its name), at 0, 1, 2 ...
        xticks = ([float(i) for i in range(len(order))], [fmt_value(v) for v in order])
    else:
        tick_of = {x: v for line in lines for v in order if (x := raw_x(v, line)) is not None}
        xticks = value_ticks(list(tick_of), log, max(2, width // 8))
    xs_all = xticks[0] or [0.0, 1.0]
    pad = max(0.02 * (max(xs_all) - min(xs_all)), 0.05) if not categorical else 0.3
    ys_all = [y for _, ys, _, _ in plot.lines for y in ys] + [y for _, ys, _ in plot.bands for y in ys]
    if norms:
        lo, hi = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
        margin = max(0.05 * (hi - lo), 0.05)
        y_bottom, y_top = lo - margin, hi + margin
    else:
        y_bottom, y_top = 0, max(ys_all) * 1.1 + 0.01 if ys_all else 1.0
    # a size sweep's threshold is where the model starts to interpolate; a noise, regularizer or
    # optimizer sweep that fits from its first value on has none worth marking
    first = order[0] if thr is not None and order else None
    trivial = thr == first and sweep.param.split(".")[0] in ("noise", "regularization", "optim", "early_stopping")
    x_thr = (x_of(thr) if thr is not None and not trivial and (categorical or not log or thr > 0)
             else None)
    if x_thr is not None:
        plot.vlines.append((x_thr, THRESHOLD_COLOR))
        plot.texts.append(("interpolation threshold", x_thr, y_bottom + (y_top - y_bottom) * 0.96, THRESHOLD_COLOR))
    point = sweep.point  # the cursor (the sweep view's ←/→): a white line at its value
    x_cur = x_of(point[0], point[1]) if point is not None else None
    if x_cur is not None:
        plot.vlines.append((x_cur, CURSOR_COLOR))
    plot.xticks = xticks if xticks[0] else None
    plot.xlim = (min(xs_all) - pad, max(xs_all) + pad)
    plot.ylim = (y_bottom, y_top)
    return plot


EXAMPLES_VIEW = "examples"  # which examples are learned when (examples.npz), in the f9 cycle after the run views
EXAMPLE_COLORS = {"clean": ("green+", (18, 105, 70)), "noisy": ("red+", (121, 38, 38))}


@dataclass
class ExamplesPlot:
    """The examples view: left, the share of the clean and of the noisy training examples first
    predicted right by each epoch (dim: right at the last epoch and never wrong again after it);
    right, the share of each with 0, 1, 2 … forgetting events (Toneva et al. 2019). `stats` is
    `forgetting.stats(…)`; without it, `message` says why there is nothing to show."""
    stats: dict | None
    width: int
    message: str = ""

    def fill(self, plt) -> None:
        from ..forgetting import GROUPS, hist_labels

        s = self.stats
        if s is None or not s["epochs"]:
            plt.title(self.message or "no examples.npz yet")
            return
        plt.subplots(1, 2)
        left, right = plt.subplot(1, 1), plt.subplot(1, 2)
        epochs = list(range(1, s["epochs"] + 1))
        groups = [g for g in GROUPS if s[g]["n"]]
        for g in groups:
            left.plot(epochs, s[g]["kept_by"], marker="braille", color=EXAMPLE_COLORS[g][1])
        medians = []
        for g in groups:
            left.plot(epochs, s[g]["learned_by"], label=f"{g} ({s[g]['n']})", marker="braille",
                      color=EXAMPLE_COLORS[g][0])
            med = s[g]["median_first"]
            medians.append(f"{g} {med:g}" if med is not None else f"{g} never")
        half = max(20, self.width // 2 - 6)
        left.title(fit_title(["learned by epoch", "median " + ", ".join(medians), "dim: for good"], half))
        left.xlabel("epoch")
        left.ylim(0, 1)
        right.multiple_bar(hist_labels(), [s[g]["hist"] for g in groups], labels=groups,
                           color=[EXAMPLE_COLORS[g][0] for g in groups])
        means = ", ".join(f"{g} {s[g]['events_mean']:.2f}" for g in groups)
        right.title(fit_title(["forgetting events", "mean " + means], half))
        right.xlabel("times forgotten (share of the group)")


def examples_plot(stats: dict | None, width: int, message: str = "") -> ExamplesPlot:
    return ExamplesPlot(stats, width, message)
