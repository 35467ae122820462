"""The lab: the settings form on the left, live curves and the patience counter on the right.

The app holds one `sources.Source` (what it reads: a live run or sweep of its own, a replay, an
attached run, a sweep directory) and one `state.LabState` (what it knows). A 10 Hz timer polls
the source without blocking and applies its messages to the state; the widgets show pure
functions of the state (`texts.py`, `plots.py`); the curves are redrawn at most 4 times a second,
only when new data arrived, in a build thread (`widgets.Curves`). Training runs in a spawned
process (`worker.py`): this process never imports torch (docs/ARCHITECTURE.md, "The lab").

Start-up: the first frame shows the status bar, the curves and the patience meter; the settings
panels' fields are mounted right after it (`SettingsForm.populate`); then, with `prewarm`, the lab
starts a training process that gets warm in the background (`warm.Prewarmer`): ctrl+r hands it
the config instead of spawning one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Checkbox, Footer, Input, Select

from .. import presets, runs
from ..config import Config, apply_overrides, build, validate
from ..protocol import TWEAK_FIELDS, run_config
from ..sources import LiveRunSource, LiveSweepSource, Source, open_source
from .commands import LabCommands
from .dialogs import MAX_COMPARE
from .plots import EXAMPLES_VIEW, SWEEP_VIEW, SWEEP_VIEWS, VIEWS, examples_plot, run_plot, sweep_plot
from .preset_actions import PresetActions
from .runs_actions import RunsActions
from .series import RunSeries
from .state import LabState, SweepState, sweep_config
from .system import SYSTEM_VIEW, sweep_system_line, system_line, system_plot
from .texts import patience_text, run_head, run_note, run_outcome, short_path, sweep_head, sweep_outcome
from .widgets import Curves, OutcomeLine, PatienceMeter, SettingsForm, StatusBar
from .widgets.lines import SystemLine
from .widgets.settings import dotted_of

NARROW = 110  # below this many columns the panels start collapsed (f2 opens them)
FOOTER_FULL = 100  # below this many columns the footer is packed (compact, no palette hint)
LAB_STOP = "stopped by the user from the lab"
QUIT_STOP = "stopped by the user: the lab was closed"
WARM_READY = "ready: the training process is warm (ctrl+r trains at once)"
FAST_POLL_S = 0.02  # how often a new run is polled until its first epoch (then every 0.1 s)
WARM_WAIT_S = 3.0   # a restart waits this long for the warm process to end the stopped run


class GengapApp(PresetActions, RunsActions, App):
    CSS_PATH = "app.tcss"
    TITLE = "gengap-tui"
    # no focus before the first frame: focusing restyles the whole panel tree (~0.3 s on the 2-core
    # box); the first field gets focus right after the first paint (`_focus_first_field`)
    AUTO_FOCUS = None
    COMMANDS = App.COMMANDS | {LabCommands}
    # the footer shows what fits in 100 columns; the rest are in the palette (ctrl+p) and the README
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", priority=True, id="start"),
        Binding("f5", "start", "Start", show=False, priority=True, id="start-f5"),
        Binding("f6", "pause", "Pause", priority=True, id="pause"),
        Binding("f7", "stop", "Stop", priority=True, id="stop"),
        Binding("f8", "toggle_log", "Log loss", show=False, priority=True, id="log"),
        Binding("f9", "next_view", "Plot", priority=True, id="view"),
        Binding("ctrl+g", "toggle_system", "System line", show=False, priority=True, id="system"),
        Binding("f4", "sweep", "Sweep", show=False, priority=True, id="sweep"),
        Binding("f2", "toggle_panels", "Panels", priority=True, id="panels"),
        Binding("f3", "compare", "Compare", priority=True, id="compare"),
        Binding("ctrl+o", "load_preset", "Load", priority=True, id="load"),
        Binding("ctrl+s", "save_preset", "Save", priority=True, id="save"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]
    view: reactive[str] = reactive("error", init=False)      # error | loss | memorization | system | sweep…
    log_loss: reactive[bool] = reactive(False, init=False)   # plot log10(loss)
    show_system: reactive[bool] = reactive(True, init=False)  # the system line (ctrl+g hides it)

    def __init__(self, preset: str = "default", overrides: list[str] | None = None, autostart: bool = False,
                 runs_dir: str | Path | None = None, replay: str | Path | None = None, speed: float = 1.0,
                 compare: list[str] | None = None, attach: bool = False, sweep: str | Path | None = None,
                 ray: dict | None = None, prewarm: bool = False):
        super().__init__()
        self.ray = ray  # --ray: where this lab's sweeps (f4) run their units (ray_options.RayOptions' dict)
        from ..worker import prepare_multiprocessing

        # before Textual replaces sys.stderr, or spawning fails (docs/ARCHITECTURE.md, "Processes")
        prepare_multiprocessing()
        # the curves are built in a thread: hand the GIL back to the event loop every 1 ms, not
        # every 5 ms, so timers stay on time while a build runs (bench/ui.py)
        sys.setswitchinterval(0.001)
        self.source: Source | None = open_source(replay, speed, attach, sweep)
        self._retired: list[Source] = []  # replaced training processes, drained until they end
        note = ""
        if self.source is not None and self.source.kind == "run":
            self.base_raw = run_config(self.source.config)
            self.cfg: Config = validate(self.base_raw, str(replay))
        elif self.source is not None:
            self.base_raw, self.cfg, note = sweep_config(Path(sweep), preset)
        else:
            # the --set overrides become part of the base: the panels show only some fields, and
            # the others (device, data.n_val, run.seeds, sweep.values) must survive validation
            self.base_raw = apply_overrides(presets.load_raw(preset), overrides or [])
            self.cfg = build(self.base_raw)
        self.state = LabState(self.cfg)
        self.state.status = note or "ready"
        self.autostart = autostart
        self.runs_dir = runs.default_runs_dir(runs_dir)
        self.compare_dirs: list[str] = list(compare or [])[:MAX_COMPARE]
        self.compared: list[tuple[str, RunSeries]] = []
        self.compare_self_label = ""
        self.panels_open: bool | None = None  # None: decided by the terminal width
        self._drawn_version: Any = -1
        self._last_draw = 0.0
        self._panels_ready = asyncio.Event()
        self._form: SettingsForm | None = None
        self._fast_poll: Any = None
        self._pending: tuple[float, Any] | None = None  # a start waiting for the warm process
        # a warm training process (the preset lab only: `gengap-tui`, not replay / attach); the
        # config's run.prewarm = false turns it off too (warm.py)
        self.warm = None
        if prewarm and self.source is None:
            from ..warm import Prewarmer

            self.warm = Prewarmer()
        if self.source is not None and self.source.kind == "sweep":
            self.state.sweep = SweepState(param=self.cfg.sweep.param)
            self.set_reactive(GengapApp.view, SWEEP_VIEW)

    def get_system_commands(self, screen):
        """Textual's own palette entries; its Quit is ours (it closes a live run), said once."""
        for cmd in super().get_system_commands(screen):
            yield cmd._replace(help="closes a live run as cancelled (ctrl+q)") if cmd.title == "Quit" else cmd

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield SystemLine("", id="system")
        with Horizontal(id="main"):
            yield SettingsForm(self.cfg, deferred=True, id="panels")
            with Vertical(id="right"):
                yield Curves(id="plot")
                yield PatienceMeter(id="patience")
                yield OutcomeLine("", id="summary")
        yield Footer()

    @property
    def form(self) -> SettingsForm:
        if self._form is None:
            self._form = self.query_one(SettingsForm)
        return self._form

    def on_mount(self) -> None:
        self._lines = (self.query_one(StatusBar), self.query_one(PatienceMeter), self.query_one(OutcomeLine))
        self.call_after_refresh(self._populate_panels)
        self.set_interval(0.1, self._poll)
        self._load_compared()
        self._fit_panels()
        src = self.source
        if src is not None:
            self.query_one("#patience").display = self.view not in SWEEP_VIEWS
            if self.state.status == "ready":
                self.state.status = f"{src.verb} {short_path(src.path)}"
            self._poll()
        elif self.autostart:
            self.call_after_refresh(self.action_start)
        self.show_state()
        self._draw(force=True)

    async def _populate_panels(self) -> None:
        """After the first frame: the settings fields (then the first one gets focus). The warm
        training process is started after them (`_poll`): started before, it slowed them by ~0.2 s
        on 2 busy cores and got ready no sooner."""
        try:
            await self.form.populate()
        finally:
            self._panels_ready.set()
        self.validate_form()  # the fields' marks (a preset loaded meanwhile is shown as loaded)
        self.call_after_refresh(self._focus_first_field)

    async def panels_mounted(self, timeout: float = 30.0) -> None:
        """Wait until the settings fields are mounted (the first frame comes before them), or the
        app has stopped running, or `timeout` s have passed (a broken start-up fails the caller's
        next step instead of hanging it)."""
        deadline = time.monotonic() + timeout
        while not self._panels_ready.is_set() and self.is_running and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    @asynccontextmanager
    async def run_test(self, *args, **kw):
        """Textual's, handing over the pilot once the settings fields are mounted: tests see the
        whole lab, as a user does a moment after the first frame."""
        async with super().run_test(*args, **kw) as pilot:
            await self.panels_mounted()
            yield pilot

    def _focus_first_field(self) -> None:
        if self.focused is None and self.query_one("#panels").display:
            self.screen.focus_next()

    cast = None  # a recording of the session (run_lab's --record): told of each resize
    caption = ""  # a tour's caption (tour.py): shown in place of the status message while set

    def on_resize(self, event) -> None:
        # the event's size: this handler runs before App's own, which updates `self.size`
        self._fit_panels(event.size.width)
        if self.cast is not None:
            self.cast.resize(event.size.width, event.size.height)

    _fit_width = 0  # the width the panels were last fit to

    def _fit_panels(self, width: int | None = None) -> None:
        width = self.size.width if width is None else width
        if self._fit_width and (self._fit_width >= NARROW) != (width >= NARROW):
            self.panels_open = None  # f2's choice holds while the terminal stays on its side of NARROW
        self._fit_width = width
        show = self.panels_open if self.panels_open is not None else width >= NARROW
        self.query_one("#panels").display = show
        # below 100 columns the footer's keys fit only packed, without the palette's hint (^p
        # still opens it): at 80 columns the footer ended in `f3 Compar`, ^o / ^s / ^q lost
        footer = self.query_one(Footer)
        footer.compact, footer.show_command_palette = width < FOOTER_FULL, width >= FOOTER_FULL

    def action_toggle_panels(self) -> None:
        self.panels_open = not self.query_one("#panels").display
        self._fit_panels()

    # ------------------------------------------------------------------ showing the state
    def say(self, status: str, bell: bool = False) -> None:
        """Set the status message and show it."""
        self.state.status = status
        if bell:
            self.bell()
        self.show_state()

    def show_state(self) -> None:
        """Status bar, patience meter and outcome line, from the state (each repaints only on a
        change of its text)."""
        st, sweep_view = self.state, self.view in SWEEP_VIEWS
        status, meter, outcome = self._lines
        note = self.caption or st.status  # a tour's caption is never replaced by the lab's messages
        if sweep_view and st.sweep is not None:
            live = isinstance(self.source, LiveSweepSource) and not self.source.finished
            head = sweep_head(st.sweep, st.run.cfg.optim.epochs, live)
            status.show(head, note)
            outcome.set_text(sweep_outcome(st.sweep))
        else:
            status.show(run_head(st.run), run_note(st.run, note))
            outcome.set_text(run_outcome(st.run.summary))
        meter.set_text(patience_text(st.run))
        self._show_system()

    def _show_system(self) -> None:
        """The system line (GPU, CPU, memory of the run on screen), where it measured any and
        ctrl+g has not hidden it."""
        line, sweep = self.query_one(SystemLine), self.view in SWEEP_VIEWS and self.state.sweep is not None
        text = sweep_system_line(self.state.sweep) if sweep else system_line(self.state.run)
        text = text if self.show_system else ""
        line.set_text(text)
        line.display = bool(text)

    def watch_show_system(self) -> None:
        self._show_system()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        widget = getattr(self, "_curves", None)
        if widget is None or not widget.is_attached:
            found = self.query("#plot")
            if not found:  # the app is shutting down: a last timer tick can come after the widgets went
                return
            widget = self._curves = found.first(Curves)
        width = widget.size.width
        sweep_view = self.view in SWEEP_VIEWS and self.state.sweep is not None
        # what the picture depends on: the series, and the width its title and ticks are fit to (the
        # panels arrive after the first frame); a sweep's summary adds the threshold and peak
        version = ((self.view, self.state.sweep.series.version, self.state.sweep.summary is not None, width)
                   if sweep_view else (self.state.run.series.version, width))
        if self.view == EXAMPLES_VIEW:  # examples.npz, re-read when it changes (numpy: imported here, not at start)
            from .. import forgetting

            stats, message, stamp = forgetting.for_view(self.state.run.run_dir)
            version += (self.view, stamp)
        if not force and (version == self._drawn_version or now - self._last_draw < 0.25):
            return
        self._drawn_version, self._last_draw = version, now
        if sweep_view:
            plot = sweep_plot(self.state.sweep, width, self.view)
        elif self.view == SYSTEM_VIEW:
            plot = system_plot(self.state.run, width)
        elif self.view == EXAMPLES_VIEW:
            plot = examples_plot(stats, width, message)
        else:
            view = self.view if self.view in VIEWS else "error"
            plot = run_plot(self.state.run, view, self.log_loss, width, self.compared, self.compare_self_label)
        widget.draw(plot.fill)

    def watch_view(self, old: str, new: str) -> None:
        """Switch the plot; the sweep view has no patience counter and its own summary line."""
        if (old in SWEEP_VIEWS) != (new in SWEEP_VIEWS):
            self.query_one("#patience").display = new not in SWEEP_VIEWS
            self.show_state()
        self._draw(force=True)

    def watch_log_loss(self) -> None:
        self._draw(force=True)

    # ------------------------------------------------------------------ the stream
    def _poll(self) -> None:
        if self._pending is not None:
            deadline, start = self._pending
            if self.warm.closed:  # the lab is closing
                self._pending = None
            elif self.warm.poll() not in ("busy", "finishing") or time.monotonic() > deadline:
                self._pending = None
                self.source = start(self.warm)  # its warm process if it is free, else a new one
        src = self.source
        if src is not None:
            msgs = src.poll()
            for msg in msgs:
                self.state.apply(msg, src.kind)
            if msgs:
                self.show_state()
        if self._retired:
            for old in self._retired:
                old.poll()  # drained and dropped: what they write goes to their own directories
            self._retired = [old for old in self._retired if not old.finished]
        self._draw()
        if self.warm is not None and self._panels_ready.is_set():
            self._keep_warm()

    def _keep_warm(self) -> None:
        """One warm training process, started (or replaced) only while nothing of the lab trains."""
        src = self.source
        idle = not self._retired and not (src is not None and src.trains_here and not src.finished)
        was = self.warm.state
        now = self.warm.tick(idle, self.cfg.dump if self.cfg.run.prewarm else None)
        if now == "ready" and was != "ready" and self.state.status == "ready":
            self.say(WARM_READY)

    def _poll_fast(self) -> None:
        """Poll a new run every 20 ms until its first epoch (or its end), then stop. Each tick
        stops its own timer, never `self._fast_poll` as it is then: a tick of a timer already
        replaced or stopped (a start while one was due) found None there and crashed the lab."""
        if self._fast_poll is not None:
            self._fast_poll.stop()
        started = time.monotonic()
        timer: Any = None

        def tick() -> None:
            run, src = self.state.run, self.source
            if (self._fast_poll is not timer or run.series.rows or run.summary is not None
                    or (src is None and self._pending is None) or (src is not None and src.finished)
                    or time.monotonic() - started > 30):
                timer.stop()
                if self._fast_poll is timer:
                    self._fast_poll = None
            else:
                self._poll()

        self._fast_poll = timer = self.set_interval(FAST_POLL_S, tick)

    def _leave_source(self, what: str) -> str:
        """One training process at a time (two would share the cores): stop this lab's live run
        or sweep, which still writes its directory; keep draining it. Returns a status note."""
        src = self.source
        if src is None or not src.trains_here or src.finished:
            return ""
        src.stop(f"stopped by the user: the lab started a {what}")
        self._retired.append(src)
        return f" (stopped the {'sweep' if src.kind == 'sweep' else 'run'}: one training process at a time)"

    # ------------------------------------------------------------------ the form
    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        """A keystroke: validate, and only say what Enter (or leaving the field) would do."""
        self._field_changed(event.input, commit=False)

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _input_committed(self, event) -> None:
        self._field_changed(event.input, commit=True)

    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _choice_committed(self, event) -> None:
        self._field_changed(event.control, commit=True)

    def _field_changed(self, control, commit: bool) -> None:
        """Validate the form; while a run goes, a committed edit of a tweakable field is sent to
        it (a half-typed value never is), and a structural change says it needs a restart."""
        if not self.form.is_attached:  # a field's late event while the app shuts down
            return
        cfg = self.validate_form()
        src = self.source
        if src is None or src.finished or src.kind != "run":
            return
        dotted = dotted_of(getattr(control, "id", None))
        if not src.can_tweak:
            if cfg is not None:
                self.say("replay: start (ctrl+r) to train with these settings")
            return
        run = self.state.run
        if cfg is None:
            if commit and dotted in TWEAK_FIELDS and dotted in self.errors:  # the run keeps its value
                self.say(f"[b red]{dotted} not applied[/]: the run goes on with {run.applied[dotted]!r}")
                self.form.show_value(dotted, run.applied[dotted])
                self.validate_form()
            return
        change = run.change(cfg, dotted)
        if change == "restart":
            self.say("this change needs a restart (ctrl+r)")
        elif change is not None and not commit:
            self.say(f"{dotted}: enter applies {change[1]!r} to the run (it uses {run.applied[dotted]!r})")
        elif change is not None:
            try:
                src.tweak(**{TWEAK_FIELDS[change[0]]: change[1]})
            except ValueError as exc:
                self.say(f"[b red]{exc}[/]")
                return
            run.applied[change[0]] = change[1]
            self.form.show_value(dotted, change[1])  # the field shows what was sent, as the run reads it
            self.say(f"tweak {change[0]} = {change[1]!r} queued for the next epoch (the run uses it from then on)")

    def validate_form(self) -> Config | None:
        """Validate every field; mark the bad ones. Returns the config or None."""
        cfg = self.form.validate(self.base_raw)
        if cfg is not None:
            self.cfg = cfg
        return cfg

    @property
    def errors(self) -> dict[str, str]:
        return self.form.errors

    # ------------------------------------------------------------------ actions
    def action_start(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.say(f"[b red]cannot start: {len(self.errors)} invalid field(s)[/]", bell=True)
            return
        note = self._leave_source("run")
        warm = self.warm.state if self.warm is not None else "off"
        config = cfg.dump()
        now = self._launch(lambda w: LiveRunSource.start(config, self.runs_dir, warm=w))
        self.state.new_run(cfg, ("starting (the training process is ending the last run)" if not now else
                                 "starting" if self.source.warm and warm == "ready" else
                                 "starting (the training process loads torch and the data)") + note)
        if self.view in SWEEP_VIEWS:
            self.view = "error"
        self.show_state()
        self._draw(force=True)
        self._last_draw = 0.0  # the first epoch is drawn the moment it comes
        self._poll_fast()

    def action_sweep(self) -> None:
        """Sweep the panels' config over its [sweep] values (the preset's; the panels don't show
        them) in a spawned child; the sweep view follows the sweep directory it writes."""
        cfg = self.validate_form()
        if cfg is None:
            self.say(f"[b red]cannot sweep: {len(self.errors)} invalid field(s)[/]", bell=True)
            return
        if not cfg.sweep.values:
            self.say("[b red]nothing to sweep: no \\[sweep] values[/] - ctrl+o loads one with them (double-descent), "
                     "or --set 'sweep.values=[2,4,8]'", bell=True)
            return
        note = self._leave_source("sweep")
        config, s = cfg.dump(), cfg.sweep  # (a grid when [sweep] has param2: one line per value of it)
        param, values, param2, values2 = s.param, list(s.values), s.param2 or None, list(s.values2)
        now = self._launch(lambda w: LiveSweepSource.start(config, self.runs_dir, param, values, ray=self.ray, warm=w,
                                                           param2=param2, values2=values2))
        self.state.new_sweep(SweepState.expecting(param, values, param2, values2),
                             f"starting a sweep of {param} over {len(values)} values"
                             + (f" x {param2} over {len(values2)}" if param2 else "")
                             + ("" if not now or self.source.warm else " (the worker loads torch and the data)") + note)
        self.view = SWEEP_VIEW
        self.show_state()

    def _launch(self, start) -> bool:
        """Start the source that `start(warm)` makes: now, or, while the warm process is still
        ending the run just stopped (~0.3 s), as soon as it is free again (at most WARM_WAIT_S,
        then a process is spawned): a restart need not wait for torch. True if started now."""
        if self.warm is not None and self.warm.state in ("busy", "finishing"):
            self.source, self._pending = None, (time.monotonic() + WARM_WAIT_S, start)
            return False
        self._pending = None
        self.source = start(self.warm)
        return True

    def action_pause(self) -> None:
        src = self.source
        if src is None or src.finished or not src.can_pause:
            return
        part = self.state.sweep if src.kind == "sweep" else self.state.run
        if part is None:
            return
        if part.paused:
            src.resume()
        else:
            src.pause()
        part.paused = not part.paused
        if src.kind == "sweep":
            self.say("sweep paused (at the end of this epoch)" if part.paused else "sweeping")
        else:
            self.say("paused" if part.paused else "running")

    def action_stop(self) -> None:
        if self._pending is not None:  # a start still waiting for the warm process: it never happens
            self._pending = None
            self.say("stopped before it started")
            return
        src = self.source
        if src is not None and not src.finished and src.can_stop:
            src.stop(LAB_STOP)  # a run or sweep still writes its summary, as cancelled
            self.say("stopping the sweep" if src.kind == "sweep" else "stopping")

    def action_toggle_log(self) -> None:
        self.log_loss = not self.log_loss
        self.view = "loss"

    def action_next_view(self) -> None:
        # a sweep this lab is training has only its own views: the error / loss views would show
        # the run before it, and its status bar, under "sweeping"
        src = self.source
        sweeping = src is not None and src.kind == "sweep" and src.trains_here and not src.finished
        run_views = VIEWS + (EXAMPLES_VIEW, SYSTEM_VIEW)
        views = SWEEP_VIEWS if sweeping else run_views + SWEEP_VIEWS if self.state.sweep is not None else run_views
        self.view = views[(views.index(self.view) + 1) % len(views)] if self.view in views else views[0]

    def action_toggle_system(self) -> None:
        self.show_system = not self.show_system

    async def action_quit(self) -> None:
        self.shutdown_run(reason=QUIT_STOP)
        self.exit()

    def close_for_signal(self, reason: str, timeout: float) -> None:
        """`run_guarded`'s close_run: stop the training processes this lab started (its source,
        replaced ones still ending) with `reason` and wait up to `timeout` s for their summaries.
        Runs in a watchdog thread, maybe while the event loop is blocked: sources only, no widget.
        An attached run is not this lab's to stop: it outlives the lab."""
        own = [s for s in (*self._retired, self.source) if s is not None and s.trains_here and not s.finished]
        for src in own:
            src.stop(reason)
        deadline = time.monotonic() + timeout
        for src in own:
            src.close(max(0.1, deadline - time.monotonic()), reason)
            src.poll()  # the summary is noted (nothing more to show): shutdown_run skips it
        self._close_warm()

    def _close_warm(self) -> None:
        """The warm training process goes too (after the runs: one in it has ended by now)."""
        if self.warm is not None:
            self.warm.close()

    def crash_reason(self) -> str | None:
        """What ended the lab, if it crashed (an exception Textual caught: it exits with code 1)."""
        exc = getattr(self, "_exception", None)  # Textual keeps the first one
        if exc is None and self.return_code != 1:
            return None
        what = f"{type(exc).__name__}: {exc}" if exc is not None else "see the traceback"
        return f"the lab crashed ({what})"

    def shutdown_run(self, timeout: float = 5.0, reason: str | None = None) -> None:
        """Stop a live run or sweep of this lab so that its directory is closed with its summary
        (cancelled, with `reason`; by default the lab's crash, if it crashed, else QUIT_STOP), and
        wait for it."""
        reason = reason or self.crash_reason() or QUIT_STOP
        for old in self._retired:
            old.close(timeout, reason)
        self._retired = []
        src = self.source
        if src is not None and not src.finished:
            src.close(timeout, reason)  # stop, wait for the summary, terminate or kill as a last resort
            if src.trains_here:
                for msg in src.poll():
                    self.state.apply(msg, src.kind)
        self._close_warm()


def run_lab(preset: str, overrides: list[str], autostart: bool, record: str | Path | None = None,
            prewarm: bool = True, **kw) -> int:
    """The lab in this terminal (or a browser tab: tui/web.py). SIGHUP (the terminal closed),
    SIGTERM and a closed tab end it safely whatever the moment (tui/terminal.py), closing this
    lab's live run or sweep with the reason, and its warm training process. `record`: an asciicast
    v2 file of the session (tui/recording.py). `prewarm`: keep a training process warm (the preset
    lab; replay and attach never do)."""
    from .recording import CastWriter, terminal_size
    from .terminal import run_guarded
    from .web import protect_stdout, served

    if served():  # a browser tab's lab (gengap-tui serve): fd 1 is the protocol's alone, before any spawn
        protect_stdout()
    app = GengapApp(preset, overrides, autostart, prewarm=prewarm, **kw)
    app.cast = CastWriter(record, *terminal_size()) if record is not None else None
    try:
        return run_guarded(app, app.close_for_signal, record=app.cast)
    finally:
        app.shutdown_run()
        if app.cast is not None:
            app.cast.close()
