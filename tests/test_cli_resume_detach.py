"""`gengap-tui sweep --values` refuses an empty item; `gengap-tui run --resume RUN_DIR --detach`
continues a run in the background, outliving the terminal."""

import os
import signal
import subprocess
import sys

import pytest

from conftest import alive, wait_until
from gengap_tui import runs
from gengap_tui.cli import main


@pytest.mark.parametrize("values, needle", [
    ("8,,32", "item 2 of '8,,32' is empty"),
    ("8,32,", "item 3 of '8,32,' is empty"),
    (",8", "item 1 of ',8' is empty"),
    (" ", "no values given"),
])
def test_sweep_values_refuse_an_empty_item(tmp_path, capsys, values, needle):
    code = main(["sweep", "default", "--param", "model.width", "--values", values, "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--values" in err and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing was made


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions and signals")
def test_resume_detach_continues_the_run_outliving_the_terminal(tmp_path):
    from gengap_tui.config import build
    from gengap_tui.control import RunControl
    from gengap_tui.protocol import Epoch
    from gengap_tui.session import run_session

    cfg = build({"name": "default"}, ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu",
                                      "optim.epochs=100000", "early_stopping.enabled=false"])
    control = RunControl()
    first = run_session(cfg, tmp_path, control=control,
                        emit=lambda m: isinstance(m, Epoch) and m.row["epoch"] == 3 and control.request_stop("t"))
    d = first.run_dir
    assert first.status == "cancelled" and first.summary["epochs_run"] == 3

    p = subprocess.run([sys.executable, "-m", "gengap_tui.cli", "run", "--resume", str(d), "--detach"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"gengap-tui attach {d}" in p.stdout
    pid = int((d / "pid").read_text())
    epochs = lambda: len(runs.read_jsonl(d / "metrics.jsonl"))  # noqa: E731
    try:
        assert os.getsid(pid) != os.getsid(0)  # its own session
        assert wait_until(lambda: epochs() >= 6)
        os.kill(pid, signal.SIGHUP)  # ignored, as by a detached run
        n = epochs()
        assert wait_until(lambda: epochs() > n + 2)
        assert alive(pid)
        runs.send_control(d, "stop")
        assert wait_until(lambda: (runs.read_json(d / "summary.json") or {}).get("status") == "cancelled")
        assert wait_until(lambda: not alive(pid))
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    rows = runs.read_jsonl(d / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    events = runs.read_jsonl(d / "events.jsonl")
    assert [e["epoch"] for e in events if e["event"] == "resumed_run"] == [3]
    assert "cancelled" in (d / "run.log").read_text()  # the child's output
