"""The patience meter: early stopping's counter, best value and the stop (or would-stop) line."""

from __future__ import annotations

from textual.widgets import Static


class PatienceMeter(Static):
    """Shows `texts.patience_text` of the run on screen; repaints only when the text changes."""

    _shown = ""

    def set_text(self, text: str) -> None:
        if text != self._shown:  # fixed height: repaint only, no layout pass
            self._shown = text
            self.update(text, layout=False)
