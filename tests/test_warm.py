"""The lab's warm training process (gengap_tui/warm.py): the same numbers as a cold process,
reused only after a clean run, replaced after anything else, and never left behind."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import alive, wait_for, wait_until
from gengap_tui.protocol import MEASURED_KEYS
from gengap_tui.config import build
from gengap_tui.warm import Prewarmer
from gengap_tui.worker import LAB_NICE, RunHandle, SweepHandle

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
              pytest.mark.usefixtures("data_cache")]

BASE = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu"]
# dropout and label noise: the run draws from torch's global generator and the run's seed
RUN = BASE + ["optim.epochs=4", "early_stopping.enabled=false", "regularization.dropout=0.2",
              "noise.label_noise=0.2", "seed=3"]
TIMING = MEASURED_KEYS  # the machine's measurements: time, CPU, memory (protocol.py)


def config(*overrides):
    return build({"name": "t"}, list(overrides)).dump()


def finish(handle, timeout=60.0):
    """Every message of a run until its summary (or error): (epoch rows, summary, error)."""
    rows, summary, error = [], None, None
    deadline = time.monotonic() + timeout
    while summary is None and error is None:
        assert time.monotonic() < deadline, f"no end of {handle!r}"
        for m in handle.poll():
            if m.TYPE == "epoch":
                rows.append({k: v for k, v in m.row.items() if k not in TIMING})
            elif m.TYPE == "summary":
                summary = m.summary
            elif m.TYPE == "error":
                error = m.message
        time.sleep(0.02)
    return rows, summary, error


def ready(warm, cfg, timeout=120.0):
    assert wait_until(lambda: warm.tick(True, cfg) == "ready", timeout), warm.state
    return warm.process.pid


@pytest.fixture
def warm():
    w = Prewarmer()
    yield w
    w.close()
    assert w.process is None or not w.process.alive


@pytest.mark.slow
def test_a_warm_process_gives_a_cold_ones_numbers_and_is_reused_after_clean_runs(tmp_path, warm):
    # prepared for other data (the default preset's 4000 examples): the run loads its own
    pid = ready(warm, config("device=cpu"))
    report = warm.process.report
    assert report["pid"] == pid and report["rss_kb"] > 0 and "error" not in report
    # it yields the CPU to the lab's UI (worker.LAB_NICE)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + LAB_NICE)

    h = RunHandle.start(config(*RUN), tmp_path, warm=warm)
    assert h.pid == pid and warm.state == "busy"
    warm_rows, warm_summary, _ = finish(h)
    assert warm_summary["status"] == "completed" and len(warm_rows) == 4
    # the run is over for the handle once its summary is in, though the process lives on
    assert h.finished and not h.alive and h.join(0.1)
    assert ready(warm, config("device=cpu"), 15) == pid  # reused: the same process

    again = RunHandle.start(config(*RUN), tmp_path, warm=warm)  # the second run in that process
    assert again.pid == pid
    again_rows, again_summary, _ = finish(again)
    cold = RunHandle.start(config(*RUN), tmp_path)  # a fresh process, nothing warmed
    assert cold.pid != pid
    cold_rows, cold_summary, _ = finish(cold)
    assert warm_rows == cold_rows == again_rows
    for key in ("test_err", "test_loss", "best_epoch", "best_value"):
        assert warm_summary[key] == cold_summary[key] == again_summary[key], key

    # a stopped run is clean too; then a sweep in the same process, which is reused after it
    assert ready(warm, config("device=cpu"), 15) == pid
    long = RunHandle.start(config(*BASE, "optim.epochs=100000", "early_stopping.enabled=false"), tmp_path, warm=warm)
    assert wait_until(lambda: long.poll() and long.run_dir is not None, 30)
    long.stop()
    assert finish(long)[1]["status"] == "cancelled"
    assert ready(warm, config("device=cpu"), 15) == pid
    sweep = SweepHandle.start(config(*BASE, "optim.epochs=2"), tmp_path, "model.width", [4, 8], warm=warm)
    assert sweep.pid == pid
    _, sweep_summary, _ = finish(sweep)
    assert sweep_summary["status"] == "completed"
    assert ready(warm, config("device=cpu"), 15) == pid and warm.started == 1


@pytest.mark.slow
def test_a_crashed_or_diverged_run_is_never_followed_by_its_process(tmp_path, warm):
    cfg = config(*BASE)
    first = ready(warm, cfg)
    h = RunHandle.start(config(*BASE, "optim.optimizer=sgd", "optim.lr=1e6", "early_stopping.enabled=false"),
                        tmp_path, warm=warm)
    assert h.pid == first
    _, summary, _ = finish(h)
    assert summary["status"] == "diverged"
    second = ready(warm, cfg)  # replaced: the diverged run's process exited
    assert second != first and not alive(first) and warm.started == 2

    h = RunHandle.start(config(*BASE, "optim.epochs=100000", "early_stopping.enabled=false"), tmp_path, warm=warm)
    assert h.pid == second
    assert wait_until(lambda: h.poll() and h.run_dir is not None, 30)
    os.kill(second, signal.SIGKILL)  # a crash (the OOM killer, a native fault)
    _, summary, _ = finish(h)
    assert summary["status"] == "failed" and summary["reason"] == "the training process died (exit code -9, SIGKILL)"
    third = ready(warm, cfg)
    assert third not in (first, second) and warm.started == 3

    # while a run trains in a cold process, no warm one is started beside it
    warm.process.close()
    assert warm.tick(False, cfg) == "off" and warm.process is None


@pytest.mark.slow
def test_a_run_ended_by_a_signal_is_never_followed_by_its_process(tmp_path, warm):
    """SIGTERM to the warm process while it trains: the run ends cancelled with the signal's
    reason, and the process is not reused (a signal means someone wants it gone)."""
    cfg = config(*BASE)
    pid = ready(warm, cfg)
    h = RunHandle.start(config(*BASE, "optim.epochs=100000", "early_stopping.enabled=false"), tmp_path, warm=warm)
    assert h.pid == pid
    assert wait_until(lambda: h.poll() and h.run_dir is not None, 30)
    os.kill(pid, signal.SIGTERM)
    _, summary, _ = finish(h)
    n = summary["epochs_run"]
    assert summary["status"] == "cancelled" and summary["reason"] in (
        f"stopped by SIGTERM during epoch {n}", f"stopped by SIGTERM during epoch {n + 1}"), summary
    second = ready(warm, cfg)
    assert second != pid and not alive(pid) and warm.started == 2


@pytest.mark.slow
def test_a_warm_process_stuck_after_its_run_is_replaced(tmp_path, warm, monkeypatch):
    """A process whose run ended but that never says it is ready again (a native hang in its
    teardown; here: SIGSTOP) is killed and replaced REPLACE_AFTER_S later, not waited for."""
    from gengap_tui import warm as warm_module

    monkeypatch.setattr(warm_module, "REPLACE_AFTER_S", 1.0)
    cfg = config(*BASE)
    pid = ready(warm, cfg)
    os.kill(pid, signal.SIGSTOP)
    try:
        warm.process.jobs += 1  # as if a job had been given and its run were over: it owes a ready report
        assert warm.tick(True, cfg) == "finishing" and warm.process.pid == pid
        assert wait_until(lambda: warm.tick(True, cfg) == "ready" and warm.process.pid != pid, 120), warm.process
        assert not alive(pid) and warm.started == 2
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_a_job_whose_config_cannot_be_built_leaves_the_process_reused(tmp_path, warm):
    """Nothing trained (the config is refused before anything is made): the error names the
    field, and the same process takes the next job."""
    cfg = config(*BASE)
    pid = ready(warm, cfg)
    bad = {**config(*RUN), "optim": {**config(*RUN)["optim"], "lr": -1.0}}
    h = RunHandle.start(bad, tmp_path, warm=warm)
    assert h.pid == pid
    _, summary, error = finish(h)
    assert summary is None and error is not None and "optim.lr" in error, error
    assert ready(warm, cfg, 30) == pid and warm.started == 1
    assert list(tmp_path.iterdir()) == []  # no run directory


def test_prewarm_off_closes_an_idle_warm_process_and_starts_none(warm):
    cfg = config(*BASE)
    assert warm.tick(True, cfg) == "starting"
    pid = warm.process.pid
    assert warm.tick(True, None) == "off" and warm.process is None
    assert wait_until(lambda: not alive(pid), 5)
    assert warm.tick(True, None) == "off" and warm.started == 1
    assert warm.take(RunHandle, {}) is None  # nothing to hand a job to: the caller spawns


def test_the_form_answers_before_its_fields_are_mounted(tmp_path):
    """The settings fields come after the first frame; before, the form validates the values it
    is about to show, to the same config."""
    from gengap_tui.tui.app import GengapApp

    async def check():
        app = GengapApp("default", BASE + ["optim.lr=0.02", "early_stopping.observe=true"], runs_dir=tmp_path)
        seen = {}
        populate = app._populate_panels

        async def spy():
            seen["before"] = (app.form.populated, app.form.overrides(), app.validate_form())
            await populate()

        app._populate_panels = spy
        async with app.run_test(size=(120, 40)):
            populated, overrides, cfg = seen["before"]
            assert populated is False and cfg is not None and cfg.optim.lr == 0.02 and cfg.early_stopping.observe
            assert app.form.populated and app.form.overrides() == overrides and app.validate_form() == cfg

    import asyncio

    asyncio.run(check())


LAB_WARM = """
import asyncio, json, sys, time
from gengap_tui.tui.app import GengapApp, WARM_READY

