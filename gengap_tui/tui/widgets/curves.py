"""The curves: a PlotextPlot whose canvas is built in a thread (docs/ARCHITECTURE.md, "The lab")."""

from __future__ import annotations

import io
import threading
from functools import partial

from rich.console import Console
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot


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
