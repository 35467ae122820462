"""The curves: a plotext figure built in a thread (docs/ARCHITECTURE.md, "The lab")."""

from __future__ import annotations

import io
import threading
from functools import partial

from typing import NamedTuple

from rich.console import Console
from rich.text import Text
from textual.color import Color
from textual.strip import Strip
from textual.widget import Widget


class PlotTheme(NamedTuple):
    """The app's colours for the plot, read on the event loop and handed to the build thread."""

    name: str
    surface: tuple[int, int, int]
    foreground: tuple[int, int, int]


class Curves(Widget):
    """A plotext figure whose expensive part (plotext's canvas build, the ANSI parse and the
    conversion to screen lines, ~20 ms at 120x40) runs in a thread; `render_line` hands the
    compositor the last built lines, so a redraw never holds the event loop for long
    (bench/ui.py measures the timer lateness). plotext itself (~40 ms to import) is imported by
    the first build, in that thread, so it never delays the lab's first frame (issue 25); the
    figure and theme are textual-plotext's (its PlotextPlot widget, done the same way)."""

    DEFAULT_CSS = """
    Curves {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._strips: list[Strip] = []
        self._lock = threading.Lock()
        self._plot = None  # textual_plotext's Plot, made by the first build
        self._fill = None
        self.builds = 0  # finished builds (tests and screenshots wait on this)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.on_resize())

    def plot_theme(self) -> PlotTheme:
        """The app's current theme as plotext needs it (on the event loop)."""
        colours = self.app.theme_variables
        return PlotTheme(f"textual-auto-{self.app.theme}", Color.parse(colours.get("surface")).rgb,
                         Color.parse(colours.get("foreground")).rgb)

    def draw(self, fill) -> None:
        """Redraw with `fill(plt)`, called in a worker thread on a cleared figure."""
        self._fill = fill
        if not self.is_mounted or self.size.width < 4 or self.size.height < 4:
            return
        job = partial(self._build, fill, self.size.width, self.size.height, self.plot_theme())
        self.run_worker(job, thread=True, group="curves", exit_on_error=False)

    def build_text(self, fill, width: int, height: int, theme: PlotTheme) -> Text:
        """plotext's canvas for `fill`, parsed into rich Text (thread-safe, no UI access)."""
        from plotext._dict import themes
        from textual_plotext.plot import Plot, _rgbify_theme, _sequence

        with self._lock:  # one figure, one builder at a time
            if theme.name not in themes:  # as PlotextPlot registers the app's theme
                themes[theme.name] = _rgbify_theme(theme.surface, theme.surface, theme.foreground,
                                                   "default", _sequence)
            if self._plot is None:
                self._plot = Plot()
            plt = self._plot
            plt.clear_figure()
            fill(plt)
            plt.plotsize(width, height)
            plt._set_size(width, height)
            plt.theme(theme.name)
            return Text.from_ansi(plt.build())

    def build_strips(self, fill, width: int, height: int, theme: PlotTheme) -> list[Strip]:
        """The screen lines of the plot, ready for the compositor (thread-safe)."""
        text = self.build_text(fill, width, height, theme)
        console = Console(width=width, height=height, color_system="truecolor", force_terminal=True,
                          legacy_windows=False, file=io.StringIO())
        lines = console.render_lines(text, console.options.update_dimensions(width, height), pad=True)
        return [Strip(line, width) for line in lines[:height]]

    def _build(self, fill, width: int, height: int, theme: PlotTheme) -> None:
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
