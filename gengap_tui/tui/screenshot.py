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
           panels: bool | None, view: str | None = None, log_loss: bool = False) -> Path:
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
        app.save_screenshot(filename=out.name, path=str(out.parent or "."))
        app.exit()

    out.parent.mkdir(parents=True, exist_ok=True)
    app.run(headless=True, size=size, auto_pilot=pilot_fn)
    return out


def screenshot(out: str | Path, size: tuple[int, int], replay: str | Path, view: str = "error",
               log_loss: bool = False, compare: list[str] | None = None, runs_dir: str | Path | None = None,
               panels: bool | None = None) -> Path:
    """Render the lab on a recorded run (all of it at once) and write an SVG of the screen."""
    app = GengapApp(replay=replay, speed=0.0, compare=compare, runs_dir=runs_dir)
    return _shoot(app, out, size, lambda: app.state.run.summary is not None, 30.0, panels, view, log_loss)


def screenshot_sweep(out: str | Path, size: tuple[int, int], sweep_dir: str | Path, panels: bool | None = None,
                     wait: float = 2.0, view: str = "sweep") -> Path:
    """Render one of the lab's sweep views (`plots.SWEEP_VIEWS`) on a sweep directory and write an
    SVG of the screen. A sweep still being written is shown as far as it has got (after up to
    `wait` s for its summary)."""
    app = GengapApp(sweep=sweep_dir)
    return _shoot(app, out, size, lambda: app.state.sweep is not None and app.state.sweep.summary is not None,
                  wait, panels, view)
