"""The command's start (startup.py, __main__.py): the garbage collector held off while the command
starts and let go once it has started, with what start-up made frozen; and the lab's modules
leaving what its first frame does not need until it is used."""

import gc
import subprocess
import sys

import pytest

from gengap_tui import startup


@pytest.fixture
def collector():
    """Whatever a test does to this process's collector is undone."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    startup._held = False
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable() if enabled else gc.disable()


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1]


def test_release_without_hold_changes_nothing(collector):
    before = gc.get_threshold(), gc.get_freeze_count()
    startup.release(startup.LAB_THRESHOLDS)
    assert gc.isenabled() and (gc.get_threshold(), gc.get_freeze_count()) == before


def test_release_after_hold_freezes_what_start_up_made_and_collects_again(collector):
    startup.hold()
    assert not gc.isenabled() and startup.held()
    made = [[i] for i in range(1000)]  # (lists are tracked by the collector)
    startup.release(startup.LAB_THRESHOLDS)
    assert gc.isenabled() and not startup.held()
    assert gc.get_freeze_count() >= len(made) and gc.get_threshold() == startup.LAB_THRESHOLDS
    frozen = gc.get_freeze_count()
    startup.release()  # a second release (run_lab's, after the lab's own) does nothing
    assert gc.get_freeze_count() == frozen and gc.get_threshold() == startup.LAB_THRESHOLDS


def test_a_collector_stopped_by_someone_else_stays_stopped(collector):
    frozen = gc.get_freeze_count()
    gc.disable()
    startup.hold()
    startup.release()
    assert not gc.isenabled() and gc.get_freeze_count() == frozen


async def test_the_lab_collects_again_once_its_fields_are_up(collector, tmp_path):
    from gengap_tui.tui.app import GengapApp

    startup.hold()
    app = GengapApp("default", ["device=cpu"], runs_dir=tmp_path)
    assert not gc.isenabled()
    async with app.run_test(size=(120, 36)):  # (run_test hands over once the fields are mounted)
        assert gc.isenabled() and gc.get_threshold() == startup.LAB_THRESHOLDS and gc.get_freeze_count() > 0


def test_a_command_other_than_the_lab_runs_with_the_collector():
    code = ("import gc, gengap_tui.__main__ as m; rc = m.main(['presets']); "
            "print(rc, gc.isenabled(), gc.get_freeze_count() > 0)")
    assert _python(code) == "0 True True"


def test_the_installed_command_is_the_entry_that_holds_the_collector():
    from importlib.metadata import entry_points

    assert entry_points(group="console_scripts")["gengap-tui"].value == "gengap_tui.__main__:main"


def test_the_lab_leaves_its_dialogs_and_the_headless_commands_until_used():
    # ~20 ms of imports (the dialogs and the widgets only they use) and ~8 ms (headless.py) off the
    # lab's first frame
    code = ("import sys, gengap_tui.cli, gengap_tui.tui.app; "
            "print([m for m in ('gengap_tui.tui.dialogs', 'gengap_tui.headless') if m in sys.modules])")
    assert _python(code) == "[]"