async def main():
    app = GengapApp("default", sys.argv[2:], runs_dir=sys.argv[1], prewarm=True)
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 120
        while app.state.status != WARM_READY and time.monotonic() < deadline:
            await pilot.pause(0.05)
        out["warm_pid"] = app.warm.process.pid
        await pilot.press("ctrl+r")
        while len(app.state.run.series.rows) < 3 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        out.update(run_pid=app.source.handle.pid, from_warm=app.source.warm, rows=len(app.state.run.series.rows))
        first = app.source
        await pilot.press("ctrl+r")  # a restart: the warm process ends this run, then trains the next
        out["waited"] = app.source is None and app._pending is not None
        while (app.source is None or len(app.state.run.series.rows) < 2) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        out.update(restart_pid=app.source.handle.pid, restart_from_warm=app.source.warm,
                   first_end=(first.handle.summary or {}).get("reason"))
        await pilot.press("ctrl+q")
    out.update(torch="torch" in sys.modules, core=sorted(m for m in sys.modules if m.startswith("gengap_tui.core")),
               status=(app.state.run.summary or {}).get("status"))
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.slow
def test_ctrl_r_trains_in_the_warm_process_and_quitting_leaves_none(tmp_path):
    p = subprocess.run([sys.executable, "-c", LAB_WARM, str(tmp_path), *BASE, "optim.epochs=100000",
                        "early_stopping.enabled=false"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["from_warm"] is True and out["run_pid"] == out["warm_pid"] and out["rows"] >= 3, out
    # the restart waited for the warm process (no cold spawn) and trained in it
    assert out["waited"] and out["restart_from_warm"] and out["restart_pid"] == out["warm_pid"], out
    assert out["first_end"].startswith("stopped by the user: the lab started a run"), out
    assert out["status"] == "cancelled" and out["torch"] is False and out["core"] == [], out
    assert not alive(out["warm_pid"])


@pytest.mark.slow
def test_a_restart_waits_for_the_warm_process_f7_cancels_the_wait_and_a_stuck_one_is_not_waited_for(
        tmp_path, monkeypatch):
    """ctrl+r while the warm process still ends the stopped run: the start waits for it. f7 then
    cancels that start (it never happens, even once the process is free); and a process that
    stays busy (SIGSTOP) is waited for WARM_WAIT_S at most, then the run starts cold."""
    import asyncio

    from gengap_tui.tui import train_actions
    from gengap_tui.tui.app import GengapApp

    monkeypatch.setattr(train_actions, "WARM_WAIT_S", 1.0)  # (the lab's start and sweep actions)

    async def check():
        app = GengapApp("default", BASE + ["optim.epochs=100000", "early_stopping.enabled=false"],
                        runs_dir=tmp_path, prewarm=True)
        polls = [0]
        poll = app._poll
        app._poll = lambda: (polls.__setitem__(0, polls[0] + 1), poll())[1]
        async with app.run_test(size=(120, 40)) as pilot:
            assert await wait_for(pilot, lambda: app.warm.state == "ready", 120), app.warm.state
            pid = app.warm.process.pid
            await pilot.press("ctrl+r")
            assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 1, 60)
            assert app.source.warm and app.source.handle.pid == pid
            os.kill(pid, signal.SIGSTOP)  # it cannot end the run: the restart has to wait
            try:
                await pilot.press("ctrl+r")
                assert app.source is None and app._pending is not None
                await pilot.press("f7")
                assert app._pending is None and app.state.status == "stopped before it started"
            finally:
                os.kill(pid, signal.SIGCONT)
            # the stopped run ends, the process is ready again, and the cancelled start stays cancelled
            assert await wait_for(pilot, lambda: app.warm.state == "ready", 60), app.warm.state
            seen = polls[0]
            assert await wait_for(pilot, lambda: polls[0] >= seen + 3, 10)
            assert app.source is None and app.warm.process.pid == pid and app.warm.process.jobs == 1

            await pilot.press("ctrl+r")  # trains in it again
            assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 1, 60)
            assert app.source.warm and app.source.handle.pid == pid
            os.kill(pid, signal.SIGSTOP)
            try:
                await pilot.press("ctrl+r")
                assert app.source is None and app._pending is not None
                # not waited for past WARM_WAIT_S: a cold process trains the new run
                assert await wait_for(pilot, lambda: app.source is not None, 30), app.state.status
                assert not app.source.warm and app.source.handle.pid != pid
                assert await wait_for(pilot, lambda: len(app.state.run.series.rows) >= 1, 90)
            finally:
                os.kill(pid, signal.SIGCONT)
            await pilot.press("ctrl+q")

    asyncio.run(check())


