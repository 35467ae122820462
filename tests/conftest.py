import os
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory):
    """Keep the dataset cache and user presets of the test session out of the user's home;
    the cache is shared by every test (and CLI subprocess) of the session."""
    os.environ["GENGAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["GENGAP_PRESETS_DIR"] = str(tmp_path_factory.mktemp("user-presets"))
    os.environ.pop("GENGAP_RUNS_DIR", None)
    yield


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
