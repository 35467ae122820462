"""The fault matrix: every way a run can end badly ends with a message, a closed run directory
and nothing lost; detach / attach / resume."""

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from conftest import ROOT, small_cfg, wait_until, wire
from gengap_tui import runs
from gengap_tui.cli import main
from gengap_tui.core.trainer import Trainer

SMALL = ["--set", "data.n_train=300", "--set", "data.n_val=300", "--set", "model.width=32", "--device", "cpu"]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gengap_tui.cli", *args], capture_output=True, text=True,
                          timeout=300, **kw)


def epochs_in(d):
    return len(runs.read_jsonl(d / "metrics.jsonl"))


def test_out_of_memory_fails_with_a_hint(monkeypatch):
    tr = Trainer(small_cfg("optim.epochs=5"))
    calls = {"n": 0}
    real = tr._train_epoch

    def flaky(gen):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real(gen)

    monkeypatch.setattr(tr, "_train_epoch", flaky)
    events = []
    s = tr.run(on_event=events.append)
    assert s["status"] == "failed" and s["epochs_run"] == 2
    assert "out of memory" in s["reason"] and "optim.batch_size" in s["reason"] and "model.width" in s["reason"]
    assert s["test_err"] is not None  # the kept weights are still evaluated
    assert [e["event"] for e in events][-1] == "failed"


def test_cancel_then_resume_continues_the_same_run(tmp_path):
    # pause the run through the control file as soon as its directory appears (300 epochs leave
    # ample time), then SIGTERM it while paused
    run_dir_holder = {}
    proc = subprocess.Popen([sys.executable, "-m", "gengap_tui.cli", "run", "default", *SMALL,
                             "--set", "optim.epochs=300", "--set", "early_stopping.patience=1000",
                             "--runs-dir", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: runs.list_runs(tmp_path))
    d = runs.list_runs(tmp_path)[0]
    runs.send_control(d, "pause")
    assert wait_until(lambda: any(e["event"] == "paused" for e in runs.read_jsonl(d / "events.jsonl")))
    n = epochs_in(d)
    time.sleep(0.5)
    assert epochs_in(d) == n  # paused: no epochs
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "cancelled" and "SIGTERM" in s["reason"] and s["epochs_run"] == n
    assert (d / "checkpoint.pt").is_file()
    state = torch.load(d / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

    p = cli("run", "--resume", str(d), "--quiet")
    assert p.returncode == 0, p.stderr
    rows = runs.read_jsonl(d / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == list(range(1, 301))
    s2 = json.loads((d / "summary.json").read_text())
    assert s2["status"] == "completed" and s2["epochs_run"] == 300
    ev = runs.read_jsonl(d / "events.jsonl")
    assert [e for e in ev if e["event"] == "resumed_run"][0]["epoch"] == n
    # early stopping's state continued (es_best_epoch never points past the rows, waits are consistent)
    for a, b in zip(rows, rows[1:]):
        assert b["es_wait"] in (0, a["es_wait"] + 1)
    # a finished run is not resumed
    p = cli("run", "--resume", str(d), "--quiet")
    assert p.returncode == 2 and "only a cancelled or failed run" in p.stderr


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["run", "default", "--resume", str(tmp_path)]) == 2


def test_detached_run_outlives_its_terminal_and_attach_steers_it(tmp_path):
    p = cli("run", "default", *SMALL, "--set", "optim.epochs=100000", "--set", "early_stopping.enabled=false",
            "--runs-dir", str(tmp_path), "--detach")
    assert p.returncode == 0, p.stderr
    [d] = runs.list_runs(tmp_path)
    pid = int((d / "pid").read_text())
    try:
        assert f"gengap-tui attach {d}" in p.stdout
        assert os.getsid(pid) != os.getsid(0)  # its own session: a lost terminal's SIGHUP does not reach it
        assert wait_until(lambda: epochs_in(d) >= 2)
        os.kill(pid, signal.SIGHUP)  # ignored by a detached run
        n = epochs_in(d)
        assert wait_until(lambda: epochs_in(d) > n + 2)

        from gengap_tui.sources import AttachSource

        src = AttachSource(d)
        msgs = wire(src.poll())
        assert any(m["type"] == "epoch" for m in msgs) and not src.finished
        src.tweak(lr=0.0005)
        assert wait_until(lambda: any(e["event"] == "tweaked" for e in runs.read_jsonl(d / "events.jsonl")))
        with pytest.raises(ValueError):
            src.tweak(lr=-1)
        src.stop()
        assert wait_until(lambda: (d / "summary.json").is_file())
        msgs = []
        assert wait_until(lambda: msgs.extend(wire(src.poll())) or src.finished)
        assert src.summary["status"] == "cancelled"
        assert wait_until(lambda: not _alive(pid))
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def test_lost_terminal_closes_the_labs_run_as_cancelled(tmp_path):
    """SIGHUP to the lab (its terminal went away) mid-run: summary.json says cancelled and every
    finished epoch is kept."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "36"}
    proc = subprocess.Popen([sys.executable, "-m", "gengap_tui.cli", "--autostart", "--runs-dir", str(tmp_path),
                             "--set", "device=cpu", "--set", "data.n_train=300", "--set", "optim.epochs=100000",
                             "--set", "early_stopping.enabled=false"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert wait_until(lambda: runs.list_runs(tmp_path) and epochs_in(runs.list_runs(tmp_path)[0]) >= 2, 120)
        d = runs.list_runs(tmp_path)[0]
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=60)
        assert wait_until(lambda: (d / "summary.json").is_file(), 30)
        s = json.loads((d / "summary.json").read_text())
        assert s["status"] == "cancelled"
        assert s["epochs_run"] == epochs_in(d) >= 2
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        os.close(master)


async def test_lab_reports_a_diverged_run_and_a_killed_worker(tmp_path):
    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", ["device=cpu", "data.n_train=300", "optim.optimizer=sgd", "optim.lr=1e6"],
                    runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        deadline = time.monotonic() + 60
        while app.state.run.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.state.run.summary["status"] == "diverged"
        assert "became nan at epoch" in str(app.query_one("#summary").render()) or "became inf" in app.state.run.summary["reason"]
        # the lab keeps working: a new run with sane settings starts
        app.query_one("#f-optim--lr").value = "0.01"
        app.query_one("#f-optim--epochs").value = "100000"
        await pilot.press("ctrl+r")
        deadline = time.monotonic() + 60
        while len(app.state.run.series.rows) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert len(app.state.run.series.rows) >= 2
        app.source.handle.kill()
        deadline = time.monotonic() + 30
        while app.state.run.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.state.run.summary["status"] == "failed" and "training process died" in app.state.run.summary["reason"]
        assert "training process died" in str(app.query_one("#summary").render())
        run_dir = app.source.path
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "failed" and s["epochs_run"] == epochs_in(run_dir)
