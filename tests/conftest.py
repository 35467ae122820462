import os
import sys
import time
from pathlib import Path

import pytest

try:  # (bench/gpu.sh runs the GPU tests where hypothesis may not be installed)
    from hypothesis import settings
except ImportError:  # pragma: no cover
    settings = None

# Hypothesis profiles: "dev" (the default: random examples, a new draw each run), "ci" (selected
# when the CI environment variable is set: derandomized, so a CI run is repeatable) and "long"
# (ten times the examples, on demand: HYPOTHESIS_PROFILE=long). HYPOTHESIS_PROFILE picks any.
if settings is not None:
    settings.register_profile("dev", settings(max_examples=100))
    settings.register_profile("ci", settings(max_examples=100, derandomize=True, print_blob=True))
    settings.register_profile("long", settings(max_examples=1000))
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory):
    """Keep the dataset cache and user presets of the test session out of the user's home;
    the cache is shared by every test (and CLI subprocess) of the session."""
    os.environ["GENGAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["GENGAP_PRESETS_DIR"] = str(tmp_path_factory.mktemp("user-presets"))
    os.environ.pop("GENGAP_RUNS_DIR", None)
    yield


@pytest.fixture(autouse=True)
def _own_user_presets(request, tmp_path_factory, monkeypatch):
    """Each test gets an empty user preset folder: a preset one test saves (e.g. `mine`) must not
    show in another's list, whatever order the tests run in (mutmut runs them in its own). A test
    that asks for a module's own folder (test_fuzz's `user_presets`) keeps it."""
    if "user_presets" in request.fixturenames:
        return
    monkeypatch.setenv("GENGAP_PRESETS_DIR", str(tmp_path_factory.mktemp("user-presets")))


# the MNIST-1D sizes (n_train, n_val) that the tests' training processes load
MNIST1D_SIZES = [(300, 300), (300, 1000), (500, 500), (300, 200), (4000, 1000)]


@pytest.fixture(scope="session")
def data_cache(_isolated_dirs):
    """Generate the MNIST-1D sets the tests train on once, into the session's cache, before the
    first test that uses this: a test's bounded waits then never include generating data."""
    from gengap_tui.core.data import mnist1d_splits

    for n_train, n_val in MNIST1D_SIZES:
        mnist1d_splits(n_train, n_val)


def small_cfg(*overrides: str, **kw):
    """A seconds-long seeded MNIST-1D config (500 train / 500 val examples)."""
    from gengap_tui.config import build

    base = ["data.n_train=500", "data.n_val=500", "model.width=64", "optim.epochs=30",
            "optim.lr=0.01", "device=cpu"]
    return build({"name": "test"}, base + list(overrides))


@pytest.fixture
def cfg_factory():
    return small_cfg


PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """Stands in for plotext: records what a Curves fill function plots."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kw):
            self.calls.append((name, args, kw))

        return record


def text_of(app, selector: str) -> str:
    """What the widget `selector` of the lab shows now, as text."""
    return str(app.query_one(selector).render())


def plotted(app):
    """What the lab's curves widget would plot now, as (name, args, kwargs) calls."""
    from gengap_tui.tui.widgets import Curves

    rec = Recorder()
    app.query_one("#plot", Curves)._fill(rec)
    return rec.calls


async def wait_for(pilot, cond, timeout=60.0):
    """Let a Pilot-driven app run until `cond()` holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await pilot.pause(0.1)
    return False


def wire(messages):
    """`protocol` messages as the dicts they are on the wire (what the tests compare)."""
    return [m.to_wire() for m in messages]


def wait_until(cond, timeout=60.0):
    """Poll `cond()` (outside an app) until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


async def run_from_palette(pilot, query: str, title: str, timeout: float = 10.0) -> None:
    """Open the command palette, type `query`, wait until the highlighted command is the one whose
    title contains `title` (the palette searches in the background), and run it."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    assert await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), timeout), "no palette"
    await pilot.press(*query)

    def highlighted() -> str:
        if not isinstance(app.screen, CommandPalette):
            return ""
        found = app.screen.query(CommandList)
        lst = found.first() if found else None
        if lst is None or lst.highlighted is None or not lst.option_count:
            return ""
        return str(lst.get_option_at_index(lst.highlighted).hit.text or "")

    assert await wait_for(pilot, lambda: title in highlighted(), timeout), f"{title!r} not offered for {query!r}"
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette), timeout)


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie child of ours counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def stop_reason_ok(summary: dict, cause: str) -> bool:
    """A stopped run's or sweep's reason, exactly: `cause during epoch N`, N the epoch the stop came
    in (for a run, its epochs_run, or the one after when the stop came mid-epoch)."""
    import re

    reason = summary.get("reason") or ""
    n = summary.get("epochs_run")
    if isinstance(n, int):
        return reason in (f"{cause} during epoch {n}", f"{cause} during epoch {n + 1}")
    return re.fullmatch(re.escape(cause) + r" during epoch \d+", reason) is not None
