"""The lab: validated panels on the left, live curves and the patience counter on the right.

Training runs in a spawned process (`gengap_tui.worker.RunHandle`); this process never imports
torch. A 10 Hz timer drains the worker's queue without blocking, and the curves are redrawn at
most 4 times a second, only when new data arrived, from series thinned to ~2x the plot width.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, get_args, get_origin, Literal

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from .. import presets
from ..config import SECTIONS, Config, ConfigError, build
from .series import RunSeries, log10_ticks, thin

# the fields shown in the panels, by section (the rest keep the preset's values)
PANELS: dict[str, list[str]] = {
    "data": ["dataset", "n_train", "binary"],
    "noise": ["label_noise", "kind"],
    "model": ["kind", "depth", "width", "activation"],
    "regularization": ["weight_decay", "decoupled", "l1", "dropout", "input_noise"],
    "optim": ["optimizer", "lr", "batch_size", "epochs"],
    "early_stopping": ["enabled", "monitor", "patience", "min_delta", "min_delta_mode",
                       "start_from_epoch", "restore_best", "observe"],
}
TITLES = {"data": "Data", "noise": "Label noise", "model": "Model", "regularization": "Regularization",
          "optim": "Optimizer", "early_stopping": "Early stopping"}
LIVE = {"optim.lr": "lr", "regularization.weight_decay": "weight_decay",
        "early_stopping.patience": "patience", "early_stopping.observe": "observe",
        "early_stopping.min_delta": "min_delta"}
VIEWS = ("error", "loss", "memorization")


def field_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--").replace("_", "-")


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class PatienceMeter(Static):
    """`patience 3/10` with a bar, the best value and its epoch; the stop text when it fires."""

    def show(self, row: dict | None, patience: int, enabled: bool, observe: bool,
             stop: tuple[int, int | None] | None, would: int | None, monitor: str) -> None:
        if row is None:
            self.update(f"patience -/{patience}  (monitor {monitor})")
            return
        wait = row.get("es_wait") or 0
        width = 20
        filled = min(width, round(width * wait / max(patience, 1)))
        bar = "█" * filled + "░" * (width - filled)
        best = row.get("es_best")
        best_txt = f"best {monitor} {best:.4f} @ epoch {row.get('es_best_epoch')}" if best is not None else "best -"
        lines = [f"patience {wait}/{patience} {bar}  {best_txt}"]
        if not enabled:
            lines[0] += "  (early stopping off)"
        if stop is not None:
            lines.append(f"[b red]EARLY STOP @ epoch {stop[0]} (kept epoch {stop[1]})[/]")
        elif would is not None:
            lines.append(f"[b yellow]would stop @ {would}[/] (observe mode: training goes on)")
        self.update("\n".join(lines))


class GengapApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "gengap-tui"
    BINDINGS = [
        Binding("ctrl+r", "start", "Start/restart", priority=True, id="start"),
        Binding("f5", "start", "Start", show=False, priority=True, id="start-f5"),
        Binding("f6", "pause", "Pause/resume", priority=True, id="pause"),
        Binding("f7", "stop", "Stop", priority=True, id="stop"),
        Binding("f8", "toggle_log", "Log loss", priority=True, id="log"),
        Binding("f9", "next_view", "Plot", priority=True, id="view"),
        Binding("ctrl+s", "save_preset", "Save preset", priority=True, id="save"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(self, preset: str = "default", overrides: list[str] | None = None, autostart: bool = False,
                 runs_dir: str | Path | None = None):
        super().__init__()
        from ..worker import prepare_multiprocessing

        # before Textual replaces sys.stderr, or spawning fails (DESIGN §1)
        prepare_multiprocessing()
        self.base_raw = presets.load_raw(preset)
        self.cfg: Config = build(self.base_raw, overrides or [])
        self.autostart = autostart
        from ..runs import default_runs_dir

        self.runs_dir = default_runs_dir(runs_dir)
        self.handle = None
        self.series = RunSeries()
        self.events: list[dict] = []
        self.summary: dict | None = None
        self.run_cfg: Config | None = None
        self.errors: dict[str, str] = {}
        self.view = "error"
        self.log_loss = False
        self.paused = False
        self._drawn_version = -1
        self._last_draw = 0.0
        self._t_start = 0.0
        self.status_text = "ready"

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
                yield PlotextPlot(id="plot")
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
        yield Label("", id=fid + "-err", classes="err")

    def on_mount(self) -> None:
        self.set_interval(0.1, self._poll)
        self._refresh_status()
        self._draw(force=True)
        self.query_one(PatienceMeter).show(None, self.cfg.early_stopping.patience, True, False, None, None,
                                           self.cfg.early_stopping.monitor)
        if self.autostart:
            self.call_after_refresh(self.action_start)

    # ------------------------------------------------------------------ the form
    def form_overrides(self) -> list[str]:
        out = []
        for section, names in PANELS.items():
            for name in names:
                dotted = f"{section}.{name}"
                w = self.query_one("#" + field_id(dotted))
                if isinstance(w, Input):
                    out.append(f"{dotted}={w.value.strip()}")
                elif isinstance(w, Checkbox):
                    out.append(f"{dotted}={'true' if w.value else 'false'}")
                elif isinstance(w, Select):
                    out.append(f'{dotted}="{w.value}"')
        return out

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
                w = self.query_one("#" + field_id(dotted))
                msg = self.errors.get(dotted, "")
                w.set_class(bool(msg), "-invalid")
                err = self.query_one("#" + field_id(dotted) + "-err", Label)
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
        if dotted is not None:
            section, name = dotted.split(".")
            self.handle.tweak(**{LIVE[dotted]: getattr(getattr(cfg, section), name)})
            self.status_text = f"tweak {dotted} queued for the next epoch"
        else:
            self.status_text = "this change needs a restart (ctrl+r)"
        self._refresh_status()

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
        self.series, self.events, self.summary = RunSeries(), [], None
        self.run_cfg, self.paused = cfg, False
        self._t_start = time.monotonic()
        self.handle = RunHandle.start(cfg.dump(), self.runs_dir)
        self.status_text = "starting (the worker loads torch and the data)"
        self.query_one("#summary", Static).update("")
        self._refresh_status()
        self._draw(force=True)

    def action_pause(self) -> None:
        if self.handle is None or self.handle.finished:
            return
        if self.paused:
            self.handle.resume()
        else:
            self.handle.pause()
        self.paused = not self.paused
        self.status_text = "paused" if self.paused else "running"
        self._refresh_status()

    def action_stop(self) -> None:
        if self.handle is not None and not self.handle.finished:
            self.handle.stop()
            self.status_text = "stopping"
            self._refresh_status()

    def action_toggle_log(self) -> None:
        self.log_loss = not self.log_loss
        if self.view != "loss":
            self.view = "loss"
        self._draw(force=True)

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._draw(force=True)

    def action_save_preset(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.status_text = "[b red]cannot save: fix the invalid fields first[/]"
        else:
            path = presets.save(cfg)
            self.status_text = f"saved {path}"
        self._refresh_status()

    async def action_quit(self) -> None:
        self.shutdown_run()
        self.exit()

    def shutdown_run(self, timeout: float = 5.0) -> None:
        """Stop a live run so that its directory is closed with summary.json (cancelled)."""
        h = self.handle
        if h is None or h.finished:
            return
        h.close(timeout)  # stop, wait for the summary, terminate or kill as a last resort
        self._consume(h.poll())

    # ------------------------------------------------------------------ the stream
    def _poll(self) -> None:
        if self.handle is not None:
            self._consume(self.handle.poll())
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
        s = self.summary or {}
        parts = [f"[b]{s.get('status')}[/] after {s.get('epochs_run')} epochs"]
        if s.get("test_err") is not None:
            kept = f" (kept epoch {s.get('best_epoch')})" if s.get("restored_best") else ""
            parts.append(f"test err {s['test_err']:.4f}{kept}")
        if s.get("would_stop_test_err") is not None:
            parts.append(f"stopping would have given {s['would_stop_test_err']:.4f}")
        if s.get("reason") and s.get("status") not in ("completed", "early_stopped"):
            parts.append(str(s["reason"]))
        self.query_one("#summary", Static).update(" | ".join(parts))

    def _refresh_status(self) -> None:
        cfg = self.run_cfg or self.cfg
        last = self.series.last
        device = next((e.get("device") for e in self.events if e.get("event") == "started"), None)
        epoch = f"epoch {last['epoch']}/{cfg.optim.epochs}" if last else f"epoch -/{cfg.optim.epochs}"
        sps = f"{last['samples_per_s']:,.0f} samples/s" if last and last.get("samples_per_s") else "- samples/s"
        eta = "ETA -"
        if last and last.get("epoch") and self.summary is None:
            per = (time.monotonic() - self._t_start) / last["epoch"]
            eta = f"ETA {per * (cfg.optim.epochs - last['epoch']):.0f}s"
        run_dir = str(self.handle.run_dir) if self.handle is not None and self.handle.run_dir else "-"
        self.query_one("#status", Static).update(
            f"[b]{cfg.name}[/] | {device or 'device -'} | {epoch} | {sps} | {eta} | {run_dir}\n{self.status_text}")

    # ------------------------------------------------------------------ curves
    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (self.series.version == self._drawn_version or now - self._last_draw < 0.25):
            return
        self._drawn_version, self._last_draw = self.series.version, now
        widget = self.query_one("#plot", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        max_points = max(16, 2 * max(widget.size.width, 40))
        cfg = self.run_cfg or self.cfg
        if self.view == "error":
            keys = [("train_err", "train"), ("val_err", "val"), ("gap_err", "gap")]
            title = "error (val - train = gap)"
        elif self.view == "loss":
            keys = [("train_loss", "train"), ("val_loss", "val")]
            title = "loss" + (" (log10)" if self.log_loss else "")
        else:
            keys = [("train_clean_err", "clean-train err"), ("noisy_memorized", "noisy memorized"),
                    ("val_err", "val err")]
            title = "memorization (label noise)"
        ys_all: list[float] = []
        for key, label in keys:
            xs, ys = self.series.get(key)
            if self.view == "loss" and self.log_loss:
                xs, ys = zip(*[(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]) if ys else ([], [])
                xs, ys = list(xs), list(ys)
            xs, ys = thin(xs, ys, max_points)
            if xs:
                plt.plot(xs, ys, label=label, marker="braille")
                ys_all += ys
        best = self.series.last.get("es_best_epoch") if self.series.last else None
        if best:
            plt.vline(best, "green")
        for kind, color in (("early_stop", "red"), ("would_stop", "orange")):
            e = self._event_epoch(kind)
            if e:
                plt.vline(e, color)
        for e in self.events:
            if e.get("event") == "tweaked":
                plt.vline(e.get("epoch"), "gray")
        if self.view == "loss" and self.log_loss and ys_all:
            ticks, labels = log10_ticks(min(ys_all), max(ys_all))
            plt.yticks(ticks, labels)
        plt.title(title)
        plt.xlabel("epoch")
        plt.xlim(1, max(2, cfg.optim.epochs if not self.series.rows else max(self.series.rows[-1]["epoch"], 2)))
        widget.refresh()


def run_lab(preset: str, overrides: list[str], autostart: bool) -> int:
    app = GengapApp(preset, overrides, autostart)
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
