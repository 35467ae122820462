"""The command palette over a still of the lab (tui/commands.LabPalette): drawn as Textual draws
its own palette, the lab under it rendered once, not on every update behind it, and a real resize
still reaching the lab."""

import pytest
from textual.command import CommandPalette
from textual.renderables.background_screen import BackgroundScreen

from conftest import ROOT, wait_for
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.commands import LabPalette

SMALL = ["device=cpu", "data.n_train=300", "data.n_val=300", "model.width=32"]
REPLAY = ROOT / "tests" / "fixtures" / "runs" / "label-noise-es"


async def _open(pilot, palette: type[CommandPalette]) -> None:
    app = pilot.app
    app.push_screen(palette(id="--command-palette"))
    assert await wait_for(pilot, lambda: isinstance(app.screen, palette), 10)
    await pilot.pause(0.5)  # (the palette fills its list in the background)
    assert "for&#160;commands" in app.export_screenshot()  # its prompt: "Search for commands…"


async def _close(pilot) -> None:
    pilot.app.screen.dismiss()
    assert await wait_for(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette), 10)
    await pilot.pause(0.2)  # (until the closed one is removed: a palette has a fixed id)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_palette_looks_as_textuals_own_over_the_lab(tmp_path):
    app = GengapApp(replay=REPLAY, speed=0.0, runs_dir=tmp_path)  # curves on screen under the palette
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        shots = []
        for palette in (CommandPalette, LabPalette):
            await _open(pilot, palette)
            shots.append(app.export_screenshot())
            await _close(pilot)
        assert shots[0] == shots[1]
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, LabPalette), 10)  # ctrl+p opens ours


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_under_the_palette_the_lab_is_rendered_once_and_shown_as_it_is_after(tmp_path, monkeypatch):
    renders = []
    real = BackgroundScreen.__rich_console__
    monkeypatch.setattr(BackgroundScreen, "__rich_console__",
                        lambda self, console, options: (renders.append(1), (yield from real(self, console, options))))
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, LabPalette), 10)
        await pilot.pause(0.3)
        drawn = []
        monkeypatch.setattr(app.query_one("#plot"), "draw", lambda fill: drawn.append(fill))
        for i in range(5):  # a run's updates behind the palette: its status line, its curves
            app.say(f"update-{i}-behind-the-palette")
            app._draw(force=True)
            await pilot.pause(0.05)
        assert len(renders) == 1, f"the lab under the palette was rendered {len(renders)} times"
        assert not drawn  # the curves are not built for a still nobody sees
        assert "update-4-behind-the-palette" not in app.export_screenshot()
        await _close(pilot)
        app._draw(force=True)
        await pilot.pause()
        assert drawn and "update-4-behind-the-palette" in app.export_screenshot()


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_a_resize_under_the_palette_reaches_the_lab_and_opening_it_does_not_lay_the_lab_out(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        lab = app.screen
        resized = []
        real = lab._screen_resized
        lab._screen_resized = lambda size: (resized.append(size), real(size))[1]
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, LabPalette), 10)
        await pilot.pause(0.3)
        assert not resized  # the palette's own Resize, at the lab's size, is not passed on
        palette = app.screen
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        assert resized and set(resized) == {(100, 30)} and lab.size == (100, 30)  # a real one is
        assert palette._still[0] == (100, 30)  # and the still is made again at the new size
        await _close(pilot)
        assert not app.query_one("#panels").display  # fit to the new width (under NARROW)


async def test_the_palettes_first_frame_has_its_box(tmp_path, monkeypatch):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    shown = []
    real = type(app)._display
    monkeypatch.setattr(type(app), "_display", lambda self, screen, renderable: (
        shown.append(screen.has_class("-ready")) if isinstance(screen, LabPalette) else None,
        real(self, screen, renderable))[1])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, LabPalette) and bool(shown), 10)
        await pilot.pause(0.3)
        assert all(shown), "a frame of the dimmed lab without the palette's box (Textual's '-ready')"
