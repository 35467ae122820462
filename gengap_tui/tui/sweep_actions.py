"""From a sweep point to its curves: the sweep view's cursor (`widgets.SweepCursor`) moves over the
swept values and a grid's lines, the line under the plot shows the point's numbers, and enter
opens the point's run directory in the run view (`PointScreen`, escape comes back). Live, in a
replay of a sweep directory and for a Ray sweep alike: all of them write the same directory. A
part of `GengapApp` (it uses the app's state and status line)."""

from __future__ import annotations

from ..protocol import fmt_value
from .point_screen import PointScreen
from .texts import point_text, short_path
from .widgets.sweep_cursor import SweepCursor


# what the lab's keys cannot do over a sweep point's curves (they act on the panels and the
# sweep view underneath: escape first); pause, stop, the views and quit still work
NOT_OVER_A_POINT = {"start", "sweep", "toggle_panels", "compare", "load_preset", "save_preset"}


class SweepActions:
    def check_action(self, action: str, parameters: tuple) -> bool | None:  # noqa: ARG002
        return not (action in NOT_OVER_A_POINT and isinstance(self.screen, PointScreen))

    # named by Textual's convention: it registers @on handlers of its own classes only
    def on_sweep_cursor_move(self, event: SweepCursor.Move) -> None:
        sw = self.state.sweep
        if sw is None or sw.move(event.dx, event.dy, event.to) is None:
            self.say("no swept value has numbers yet")
            return
        self.show_state()
        self._draw(force=True)

    def on_sweep_cursor_open(self, event: SweepCursor.Open) -> None:  # noqa: ARG002
        """The point under the cursor (the threshold's, before the cursor moved) in the run view."""
        sw = self.state.sweep
        if sw is None or (sw.point is None and sw.move() is None):
            self.say("no swept value to open yet")
            return
        self.show_state()
        src = self.source
        path, (v, v2) = sw.point_dir(src.path if src is not None and src.kind == "sweep" else None), sw.point
        where = f"{sw.param.split('.')[-1]} {fmt_value(v)}" + (
            f", {(sw.param2 or '').split('.')[-1]} {fmt_value(v2)}" if v2 is not None else "")
        if path is None or not (path / "config.json").is_file():
            self.say(f"[b yellow]{where} has no run directory yet[/]"
                     + (f" ({short_path(path)})" if path is not None else " (the sweep has not made its directory)"))
            return
        self.push_screen(PointScreen(path, where, self.cfg))

    def show_cursor(self) -> None:
        self._cursor.set_text(point_text(self.state.sweep))
