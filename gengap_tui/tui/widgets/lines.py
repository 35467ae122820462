"""Lines of text that repaint only when their text changes: the status bar, the patience meter,
the outcome line. They are set on every poll that brings a message; an unchanged text costs
nothing, and a fixed-height line repaints without a layout pass."""

from __future__ import annotations

from textual.widgets import Static


class TextLine(Static):
    FIXED_HEIGHT = True  # the CSS gives it a fixed height: a new text needs no layout pass
    _shown: str | None = None

    def set_text(self, text: str) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=not self.FIXED_HEIGHT)


class StatusBar(TextLine):
    """What is on screen (head line) and the last thing that happened (message)."""


class PatienceMeter(TextLine):
    """Early stopping's counter, best value and the stop (or would-stop) line."""


class OutcomeLine(TextLine):
    """The run's (or sweep's) summary; its height follows its text."""

    FIXED_HEIGHT = False
