"""The sweep view's cursor line: under the plot, the point under the cursor and its numbers
(`texts.point_text`). Focused in the sweep views: ←/→ move over the swept values, ↑/↓ between a
grid's lines, enter opens the point's curves (docs/ARCHITECTURE.md, "The lab"). It only posts
what was asked; the app moves the cursor in its state and opens the point (`sweep_actions.py`)."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message

from .lines import TextLine


class SweepCursor(TextLine):
    can_focus = True
    BINDINGS = [Binding("left", "move(-1, 0)", "Value", show=False), Binding("right", "move(1, 0)", "Value", show=False),
                Binding("up", "move(0, -1)", "Line", show=False), Binding("down", "move(0, 1)", "Line", show=False),
                Binding("home", "move_to(0)", show=False), Binding("end", "move_to(-1)", show=False),
                Binding("enter", "open", "Curves")]

    class Move(Message):
        """Move the cursor by `dx` values and `dy` lines, or to value index `to` (-1: the last)."""

        def __init__(self, dx: int, dy: int, to: int | None = None) -> None:
            super().__init__()
            self.dx, self.dy, self.to = dx, dy, to

    class Open(Message):
        """Open the point under the cursor (its run directory) in the run view."""

    def action_move(self, dx: int, dy: int) -> None:
        self.post_message(self.Move(dx, dy))

    def action_move_to(self, to: int) -> None:
        self.post_message(self.Move(0, 0, to))

    def action_open(self) -> None:
        self.post_message(self.Open())
