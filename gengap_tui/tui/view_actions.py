"""The lab's views: which plot the curves show (f9 cycles them; f8 the log-loss axis), over a sweep
point's curves too, and the system line under the status bar (ctrl+g). A part of `GengapApp` (it
uses the app's `view`, `log_loss` and `show_system` reactives, state and source).

The examples view reads examples.npz off the event loop (`examples_shown`): a thread worker of
the group `EXAMPLES_WORKERS` loads and counts it (CIFAR-10 with 8 seeds: a compressed file of
50k x 8 examples), the view shows the last result read; `app.workers.wait_for_complete()` waits
for it (screenshot.settle_curves, the tests)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from .commands import LabPalette
from .plots import EXAMPLES_VIEW, SWEEP_VIEWS, VIEWS
from .point_screen import PointScreen
from .system import SYSTEM_VIEW, sweep_system_line, system_line


EXAMPLES_WORKERS = "examples"
READING = "examples: reading examples.npz …"


class ViewActions:
    _examples_read: tuple[tuple[Path, Any], Any, str] | None = None  # (key, stats, message) last read
    _examples_asked: tuple[Path, Any] | None = None  # the key last handed to a reader
    _examples_busy = False  # a reader is running (one at a time)

    def action_command_palette(self) -> None:
        """Textual's palette (ctrl+p), over a still of the lab (`commands.LabPalette`)."""
        if self.use_command_palette and not LabPalette.is_open(self):
            self.push_screen(LabPalette(id="--command-palette"))

    def examples_shown(self) -> tuple[Any, str, Any]:
        """(stats, message, version) for the examples view: what examples.npz held when it was last
        read (a file of another run: "reading" until its first read). On the event loop only a
        stat; when the file changed and no reader runs, a thread worker reads it and redraws."""
        from .. import forgetting  # numpy: imported when the view is first shown, not at start

        key, message = forgetting.view_key(self.state.run.run_dir)
        if key is None:
            return None, message, message
        if key != self._examples_asked and not self._examples_busy:
            self._examples_asked, self._examples_busy = key, True
            self.run_worker(partial(self._read_examples, key), thread=True, group=EXAMPLES_WORKERS,
                            exit_on_error=False)
        read = self._examples_read
        if read is not None and read[0][0] == key[0]:  # this file, as last read (maybe older)
            return read[1], read[2], read[0]
        return None, READING, READING

    def _read_examples(self, key: tuple[Path, Any]) -> None:
        """In the worker thread: read and count, then hand the result to the event loop."""
        from .. import forgetting

        try:
            stats, message = forgetting.read_for_view(key[0])
        except Exception as exc:  # noqa: BLE001 — a reader that dies must not leave the view "busy"
            stats, message = None, f"examples: examples.npz could not be read ({exc})"
        try:
            self.call_from_thread(self._examples_done, key, stats, message)
        except RuntimeError:  # the app is closing
            pass

    def _examples_done(self, key: tuple[Path, Any], stats: Any, message: str) -> None:
        self._examples_read, self._examples_busy = (key, stats, message), False
        if self.view == EXAMPLES_VIEW:
            self._draw(force=True)  # shows it, and reads the file again if it changed meanwhile

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

