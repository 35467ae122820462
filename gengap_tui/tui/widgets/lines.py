"""Lines of text that repaint only when their text changes: the status bar, the patience meter,
the outcome line. They are set on every poll that brings a message; an unchanged text costs
nothing, and a fixed-height line repaints without a layout pass."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TextLine(Static):
    FIXED_HEIGHT = True  # the CSS gives it a fixed height: a new text needs no layout pass
    _shown: str | None = None

    def set_text(self, text: str) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=not self.FIXED_HEIGHT)


class StatusBar(Static):
    """Two lines that always fit: what is on screen (`head`: preset | device | epoch | ... | path)
    and the last thing that happened (`message`). A line too long for the terminal loses its
    path's folders first, then its end (…); it never wraps, so the message is always seen."""

    head: str = ""
    message: str = ""

    def show(self, head: str, message: str) -> None:
        if (head, message) != (self.head, self.message):
            self.head, self.message = head, message
            self.refresh()

    def render(self) -> Text:
        width = max(1, self.content_region.width or self.size.width)
        head = Text.from_markup(self.head)
        if head.cell_len > width and " | " in head.plain:  # the path: its last part is the run
            *rest, path = self.head.rsplit(" | ", 1)
            head = Text.from_markup(" | ".join(rest + [path.rstrip("/").rsplit("/", 1)[-1]]))
        lines = [head, Text.from_markup(self.message)]
        for line in lines:
            line.no_wrap = True
            line.truncate(width, overflow="ellipsis")
        return Text("\n").join(lines)


class SystemLine(TextLine):
    """GPU, CPU and memory of the run on screen (`tui/system.py`), under the status bar; hidden
    while there is nothing to show or ctrl+g hid it."""


class PatienceMeter(TextLine):
    """Early stopping's counter, best value and the stop (or would-stop) line."""


class OutcomeLine(TextLine):
    """The run's (or sweep's) summary; its height follows its text."""

    FIXED_HEIGHT = False