WATCHED = """
import sys, time
from gengap_tui.config import build
from gengap_tui.warm import Prewarmer
if __name__ == "__main__":
    w = Prewarmer()
    w.tick(True, build({{}}, {base!r}).dump())
    print(w.process.pid, flush=True)
    while w.tick(True, build({{}}, {base!r}).dump()) != "ready":
        time.sleep(0.05)
    print("ready", flush=True)
    time.sleep(120)
"""


@contextlib.contextmanager
def killed_lab(tmp_path, source: str, *args: str):
    """Runs `source` (with BASE) as a lab process and yields its stdout; on leaving, SIGKILLs it:
    no atexit, nothing, so its warm process must notice on its own."""
    script = tmp_path / "lab.py"
    script.write_text(textwrap.dedent(source.format(base=BASE)))
    lab = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        yield lab.stdout
        lab.kill()
        lab.wait(10)
    finally:
        if lab.poll() is None:
            lab.kill()
        lab.stdout.close()


@pytest.mark.slow
def test_a_warm_process_ends_when_the_lab_dies(tmp_path):
    with killed_lab(tmp_path, WATCHED) as out:
        pid = int(out.readline())
        assert out.readline().strip() == "ready"
    assert wait_until(lambda: not alive(pid), 5), "the warm process outlived the lab"


