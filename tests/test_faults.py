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

from conftest import ROOT, alive, small_cfg, wait_for, wait_until, wire, stop_reason_ok
from gengap_tui import runs
from gengap_tui.cli import main
from gengap_tui.core.trainer import Trainer

pytestmark = pytest.mark.usefixtures("data_cache")

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


@pytest.mark.slow
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
    assert s["status"] == "cancelled" and stop_reason_ok(s, "stopped by SIGTERM") and s["epochs_run"] == n, s
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


@pytest.mark.slow
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
        assert wait_until(lambda: not alive(pid))
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
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


@pytest.mark.slow
async def test_lab_reports_a_diverged_run_and_a_killed_worker(tmp_path):
    from gengap_tui.tui.app import GengapApp

    # early stopping off: the second run lives until it is killed (with patience 10 it could
    # early-stop first)
    app = GengapApp("default", ["device=cpu", "data.n_train=300", "optim.optimizer=sgd", "optim.lr=1e6",
                                "early_stopping.enabled=false"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 60)
        assert app.state.run.summary["status"] == "diverged"
        assert "became nan at epoch" in str(app.query_one("#summary").render()) or "became inf" in app.state.run.summary["reason"]
        # the lab keeps working: a new run with sane settings starts
        app.query_one("#f-optim--lr").value = "0.01"
        app.query_one("#f-optim--epochs").value = "100000"
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 2, 60)
        assert app.state.run.summary is None  # still running when it is killed
        app.source.handle.kill()
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 30)
        assert app.state.run.summary["status"] == "failed" and "training process died" in app.state.run.summary["reason"]
        assert "training process died" in str(app.query_one("#summary").render())
        run_dir = app.source.path
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "failed" and s["epochs_run"] == epochs_in(run_dir)


# ---------------------------------------------------------------------------------------------
# fault paths of the command line, end to end (in this process where a fault is simulated)


def _headless(tmp_path, *sets):
    """`gengap-tui run default` in this process, small and quiet; returns (exit code, run dir)."""
    args = ["run", "default", *SMALL, "--runs-dir", str(tmp_path), "--quiet"]
    for item in sets:
        args += ["--set", item]
    code = main(args)
    found = runs.list_runs(tmp_path)
    return code, found[0] if found else None


@pytest.mark.parametrize("presses", [1, 2])
def test_a_second_ctrl_c_stops_mid_batch(tmp_path, monkeypatch, presses):
    """Ctrl+C asks the run to stop after the batch under way; a second Ctrl+C stops it at once, in
    the middle of that batch. Either way the run is closed as cancelled (exit 130, summary written,
    the unfinished epoch not counted). The presses are sent from inside the 2nd batch of epoch 3."""
    batches = -(-300 // 128)  # 300 training examples, batches of 128
    calls = {"n": 0, "finished_batch": False}
    real_step = Trainer._backward_step

    def step(self, loss, sgd_decoupled):
        calls["n"] += 1
        if calls["n"] == 2 * batches + 2:
            os.kill(os.getpid(), signal.SIGINT)
            # the handler has run once the trainer was asked to stop (two pending SIGINTs would be one)
            assert wait_until(lambda: self._stop_requested, 10)
            if presses == 2:
                os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt here, in the batch
                wait_until(lambda: False, 10)
            real_step(self, loss, sgd_decoupled)
            calls["finished_batch"] = True
            return
        real_step(self, loss, sgd_decoupled)

    monkeypatch.setattr(Trainer, "_backward_step", step)
    code, d = _headless(tmp_path, "optim.epochs=50", "early_stopping.enabled=false")
    assert code == 130
    assert calls["finished_batch"] == (presses == 1)  # the second press did not let the batch end
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "cancelled" and s["epochs_run"] == 2 == epochs_in(d)
    assert s["reason"] == "stopped by the user (Ctrl+C) during epoch 3"
    assert runs.read_jsonl(d / "events.jsonl")[-1]["event"] == "cancelled"
    assert (d / "checkpoint.pt").is_file() and (d / "model.pt").is_file()


def test_out_of_memory_as_runtime_error_text_exits_1(tmp_path, monkeypatch, capsys):
    """An allocator that reports OOM as a plain RuntimeError (the text branch, not
    torch.OutOfMemoryError): the run fails with the hint, keeps its epochs, and `run` exits 1."""
    real = Trainer._train_epoch
    calls = {"n": 0}

    def epoch(self, gen):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported")
        real(self, gen)

    monkeypatch.setattr(Trainer, "_train_epoch", epoch)
    code, d = _headless(tmp_path, "optim.epochs=10")
    assert code == 1
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "failed" and s["epochs_run"] == 2 == epochs_in(d)
    assert s["reason"].startswith("out of memory on CPU") and "optim.batch_size" in s["reason"]
    assert "model.width" in s["reason"] and "RuntimeError" not in s["reason"]
    assert s["test_err"] is not None  # the kept weights are still tested
    assert runs.read_jsonl(d / "events.jsonl")[-1]["event"] == "failed"
    out = capsys.readouterr().out
    assert "failed after 2 epochs" in out and "reason: out of memory on CPU" in out


@pytest.mark.parametrize("every_s", [0.0, 5.0], ids=["every-epoch", "at-the-end"])
def test_a_full_disk_while_checkpointing_does_not_end_the_run(tmp_path, monkeypatch, capsys, every_s):
    """checkpoint.pt cannot be written (ENOSPC): the run trains on to its end, says so in
    events.jsonl (`checkpoint_failed`) and on stderr, and still writes model.pt and summary.json.
    `every-epoch` saves after each epoch (as a run longer than the 5 s interval does), `at-the-end`
    only when the run ends."""
    import errno

    from gengap_tui.core import checkpoints

    real_replace = runs.replace_atomic

    def replace_atomic(path, write):
        if path.name == "checkpoint.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_replace(path, write)

    monkeypatch.setattr(runs, "replace_atomic", replace_atomic)
    real_init = checkpoints.Checkpoints.__init__
    monkeypatch.setattr(checkpoints.Checkpoints, "__init__",
                        lambda self, tr, save, _every_s: real_init(self, tr, save, every_s))
    args = ["run", "default", *SMALL, "--runs-dir", str(tmp_path), "--set", "optim.epochs=4",
            "--set", "early_stopping.enabled=false"]
    assert main(args) == 0
    [d] = runs.list_runs(tmp_path)
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and s["epochs_run"] == 4 == epochs_in(d)
    failed = [e for e in runs.read_jsonl(d / "events.jsonl") if e["event"] == "checkpoint_failed"]
    assert [e["epoch"] for e in failed] == ([1, 2, 3, 4] if every_s == 0 else [4])
    assert all("No space left on device" in e["error"] for e in failed)
    assert not (d / "checkpoint.pt").exists() and (d / "model.pt").is_file()
    assert not list(d.glob(".checkpoint.pt.*"))  # no temp file left behind
    err = capsys.readouterr().err
    assert "checkpoint not saved" in err and "No space left on device" in err


def _sampler_threads():
    return [t for t in threading.enumerate() if t.name == "gengap-sysmetrics" and t.is_alive()]


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("CUDA error: out of memory"),
                                   ValueError("a bad baseline")], ids=["MemoryError", "oom-text", "other"])
