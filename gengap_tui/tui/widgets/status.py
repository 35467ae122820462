"""The status bar: what is on screen (head line) and the last thing that happened (message)."""

from __future__ import annotations

from textual.widgets import Static


class StatusBar(Static):
    _shown = ""

    def set_text(self, text: str) -> None:
        if text != self._shown:  # fixed height: no layout pass needed
            self._shown = text
            self.update(text, layout=False)
