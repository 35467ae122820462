"""A lab whose terminal goes away exits, at any moment: before its first frame, right after it,
idle, during a run (whose summary then says why it was cancelled); SIGTERM likewise.

The lab runs in a pseudo-terminal that is its controlling terminal. Closing the pty master is
what a dropped SSH connection or a killed tmux session does: the kernel hangs the terminal up and
sends SIGHUP (and SIGCONT) to the session leader, here the lab itself (start_new_session). Only the
leader: the training child, in the same session, gets no SIGHUP from the kernel (a shell that gets
it passes it on to its jobs, tmux's kill-session to the pane's process group;
`hang_up_and_hup_group` covers that as well). The last test checks run_guarded's own deadline on
an app whose event loop never gets to exit."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_until, stop_reason_ok

from gengap_tui import runs

pytestmark = [pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs a pty and /proc (Linux)"),
              pytest.mark.usefixtures("data_cache")]

EXIT_S = 10.0  # a lab must be gone this soon after its terminal closes
ROWS, COLS = 36, 120
LAB = ["--set", "device=cpu", "--set", "data.n_train=300", "--set", "data.n_val=300", "--set", "model.width=32"]
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")


def _controlling_terminal():
    """preexec_fn, after setsid (start_new_session): make the pty on fd 0 the controlling terminal of
    the lab's new session, as a terminal emulator, sshd or tmux does. Without it the lab has no
    controlling terminal and closing the master sends no SIGHUP. SIGHUP's action is the default, as
    in a lab started from a shell: a test run under nohup (which ignores SIGHUP, and children
    inherit an ignored signal) had the lab ignore the hang-up that came before its handler."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`: the lab, its training child, the
    multiprocessing resource tracker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            found.append(int(entry))
    return found


