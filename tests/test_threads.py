"""The same preset, seed and device give the same numbers wherever they train: headless
(`gengap-tui run`) and in the lab's training process (`worker.RunHandle`) both take torch's CPU
threads from the config (`run.threads`), and config.json records the count."""

import os
import sys
import time

import pytest
import torch

from gengap_tui.protocol import MEASURED_KEYS
from gengap_tui import runs
from gengap_tui.cli import main
from gengap_tui.config import ConfigError, build, cpu_threads
from gengap_tui.worker import RunHandle

TIMING = MEASURED_KEYS  # the machine's measurements: time, CPU, memory (protocol.py)
SETS = ["data.n_train=300", "data.n_val=300", "model.width=32", "optim.epochs=5", "noise.label_noise=0.2",
        "optim.lr=0.01"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A session in this process sets torch's threads: give the other tests theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def headless(tmp_path, sets):
    code = main(["run", "default", *[a for s in sets for a in ("--set", s)], "--device", "cpu",
                 "--runs-dir", str(tmp_path / "headless"), "--quiet"])
    assert code == 0
    [d] = runs.list_runs(tmp_path / "headless")
    return runs.load_run(d)


def in_the_labs_process(tmp_path, sets):
    h = RunHandle.start(build({"name": "default"}, sets + ["device=cpu"]).dump(), tmp_path / "lab")
    try:
        deadline = time.monotonic() + 120
        while h.summary is None and time.monotonic() < deadline:
            h.poll()
            time.sleep(0.05)
        assert h.summary is not None and h.join(10)
        return runs.load_run(h.run_dir)
    finally:
        if h.alive:
            h.kill()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the lab's process start")
def test_headless_and_the_labs_process_give_the_same_numbers(tmp_path):
    # what the lab's process gives torch (cores - 1) differs from torch's default here as a rule
    torch.set_num_threads(max(2, torch.get_num_threads()))
    a, b = headless(tmp_path, SETS), in_the_labs_process(tmp_path, SETS)
    assert a.summary["status"] == b.summary["status"] == "completed"
    assert strip(a.metrics) == strip(b.metrics)
    assert a.summary["test_err"] == b.summary["test_err"] and a.summary["test_loss"] == b.summary["test_loss"]
    assert a.config["torch_threads"] == b.config["torch_threads"] == cpu_threads(0)
    assert a.config["run"]["threads"] == 0


def test_run_threads_is_validated_and_recorded(tmp_path):
    assert cpu_threads(3) == 3
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 2
    assert cpu_threads(0) == max(1, cores - 1)
    for bad in ("run.threads=-1", "run.threads=1025", "run.threads=1.5"):
        with pytest.raises(ConfigError, match="run.threads"):
            build({}, [bad])
    rec = headless(tmp_path, ["run.threads=1", "optim.epochs=1", "data.n_train=100", "data.n_val=100",
                              "model.width=8"])
    assert rec.config["torch_threads"] == 1 and rec.config["run"]["threads"] == 1
    assert "1 thread)" in rec.summary["device"]  # (it said "1 threads")
