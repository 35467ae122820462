"""SVG screenshots of the lab, made by the app itself on a recorded run or a sweep directory, so
that `screenshots/` can always be regenerated (`gengap-tui screenshot`, screenshots/regenerate.sh)."""

from __future__ import annotations

import time
from pathlib import Path

from .app import GengapApp
from .widgets import Curves


async def settle_curves(app: GengapApp, pilot) -> None:
    """Redraw the curves now and wait until the build thread has delivered them."""
    curves = app.query_one("#plot", Curves)
    await app.workers.wait_for_complete()
    before = curves.builds
    app._draw(force=True)
    deadline = time.monotonic() + 10
    while curves.builds == before and time.monotonic() < deadline:
        await pilot.pause(0.02)
    await pilot.pause(0.05)


def _shoot(app: GengapApp, out: str | Path, size: tuple[int, int], ready, wait: float,
           panels: bool | None, view: str | None = None, log_loss: bool = False, then=None) -> Path:
    """Run `app` headless until `ready()` (or `wait` s), then write the screen to `out`."""
    out = Path(out)

    async def pilot_fn(pilot) -> None:
        await app.panels_mounted()  # (they come right after the first frame)
        deadline = time.monotonic() + wait
        while not ready() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        if panels is not None:
            app.panels_open = panels
            app._fit_panels()
        if view is not None:
            app.view, app.log_loss = view, log_loss
        await pilot.pause(0.2)
        await settle_curves(app, pilot)
        if then is not None:
            try:
                await then(pilot)
            except ValueError as exc:
                failed.append(exc)
                app.exit()
                return
        app.save_screenshot(filename=out.name, path=str(out.parent or "."))
        app.exit()

    failed: list[ValueError] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    app.run(headless=True, size=size, auto_pilot=pilot_fn)
    if failed:
        raise failed[0]
    return out


def screenshot(out: str | Path, size: tuple[int, int], replay: str | Path, view: str = "error",
               log_loss: bool = False, compare: list[str] | None = None, runs_dir: str | Path | None = None,
               panels: bool | None = None) -> Path:
    """Render the lab on a recorded run (all of it at once) and write an SVG of the screen."""
    app = GengapApp(replay=replay, speed=0.0, compare=compare, runs_dir=runs_dir)
    return _shoot(app, out, size, lambda: app.state.run.summary is not None, 30.0, panels, view, log_loss)


def screenshot_sweep(out: str | Path, size: tuple[int, int], sweep_dir: str | Path, panels: bool | None = None,
                     wait: float = 2.0, view: str = "sweep", point: str | None = None, open_point: bool = False) -> Path:
    """Render one of the lab's sweep views (`plots.SWEEP_VIEWS`) on a sweep directory and write an
    SVG of the screen. A sweep still being written is shown as far as it has got (after up to
    `wait` s for its summary). `point` (`V` or a grid's `V,V2`): the cursor on that point and the
    panels scrolled to the sweep panel; with `open_point`, the point's curves instead."""
    app = GengapApp(sweep=sweep_dir)
    then = None if point is None else (lambda pilot: _at_point(app, pilot, point, open_point))
    return _shoot(app, out, size, lambda: app.state.sweep is not None and app.state.sweep.summary is not None,
                  wait, panels, view, then=then)


async def _at_point(app: GengapApp, pilot, point: str, open_point: bool) -> None:
    from ..protocol import fmt_value
    from .point_screen import PointScreen
    from .series import sweep_key

    sw = app.state.sweep
    v, _, v2 = point.partition(",")
    order, lines = sw.series.order(), sw.series.lines
    keys = [sweep_key(v.strip()), sweep_key(v2.strip()) if v2 else None]
    if keys[0] not in order or keys[1] not in lines:
        raise ValueError(f"--point = {point!r}: not a point of the sweep (values: "
                         f"{', '.join(map(fmt_value, order))}" + (f"; lines: {', '.join(map(fmt_value, lines))})" if sw.series.grid else ")"))
    sw.cursor, sw.cursor_line = order.index(keys[0]), lines.index(keys[1])
    app.show_state()
    app.form.scroll_to_widget(app.form.sweep_panel, animate=False, top=True)
    if open_point:
        app.on_sweep_cursor_open(None)
        deadline = time.monotonic() + 10
        while not (isinstance(app.screen, PointScreen) and app.screen.state.run.summary is not None) \
                and time.monotonic() < deadline:
            await pilot.pause(0.05)
        curves = app.screen.query_one(Curves)
        before = curves.builds
        app.screen.draw(force=True)
        while curves.builds == before and time.monotonic() < deadline:
            await pilot.pause(0.02)
    await pilot.pause(0.1)
