"""A training process started before it is needed, so that the lab's ctrl+r trains at once
(docs/ARCHITECTURE.md, "Processes").

    warm = Prewarmer()
    warm.tick(idle=True, config=cfg.dump())     # from the lab's poll: start, reuse or replace
    h = RunHandle.start(cfg.dump(), runs_dir, warm=warm)   # its warm process trains it, if free
    warm.close()                                # the lab quits: no process is left behind

The child (`_warm_main`) imports torch and prepares the config's threads, device and data
(`session.prewarm`), reports `ready` (a `{"type": "warm", ...}` record on its stream, with its
memory), and waits for a job on its control queue: {"job": "run" | "sweep", "config", "runs_dir",
...}. It runs the job exactly as a freshly spawned child would (`worker.run_job`: the same
session, signals and control feeds), then goes back to waiting (ready again, `jobs` one higher)
only when the job ended cleanly: completed, early-stopped or cancelled by the lab, or refused before
anything was made (a config it could not build: the error names the field), no signal, no crash,
the lab still there, its control feed closed. After anything else (failed: a crash, out of memory;
diverged; a signal) it exits and the lab starts a new one (tests/test_warm.py checks each).

SIGTERM and SIGHUP end it at once while it warms up (their default action) and within 0.1 s while
it waits. A watcher thread ends it (os._exit) when the lab process goes away, except during a job,
where the job's QueueFeed stops the run first so that its summary is written. The lab closes it
with SIGKILL when no run is going in it (`WarmProcess.close`), after its runs (`Prewarmer.close`).
It runs at nice +10, as the lab's cold training processes do (`worker.LAB_NICE`).

States, seen from the lab (`WarmProcess.state`): starting -> ready -> busy -> finishing -> ready
(reused) or gone (exited; replaced when nothing of the lab trains). The UI side imports no torch.
"""

from __future__ import annotations

import atexit
import gc
import os
import queue
import signal
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from .worker import (_LIVE, WARM_RECORD, _redirect_output, _stop_live_runs, lower_priority,
                     run_job, spawn_child)

WAIT_POLL_S = 0.1        # how often a waiting warm process looks for a job, a signal, its parent
REPLACE_AFTER_S = 10.0   # a process neither ready nor gone this long after its run ended: replaced

_PROCESSES: "weakref.WeakSet[WarmProcess]" = weakref.WeakSet()


# =============================================================================================
# UI side


class WarmProcess:
    """One warm training process, seen from the lab."""

    def __init__(self, process, out_q, ctl_q, config: dict):
        self._proc, self._out, self._ctl = process, out_q, ctl_q
        self.config = config          # what it was prepared for (a job may bring another)
        self.jobs = 0                 # jobs given to it
        self.ready_for = -1           # `jobs` in its last ready report
        self.report: dict = {}        # that report: pid, rss_kb, device, seconds (or error)
        self.handle = None            # the handle of its current (or last) job
        self.started_at = time.monotonic()
        self._over_since: float | None = None
        self._closed = False

    @classmethod
    def start(cls, config: dict) -> "WarmProcess":
        """Spawn a process that prepares itself for `config` (a `Config.dump()` dict) and waits."""
        proc, out_q, ctl_q = spawn_child(_warm_main, (dict(config),), "gengap-warm")
        warm = cls(proc, out_q, ctl_q, dict(config))
        _PROCESSES.add(warm)
        return warm

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def busy(self) -> bool:
        """A run (or sweep) of it is going: its stream is the run's."""
        return self.handle is not None and self.handle.alive

    @property
    def state(self) -> str:
        if self._closed or not self._proc.is_alive():
            return "gone"
        if self.busy:
            return "busy"
        if self.ready_for == self.jobs:
            return "ready"
        return "starting" if self.jobs == 0 else "finishing"

    def note(self, record: dict) -> None:
        """One of its reports (read here, or by the handle of a job given before it was ready)."""
        if record.get("state") == "ready":
            self.ready_for = int(record.get("jobs", -1))
            self.report = record

    def poll(self) -> str:
        """Read its reports (never while a run of it reads the stream) and return its state."""
        state = self.state
        if state in ("starting", "ready", "finishing"):
            while True:
                try:
                    record = self._out.get_nowait()
                except (queue.Empty, EOFError, OSError, ValueError):
                    break
                if isinstance(record, dict) and record.get("type") == WARM_RECORD:
                    self.note(record)
            state = self.state
        self._over_since = (self._over_since or time.monotonic()) if state == "finishing" else None
        return state

    @property
    def finishing_for(self) -> float:
        """Seconds since its run ended without a ready report or an exit (0 if not finishing)."""
        return 0.0 if self._over_since is None else time.monotonic() - self._over_since

    def take(self, cls, job: dict):
        """Give it `job`; returns a `cls` handle (RunHandle / SweepHandle) of the job, or None when
        it cannot take one now (busy, finishing a run, gone)."""
        if self.poll() not in ("starting", "ready"):
            return None
        self._ctl.put(job)
        self.jobs += 1
        self.handle = cls(self._proc, self._out, self._ctl, job["config"], Path(job["runs_dir"]), warm=self)
        _LIVE.add(self.handle)
        return self.handle

    def close(self, timeout: float = 2.0) -> None:
        """End the process. With a run still going in it (the lab closes its runs first, so only
        when that timed out): SIGTERM, the run ends cancelled with its summary, SIGKILL after
        `timeout` s. Else SIGKILL at once: a finished run has written everything before its
        summary came, and a waiting process holds nothing (SIGTERM there cost the lab's exit
        ~0.6 s of the interpreter's teardown of torch)."""
        if self._proc.is_alive() and self.busy:
            self._proc.terminate()
            self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(2.0)
        if not self._closed:
            self._closed = True
            for q in (self._ctl, self._out):
                try:
                    q.cancel_join_thread()
                    q.close()
                except (OSError, ValueError, AttributeError):
                    pass

    def __repr__(self) -> str:
        return f"<WarmProcess pid={self.pid} {self.state} jobs={self.jobs}>"


