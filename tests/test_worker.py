"""The spawned training process seen from the UI side: the stream, the files, control, and death."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import stop_reason_ok
from gengap_tui import runs
from gengap_tui.config import build
from gengap_tui.protocol import check_tweaks
from gengap_tui.worker import RunHandle

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
              pytest.mark.usefixtures("data_cache")]  # the waits below never include generating data

BASE = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu"]
# a run that goes on until it is told to stop (~10-20 ms an epoch)
LONG = ["optim.epochs=100000", "optim.batch_size=16", "early_stopping.enabled=false"]


def config(*overrides):
    return build({"name": "t"}, BASE + list(overrides)).dump()


def norm(obj):
    return json.loads(runs.dumps(obj))


class Stream:
    """Everything a handle has yielded, with bounded waits."""

    def __init__(self, handle):
        self.h = handle
        self.msgs = []

    def pump(self):
        new = [m.to_wire() for m in self.h.poll()]
        self.msgs.extend(new)
        return new

    def wait(self, cond, timeout=15.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if cond(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; got {[m['type'] for m in self.msgs][-20:]}")

    def of(self, kind):
        return [m for m in self.msgs if m["type"] == kind]

    @property
    def rows(self):
        return [m["row"] for m in self.of("epoch")]

    @property
    def events(self):
        return [m["event"] for m in self.of("event")]

    def event(self, name):
        return [e for e in self.events if e["event"] == name]

    @property
    def summary(self):
        s = self.of("summary")
        return s[-1]["summary"] if s else None

    def finish(self, timeout=15.0):
        self.wait(lambda s: s.summary is not None, timeout, "the summary")
        assert self.h.join(5)
        self.pump()
        return self.summary


@pytest.fixture
def started():
    handles = []

    def start(cfg, runs_dir):
        h = RunHandle.start(cfg, runs_dir)
        handles.append(h)
        return h, Stream(h)

    yield start
    for h in handles:
        if h.alive:
            h.kill()


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_a_run_streams_what_it_writes(tmp_path, started):
    h, s = started(config("optim.epochs=5"), tmp_path)
    summary = s.finish()
    assert s.msgs[0]["type"] == "run_dir"
    run_dir = h.run_dir
    assert str(run_dir) == s.msgs[0]["path"] and run_dir.parent == tmp_path
    assert summary["status"] == "completed" and summary["epochs_run"] == 5
    assert h.finished and not h.alive and h.error is None

    rec = runs.load_run(run_dir)
    assert [r["epoch"] for r in s.rows] == [1, 2, 3, 4, 5]
    assert norm(s.rows) == rec.metrics
    assert norm(s.events) == rec.events and rec.events[0]["event"] == "started"
    assert norm(summary) == rec.summary
    assert {"torch_version", "device_name"} <= set(rec.config)
    assert rec.config["optim"]["epochs"] == 5 and rec.config["name"] == "t"
    assert s.msgs[-1]["type"] == "summary"
    assert h.poll() == []  # nothing after the end, and no second synthesized summary


def test_importing_the_worker_does_not_import_torch():
    code = "import sys, gengap_tui.worker; print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


LAB_DRIVES_A_RUN = """
import asyncio, json, sys, time
from gengap_tui.tui.app import GengapApp