class InPty:
    """A program (by default `gengap-tui`, the lab) in a pty of 120x36 that is its controlling
    terminal; its output is read all along (a terminal that stops reading would block its writes),
    and kept to look for what was drawn."""

    def __init__(self, runs_dir: Path, *args: str, argv: list[str] | None = None, size_in_env: bool = True,
                 hang_up_on: bytes | None = None, rows: int = ROWS):
        if argv is None:
            argv = [sys.executable, "-m", "gengap_tui.cli", "--runs-dir", str(runs_dir), *LAB, *args]
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, COLS, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(rows)}
        if not size_in_env:  # the size from the pty alone, so that a resize of it is seen
            env.pop("COLUMNS"), env.pop("LINES")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, preexec_fn=_controlling_terminal)
        os.close(slave)
        self.pgid = self.proc.pid
        self.output = bytearray()
        # the reader hangs the terminal up itself the moment `hang_up_on` is in the output (a
        # moment too short to catch from outside: the first frame follows within ~40 ms)
        self.hang_up_on, self.hung_up_at = hang_up_on, None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        # select with a timeout, never a read blocked on the master: closing an fd that another
        # thread is blocked reading does not release the file, so the terminal would not hang up
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                data = os.read(self.master, 65536) if ready else b""
            except OSError:  # EIO: the lab closed its end (it exited)
                time.sleep(0.05)
                continue
            if data:
                with self._lock:
                    self.output += data
                if self.hang_up_on is not None and self.hang_up_on in self.output:
                    os.close(self.master)
                    self.master, self.hung_up_at = None, time.monotonic()
                    return

    def screen_text(self) -> str:
        with self._lock:
            raw = bytes(self.output)
        return ANSI.sub("", raw.decode("utf-8", "replace"))

    def wait_drawn(self, text: str = "patience", timeout: float = 120.0) -> bool:
        return wait_until(lambda: text in self.screen_text() or self.proc.poll() is not None, timeout) \
            and self.proc.poll() is None

    def hang_up(self) -> float:
        """Close the terminal: the master side goes away, as when an SSH session drops."""
        self._stop.set()
        self._reader.join()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        return self.hung_up_at or time.monotonic()

    def exit_within(self, since: float, timeout: float = EXIT_S) -> float | None:
        """Seconds from `since` until the lab exited, or None if it is still there after `timeout`."""
        try:
            self.proc.wait(timeout=max(0.0, since + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - since

    def close(self):
        if self.master is not None:
            self.hang_up()
        for pid in _group_members(self.pgid):  # a lab that hung (and its children): do not leak them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(10)


def the_run(runs_dir: Path) -> Path | None:
    found = runs.list_runs(runs_dir)
    return found[0] if found else None


def epochs_in(d: Path) -> int:
    return len(runs.read_jsonl(d / "metrics.jsonl"))


@pytest.fixture
def lab(tmp_path):
    labs = []

    def start(*args, argv=None, hang_up_on=None):
        labs.append(InPty(tmp_path, *args, argv=argv, hang_up_on=hang_up_on))
        return labs[-1]

    yield start
    for one in labs:
        one.close()


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before_first_frame", "start_up", "first_frame", "idle"])
def test_lab_exits_when_its_terminal_closes(lab, tmp_path, moment):
    # start_up: Textual has switched to the alternate screen, nothing is drawn yet (the reader hangs
    # up the moment the switch comes)
    lab = lab(hang_up_on=b"\x1b[?1049h" if moment == "start_up" else None)
    if moment == "before_first_frame":
        # at once: the interpreter is still starting, no handler is in (SIGHUP's default action
        # ends it, which is fine), and it has written nothing
        assert lab.proc.poll() is None and lab.screen_text() == ""
    elif moment == "start_up":
        assert wait_until(lambda: lab.hung_up_at is not None or lab.proc.poll() is not None, 120)
        # hung up on the chunk that switched screens: if it held the first frame too, the moment was missed
        assert lab.hung_up_at is not None and "patience" not in lab.screen_text(), lab.screen_text()[-500:]
    else:
        assert lab.wait_drawn(), lab.screen_text()[-2000:]
        if moment == "idle":  # after start-up is over: the warm training process waits too
            assert wait_until(lambda: "training process is warm" in lab.screen_text(), 120), lab.screen_text()[-2000:]
    t0 = lab.hang_up()
    took = lab.exit_within(t0)
    assert took is not None, f"the lab is still running {EXIT_S:.0f} s after its terminal closed"
    print(f"{moment}: exited {took:.2f} s after the hangup, code {lab.proc.returncode}")
    # the signal that ended it was SIGHUP: killed by it before the lab's handler is in; from the
    # screen switch on (the handler comes before it), the lab handles it and exits with 128 + 1
    if moment == "before_first_frame":
        assert lab.proc.returncode == -signal.SIGHUP, lab.proc.returncode
    else:
        assert lab.proc.returncode == 128 + signal.SIGHUP, lab.proc.returncode
    assert wait_until(lambda: not _group_members(lab.pgid), 10), "left processes behind"
    assert runs.list_runs(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["hang_up", "hang_up_and_hup_group", "sigterm"])
def test_a_run_ends_cancelled_with_the_reason_when_the_lab_goes(lab, tmp_path, how):
    lab = lab("--autostart", "--set", "optim.epochs=100000", "--set", "early_stopping.enabled=false")
    assert wait_until(lambda: (d := the_run(tmp_path)) is not None and epochs_in(d) >= 2, 120), \
        lab.screen_text()[-2000:]
    d = the_run(tmp_path)
    if how == "sigterm":
        t0 = time.monotonic()
        lab.proc.send_signal(signal.SIGTERM)  # the lab only, its terminal stays
    else:
        t0 = lab.hang_up()
        if how == "hang_up_and_hup_group":
            # what a shell passes on to its jobs, or tmux to a pane: the training child gets it too
            os.killpg(lab.pgid, signal.SIGHUP)
    took = lab.exit_within(t0)
    assert took is not None, f"the lab is still running {EXIT_S:.0f} s after {how}"
    print(f"{how}: exited {took:.2f} s after it, code {lab.proc.returncode}")
    signum = signal.SIGTERM if how == "sigterm" else signal.SIGHUP
    assert lab.proc.returncode == 128 + signum
    assert wait_until(lambda: (d / "summary.json").is_file(), 10)
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "cancelled"
    assert s["epochs_run"] == epochs_in(d) >= 2
    assert stop_reason_ok(s, "stopped by SIGTERM" if how == "sigterm" else "terminal closed (SIGHUP)"), s["reason"]
    assert wait_until(lambda: not _group_members(lab.pgid), 10), "left processes behind"
    if how == "sigterm":  # the terminal was still there: the lab left it as it found it
        assert wait_until(lambda: b"\x1b[?1049l" in bytes(lab.output), 2)  # out of the alternate screen


WEDGED = """
import os, signal, sys, time
from textual.app import App
from gengap_tui.tui.terminal import run_guarded

out, how = sys.argv[1], sys.argv[2]

class Wedged(App):
    def on_mount(self):
        self.set_timer(0.3, self.wedge)

    def wedge(self):
        open(out + ".wedged", "w").close()
        if how == "loop":  # the event loop never runs again; Python signal handlers still do
            while True:
                time.sleep(0.1)
        # blocked in C with the signals masked: no Python handler ever runs (only the C-level
        # wakeup fd can wake the watchdog)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGTERM})
        os.read(os.pipe()[0], 1)

def close_run(reason, timeout):
    with open(out, "w") as f:
        f.write(reason)

sys.exit(run_guarded(Wedged(), close_run, exit_after_s=2.0))
"""


@pytest.mark.slow
@pytest.mark.parametrize("wedge", ["loop", "c_call"])
@pytest.mark.parametrize("how", ["hang_up", "sigterm"])
def test_a_wedged_app_is_ended_by_the_deadline(lab, tmp_path, wedge, how):
    """run_guarded's last resort: an app whose event loop never gets to exit is ended with
    os._exit(128 + signum) exit_after_s after the signal, close_run having been called."""
    out = tmp_path / "reason"
    lab = lab(argv=[sys.executable, "-c", WEDGED, str(out), wedge])
    assert wait_until(lambda: Path(str(out) + ".wedged").exists() or lab.proc.poll() is not None, 60)
    assert lab.proc.poll() is None, lab.screen_text()[-2000:]
    if how == "sigterm":
        t0 = time.monotonic()
        lab.proc.send_signal(signal.SIGTERM)
    else:
        t0 = lab.hang_up()
    took = lab.exit_within(t0, 2.0 + 5.0)
    assert took is not None, "still running after its deadline"
    print(f"wedged ({wedge}), {how}: exited {took:.2f} s after it, code {lab.proc.returncode}")
    signum = signal.SIGTERM if how == "sigterm" else signal.SIGHUP
    assert lab.proc.returncode == 128 + signum
    assert took >= 1.5  # the deadline, not an exit of the app
    assert out.read_text() == ("stopped by SIGTERM" if how == "sigterm" else "terminal closed (SIGHUP)")