WATCHED_RUN = """
import sys, time
from gengap_tui.config import build
from gengap_tui.warm import Prewarmer
from gengap_tui.worker import RunHandle
if __name__ == "__main__":
    base = {base!r}
    w = Prewarmer()
    while w.tick(True, build({{}}, base).dump()) != "ready":
        time.sleep(0.05)
    h = RunHandle.start(build({{}}, base + ["optim.epochs=100000", "early_stopping.enabled=false"]).dump(),
                        sys.argv[1], warm=w)
    rows = []
    while h.run_dir is None or len(rows) < 2:
        rows += [m for m in h.poll() if m.TYPE == "epoch"]
        time.sleep(0.05)
    print(w.process.pid, h.run_dir, flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_a_lab_that_dies_while_its_warm_process_trains_leaves_a_closed_run_and_no_process(tmp_path):
    """The lab is SIGKILLed mid-run: the run in its warm process ends cancelled with its summary
    written (the watcher leaves a job to its QueueFeed), then the process exits."""
    with killed_lab(tmp_path, WATCHED_RUN, str(tmp_path / "runs")) as out:
        pid, run_dir = out.readline().split()
        pid = int(pid)
    assert wait_until(lambda: not alive(pid), 30), "the warm process outlived the lab"
    from gengap_tui import runs

    summary = runs.read_json(Path(run_dir) / "summary.json")
    n = summary["epochs_run"]
    assert n >= 2 and summary["status"] == "cancelled", summary
    assert summary["reason"] in (f"stopped because the lab process went away during epoch {k}" for k in (n, n + 1))
    assert len(runs.read_jsonl(Path(run_dir) / "metrics.jsonl")) == n


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl+q", "sigterm", "hang_up", "hang_up_while_warming"])
def test_quitting_the_lab_leaves_no_process_behind(tmp_path, how):
    """`gengap-tui` in a terminal keeps a warm process; however the lab ends (its quit key, SIGTERM,
    its terminal closing, also while the warm process still imports torch), nothing is left."""
    from test_terminal_loss import InPty, _group_members

    lab = InPty(tmp_path)
    try:
        assert lab.wait_drawn(), lab.screen_text()[-2000:]
        if how == "hang_up_while_warming":
            assert wait_until(lambda: len(_group_members(lab.pgid)) >= 3, 10)  # lab, tracker, warm
            assert "training process is warm" not in lab.screen_text()
        else:
            assert wait_until(lambda: "training process is warm" in lab.screen_text(), 120), lab.screen_text()[-2000:]
        assert len(_group_members(lab.pgid)) == 3  # the lab, multiprocessing's tracker, the warm process
        if how == "ctrl+q":
            os.write(lab.master, b"\x11")
            t0 = time.monotonic()
        elif how == "sigterm":
            t0 = time.monotonic()
            lab.proc.send_signal(signal.SIGTERM)
        else:
            t0 = lab.hang_up()
        assert lab.exit_within(t0) is not None, f"the lab is still running after {how}"
        assert wait_until(lambda: not _group_members(lab.pgid), 10), "left processes behind"
    finally:
        lab.close()


def lab_cold(tmp_path, overrides, prewarm=True):
    """A lab (in this process) run until its poll has asked the Prewarmer 3 times: (the configs
    it was asked for, how many warm processes it started)."""
    import asyncio

    from gengap_tui.tui.app import GengapApp

    async def check():
        app = GengapApp("default", BASE + overrides, runs_dir=tmp_path, prewarm=prewarm)
        asked = []
        if app.warm is not None:
            tick = app.warm.tick
            app.warm.tick = lambda idle, config: (asked.append(config() if callable(config) else config),
                                                  tick(idle, config))[1]
        async with app.run_test(size=(120, 40)) as pilot:
            if app.warm is None:
                return None
            assert await wait_for(pilot, lambda: len(asked) >= 3, 60), asked  # the decision was made 3 times
            return asked, app.warm.started

    return asyncio.run(check())


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_run_prewarm_false_keeps_the_lab_cold_and_true_warms_it(tmp_path):
    """`run.prewarm = false` (the config): the lab's poll asks for no warm process (and starts
    none); with the default it asks for the config's and starts one (the same wait, so the cold
    case is not vacuous)."""
    asked, started = lab_cold(tmp_path, ["run.prewarm=false"])
    assert asked[:3] == [None, None, None] and started == 0
    asked, started = lab_cold(tmp_path, [])
    assert asked[0]["data"]["n_train"] == 300 and started == 1


def test_no_prewarm_on_the_command_line_gives_the_lab_no_warm_process(tmp_path, monkeypatch):
    """`gengap-tui --no-prewarm`: the lab the CLI builds has no Prewarmer (without the flag it has
    one); the lab is not run (`run_guarded` is replaced: the app as built is what is checked)."""
    from gengap_tui.cli import main
    from gengap_tui.warm import Prewarmer

    built = []
    monkeypatch.setattr("gengap_tui.tui.terminal.run_guarded",
                        lambda app, close, record=None: built.append(app) or 0)
    assert main(["--no-prewarm", "--runs-dir", str(tmp_path)]) == 0
    assert main(["--runs-dir", str(tmp_path)]) == 0
    assert built[0].warm is None and isinstance(built[1].warm, Prewarmer)
    assert built[1].warm.started == 0 and built[1].warm.closed  # closed with the lab


def test_serve_no_prewarm_reaches_each_tabs_lab(tmp_path, monkeypatch):
    """`gengap-tui serve --no-prewarm`: the command each tab runs carries the flag (and the CLI
    parses it back to a lab without a warm process); without it, it does not. The server is not
    started (textual-serve need not be installed: make_server is replaced)."""
    import shlex
    import socket
    import types

    from gengap_tui import serve
    from gengap_tui.cli import build_parser, main

    commands = []
    monkeypatch.setitem(sys.modules, "textual_serve", types.ModuleType("textual_serve"))
    monkeypatch.setitem(sys.modules, "textual_serve.server", types.ModuleType("textual_serve.server"))
    monkeypatch.setattr(serve, "make_server", lambda command, *a: commands.append(command)
                        or types.SimpleNamespace(serve=lambda: None))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for flags in (["--no-prewarm"], []):
        assert main(["serve", "--port", str(port), "--runs-dir", str(tmp_path), *flags]) == 0
    parsed = [build_parser().parse_args(shlex.split(c)[4:]) for c in commands]
    assert [p.no_prewarm for p in parsed] == [True, False]