class Prewarmer:
    """The lab's warm training process: at most one, started when nothing of the lab trains,
    reused after a clean run, replaced after anything else."""

    def __init__(self) -> None:
        self.process: WarmProcess | None = None
        self.closed = False
        self.started = 0  # warm processes started so far
        self._lock = threading.Lock()  # close() may come from the lab's signal watchdog thread

    @property
    def state(self) -> str:
        """off | starting | ready | busy | finishing."""
        if self.process is None:
            return "off"
        state = self.process.state
        return "off" if state == "gone" else state

    def tick(self, idle: bool, config: dict | Callable[[], dict] | None) -> str:
        """Keep one warm process for `config` (or what it returns; None: prewarming is off, close
        an idle one). `idle`: nothing of the lab trains (none is started beside a run)."""
        if not self._lock.acquire(blocking=False):
            return self.state  # being closed
        try:
            return self._tick(idle, config)
        finally:
            self._lock.release()

    def _tick(self, idle: bool, config: Any) -> str:
        p = self.process
        if p is not None:
            state = p.poll()
            if state == "gone" or (state == "finishing" and p.finishing_for > REPLACE_AFTER_S):
                p.close()
                self.process = p = None
            elif config is None and state in ("starting", "ready"):
                p.close()
                self.process = p = None
        if p is None and idle and config is not None and not self.closed:
            self.process = WarmProcess.start(config() if callable(config) else config)
            self.started += 1
        return self.state

    def poll(self) -> str:
        """Its process's reports read, its state (without starting or closing anything)."""
        if self.process is not None:
            self.process.poll()
        return self.state

    def take(self, cls, job: dict):
        """A handle of `job` in the warm process, or None (no free one: the caller spawns)."""
        if self.process is None or self.closed:
            return None
        return self.process.take(cls, job)

    def close(self) -> None:
        """No process is left behind (call after the lab's runs have been stopped)."""
        with self._lock:
            self.closed = True
            if self.process is not None:
                self.process.close()


@atexit.register
def _close_warm_processes() -> None:
    """At UI exit: runs first (their summaries), then every warm process. Registered after
    worker's hook, so it runs before it (and before multiprocessing's)."""
    try:
        _stop_live_runs()
    except Exception:  # noqa: BLE001 - never break interpreter exit
        pass
    for warm in list(_PROCESSES):
        try:
            warm.close(1.0)
        except Exception:  # noqa: BLE001
            pass


# =============================================================================================
# child side


def _rss_kb() -> int | None:
    """This process's resident memory (Linux /proc), in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Watcher(threading.Thread):
    """Ends the process when the lab goes away, unless a job runs (its QueueFeed handles that)."""

    def __init__(self, parent_pid: int):
        super().__init__(name="gengap-warm-watch", daemon=True)
        self.parent_pid = parent_pid
        self.busy = False

    def run(self) -> None:
        while True:
            time.sleep(WAIT_POLL_S)
            if not self.busy and os.getppid() != self.parent_pid:
                os._exit(0)


def _wait_for_job(ctl, parent_pid: int, signals: list[int]) -> dict | None:
    """The next job from the lab, or None: a signal came, the lab went away, the queue broke.
    Commands that come meanwhile were meant for a run that is over: they are dropped."""
    while not signals:
        if os.getppid() != parent_pid:
            return None
        try:
            record = ctl.get(timeout=WAIT_POLL_S)
        except queue.Empty:
            continue
        except (EOFError, OSError, ValueError):
            return None
        if isinstance(record, dict) and record.get("job") in ("run", "sweep"):
            return record
    return None


def _warm_main(config: dict, out, ctl, parent_pid: int) -> None:
    """Entry point of a warm process: prepare, report ready, run jobs while they end cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the UI owns Ctrl+C
    lower_priority()
    _redirect_output(None)
    watcher = _Watcher(parent_pid)
    watcher.start()
    try:
        from .session import prewarm

        info = prewarm(config)
    except Exception as exc:  # noqa: BLE001 - a job with this config will say it properly
        info = {"error": f"{type(exc).__name__}: {exc}"}
    gc.collect()
    signals: list[int] = []  # SIGTERM / SIGHUP while waiting (or before a job's handlers are set)

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        signals.append(signum)

    jobs = 0
    while True:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                signal.signal(sig, on_signal)
        try:
            out.put({"type": WARM_RECORD, "state": "ready", "jobs": jobs, "pid": os.getpid(),
                     "rss_kb": _rss_kb(), **info})
        except (OSError, ValueError):
            sys.exit(0)
        job = _wait_for_job(ctl, parent_pid, signals)
        if job is None:  # told to go while idle: nothing to write, and the interpreter's own
            out.close()  # teardown of torch would keep the lab waiting ~0.6 s
            out.join_thread()
            os._exit(0)
        jobs += 1
        watcher.busy = True
        code, clean = run_job(job, out, ctl, parent_pid, signals)
        if not clean:
            sys.exit(code)
        watcher.busy = False
        gc.collect()
