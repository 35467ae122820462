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

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer

from .. import presets, runs, startup
from ..compare import MAX_COMPARE
from ..config import Config, apply_overrides, build, validate
from ..protocol import run_config
from ..sources import LiveSweepSource, Source, open_source
from .commands import LabCommands, LabPalette
from .form_actions import FormActions
from .plots import EXAMPLES_VIEW, SWEEP_VIEW, SWEEP_VIEWS, VIEWS, examples_plot, run_plot, sweep_plot
from .preset_actions import PresetActions
from .runs_actions import RunsActions
from .series import RunSeries
from .state import LabState, SweepState, sweep_config
from .sweep_actions import SweepActions
from .system import SYSTEM_VIEW, system_plot
from .texts import patience_text, run_head, run_note, run_outcome, short_path, sweep_head, sweep_outcome
from .train_actions import QUIT_STOP, TrainActions
from .view_actions import ViewActions
from .widgets import Curves, OutcomeLine, PatienceMeter, SettingsForm, StatusBar
from .widgets.lines import SystemLine
from .widgets.sweep_cursor import SweepCursor

NARROW = 110  # below this many columns the panels start collapsed (f2 opens them)
FOOTER_FULL = 100  # below this many columns the footer is packed (compact, no palette hint)
WARM_READY = "ready: the training process is warm (ctrl+r trains at once)"
FAST_POLL_S = 0.02  # how often a new run is polled until its first epoch (then every 0.1 s)


class GengapApp(FormActions, TrainActions, SweepActions, ViewActions, PresetActions, RunsActions, App):
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
                yield SweepCursor("", id="cursor")
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
        self._cursor, self._system = self.query_one(SweepCursor), self.query_one(SystemLine)
        self._footer = self.query_one(Footer)  # (cached: over a sweep point's curves the queries find its screen)
        self._cursor.display = self.view in SWEEP_VIEWS
        self.call_after_refresh(self._populate_panels)
        self.set_interval(0.1, self._poll)
        self._load_compared()
        self._fit_panels()
        src = self.source
        if src is not None:
            self._lines[1].display = self.view not in SWEEP_VIEWS
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
            startup.release(startup.LAB_THRESHOLDS)  # the collector, held while the lab started
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
        if self.focused is None and self.view in SWEEP_VIEWS:  # a sweep directory: the cursor's keys
            self._cursor.focus()
        elif self.focused is None and self.form.display:
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
        self.form.display = show
        # below 100 columns the footer's keys fit only packed, without the palette's hint (^p
        # still opens it): at 80 columns the footer ended in `f3 Compar`, ^o / ^s / ^q lost
        footer = getattr(self, "_footer", None) or self.query_one(Footer)
        footer.compact, footer.show_command_palette = width < FOOTER_FULL, width >= FOOTER_FULL

    def action_toggle_panels(self) -> None:
        self.panels_open = not self.form.display
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
            self.show_cursor()
        else:
            status.show(run_head(st.run), run_note(st.run, note))
            outcome.set_text(run_outcome(st.run.summary))
        meter.set_text(patience_text(st.run))
        self._show_system()

    def _draw(self, force: bool = False) -> None:
        if isinstance(self.screen, LabPalette):  # under the palette the lab is a still: drawn after it
            return
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
        sw = self.state.sweep
        version = ((self.view, sw.series.version, sw.summary is not None, sw.cursor, sw.cursor_line, width)
                   if sweep_view else (self.state.run.series.version, width))
        if self.view == EXAMPLES_VIEW:  # examples.npz as last read, off the event loop (view_actions)
            stats, message, stamp = self.examples_shown()
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
        """Switch the plot; the sweep view has no patience counter, its own summary line and the
        cursor line (focused: its keys move the cursor)."""
        if (old in SWEEP_VIEWS) != (new in SWEEP_VIEWS):
            self._lines[1].display = new not in SWEEP_VIEWS
            self._cursor.display = new in SWEEP_VIEWS
            if new in SWEEP_VIEWS:
                self._cursor.focus()
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

    async def action_quit(self) -> None:
        self.shutdown_run(reason=QUIT_STOP)
        self.exit()


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
        startup.release()  # (a lab that ended before its fields were up)
        app.shutdown_run()
        if app.cast is not None:
            app.cast.close()