def test_a_baseline_that_raises_ends_the_run_with_a_summary_and_no_thread(monkeypatch, error):
    """The k-NN / NTK baselines are computed before the first epoch (k-NN on CIFAR can run out of
    memory): run() still never raises, the summary is `failed` (out of memory: the trainer's hint),
    and the system-metrics sampler started before them is stopped."""
    from gengap_tui.core import baselines

    def boom(_tr):
        raise error

    monkeypatch.setattr(baselines, "reference_lines", boom)
    threads = len(_sampler_threads())
    events = []
    s = Trainer(small_cfg("optim.epochs=3", "baselines.knn=true")).run(on_event=events.append)
    assert s["status"] == "failed" and s["epochs_run"] == 0
    if isinstance(error, ValueError):
        assert s["reason"] == "ValueError: a bad baseline"
    else:
        assert s["device"].startswith("CPU") and s["reason"] == (
            f"out of memory on {s['device']} computing the baselines: turn off baselines.knn and baselines.ntk, "
            "or lower data.n_train")
    assert [e["event"] for e in events] == ["started", "failed"]
    assert len(_sampler_threads()) == threads


@pytest.mark.parametrize("where", ["baseline", "trainer"])
def test_one_values_failure_does_not_end_a_one_at_a_time_sweep(tmp_path, monkeypatch, where):
    """A value whose baseline runs out of memory, or whose trainer cannot be built, is `failed`
    with its reason; the values after it are trained, and the sweep ends `failed` naming it."""
    from gengap_tui.core import baselines, units
    from gengap_tui.core.sweep import Sweep

    calls = {"n": 0}
    target = (baselines, "reference_lines") if where == "baseline" else (units, "make_trainer")
    real = getattr(*target)

    def second_fails(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(*a, **kw)

    monkeypatch.setattr(*target, second_fails)
    threads = len(_sampler_threads())
    out = tmp_path / "sw"
    s = Sweep(small_cfg("optim.epochs=2", "baselines.knn=true"), "regularization.weight_decay", [0, 0.1, 0.2]).run(out)
    rows = runs.read_jsonl(out / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert [r["epochs_run"] for r in rows] == [2, 0, 2]
    assert rows[1]["reason"].startswith("out of memory on CPU")
    assert s["status"] == "failed" and s["reason"].startswith("regularization.weight_decay = 0.1: out of memory")
    failed = runs.load_run(out / rows[1]["run_dir"])
    assert failed.summary["status"] == "failed" and failed.events[-1]["event"] == "failed"
    assert len(_sampler_threads()) == threads
