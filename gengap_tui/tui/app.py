"""The lab: validated panels on the left, live curves and the patience counter on the right.

Training runs in a spawned process (`gengap_tui.worker.RunHandle`); this process never imports
torch. A 10 Hz timer drains the worker's queue without blocking, and the curves are redrawn at
most 4 times a second, only when new data arrived, from series thinned to ~2x the plot width.

A run of K stacked seeds (`run.seeds`) is drawn as its mean curve with a min-max band (two dim
lines). A sweep (`core.sweep`: started here with f4 / the palette in a spawned child,
`worker.SweepHandle`, or opened with `GengapApp(sweep=DIR)`) has its own view: test, train and
val error against the swept value (log10 x), the interpolation threshold marked; the lab follows
the sweep directory's files (`replay.SweepSource`) while they are written.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, get_args, get_origin, Literal

import io
import os
import sys
import threading
from functools import partial

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Footer, Input, Label, OptionList, Select, SelectionList, Static
from rich.console import Console
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot

from .. import presets, runs
from ..compare import diff_labels
from ..config import SECTIONS, Config, ConfigError, apply_overrides, build, validate
from ..replay import AttachSource, ReplaySource, SweepSource
from .series import RunSeries, SweepSeries, fmt_value, log10_ticks, thin, value_ticks

# the fields shown in the panels, by section (the rest keep the preset's values)
PANELS: dict[str, list[str]] = {
    "run": ["seeds"],
    "data": ["dataset", "n_train", "binary"],
    "noise": ["label_noise", "kind"],
    "model": ["kind", "depth", "width", "activation"],
    "regularization": ["weight_decay", "decoupled", "l1", "dropout", "input_noise"],
    "optim": ["optimizer", "lr", "batch_size", "epochs"],
    "early_stopping": ["enabled", "monitor", "patience", "min_delta", "min_delta_mode",
                       "start_from_epoch", "restore_best", "observe"],
    "baselines": ["knn", "knn_k", "knn_metric", "ntk"],
    "ratt": ["enabled", "n_random", "delta"],
}
TITLES = {"run": "Run", "data": "Data", "noise": "Label noise", "model": "Model", "regularization": "Regularization",
          "optim": "Optimizer", "early_stopping": "Early stopping", "baselines": "Baselines",
          "ratt": "RATT certificate"}
LIVE = {"optim.lr": "lr", "regularization.weight_decay": "weight_decay",
        "early_stopping.patience": "patience", "early_stopping.observe": "observe",
        "early_stopping.min_delta": "min_delta"}
VIEWS = ("error", "loss", "memorization")
SWEEP_VIEW = "sweep"  # joins the f9 cycle once a sweep is on screen
# a seeds run's min-max band: the mean lines keep plotext's default colors (blue+, green+, red+,
# cyan+, magenta+ in order); each band line is its mean line's color at half brightness
BAND_COLORS = ((30, 71, 117), (18, 105, 70), (121, 38, 38), (21, 92, 110), (107, 56, 107))
BAND_KEYS = ("train_err", "val_err", "train_loss", "val_loss", "train_clean_err", "noisy_memorized")
SWEEP_LINES = (("train_err", "train err", "blue+"), ("val_err", "val err", "green+"),
               ("test_err", "test err", "red+"))
THRESHOLD_COLOR = "magenta"
COMPARE_COLORS = ("cyan", "magenta", "yellow", "white")
MAX_COMPARE = 4
ATTACH = "\0attach"  # PickRuns' answer when the user attaches instead of comparing
NARROW = 110  # below this many columns the panels start collapsed (f2 opens them)


def run_config(raw: dict | None) -> dict:
    """A run's config.json without the keys that are not part of the schema."""
    return {k: v for k, v in (raw or {}).items() if k not in ("torch_version", "device_name")}


def short_path(p: Path | str) -> str:
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return rel if not rel.startswith("..") else str(p)


def fit_title(parts: list[str], width: int) -> str:
    """`parts` joined by " | ", dropping trailing ones that do not fit: plotext leaves out a title
    wider than the plot altogether."""
    title = parts[0]
    for part in parts[1:]:
        if len(title) + 3 + len(part) > width:
            break
        title += " | " + part
    return title


class LabCommands(Provider):
    """The lab's actions in the command palette."""

    COMMANDS = [
        ("Start / restart training", "start", "train the settings in the panels (ctrl+r, f5)"),
        ("Pause / resume", "pause", "hold the run between epochs (f6)"),
        ("Stop the run", "stop", "end it as cancelled; every finished epoch is kept (f7)"),
        ("Toggle log scale of the loss", "toggle_log", "plot log10(loss) (f8)"),
        ("Next plot: error / loss / memorization", "next_view", "cycle the curves (f9)"),
        ("Sweep model.width over the preset's \\[sweep] values", "sweep",
         "one model per value in a child process; error against the value, live (f4; f7 stops it)"),
        ("Show or hide the settings panels", "toggle_panels", "the drawer (f2)"),
        ("Compare past runs", "compare", "overlay up to 4 recorded runs (f3)"),
        ("Load a preset", "load_preset", "fill the panels from a preset (ctrl+o)"),
        ("Save the settings as a preset", "save_preset", "into the user preset folder (ctrl+s)"),
        ("Quit", "quit", "closes a live run as cancelled (ctrl+q)"),
    ]

    async def discover(self) -> Hits:
        for title, action, help_text in self.COMMANDS:
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self.COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)