async def main():
    app = GengapApp("default", sys.argv[2:], runs_dir=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        deadline = time.monotonic() + 60
        while len(app.state.run.series.rows) < 3 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await pilot.press("f6")  # pause, resume, a tweak: the lab steers the run
        await pilot.press("f6")
        app.source.tweak(lr=0.002)
        n = len(app.state.run.series.rows)
        while len(app.state.run.series.rows) < n + 2 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        rows = len(app.state.run.series.rows)
        await pilot.press("ctrl+q")
    print(json.dumps({"rows": rows, "torch": "torch" in sys.modules,
                      "core": sorted(m for m in sys.modules if m.startswith("gengap_tui.core")),
                      "events": [e["event"] for e in app.state.run.events],
                      "status": (app.state.run.summary or {}).get("status")}))

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_lab_drives_a_live_run_without_importing_torch(tmp_path):
    """The lab's own process (not just its imports): start a run, follow its epochs, pause,
    resume, tweak and close it, and torch (or the training core) is never imported there."""
    p = subprocess.run([sys.executable, "-c", LAB_DRIVES_A_RUN, str(tmp_path), *BASE, "optim.epochs=100000",
                        "early_stopping.enabled=false"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["rows"] >= 5, out
    assert {"paused", "resumed", "tweaked"} <= set(out["events"]) and out["status"] == "cancelled", out
    assert out["torch"] is False and out["core"] == [], out


def test_bad_config_or_runs_dir_is_an_error_and_no_run_dir(tmp_path, started):
    cfg = config()
    cfg["optim"]["lr"] = -1
    runs_dir = tmp_path / "runs"
    h, s = started(cfg, runs_dir)
    s.wait(lambda s: s.of("error"), what="an error")
    msg = s.of("error")[0]["message"]
    assert "optim.lr" in msg and "-1" in msg
    assert h.join(10)
    assert s.pump() == [] and not s.of("summary") and not s.of("run_dir")
    assert h.error == msg and h.done and not h.finished
    assert runs.list_runs(runs_dir) == [] and not runs_dir.exists()

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    h, s = started(config(), blocker)
    s.wait(lambda s: s.of("error"), what="an error")
    assert str(blocker) in s.of("error")[0]["message"]
    assert h.join(10) and not s.of("run_dir")


@pytest.mark.slow
def test_pause_holds_epochs_and_resume_goes_on(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    h.pause()
    s.wait(lambda s: s.event("paused"), what="the paused event")
    paused_at = s.event("paused")[0]["epoch"]
    n = len(s.rows)
    assert s.rows[-1]["epoch"] == paused_at == n
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        s.pump()
        time.sleep(0.05)
    assert len(s.rows) == n and h.alive

    h.resume()
    s.wait(lambda s: s.event("resumed") and len(s.rows) >= n + 2, what="epochs after resume")
    assert s.event("resumed")[0]["epoch"] == paused_at
    h.stop()
    summary = s.finish()
    assert summary["status"] == "cancelled"
    events = runs.read_jsonl(h.run_dir / "events.jsonl")
    names = [e["event"] for e in events]
    assert names.index("paused") < names.index("resumed") < names.index("cancelled")
    assert [e["epoch"] for e in events if e["event"] in ("paused", "resumed")] == [paused_at, paused_at]


@pytest.mark.slow
def test_tweak_lr_shows_as_an_event_and_in_later_rows(tmp_path, started):
    h, s = started(config(*LONG, "optim.lr=0.001"), tmp_path)
    with pytest.raises(ValueError, match="momentum"):
        h.tweak(momentum=0.5)
    with pytest.raises(ValueError, match="lr"):
        h.tweak(lr=-1)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    h.tweak(lr=0.0123, patience=7)
    s.wait(lambda s: s.event("tweaked") and s.rows[-1]["epoch"] > s.event("tweaked")[0]["epoch"],
           what="a row after the tweak")
    ev = s.event("tweaked")[0]
    assert ev["changes"] == {"lr": 0.0123, "patience": 7}
    rows = s.rows
    assert all(r["lr"] == 0.001 for r in rows if r["epoch"] < ev["epoch"])
    assert all(r["lr"] == 0.0123 for r in rows if r["epoch"] >= ev["epoch"])
    h.stop()
    s.finish()
    assert any(e["event"] == "tweaked" for e in runs.read_jsonl(h.run_dir / "events.jsonl"))


@pytest.mark.slow
def test_live_tweaks_of_min_delta_and_observe_show_in_later_rows(tmp_path, started):
    """Paused after epoch P, the run gets min_delta 0.5 (no epoch can improve val_loss by that
    much), observe mode and patience 3. From epoch P+1 on no epoch is an improvement, where before
    val_loss still improved; at P+3 early stopping would fire, but observe mode only notes it and
    the run goes on."""
    h, s = started(config("optim.epochs=100000", "optim.batch_size=16", "optim.lr=0.001",
                          "early_stopping.monitor=val_loss", "early_stopping.patience=1000"), tmp_path)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    h.pause()
    s.wait(lambda s: s.event("paused"), what="the paused event")
    p = s.event("paused")[0]["epoch"]
    h.tweak(min_delta=0.5, observe=True, patience=3)
    h.resume()
    s.wait(lambda s: len(s.rows) >= p + 5 or s.summary is not None, what="epochs after the tweak")
    h.stop()
    summary = s.finish()
    [ev] = s.event("tweaked")
    assert ev["epoch"] == p + 1 and ev["changes"] == {"min_delta": 0.5, "observe": True, "patience": 3}
    rows = {r["epoch"]: r for r in s.rows}
    assert rows[p]["es_wait"] == 0 and rows[p]["es_best_epoch"] == p  # val_loss still improved before
    assert rows[p + 1]["val_loss"] < rows[p]["val_loss"]  # ... and after, by less than min_delta
    assert [rows[p + i]["es_wait"] for i in range(1, 6)] == [1, 2, 3, 4, 5]
    assert all(rows[p + i]["es_best_epoch"] == p for i in range(1, 6))
    assert [e["epoch"] for e in s.event("would_stop")] == [p + 3] and not s.event("early_stop")
    assert summary["status"] == "cancelled" and summary["would_stop_epoch"] == p + 3
    assert summary["would_stop_best_epoch"] == p and summary["epochs_run"] >= p + 5


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_stop_ends_cancelled_keeping_every_epoch(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 3, what="three epochs")
    h.stop()
    summary = s.finish()
    assert summary["status"] == "cancelled" and stop_reason_ok(summary, "stopped by the user"), summary["reason"]
    rec = runs.load_run(h.run_dir)
    assert rec.summary == norm(summary)
    assert [r["epoch"] for r in rec.metrics] == list(range(1, summary["epochs_run"] + 1))
    assert norm(s.rows) == rec.metrics
    assert rec.events[-1]["event"] == "cancelled"


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_stop_while_paused_ends_promptly(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    h.pause()
    s.wait(lambda s: s.event("paused"), what="the paused event")
    n = len(s.rows)
    h.stop()
    # at once: no epoch after the pause (a stop that waited for a resume would never come)
    summary = s.finish()
    assert summary["status"] == "cancelled" and summary["epochs_run"] == n == len(s.rows)
    assert not s.event("resumed")
    assert runs.read_json(h.run_dir / "summary.json")["status"] == "cancelled"


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_sigterm_ends_cancelled_with_summary(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    h.terminate()
    summary = s.finish()
    assert summary["status"] == "cancelled" and stop_reason_ok(summary, "stopped by SIGTERM"), summary["reason"]
    assert runs.read_json(h.run_dir / "summary.json") == norm(summary)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_sigint_is_ignored_by_the_child(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 2, what="two epochs")
    os.kill(h.pid, signal.SIGINT)
    n = len(s.rows)
    s.wait(lambda s: len(s.rows) >= n + 3, what="epochs after SIGINT")
    assert h.alive and s.summary is None
    h.stop()
    assert s.finish()["status"] == "cancelled"


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_killed_child_is_reported_failed_and_keeps_its_epochs(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    s.wait(lambda s: len(s.rows) >= 3, what="three epochs")
    h.kill()
    summary = s.finish()
    assert summary["status"] == "failed"
    assert summary["reason"] == "the training process died (exit code -9, SIGKILL)", summary["reason"]
    assert h.finished and not h.alive
    assert s.event("failed") and s.msgs[-1]["type"] == "summary"

    rec = runs.load_run(h.run_dir)
    assert rec.summary == norm(summary)
    epochs = [r["epoch"] for r in rec.metrics]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= len(s.rows)
    assert summary["epochs_run"] == len(epochs)
    assert rec.events[-1]["event"] == "failed"
    assert h.poll() == []


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_the_run_ends_cancelled_when_the_ui_process_dies(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from gengap_tui.worker import RunHandle
        h = RunHandle.start({config(*LONG)!r}, {str(tmp_path)!r})
        epochs = 0
        while epochs < 2:
            for m in h.poll():
                epochs += m.TYPE == "epoch"
            time.sleep(0.05)
        print(h.run_dir, flush=True)
        time.sleep(60)
    """)
    # stderr to a file: the orphaned resource tracker reports the killed UI's queue semaphores there
    err = open(tmp_path / "ui-stderr.txt", "w")
    ui = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        run_dir = ui.stdout.readline().strip()
        assert run_dir, "the UI process printed no run dir: " + (tmp_path / "ui-stderr.txt").read_text()
        ui.kill()  # no atexit, no cleanup: the child must notice on its own
        ui.wait(10)
        summary_path = os.path.join(run_dir, "summary.json")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not os.path.exists(summary_path):
            time.sleep(0.05)
        summary = runs.read_json(summary_path)
        assert summary is not None and summary["status"] == "cancelled"
        assert stop_reason_ok(summary, "stopped because the lab process went away"), summary["reason"]
        rows = runs.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        assert [r["epoch"] for r in rows] == list(range(1, summary["epochs_run"] + 1))
    finally:
        if ui.poll() is None:
            ui.kill()
        ui.stdout.close()
        err.close()


def test_check_tweaks_rules():
    assert check_tweaks({"lr": 1, "patience": 3.0, "observe": True, "min_delta": 0}) == \
        {"lr": 1.0, "patience": 3, "observe": True, "min_delta": 0.0}
    for bad in ({"lr": 0}, {"lr": float("nan")}, {"weight_decay": 11}, {"patience": 0},
                {"patience": 2.5}, {"min_delta": -1}, {"observe": 1}, {"lr": "0.1"}, {"epochs": 3}):
        with pytest.raises(ValueError):
            check_tweaks(bad)


@pytest.mark.slow
def test_stop_before_training_starts_ends_without_clutter(tmp_path, started):
    h, s = started(config(*LONG), tmp_path)
    h.stop()  # the child is still importing torch / loading data
    s.wait(lambda s: s.h.done, what="the end")
    assert h.join(10)
    if s.of("error"):  # the usual case: like the CLI, no run dir for a run that never trained
        assert s.of("error")[0]["message"] == "cancelled before training started"
        assert runs.list_runs(tmp_path) == []
    else:
        assert s.summary["status"] == "cancelled"
