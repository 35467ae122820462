"""A sweep point's curves: the run view of one value's run directory in a sweep directory, over
the sweep view (enter on the cursor opens it, escape goes back). The directory is read by the
replay source at speed 0 (`sources.ReplaySource`: everything recorded at once, then followed as
a live sweep still writes it), so train / val / gap, the events and the patience counter are as
they were, epoch by epoch. The lab's own source (the sweep) keeps being polled underneath
(docs/ARCHITECTURE.md, "The lab")."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from ..config import ConfigError, validate
from ..protocol import run_config
from ..sources import ReplaySource
from .plots import VIEWS, run_plot
from .state import LabState
from .texts import patience_text, run_head, run_note, run_outcome
from .widgets import Curves, OutcomeLine, PatienceMeter, StatusBar


class PointScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to the sweep", priority=True)]

    def __init__(self, run_dir: str | Path, where: str, fallback_cfg) -> None:
        super().__init__()
        self.source = ReplaySource(run_dir, speed=0)
        try:
            cfg = validate(run_config(self.source.config), str(run_dir))
        except ConfigError:
            cfg = fallback_cfg  # an older run's config: the curves need only its rows
        self.state = LabState(cfg)
        self.where = where
        self.view, self.log_loss = "error", False
        self._drawn: tuple | None = None
        self._last = 0.0

    def compose(self) -> ComposeResult:
        yield StatusBar(id="pt-status", classes="status")
        yield Curves(id="pt-plot", classes="plot")
        yield PatienceMeter(id="pt-patience", classes="patience")
        yield OutcomeLine("", id="pt-summary", classes="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.1, self.poll)
        self.poll()
        self.draw(force=True)

    def poll(self) -> None:
        msgs = self.source.poll()
        for msg in msgs:
            self.state.apply(msg, "run")
        if msgs or self._drawn is None:
            run = self.state.run
            note = f"{self.where} of the sweep: escape goes back to it"
            self.query_one(StatusBar).show(run_head(run), run_note(run, note) if run.summary is None else
                                           f"{note} ({run.summary.get('status', 'finished')})")
            self.query_one(PatienceMeter).set_text(patience_text(run))
            self.query_one(OutcomeLine).set_text(run_outcome(run.summary))
        self.draw()

    def draw(self, force: bool = False) -> None:
        plot = self.query_one(Curves)
        version = (self.view, self.log_loss, self.state.run.series.version, plot.size.width)
        if not force and (version == self._drawn or time.monotonic() - self._last < 0.25):
            return
        self._drawn, self._last = version, time.monotonic()
        plot.draw(run_plot(self.state.run, self.view, self.log_loss, plot.size.width, [], "").fill)

    def next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.draw(force=True)

    def toggle_log(self) -> None:
        self.log_loss, self.view = not self.log_loss, "loss"
        self.draw(force=True)