class PickPreset(ModalScreen[str | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Load a preset (enter loads, escape cancels)")
            yield OptionList(*[f"{n}  [dim]{presets.describe(p)}[/]" for n, p in presets.available().items()],
                             id="preset-list")

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(list(presets.available())[event.option_index])


class SaveAs(ModalScreen[str | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, suggestion: str):
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Save the panels' settings as a preset in {presets.user_dir()} "
                        "(enter saves, escape cancels)")
            yield Input(self.suggestion, id="save-name")
            yield Label("", id="save-note")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not presets.NAME_RE.match(name):
            self.query_one("#save-note", Label).update(
                f"[b red]{name!r}: a preset name is letters, digits, '-' and '_' (up to 64)[/]")
            return
        self.dismiss(name)


class PickRuns(ModalScreen[list[str] | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("enter", "done", "Compare", priority=True),
                Binding("a", "attach", "Attach", priority=True)]

    def __init__(self, runs_dir: Path, selected: list[str]):
        super().__init__()
        self.runs_dir, self.selected = runs_dir, selected

    def compose(self) -> ComposeResult:
        items = []
        for d in runs.list_runs(self.runs_dir)[:200]:
            s = runs.read_json(d / "summary.json") or {}
            te = s.get("test_err")
            info = f"{s.get('status', 'running?')}" + (f", test err {te:.3f}" if isinstance(te, float) else "")
            items.append((f"{d.name}  [dim]{info}[/]", str(d), str(d) in self.selected))
        with Vertical(id="dialog"):
            yield Label(f"Compare up to {MAX_COMPARE} runs from {short_path(self.runs_dir)} "
                        "(space selects, enter overlays, a attaches to the highlighted run, escape cancels)")
            yield SelectionList(*items, id="run-list")
            yield Label("", id="pick-note")

    def action_attach(self) -> None:
        sel = self.query_one(SelectionList)
        if sel.highlighted is not None:
            self.dismiss([ATTACH, sel.get_option_at_index(sel.highlighted).value])

    def action_done(self) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        if len(chosen) > MAX_COMPARE:
            self.query_one("#pick-note", Label).update(f"[b red]at most {MAX_COMPARE} runs[/]")
            return
        self.dismiss(chosen)


def field_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--").replace("_", "-")


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class PatienceMeter(Static):
    """`patience 3/10` with a bar, the best value and its epoch; the stop text when it fires."""

    _shown = ""

    def set_text(self, text: str) -> None:
        if text != self._shown:  # fixed height: repaint only, no layout pass
            self._shown = text
            self.update(text, layout=False)

    def show(self, row: dict | None, patience: int, enabled: bool, observe: bool,
             stop: tuple[int, int | None] | None, would: int | None, monitor: str) -> None:
        if row is None:
            self.set_text(f"patience -/{patience}  (monitor {monitor})")
            return
        wait = row.get("es_wait") or 0
        width = 20
        filled = min(width, round(width * wait / max(patience, 1)))
        bar = "█" * filled + "░" * (width - filled)
        best = row.get("es_best")
        best_txt = f"best {monitor} {best:.4f} @ epoch {row.get('es_best_epoch')}" if best is not None else "best -"
        over = f" (+{wait - patience})" if wait > patience else ""
        lines = [f"patience {min(wait, patience)}/{patience}{over} {bar}  {best_txt}"]
        if not enabled:
            lines[0] += "  (early stopping off)"
        if stop is not None:
            lines.append(f"[b red]EARLY STOP @ epoch {stop[0]} (kept epoch {stop[1]})[/]")
        elif would is not None:
            lines.append(f"[b yellow]would stop @ {would}[/] (observe mode: training goes on)")
        self.set_text("\n".join(lines))


class Curves(PlotextPlot):
    """A PlotextPlot whose expensive part (plotext's canvas build, the ANSI parse and the
    conversion to screen lines, ~20 ms at 120x40) runs in a thread; `render_line` hands the
    compositor the last built lines, so a redraw never holds the event loop for long
    (bench/ui.py measures the timer lateness)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._strips: list[Strip] = []
        self._lock = threading.Lock()
        self._fill = None
        self.builds = 0  # finished builds (tests and screenshots wait on this)

    def draw(self, fill) -> None:
        """Redraw with `fill(plt)`, called in a worker thread on a cleared figure."""
        self._fill = fill
        if not self.is_mounted or self.size.width < 4 or self.size.height < 4:
            return
        job = partial(self._build, fill, self.size.width, self.size.height, self._get_plotext_theme_name(self.app.theme))
        self.run_worker(job, thread=True, group="curves", exit_on_error=False)

    def build_text(self, fill, width: int, height: int, theme: str) -> Text:
        """plotext's canvas for `fill`, parsed into rich Text (thread-safe, no UI access)."""
        with self._lock:  # one figure, one builder at a time
            plt = self._plot
            plt.clear_figure()
            fill(plt)
            plt.plotsize(width, height)
            plt._set_size(width, height)
            plt.theme(theme)
            return Text.from_ansi(plt.build())

    def build_strips(self, fill, width: int, height: int, theme: str) -> list[Strip]:
        """The screen lines of the plot, ready for the compositor (thread-safe)."""
        text = self.build_text(fill, width, height, theme)
        console = Console(width=width, height=height, color_system="truecolor", force_terminal=True,
                          legacy_windows=False, file=io.StringIO())
        lines = console.render_lines(text, console.options.update_dimensions(width, height), pad=True)
        return [Strip(line, width) for line in lines[:height]]

    def _build(self, fill, width: int, height: int, theme: str) -> None:
        strips = self.build_strips(fill, width, height, theme)
        try:
            self.app.call_from_thread(self._show, strips)
        except RuntimeError:  # the app is closing
            pass

    def _show(self, strips: list[Strip]) -> None:
        self._strips = strips
        self.builds += 1
        self.refresh()

    def on_resize(self) -> None:
        if self._fill is not None:
            self.draw(self._fill)

    def render_line(self, y: int) -> Strip:
        # the strips were made in the build thread: the event loop only composes them
        if y < len(self._strips):
            return self._strips[y].crop_extend(0, self.size.width, None)
        return Strip.blank(self.size.width)


class GengapApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "gengap-tui"
    # no focus before the first frame: focusing restyles the whole panel tree (~0.3 s on the 2-core
    # box); the first field gets focus right after the first paint (`_focus_first_field`)
    AUTO_FOCUS = None
    COMMANDS = App.COMMANDS | {LabCommands}
    BINDINGS = [
        Binding("ctrl+r", "start", "Start/restart", priority=True, id="start"),
        Binding("f5", "start", "Start", show=False, priority=True, id="start-f5"),
        Binding("f6", "pause", "Pause/resume", priority=True, id="pause"),
        Binding("f7", "stop", "Stop", priority=True, id="stop"),
        Binding("f8", "toggle_log", "Log loss", priority=True, id="log"),
        Binding("f9", "next_view", "Plot", priority=True, id="view"),
        Binding("f4", "sweep", "Sweep", show=False, priority=True, id="sweep"),
        Binding("f2", "toggle_panels", "Panels", priority=True, id="panels"),
        Binding("f3", "compare", "Compare", priority=True, id="compare"),
        Binding("ctrl+o", "load_preset", "Load", priority=True, id="load"),
        Binding("ctrl+s", "save_preset", "Save preset", priority=True, id="save"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(self, preset: str = "default", overrides: list[str] | None = None, autostart: bool = False,
                 runs_dir: str | Path | None = None, replay: str | Path | None = None, speed: float = 1.0,
                 compare: list[str] | None = None, attach: bool = False, sweep: str | Path | None = None):
        super().__init__()
        from ..worker import prepare_multiprocessing

        # before Textual replaces sys.stderr, or spawning fails (DESIGN §1)
        prepare_multiprocessing()
        # the curves are built in a thread: hand the GIL back to the event loop every 1 ms, not
        # every 5 ms, so timers stay on time while a build runs (bench/ui.py)
        sys.setswitchinterval(0.001)
        if replay is None:
            self.replay_source = None
        else:
            self.replay_source = AttachSource(replay) if attach else ReplaySource(replay, speed)
        if replay is not None and sweep is not None:
            raise ValueError("GengapApp: give replay= or sweep=, not both")
        self.sweep_source = SweepSource(sweep) if sweep is not None else None
        self.status_text = "ready"
        if self.replay_source is not None:
            self.base_raw = run_config(self.replay_source.config)
            self.cfg: Config = validate(self.base_raw, str(replay))
        elif self.sweep_source is not None:
            self.base_raw, self.cfg = self._sweep_config(self.sweep_source.sweep_dir, preset)
        else:
            # the --set overrides become part of the base: the panels show only some fields, and
            # the others (device, data.n_val, run.seeds, sweep.values) must survive validate_form
            self.base_raw = apply_overrides(presets.load_raw(preset), overrides or [])
            self.cfg = build(self.base_raw)
        self.autostart = autostart
        self.runs_dir = runs.default_runs_dir(runs_dir)
        self.compare_dirs: list[str] = list(compare or [])[:MAX_COMPARE]
        self.compared: list[tuple[str, RunSeries]] = []
        self.compare_self_label = ""
        self.panels_open: bool | None = None  # None: decided by the terminal width
        self.handle = None
        self.series = RunSeries()
        self.events: list[dict] = []
        self.summary: dict | None = None
        self.run_cfg: Config | None = None
        self.applied: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.view = "error"
        self.log_loss = False
        self.paused = False
        self._drawn_version: Any = -1
        self._last_draw = 0.0
        self._t_start = 0.0
        self._status_shown = ""
        self._retired: list = []  # replaced training processes, drained until they end
        # the sweep on screen: its child (if this lab started it), its files, its numbers
        self.sweep_handle = None
        self.sweep_series = SweepSeries()
        self.sweep_meta: dict | None = None
        self.sweep_summary: dict | None = None
        self.sweep_param = self.cfg.sweep.param
        self.sweep_paused = False
        if self.sweep_source is not None:
            self.view = SWEEP_VIEW

    def _sweep_config(self, sweep_dir: Path, preset: str) -> tuple[dict, Config]:
        """The config a sweep directory was made with (sweep.json), for the panels; the preset's
        when sweep.json is not written yet or does not validate here (the view needs neither)."""
        raw = (runs.read_json(sweep_dir / "sweep.json") or {}).get("config")
        if isinstance(raw, dict):
            try:
                return run_config(raw), validate(run_config(raw), str(sweep_dir / "sweep.json"))
            except ConfigError as exc:
                self.status_text = f"the sweep's config does not validate here ({exc}): the panels show {preset}"
        base = presets.load_raw(preset)
        return base, build(base)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="main"):
            with VerticalScroll(id="panels"):
                for section, names in PANELS.items():
                    yield Label(TITLES[section], classes="section")
                    model = SECTIONS[section]
                    values = getattr(self.cfg, section)
                    for name in names:
                        yield from self._field(f"{section}.{name}", model.model_fields[name], getattr(values, name))
                yield Static("", id="form-errors")
            with Vertical(id="right"):
                yield Curves(id="plot")
                yield PatienceMeter(id="patience")
                yield Static("", id="summary")
        yield Footer()

    def _field(self, dotted: str, info, value) -> ComposeResult:
        ann = info.annotation
        fid = field_id(dotted)
        with Horizontal(classes="field"):
            yield Label(dotted.split(".")[1], classes="name")
            if get_origin(ann) is Literal:
                yield Select([(str(a), a) for a in get_args(ann)], value=value, allow_blank=False, id=fid,
                             compact=True)
            elif ann is bool:
                yield Checkbox("", value=value, id=fid, compact=True)
            else:
                yield Input(_text(value), id=fid, compact=True)
        # the field's error label is mounted the first time it has a message (`_error_label`):
        # ~35 fewer widgets to style before the first frame

    def on_mount(self) -> None:
        self.call_after_refresh(self._focus_first_field)
        self.set_interval(0.1, self._poll)
        self._refresh_status()
        self._draw(force=True)
        self.query_one(PatienceMeter).show(None, self.cfg.early_stopping.patience, True, False, None, None,
                                           self.cfg.early_stopping.monitor)
        self._load_compared()
        self._fit_panels()
        if self.replay_source is not None:
            self.handle = self.replay_source
            self._set_run_cfg(self.cfg)
            self._t_start = time.monotonic()
            verb = "attached to" if isinstance(self.replay_source, AttachSource) else "replaying"
            self.status_text = f"{verb} {short_path(self.replay_source.run_dir)}"
            self._poll()
        elif self.sweep_source is not None:
            self.query_one("#patience").display = False  # as _set_view does for the sweep view
            self._follow_sweep(self.sweep_source)
        elif self.autostart:
            self.call_after_refresh(self.action_start)

    def _focus_first_field(self) -> None:
        if self.focused is None and self.query_one("#panels").display:
            self.screen.focus_next()

    def on_resize(self) -> None:
        self._fit_panels()

    def _fit_panels(self) -> None:
        show = self.panels_open if self.panels_open is not None else self.size.width >= NARROW
        self.query_one("#panels").display = show

    def action_toggle_panels(self) -> None:
        self.panels_open = not self.query_one("#panels").display
        self._fit_panels()

    # ------------------------------------------------------------------ the form
    def form_overrides(self) -> list[str]:
        out = []
        for section, names in PANELS.items():
            for name in names:
                dotted = f"{section}.{name}"
                w = self._control(dotted)
                if isinstance(w, Input):
                    out.append(f"{dotted}={w.value.strip()}")
                elif isinstance(w, Checkbox):
                    out.append(f"{dotted}={'true' if w.value else 'false'}")
                elif isinstance(w, Select):
                    out.append(f'{dotted}="{w.value}"')
        return out

    def _control(self, dotted: str):
        """A field's input widget, looked up once (validation runs on every keystroke, and a
        DOM query per field per validation made the start-up validations cost ~0.1 s each)."""
        cache = self.__dict__.setdefault("_controls", {})
        w = cache.get(dotted)
        if w is None:
            w = cache[dotted] = self.query_one("#" + field_id(dotted))
        return w

    def _error_label(self, dotted: str, control, create: bool) -> Label | None:
        """The label under a field for its message; mounted the first time there is one."""
        labels = self.__dict__.setdefault("_error_labels", {})
        label = labels.get(dotted)
        if label is None and create:
            label = labels[dotted] = Label("", id=field_id(dotted) + "-err", classes="err")
            control.parent.parent.mount(label, after=control.parent)
        return label

    def validate_form(self) -> Config | None:
        """Validate every field; mark the bad ones with their message. Returns the config or None."""
        self.errors = {}
        cfg = None
        try:
            cfg = build(self.base_raw, self.form_overrides())
        except ConfigError as exc:
            for problem in exc.problems:
                key = problem.split(" ", 1)[0].rstrip(":").removeprefix("--set").strip()
                dotted = next((f"{s}.{n}" for s, names in PANELS.items() for n in names
                               if problem.startswith(f"{s}.{n} ") or problem.startswith(f"{s}.{n}:")
                               or f"'{s}.{n}=" in problem), key)
                self.errors[dotted] = problem
        for section, names in PANELS.items():
            for name in names:
                dotted = f"{section}.{name}"
                w = self._control(dotted)
                msg = self.errors.get(dotted, "")
                w.set_class(bool(msg), "-invalid")
                err = self._error_label(dotted, w, create=bool(msg))
                if err is not None:
                    err.update(msg)
                    err.set_class(bool(msg), "-shown")
        known = {f"{s}.{n}" for s, names in PANELS.items() for n in names}
        other = [m for k, m in self.errors.items() if k not in known]
        self.query_one("#form-errors", Static).update("\n".join(other))
        if cfg is not None:
            self.cfg = cfg
        return cfg

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _field_changed(self, event) -> None:
        cfg = self.validate_form()
        if cfg is None or self.handle is None or self.handle.finished or self.run_cfg is None:
            return
        # live tweaks while a run goes; structural changes need a restart
        wid = getattr(event.control, "id", "") or ""
        dotted = next((d for d in LIVE if field_id(d) == wid), None)
        if isinstance(self.handle, ReplaySource) and not getattr(self.handle, "steerable", False):
            self.status_text = "replay: start (ctrl+r) to train with these settings"
        elif dotted is not None:
            section, name = dotted.split(".")
            value = getattr(getattr(cfg, section), name)
            if value == self.applied.get(dotted):
                return  # not a change of what the run uses (e.g. the panels were just filled)
            self.handle.tweak(**{LIVE[dotted]: value})
            self.applied[dotted] = value
            self.status_text = f"tweak {dotted} queued for the next epoch"
        elif self._differs_from_run(cfg):
            self.status_text = "this change needs a restart (ctrl+r)"
        else:
            return
        self._refresh_status()

    def _set_run_cfg(self, cfg: Config) -> None:
        """The config of the run on screen, and the live-tweakable values it uses now."""
        self.run_cfg = cfg
        self.applied = {d: getattr(getattr(cfg, d.split(".")[0]), d.split(".")[1]) for d in LIVE}

    def _differs_from_run(self, cfg: Config) -> bool:
        if self.run_cfg is None:
            return False
        a, b = cfg.dump(), self.run_cfg.dump()
        for d in LIVE:
            section, name = d.split(".")
            a[section].pop(name, None)
            b[section].pop(name, None)
        return a != b

    # ------------------------------------------------------------------ actions
    def action_start(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.status_text = f"[b red]cannot start: {len(self.errors)} invalid field(s)[/]"
            self.bell()
            self._refresh_status()
            return
        from ..worker import RunHandle

        if self.handle is not None and self.handle.alive:
            self.handle.stop()
            self._retire(self.handle)
        stopped_sweep = self._stop_sweep_for_another()
        self.series, self.events, self.summary = RunSeries(), [], None
        self._set_run_cfg(cfg)
        self.paused = False
        self._t_start = time.monotonic()
        self.handle = RunHandle.start(cfg.dump(), self.runs_dir)
        self.status_text = "starting (the worker loads torch and the data)" + stopped_sweep
        if self.view == SWEEP_VIEW:
            self._set_view("error")
        self.query_one("#summary", Static).update("")
        self._refresh_status()
        self._draw(force=True)

    def _retire(self, handle) -> None:
        """Keep draining a replaced child's queue until it ends, so it never blocks on a full pipe."""
        if hasattr(handle, "join") and handle not in self._retired:
            self._retired.append(handle)

    def _stop_sweep_for_another(self) -> str:
        """One training process at a time (DESIGN §1: two would share the cores): stop this lab's
        sweep, which still writes its partial results. Returns a note for the status bar."""
        h = self.sweep_handle
        if h is None or h.done:
            return ""
        h.stop()
        self._retire(h)
        self.sweep_handle = None
        return " (stopped the sweep: one training process at a time)"

    def _stop_run_for_another(self) -> str:
        h = self.handle
        if h is None or isinstance(h, ReplaySource) or h.finished or not h.alive:
            return ""
        h.stop()
        self._retire(h)
        return " (stopped the run: one training process at a time)"

    # ------------------------------------------------------------------ sweeps
    def action_sweep(self) -> None:
        """Sweep the panels' config over its [sweep] values (the preset's; the panels don't show
        them) in a spawned child; the sweep view follows the sweep directory it writes."""
        cfg = self.validate_form()
        if cfg is None:
            self.status_text = f"[b red]cannot sweep: {len(self.errors)} invalid field(s)[/]"
            self.bell()
            self._refresh_status()
            return
        if not cfg.sweep.values:
            self.status_text = (f"[b red]nothing to sweep: this preset's \\[sweep] values are empty[/] - load one "
                                "that has them (ctrl+o: double-descent) or start the lab with "
                                "--set 'sweep.values=[2,4,8,16]'")
            self.bell()
            self._refresh_status()
            return
        from ..worker import SweepHandle

        note = self._stop_run_for_another()
        self._stop_sweep_for_another()
        self.sweep_handle = SweepHandle.start(cfg.dump(), self.runs_dir, cfg.sweep.param, list(cfg.sweep.values))
        self._reset_sweep(cfg.sweep.param, self.sweep_handle.values)
        self.sweep_source, self.sweep_paused = None, False
        self.status_text = (f"starting a sweep of {cfg.sweep.param} over {len(cfg.sweep.values)} values "
                            "(the worker loads torch and the data)" + note)
        self._set_view(SWEEP_VIEW)

    def _reset_sweep(self, param: str, values: list[float]) -> None:
        values = sorted(values) if param == "model.width" else list(values)  # as core.sweep orders them
        self.sweep_series, self.sweep_meta, self.sweep_summary = SweepSeries(values), None, None
        self.sweep_param = param

    def _follow_sweep(self, source: SweepSource) -> None:
        """Show the sweep written in `source`'s directory (by this lab's child or by anyone)."""
        self.sweep_source = source
        if self.sweep_handle is None:  # opened from disk: nothing known yet
            self._reset_sweep(self.sweep_param, [])
        self.status_text = f"following the sweep in {short_path(source.sweep_dir)}"
        self._poll_sweep_files()
        self._refresh_status()
        self._draw(force=True)

    def _poll_sweep(self) -> None:
        changed = False
        if self.sweep_handle is not None:
            msgs = self.sweep_handle.poll()
            changed = bool(msgs)
            for m in msgs:
                self._sweep_child_message(m)
        if self._poll_sweep_files() or changed:
            self._refresh_status()

    def _poll_sweep_files(self) -> bool:
        if self.sweep_source is None or self.sweep_source.finished:
            return False
        msgs = self.sweep_source.poll()
        for m in msgs:
            self._sweep_file_message(m)
        return bool(msgs)

    def _sweep_child_message(self, m: dict) -> None:
        """What the sweep's child says that is not in its files: where they are, and errors. (Its
        progress lines are the files' lines: the view reads those, whoever writes the sweep.)"""
        t = m.get("type")
        if t == "run_dir" and self.sweep_source is None:
            self._follow_sweep(SweepSource(m["path"]))
        elif t == "error":
            self.status_text = f"[b red]sweep: {m.get('message')}[/]"
        elif t == "warning":
            self.status_text = f"[b yellow]{m.get('message')}[/]"

    def _sweep_file_message(self, m: dict) -> None:
        t = m.get("type")
        if t == "sweep_meta":
            self.sweep_meta = m["meta"]
            self.sweep_param = m["meta"].get("param") or self.sweep_param
            if m["meta"].get("values"):
                self.sweep_series.set_values(m["meta"]["values"])
        elif t == "progress":
            self.sweep_series.add_progress(m["row"])
            if self.status_text.startswith(("starting", "following")):
                self.status_text = "sweeping"
        elif t == "sweep_rows":
            self.sweep_series.add_final(m["rows"])
        elif t == "sweep_summary":
            self.sweep_summary = m["summary"]
            s = self.sweep_summary
            self.status_text = f"sweep {s.get('status', 'finished')}" + (f": {s['reason']}" if s.get("reason") else "")
            self._show_summary()

    def _sweep_live(self) -> bool:
        return self.sweep_handle is not None and not self.sweep_handle.done

    def _run_live(self) -> bool:
        return self.handle is not None and not self.handle.finished

    def action_pause(self) -> None:
        if self._sweep_live() and (self.view == SWEEP_VIEW or not self._run_live()):
            self._pause_sweep()
            return
        if self.handle is None or self.handle.finished:
            return
        if self.paused:
            self.handle.resume()
        else:
            self.handle.pause()
        self.paused = not self.paused
        self.status_text = "paused" if self.paused else "running"
        self._refresh_status()

    def _pause_sweep(self) -> None:
        """A paused sweep waits at the end of its current epoch."""
        if self.sweep_paused:
            self.sweep_handle.resume()
        else:
            self.sweep_handle.pause()
        self.sweep_paused = not self.sweep_paused
        self.status_text = "sweep paused (at the end of this epoch)" if self.sweep_paused else "sweeping"
        self._refresh_status()

    def action_stop(self) -> None:
        if self._sweep_live() and (self.view == SWEEP_VIEW or not self._run_live()):
            self.sweep_handle.stop()  # the sweep writes sweep.jsonl and summary.json as cancelled
            self.status_text = "stopping the sweep"
            self._refresh_status()
        elif self.handle is not None and not self.handle.finished:
            self.handle.stop()
            self.status_text = "stopping"
            self._refresh_status()

    def action_toggle_log(self) -> None:
        self.log_loss = not self.log_loss
        if self.view != "loss":
            self._set_view("loss")
        self._draw(force=True)

    def action_next_view(self) -> None:
        views = VIEWS + (SWEEP_VIEW,) if self._has_sweep() else VIEWS
        self._set_view(views[(views.index(self.view) + 1) % len(views)] if self.view in views else views[0])

    def _has_sweep(self) -> bool:
        return self.sweep_source is not None or self.sweep_handle is not None

    def _set_view(self, view: str) -> None:
        """Switch the plot; the sweep view has no patience counter and its own summary line."""
        was_sweep, self.view = self.view == SWEEP_VIEW, view
        if was_sweep != (view == SWEEP_VIEW):
            self.query_one("#patience").display = view != SWEEP_VIEW
            self._show_summary()
            self._refresh_status()
        self._draw(force=True)

    def action_load_preset(self) -> None:
        def loaded(name: str | None) -> None:
            if name:
                self.load_preset(name)

        self.push_screen(PickPreset(), loaded)

    def load_preset(self, name: str) -> None:
        """Fill the panels from a preset (the run in progress is not touched)."""
        try:
            raw = presets.load_raw(name)
            cfg = build(raw)
        except ConfigError as exc:
            self.status_text = f"[b red]{exc}[/]"
            self._refresh_status()
            return
        self.base_raw, self.cfg = raw, cfg
        self._fill_panels(cfg)
        self.status_text = f"loaded preset {name}: ctrl+r trains it"
        self._refresh_status()

    def _fill_panels(self, cfg: Config) -> None:
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            for section, names in PANELS.items():
                for fname in names:
                    value = getattr(getattr(cfg, section), fname)
                    w = self._control(f"{section}.{fname}")
                    if isinstance(w, Input):
                        w.value = _text(value)
                    else:
                        w.value = value
        self.validate_form()

    def attach_to(self, run_dir: str | Path) -> None:
        """Follow (and steer) a run written by another process, e.g. `gengap-tui run --detach`."""
        if self.handle is not None and not isinstance(self.handle, ReplaySource) and not self.handle.finished:
            self.status_text = "[b red]stop this lab's run first (f7), then attach[/]"
            self._refresh_status()
            return
        try:
            src = AttachSource(run_dir)
            cfg = validate(run_config(src.config), str(run_dir))
        except (OSError, ConfigError) as exc:
            self.status_text = f"[b red]cannot attach: {exc}[/]"
            self._refresh_status()
            return
        self.base_raw, self.cfg = run_config(src.config), cfg
        self._set_run_cfg(cfg)
        self._fill_panels(cfg)
        self.series, self.events, self.summary, self.paused = RunSeries(), [], None, False
        self.handle, self._t_start = src, time.monotonic()
        if self.view == SWEEP_VIEW:
            self._set_view("error")
        self.status_text = f"attached to {short_path(src.run_dir)}"
        self.query_one("#summary", Static).update("")
        self._poll()
        self._draw(force=True)

    def action_compare(self) -> None:
        def chosen(dirs: list[str] | None) -> None:
            if dirs and dirs[0] == ATTACH:
                self.attach_to(dirs[1])
            elif dirs is not None:
                self.compare_dirs = dirs
                self._load_compared()
                self._draw(force=True)

        self.push_screen(PickRuns(self.runs_dir, self.compare_dirs), chosen)

    def _load_compared(self) -> None:
        records = []
        for d in self.compare_dirs:
            try:
                records.append(runs.load_run(d))
            except (OSError, ValueError):
                continue
        def normalized(raw: dict | None) -> dict:  # defaults filled in, so older runs compare fairly
            try:
                return validate(run_config(raw)).dump()
            except ConfigError:
                return run_config(raw)

        labels = diff_labels([normalized(r.config) for r in records] + [self.cfg.dump()],
                             [r.path.name for r in records] + ["this run"])
        self.compared = []
        for rec, label in zip(records, labels):
            series = RunSeries()
            for row in rec.metrics:
                series.add(row)
            self.compared.append((label, series))
        self.compare_self_label = labels[-1] if records else ""

    def action_save_preset(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.status_text = "[b red]cannot save: fix the invalid fields first[/]"
            self._refresh_status()
            return

        def named(name: str | None) -> None:
            if name:
                self.save_preset(name)

        suggestion = cfg.name if cfg.name not in presets.packaged_names() else f"{cfg.name}-mine"
        self.push_screen(SaveAs(suggestion), named)

    def save_preset(self, name: str) -> Path | None:
        """Save the panels' settings as preset `name` in the user preset folder."""
        cfg = self.validate_form()
        if cfg is None:
            return None
        cfg = cfg.model_copy(update={"name": name})
        try:
            path = presets.save(cfg, name)
        except (ConfigError, OSError) as exc:
            self.status_text = f"[b red]cannot save: {exc}[/]"
            path = None
        else:
            self.status_text = f"saved preset {name}: {path}"
        self._refresh_status()
        return path

    async def action_quit(self) -> None:
        self.shutdown_run()
        self.exit()

    def shutdown_run(self, timeout: float = 5.0) -> None:
        """Stop a live run or sweep so that its directory is closed with summary.json (cancelled)."""
        for old in self._retired:
            old.close(timeout)
        self._retired = []
        if self.sweep_handle is not None and not self.sweep_handle.done:
            self.sweep_handle.close(timeout)  # its files have everything: nothing to show any more
        h = self.handle
        if h is None or h.finished:
            return
        h.close(timeout)  # stop, wait for the summary, terminate or kill as a last resort
        self._consume(h.poll())

    # ------------------------------------------------------------------ the stream
    def _poll(self) -> None:
        if self.handle is not None:
            self._consume(self.handle.poll())
        if self._has_sweep():
            self._poll_sweep()
        if self._retired:
            for old in self._retired:
                old.poll()  # drained and dropped: what they write goes to their own directories
            self._retired = [old for old in self._retired if not old.done and old.alive]
        self._draw()

    def _consume(self, messages: list[dict]) -> None:
        if not messages:
            return
        for m in messages:
            t = m.get("type")
            if t == "epoch":
                self.series.add(m["row"])
                if self.status_text.startswith("starting"):
                    self.status_text = "running"
            elif t == "event":
                self.events.append(m["event"])
                ev = m["event"].get("event")
                if ev == "tweaked":
                    self.status_text = f"tweaked at epoch {m['event'].get('epoch')}: {m['event'].get('changes')}"
            elif t == "summary":
                self.summary = m["summary"]
                self.status_text = self.summary.get("status", "finished")
                self._show_summary()
            elif t == "error":
                self.status_text = f"[b red]{m.get('message')}[/]"
            elif t == "run_dir":
                pass
        self._refresh_status()
        self._refresh_patience()

    def _event_epoch(self, kind: str) -> int | None:
        return next((e.get("epoch") for e in self.events if e.get("event") == kind), None)

    def _refresh_patience(self) -> None:
        cfg = self.run_cfg or self.cfg
        es = cfg.early_stopping
        stop_epoch = self._event_epoch("early_stop")
        stop = None
        if stop_epoch is not None:
            ev = next(e for e in self.events if e.get("event") == "early_stop")
            stop = (stop_epoch, ev.get("best_epoch"))
        patience = es.patience
        for e in self.events:
            if e.get("event") == "tweaked" and "patience" in e.get("changes", {}):
                patience = e["changes"]["patience"]
        self.query_one(PatienceMeter).show(self.series.last, patience, es.enabled, es.observe, stop,
                                           self._event_epoch("would_stop"), es.monitor)

    def _show_summary(self) -> None:
        if self.view == SWEEP_VIEW:
            self.query_one("#summary", Static).update(self._sweep_summary_text())
            return
        if self.summary is None:
            self.query_one("#summary", Static).update("")
            return
        s = self.summary
        parts = [f"[b]{s.get('status')}[/] after {s.get('epochs_run')} epochs"]
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
        if s.get("would_stop_test_err") is not None:
            parts.append(f"stopping would have given {s['would_stop_test_err']:.4f}")
        if s.get("reason") and s.get("status") not in ("completed", "early_stopped"):
            parts.append(str(s["reason"]))
        self.query_one("#summary", Static).update(" | ".join(parts))

    def _sweep_summary_text(self) -> str:
        """The sweep's outcome (summary.json): status, threshold, peak and dip of the test error."""
        s = self.sweep_summary
        if s is None:
            return ""
        leaf = self.sweep_param.split(".")[-1]
        wall = s.get("wall_seconds")
        parts = [f"[b]sweep {s.get('status')}[/]" + (f" in {wall:.0f}s" if isinstance(wall, (int, float)) else "")]
        thr = s.get("interpolation_threshold")
        parts.append(f"interpolation threshold {leaf} {fmt_value(thr)}" if thr is not None
                     else "no value fit the training set (train err > 1%)")
        if s.get("peak_value") is not None and (s.get("peak_prominence") or 0) > 0:
            parts.append(f"test err peak {s['peak_test_err']:.4f} @ {leaf} {fmt_value(s['peak_value'])} "
                         f"(dip {s['dip_test_err']:.4f} @ {fmt_value(s['dip_value'])})")
        if isinstance(s.get("last_test_err"), (int, float)):
            parts.append(f"last test err {s['last_test_err']:.4f}")
        if s.get("reason") and s.get("status") != "completed":
            parts.append(str(s["reason"]))
        return " | ".join(parts)

    def _seeds(self) -> int:
        """How many stacked seeds the run on screen has (its rows say; 1 for an ordinary run)."""
        last = self.series.last or {}
        k = last.get("members")
        return int(k) if isinstance(k, (int, float)) and not isinstance(k, bool) and k > 1 else 1

    def _sweep_status_head(self) -> str:
        meta = self.sweep_meta or {}
        sw = self.sweep_series
        epochs = meta.get("epochs") or (self.run_cfg or self.cfg).optim.epochs
        where = short_path(self.sweep_source.sweep_dir) if self.sweep_source is not None else "-"
        paused = " (paused)" if self.sweep_paused and self._sweep_live() else ""
        return (f"[b]sweep {self.sweep_param}[/] | {meta.get('device') or 'device -'} | "
                f"epoch {sw.epoch or '-'}/{epochs}{paused} | {sw.known}/{len(sw.values) or '-'} values | {where}")

    def _refresh_status(self) -> None:
        if self.view == SWEEP_VIEW:
            self._set_status(f"{self._sweep_status_head()}\n{self.status_text}")
            return
        cfg = self.run_cfg or self.cfg
        last = self.series.last
        device = next((e.get("device") for e in self.events if e.get("event") == "started"), None)
        epoch = f"epoch {last['epoch']}/{cfg.optim.epochs}" if last else f"epoch -/{cfg.optim.epochs}"
        sps = f"{last['samples_per_s']:,.0f} samples/s" if last and last.get("samples_per_s") else "- samples/s"
        eta = "ETA -"
        if last and last.get("epoch") and self.summary is None:
            per = (time.monotonic() - self._t_start) / last["epoch"]
            eta = f"ETA {per * (cfg.optim.epochs - last['epoch']):.0f}s"
        run_dir = short_path(self.handle.run_dir) if self.handle is not None and self.handle.run_dir else "-"
        seeds = f" | {self._seeds()} seeds (mean, band = min–max)" if self._seeds() > 1 else ""
        text = (f"[b]{cfg.name}[/] | {device or 'device -'} | {epoch} | {sps} | {eta} | {run_dir}\n"
                f"{self.status_text}{seeds}")
        self._set_status(text)

    def _set_status(self, text: str) -> None:
        if text != self._status_shown:  # fixed height: no layout pass needed
            self._status_shown = text
            self.query_one("#status", Static).update(text, layout=False)

    # ------------------------------------------------------------------ curves
    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        version = (SWEEP_VIEW, self.sweep_series.version) if self.view == SWEEP_VIEW else self.series.version
        if not force and (version == self._drawn_version or now - self._last_draw < 0.25):
            return
        found = self.query("#plot")
        if not found:  # the app is shutting down: a last timer tick can come after the widgets went
            return
        self._drawn_version, self._last_draw = version, now
        widget = found.first(Curves)
        if self.view == SWEEP_VIEW:
            widget.draw(self._sweep_fill(widget.size.width))
        else:
            widget.draw(self._run_fill(widget.size.width))

    def _run_fill(self, width: int):
        """The fill function of the error / loss / memorization view (built in the Curves thread)."""
        max_points = max(16, 2 * max(width, 40))
        cfg = self.run_cfg or self.cfg
        log = self.view == "loss" and self.log_loss
        if self.view == "error":
            keys = [("train_err", "train"), ("val_err", "val"), ("gap_err", "gap")]
            if "ratt_bound" in self.series.columns:
                keys += [("ratt_bound", "RATT bound"), ("ratt_random_err", "err on random labels")]
            title = "error (val - train = gap)"
        elif self.view == "loss":
            keys = [("train_loss", "train"), ("val_loss", "val")]
            title = "loss" + (" (log10)" if log else "")
        else:
            keys = [("train_clean_err", "clean-train err"), ("noisy_memorized", "noisy memorized"),
                    ("val_err", "val err")]
            title = "memorization (label noise)"

        def prepared(series: RunSeries, key: str) -> tuple[list[float], list[float]]:
            xs, ys = series.get(key)
            if log:
                pairs = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            return thin(xs, ys, max_points)

        lines: list[tuple[list[float], list[float], str, str | None]] = []
        bands: list[tuple[list[float], list[float], tuple[int, int, int]]] = []
        seeds = self._seeds()
        for key, label in keys:
            xs, ys = prepared(self.series, key)
            if xs:
                if self.compared and key in ("val_err", "val_loss", "noisy_memorized"):
                    label = f"{label} {self.compare_self_label}"
                if seeds > 1 and key in BAND_KEYS:  # min and max over the seeds, dim, under the mean
                    color = BAND_COLORS[len(lines) % len(BAND_COLORS)]
                    for bound in ("_min", "_max"):
                        bx, by = prepared(self.series, key + bound)
                        if bx:
                            bands.append((bx, by, color))
                lines.append((xs, ys, label, None))
        if bands:
            title += f" | {seeds} seeds: mean, band = min–max"
        overlay_key = {"error": "val_err", "loss": "val_loss", "memorization": "noisy_memorized"}[self.view]
        for (label, series), color in zip(self.compared, COMPARE_COLORS):
            xs, ys = prepared(series, overlay_key)
            if xs:
                lines.append((xs, ys, f"{overlay_key} {label}", color))
        vlines: list[tuple[int, str]] = []
        best = self.series.last.get("es_best_epoch") if self.series.last else None
        if best:
            vlines.append((best, "green"))
        for kind, color in (("early_stop", "red"), ("would_stop", "orange")):
            e = self._event_epoch(kind)
            if e:
                vlines.append((e, color))
        vlines += [(e.get("epoch"), "gray") for e in self.events if e.get("event") == "tweaked" and e.get("epoch")]
        hlines: list[tuple[float, str]] = []
        if self.view == "error":  # nonparametric reference lines
            for e in self.events:
                if e.get("event") != "baseline":
                    continue
                for key, name, color in (("baseline_knn_test_err", "k-NN", "cyan"),
                                         ("baseline_ntk_test_err", "NTK", "magenta")):
                    if isinstance(e.get(key), (int, float)):
                        hlines.append((float(e[key]), color))
                        title += f" | {name} test {e[key]:.3f} ({color} line)"
        ys_all = [y for _, ys, _, _ in lines for y in ys] + [y for _, ys, _ in bands for y in ys]
        yticks = log10_ticks(min(ys_all), max(ys_all)) if log and ys_all else None
        last_epochs = [self.series.rows[-1]["epoch"]] if self.series.rows else []
        last_epochs += [sr.rows[-1]["epoch"] for _, sr in self.compared if sr.rows]
        x_max = max(2, *last_epochs) if last_epochs else max(2, cfg.optim.epochs)
        xticks = sorted({1 + round(i * (x_max - 1) / 4) for i in range(5)})

        def fill(plt) -> None:  # runs in the Curves widget's build thread
            for xs, ys, color in bands:  # first: the mean lines are drawn over them
                plt.plot(xs, ys, marker="braille", color=color)
            for xs, ys, label, color in lines:
                if color:
                    plt.plot(xs, ys, label=label, marker="braille", color=color)
                else:
                    plt.plot(xs, ys, label=label, marker="braille")
            for x, color in vlines:
                plt.vline(x, color)
            for y, color in hlines:
                plt.hline(y, color)
            if yticks:
                plt.yticks(*yticks)
            plt.title(title)
            plt.xlabel("epoch")
            plt.xlim(1, x_max)
            plt.xticks(xticks)

        return fill

    def _sweep_fill(self, width: int):
        """The fill function of the sweep view: each value's latest train / val / test error
        against the value (log10 x, ticks at the real values), the interpolation threshold as a
        vertical line; the peak and dip of the test error in the title once the sweep has ended."""
        sw, summary = self.sweep_series, self.sweep_summary or {}
        log = sw.log_x
        param = self.sweep_param
        leaf = param.split(".")[-1]

        def x_of(v: float) -> float:
            return math.log10(v) if log else v

        lines = []
        for key, label, color in SWEEP_LINES:
            vs, ys = sw.get(key)
            if vs:
                lines.append(([x_of(v) for v in vs], ys, label, color))
        thr = summary.get("interpolation_threshold") if self.sweep_summary is not None else sw.threshold()
        parts = [f"sweep: error against {leaf}" + (" (log x)" if log else "")]
        if not lines:
            parts.append("waiting for the first epoch")
        elif self.sweep_summary is None and sw.epoch:
            parts.append(f"epoch {sw.epoch}")
        if thr is not None:
            parts.append(f"interpolation threshold {fmt_value(thr)}")
        if summary.get("peak_value") is not None and (summary.get("peak_prominence") or 0) > 0:
            parts.append(f"test peak {summary['peak_test_err']:.3f} @ {fmt_value(summary['peak_value'])}, "
                         f"dip {summary['dip_test_err']:.3f} @ {fmt_value(summary['dip_value'])}")
        title = fit_title(parts, width - 6)
        values = sw.values or sorted(sw.latest)
        xticks = value_ticks(values, log, max(2, width // 8))
        xs_all = xticks[0] or [0.0, 1.0]
        pad = max(0.02 * (max(xs_all) - min(xs_all)), 0.05)
        ys_all = [y for _, ys, _, _ in lines for y in ys]
        y_top = max(ys_all) * 1.1 + 0.01 if ys_all else 1.0
        x_thr = x_of(thr) if thr is not None and (thr > 0 or not log) else None

        def fill(plt) -> None:  # runs in the Curves widget's build thread
            for xs, ys, label, color in lines:
                plt.plot(xs, ys, label=label, marker="braille", color=color)
                plt.scatter(xs, ys, marker="●", color=color)
            if x_thr is not None:
                plt.vline(x_thr, THRESHOLD_COLOR)
                plt.text("interpolation threshold", x_thr, y_top * 0.96, color=THRESHOLD_COLOR, alignment="left")
            if xticks[0]:
                plt.xticks(*xticks)
            plt.title(title)
            plt.xlabel(param + (" (log scale)" if log else ""))
            plt.ylabel("error")
            plt.xlim(min(xs_all) - pad, max(xs_all) + pad)
            plt.ylim(0, y_top)

        return fill


def run_lab(preset: str, overrides: list[str], autostart: bool, **kw) -> int:
    app = GengapApp(preset, overrides, autostart, **kw)
    import signal

    def on_hup(signum, frame):  # noqa: ARG001 - the terminal is gone: close the run, then leave
        app.shutdown_run()
        app.exit()

    signal.signal(signal.SIGHUP, on_hup)
    try:
        app.run()
    finally:
        app.shutdown_run()
    return 0


async def settle_curves(app: GengapApp, pilot) -> None:
    """Redraw the curves now and wait until the build thread has delivered them."""
    curves = app.query_one("#plot", Curves)
    await app.workers.wait_for_complete()
    before = curves.builds
    app._draw(force=True)
    deadline = time.monotonic() + 10
    while curves.builds == before and time.monotonic() < deadline:
        await pilot.pause(0.02)
    await pilot.pause(0.05)


def screenshot(out: str | Path, size: tuple[int, int], replay: str | Path, view: str = "error",
               log_loss: bool = False, compare: list[str] | None = None, runs_dir: str | Path | None = None,
               panels: bool | None = None) -> Path:
    """Render the lab on a recorded run (all of it at once) and write an SVG of the screen."""
    out = Path(out)
    app = GengapApp(replay=replay, speed=0.0, compare=compare, runs_dir=runs_dir)

    async def pilot_fn(pilot) -> None:
        deadline = time.monotonic() + 30
        while app.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        if panels is not None:
            app.panels_open = panels
            app._fit_panels()
        app.view, app.log_loss = view, log_loss
        await pilot.pause(0.2)
        await settle_curves(app, pilot)
        app.save_screenshot(filename=out.name, path=str(out.parent or "."))
        app.exit()

    out.parent.mkdir(parents=True, exist_ok=True)
    app.run(headless=True, size=size, auto_pilot=pilot_fn)
    return out


def screenshot_sweep(out: str | Path, size: tuple[int, int], sweep_dir: str | Path, panels: bool | None = None,
                     wait: float = 2.0) -> Path:
    """Render the lab's sweep view on a sweep directory and write an SVG of the screen. A sweep
    still being written is shown as far as it has got (after up to `wait` s for its summary)."""
    out = Path(out)
    app = GengapApp(sweep=sweep_dir)

    async def pilot_fn(pilot) -> None:
        deadline = time.monotonic() + wait
        while app.sweep_summary is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        if panels is not None:
            app.panels_open = panels
            app._fit_panels()
        await pilot.pause(0.2)
        await settle_curves(app, pilot)
        app.save_screenshot(filename=out.name, path=str(out.parent or "."))
        app.exit()

    out.parent.mkdir(parents=True, exist_ok=True)
    app.run(headless=True, size=size, auto_pilot=pilot_fn)
    return out
