import os
import sys
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
