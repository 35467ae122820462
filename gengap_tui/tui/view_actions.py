"""The lab's views: which plot the curves show (f9 cycles them; f8 the log-loss axis), over a sweep
point's curves too, and the system line under the status bar (ctrl+g). A part of `GengapApp` (it
uses the app's `view`, `log_loss` and `show_system` reactives, state and source)."""

from __future__ import annotations

from .plots import EXAMPLES_VIEW, SWEEP_VIEWS, VIEWS
from .point_screen import PointScreen
from .system import SYSTEM_VIEW, sweep_system_line, system_line


class ViewActions:
    def action_toggle_log(self) -> None:
        if isinstance(self.screen, PointScreen):  # a sweep point's curves: its own view
            return self.screen.toggle_log()
        self.log_loss = not self.log_loss
        self.view = "loss"

    def action_next_view(self) -> None:
        if isinstance(self.screen, PointScreen):
            return self.screen.next_view()
        # a sweep this lab is training has only its own views: the error / loss views would show
        # the run before it, and its status bar, under "sweeping"
        src = self.source
        sweeping = src is not None and src.kind == "sweep" and src.trains_here and not src.finished
        run_views = VIEWS + (EXAMPLES_VIEW, SYSTEM_VIEW)
        views = SWEEP_VIEWS if sweeping else run_views + SWEEP_VIEWS if self.state.sweep is not None else run_views
        self.view = views[(views.index(self.view) + 1) % len(views)] if self.view in views else views[0]

    def action_toggle_system(self) -> None:
        self.show_system = not self.show_system

    def _show_system(self) -> None:
        """The system line (GPU, CPU, memory of the run on screen), where it measured any and
        ctrl+g has not hidden it."""
        line, sweep = self._system, self.view in SWEEP_VIEWS and self.state.sweep is not None
        text = sweep_system_line(self.state.sweep) if sweep else system_line(self.state.run)
        text = text if self.show_system else ""
        line.set_text(text)
        line.display = bool(text)

    def watch_show_system(self) -> None:
        self._show_system()

