"""The command palette (ctrl+p): the lab's actions in it (`LabCommands`), and the palette itself
over a still of the lab (`LabPalette`)."""

from __future__ import annotations

from functools import partial

from rich.segment import Segment
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.geometry import Size
from textual.renderables.background_screen import BackgroundScreen


class LabCommands(Provider):
    """The lab's actions in the command palette."""

    COMMANDS = [
        ("Start / restart training", "start", "train the settings in the panels (ctrl+r, f5)"),
        ("Pause / resume", "pause", "hold the run between epochs (f6)"),
        ("Stop the run", "stop", "end it as cancelled; every finished epoch is kept (f7)"),
        ("Toggle log scale of the loss", "toggle_log", "plot log10(loss) (f8)"),
        ("Next plot: error / loss / memorization / system", "next_view", "cycle the curves (f9)"),
        ("Show or hide the system line", "toggle_system",
         "GPU, CPU and memory of the run, under the status bar (ctrl+g)"),
        ("Sweep {param} over the sweep panel's values", "sweep",
         "one model per value in a child process; error against the value, live (f4; f7 stops it)"),
        ("Show or hide the settings panels", "toggle_panels", "the drawer (f2)"),
        ("Compare past runs", "compare", "overlay up to 4 recorded runs (f3)"),
        ("Load a preset", "load_preset", "fill the panels from a preset (ctrl+o)"),
        ("Save the settings as a preset", "save_preset", "into the user preset folder (ctrl+s)"),
    ]

    def commands(self):
        """COMMANDS with what the lab sweeps filled in: the preset's `[sweep] param` (a grid: both)."""
        sweep = getattr(getattr(self.app, "cfg", None), "sweep", None)
        param = getattr(sweep, "param", None) or "the preset's parameter"
        if getattr(sweep, "param2", None):
            param = f"{param} x {sweep.param2} (a grid)"
        for title, action, help_text in self.COMMANDS:
            yield title.replace("{param}", param), action, help_text

    async def discover(self) -> Hits:
        for title, action, help_text in self.commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)


class _Still:
    """Screen lines, rendered once."""

    def __init__(self, lines: list[list[Segment]]):
        self.lines = lines

    def __rich_console__(self, console, options):
        new_line = Segment.line()
        for line in self.lines:
            yield from line
            yield new_line


class LabPalette(CommandPalette):
    """Textual's command palette over a still of the lab, dimmed as Textual dims it, painted once
    its commands are in.

    Textual draws a translucent screen's background by rendering the whole screen under it again
    and tinting every segment, each time the translucent screen repaints: opening the palette did
    it three times, and while a run trained every status line or curves update behind the palette
    did it again (the lab's ~200 widgets; bench/lab_terminal.py's palette time). The still is
    rendered on the palette's first paint (and again on a resize): under a modal palette the lab
    takes no keys, and it is shown as it is now once the palette closes."""

    _still: tuple[Size, _Still] | None = None

    def render(self):
        under = super().render()
        if not isinstance(under, BackgroundScreen):
            return under
        size = self.size
        if self._still is None or self._still[0] != size:
            console = self.app.console
            options = console.options.update_dimensions(size.width, size.height)
            self._still = (size, _Still(console.render_lines(under, options, pad=False)))
        return self._still[1]

    def _compositor_refresh(self) -> None:
        """Textual's palette hides its box until its first list of commands is in (the class
        "-ready"), and painted the screen before that too: a frame of the dimmed lab alone, ~10 ms
        before the palette's. The palette's first frame is now the one with its box."""
        if self.has_class("-ready"):
            super()._compositor_refresh()

    def _on_resize(self, event) -> None:
        """Textual hands a screen's Resize on to every screen under it, and the palette gets one as
        it opens, at the size the lab already has: passing that on laid the whole lab out again
        (~10 ms, before the palette's first frame). Only a real change of size is passed on (by
        Screen's own handler, which runs when this one does not prevent it)."""
        if all(screen.size == event.size for screen in self.app._background_screens):
            event.prevent_default()  # (the lab sets no breakpoints: Screen's handler did no more)
            event.stop()
            self._screen_resized(event.size)
