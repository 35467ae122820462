"""Training in a separate, *spawned* process, steered and read from the UI process
(docs/ARCHITECTURE.md, "Processes").

    from gengap_tui.worker import RunHandle, prepare_multiprocessing
    prepare_multiprocessing()                   # once, before a Textual App.run()
    h = RunHandle.start(cfg.dump(), "runs")     # the child validates, trains, writes the run dir
    for msg in h.poll():                        # non-blocking; `protocol` messages, oldest first
        ...                                     # RunDir | Epoch | Event | Summary | Error | Warning
    h.pause(); h.resume(); h.tweak(lr=0.01); h.stop()

`SweepHandle.start(cfg.dump(), "runs", "model.width", [2, 4, 8])` spawns a sweep the same way.

The child runs the one run lifecycle (`session.run_session` / `sweep_session`) with one
`control.RunControl`, fed by the UI's queue (`control.QueueFeed`, which also notices the UI
process dying), by the run directory's control.jsonl (so `attach` steers a lab run too), and by
SIGTERM / SIGHUP (SIGINT is ignored: the UI owns Ctrl+C, and the terminal sends it to the whole
process group). The child writes the run directory itself, so nothing is lost if the UI dies; the
queue is a live stream of the same records, as wire dicts that `poll` decodes (`protocol.decode`).

If the child dies without a summary (SIGKILL, OOM killer, a crash in C code), `poll()` says so
with a `failed` event and summary and writes them into the run dir, keeping every finished epoch.
A handle can also be given a *warm* process (`warm.WarmProcess`: spawned before it was needed,
torch imported, data built) instead of spawning one: `RunHandle.start(cfg, runs_dir, warm=...)`.
Its process may outlive the run (it goes back to waiting for the next one), so such a handle's run
ends with its summary or error, not with the process; it reads nothing after that.
The UI side of this module never imports torch (a test checks it).
"""

from __future__ import annotations

import atexit
import collections
import multiprocessing
import multiprocessing.util  # noqa: F401 - its atexit hook must be registered before ours
import os
import queue
import signal
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from . import runs
from .protocol import (USER_STOP, Command, Epoch, Error, Event, Pause, ProtocolError, Resume, RunDir, Stop,
                       Summary, Tweak, Warning, decode)

EXIT_GRACE_S = 10.0       # at interpreter exit: how long a stopped child may take to write its summary
WARM_RECORD = "warm"      # the "type" of a warm process's own reports on the stream (`warm.py`)
REUSABLE = ("completed", "early_stopped", "cancelled")  # a warm process may train again after these
# the lab's training processes yield the CPU to the lab's UI: on a busy 2-core box the command
# palette opened in ~150 ms while a run trained at nice 0, ~80 ms at nice 10, with the same
# epochs/s (bench/ui.py); on an idle box the UI and the training thread each have a core anyway
LAB_NICE = 10


def prepare_multiprocessing() -> None:
    """Start multiprocessing's resource tracker now, while sys.stderr is still the real one.

    Textual replaces sys.stderr; starting the tracker lazily inside a running app then fails with
    `ValueError: bad value(s) in fds_to_keep`. Call this before `App.run()`; it is idempotent."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def _exit_reason(code: int | None) -> str:
    text = f"the training process died (exit code {code}"
    if code is not None and code < 0:
        try:
            text += f", {signal.Signals(-code).name}"
        except ValueError:
            pass
    return text + ")"


# =============================================================================================
# UI side


_LIVE: "weakref.WeakSet[RunHandle]" = weakref.WeakSet()


class RunHandle:
    """One training run in a spawned child process, seen from the UI process."""

    def __init__(self, process, out_q, ctl_q, config: dict, runs_dir: Path, warm=None):
        self._proc = process
        self._warm = warm  # the warm process this run was given to (`warm.WarmProcess`), or None
        self._out = out_q
        self._ctl = ctl_q
        self.config = config
        self.runs_dir = runs_dir
        self.started_at = time.time()
        self._buffer: collections.deque[dict] = collections.deque()
        self._run_dir: Path | None = None
        self._summary: dict | None = None
        self._error: str | None = None
        self._epochs = 0
        self._closed = False
        self._ended = False  # every message is in (or synthesized) and the queues are closed
        self._last_in = False  # the summary or error has been read from the queue

    # ------------------------------------------------------------------------------ start
    @classmethod
    def start(cls, config: dict, runs_dir: str | os.PathLike | None = None, warm=None) -> "RunHandle":
        """Spawn a child that validates `config` (a `Config.dump()` dict), trains it and writes a
        run directory under `runs_dir` (default: $GENGAP_RUNS_DIR or ./runs). With `warm` (a
        `warm.Prewarmer`), its warm process trains it if it has one free; else a child is spawned."""
        config, runs_dir = _start_args(config, runs_dir)
        handle = warm.take(cls, {"job": "run", "config": config, "runs_dir": str(runs_dir)}) if warm else None
        return handle or cls._spawn(_child_main, (config, str(runs_dir)), config, runs_dir)

    @classmethod
    def _spawn(cls, target, args: tuple, config: dict, runs_dir: Path, name: str = "gengap-train"):
        """Start `target(*args, out_q, ctl_q, parent_pid)` in a spawned child and wrap it."""
        proc, out_q, ctl_q = spawn_child(target, args, name)
        handle = cls(proc, out_q, ctl_q, config, runs_dir)
        _LIVE.add(handle)
        return handle

    # ------------------------------------------------------------------------------ state
    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """The run's process is there and the run is not over (a warm process that outlives its
        run counts as alive only until the run's summary or error has been read)."""
        return self._live()

    def _live(self) -> bool:
        return self._proc.is_alive() and not (self._warm is not None and self._last_in)

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    @property
    def run_dir(self) -> Path | None:
        """The run directory, once the child has reported it (see `poll`)."""
        return self._run_dir

    @property
    def finished(self) -> bool:
        """A summary has come through `poll` (the run ended, one way or another)."""
        return self._summary is not None

    @property
    def summary(self) -> dict | None:
        return self._summary

    @property
    def error(self) -> str | None:
        """The message of an `error` that came through `poll` (the run never started)."""
        return self._error

    @property
    def done(self) -> bool:
        """Nothing more will come: a summary or an error came through `poll`."""
        return self._summary is not None or self._error is not None

    # ------------------------------------------------------------------------------ control
    def send(self, cmd: Command) -> None:
        """A control command (`protocol.Pause` / `Resume` / `Stop` / `Tweak`) for the child."""
        if self._closed or not self._live():
            return
        self._ctl.put(cmd.to_wire())

    def pause(self) -> None:
        """Pause at the end of the current epoch (a `paused` event says when)."""
        self.send(Pause())

    def resume(self) -> None:
        self.send(Resume())

    def stop(self, reason: str = USER_STOP) -> None:
        """End the run as cancelled (within one batch, also while paused); the summary follows
        and its reason starts with `reason`."""
        self.send(Stop(reason))

    def tweak(self, **changes: Any) -> None:
        """Change lr, weight_decay, patience, observe or min_delta from the next epoch on.
        Raises ValueError here, in the UI, for an unknown setting or a value out of range."""
        self.send(Tweak(changes))

    def terminate(self) -> None:
        """SIGTERM: the child ends the run as cancelled and writes its summary."""
        if self._live():
            self._proc.terminate()

    def kill(self) -> None:
        """SIGKILL the child. `poll` then reports the run as failed and writes summary.json."""
        if self._live():
            self._proc.kill()
            self._proc.join(5)

    # ------------------------------------------------------------------------------ reading
    def _get_nowait(self):
        while True:
            if self._closed or (self._last_in and self._warm is not None):
                return None  # what comes after the run's last message is the warm process's
            try:
                record = self._out.get_nowait()
            except queue.Empty:
                return None
            except (EOFError, OSError, ValueError):
                return None
            if self._warm is not None and isinstance(record, dict) and record.get("type") == WARM_RECORD:
                self._warm.note(record)  # the warm process's own report (it was ready, ...)
                continue
            try:
                msg = decode(record)
            except ProtocolError as exc:  # checked where it crosses the process boundary
                return Warning(f"a bad message from the training process was dropped: {exc}")
            if isinstance(msg, (Summary, Error)):
                self._last_in = True
            return msg

    def _drain_to_buffer(self) -> None:
        while (msg := self._get_nowait()) is not None:
            self._buffer.append(msg)

    def poll(self, max_items: int = 1000) -> list:
        """The messages that arrived since the last call, oldest first; never blocks."""
        exited = not self._proc.is_alive()  # before draining: then the drain sees everything
        items: list = []
        while len(items) < max_items:
            msg = self._buffer.popleft() if self._buffer else self._get_nowait()
            if msg is None:
                break
            self._note(msg)
            items.append(msg)
        if exited and not self._ended and len(items) < max_items:
            for msg in self._after_exit():
                self._note(msg)
                items.append(msg)
        return items

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the child to exit (reading its messages meanwhile so that it cannot block
        on a full pipe; `poll` still returns them). True if it has exited (a warm process's run:
        if the run is over)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._live():
            self._drain_to_buffer()
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                break
            self._proc.join(left)
        self._drain_to_buffer()
        return not self._live()

    def _note(self, msg) -> None:
        if isinstance(msg, RunDir):
            self._run_dir = Path(msg.path)
        elif isinstance(msg, Epoch):
            self._epochs += 1
        elif isinstance(msg, Summary):
            self._summary = msg.summary
        elif isinstance(msg, Error):
            self._error = msg.message

    def _after_exit(self) -> list:
        """The child has exited and every message it sent has been read."""
        self._ended = True
        self._close_queues()
        if self.done:
            return []
        # it died without a summary: SIGKILL, the OOM killer, a crash in native code
        reason = _exit_reason(self._proc.exitcode)
        msgs: list = []
        summary = runs.read_json(self._run_dir / "summary.json") if self._run_dir else None
        if summary is None:  # (else it wrote the summary but died before sending it)
            summary, event = self._failed_summary(reason)
            if event is not None:
                msgs.append(Event(event))
            if self._run_dir is not None:
                try:
                    if event is not None:
                        _append_jsonl(self._run_dir / "events.jsonl", event)
                    runs.write_json_atomic(self._run_dir / "summary.json", summary)
                except OSError:
                    pass
        msgs.append(Summary(summary))
        return msgs

    def _failed_summary(self, reason: str) -> tuple[dict, dict | None]:
        rows = runs.read_jsonl(self._run_dir / "metrics.jsonl") if self._run_dir else []
        events = runs.read_jsonl(self._run_dir / "events.jsonl") if self._run_dir else []
        cfg = (runs.read_json(self._run_dir / "config.json") if self._run_dir else None) or self.config
        last = rows[-1] if rows else {}
        epochs = last.get("epoch", len(rows)) if rows else 0
        would = next((e.get("epoch") for e in events if e.get("event") == "would_stop"), None)
        summary = {
            "status": "failed", "epochs_run": epochs, "stop_epoch": None,
            "best_epoch": last.get("es_best_epoch"), "best_value": last.get("es_best"),
            "monitor": (cfg.get("early_stopping") or {}).get("monitor", "val_err"),
            "would_stop_epoch": would, "restored_best": False, "test_loss": None, "test_err": None,
            "wall_seconds": time.time() - self.started_at,
            "device": cfg.get("device_name") or cfg.get("device"), "reason": reason,
        }
        if last:
            summary.update(final_train_err=last.get("train_err"), final_val_err=last.get("val_err"))
        event = {"event": "failed", "time": time.time(), "epoch": epochs, "error": reason}
        return summary, event

    def _close_queues(self) -> None:
        if self._closed:
            return
        self._closed = True
        for q in (self._ctl, self._out):
            try:
                q.cancel_join_thread()
                q.close()
            except (OSError, ValueError, AttributeError):
                pass

    def close(self, timeout: float = EXIT_GRACE_S, reason: str = USER_STOP) -> None:
        """Stop the run if it is still going (saying why), give the child `timeout` seconds to
        write its summary, then kill it. Messages stay readable through `poll`."""
        if self._live():
            self.stop(reason)
            if not self.join(timeout):
                self.terminate()
                if not self.join(2.0):
                    self.kill()
        self.join(1.0)

    def __repr__(self) -> str:
        state = "alive" if self._proc.is_alive() else f"exited {self._proc.exitcode}"
        return f"<RunHandle pid={self.pid} {state} run_dir={self._run_dir}>"


class SweepHandle(RunHandle):
    """A sweep (`core.sweep.Sweep`) in a spawned child process, seen from the UI process.

        h = SweepHandle.start(cfg.dump(), "runs", "model.width", [2, 4, 8])
        h.poll()   # RunDir(<sweep dir>), Progress(row), ..., Summary(the sweep's summary.json)
        h.stop()   # the sweep ends as cancelled and writes its partial sweep.jsonl / summary.json

    The same child machinery as a run (SIGTERM / SIGHUP / parent death end it as cancelled, a
    child that dies without a summary is reported as failed); the messages differ: `run_dir` names
    the sweep directory (`runs.new_run_dir(runs_dir, "sweep-<preset>")`), `progress` carries one
    progress.jsonl line, `summary` the sweep's summary.json. The files are the stream: the lab
    follows the directory (`sources.SweepDirSource`) whoever writes it. Pause holds the sweep at the
    end of an epoch; sweeps cannot be tweaked."""

    @classmethod
    def start(cls, config: dict, runs_dir: str | os.PathLike | None = None, param: str | None = None,
              values: list | None = None, ray: dict | None = None, warm=None, param2: str | None = None,
              values2: list | None = None) -> "SweepHandle":
        """Spawn a child that sweeps `param` (default: the config's sweep.param) over `values`
        (default: its sweep.values), with `param2` over `values2` the grid of the two, and writes
        a sweep directory under `runs_dir`; `ray` (a
        `ray_options.RayOptions` dict) runs its units on Ray. With `warm` (a `warm.Prewarmer`), its
        warm process sweeps if it has one free."""
        config, runs_dir = _start_args(config, runs_dir)
        sweep = config.get("sweep") or {}
        param = param or sweep.get("param") or "model.width"
        values = list(values if values is not None else sweep.get("values") or [])
        grid = [param2, list(values2 or [])] if param2 else None
        job = {"job": "sweep", "config": config, "runs_dir": str(runs_dir), "param": param, "values": values,
               "ray": ray, "grid": grid}
        handle = warm.take(cls, job) if warm else None
        handle = handle or cls._spawn(_sweep_child_main, (config, str(runs_dir), param, values, ray, grid), config,
                                      runs_dir, name="gengap-sweep")
        handle.param, handle.values = param, values
        return handle

    def tweak(self, **changes: Any) -> None:  # noqa: ARG002
        raise ValueError("a sweep cannot be tweaked live (every value trains with the same settings)")

    def _failed_summary(self, reason: str) -> tuple[dict, dict | None]:
        return {"status": "failed", "reason": reason, "param": getattr(self, "param", None),
                "values": getattr(self, "values", None), "wall_seconds": time.time() - self.started_at}, None


def spawn_child(target, args: tuple, name: str):
    """Start `target(*args, out_q, ctl_q, parent_pid)` in a spawned process (a run's child or the
    warm process); returns the process and its two queues (messages out, commands in)."""
    prepare_multiprocessing()
    ctx = multiprocessing.get_context("spawn")
    out_q, ctl_q = ctx.Queue(), ctx.Queue()
    # daemon: if the UI exits without stopping it, multiprocessing terminates it (SIGTERM ->
    # cancelled, summary written) instead of waiting for the whole run to finish
    proc = ctx.Process(target=target, name=name, daemon=True, args=(*args, out_q, ctl_q, os.getpid()))
    proc.start()
    return proc, out_q, ctl_q


def _start_args(config, runs_dir) -> tuple[dict, Path]:
    if hasattr(config, "dump"):  # a Config object is welcome too
        config = config.dump()
    return dict(config), runs.default_runs_dir(runs_dir).absolute()


def _append_jsonl(path: Path, obj: dict) -> None:
    """Append a record, starting a new line if a killed writer left a half-written one."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        prefix = b""
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = b"\n"
        f.write(prefix + (runs.dumps(obj) + "\n").encode("utf-8"))
        f.flush()


@atexit.register
def _stop_live_runs() -> None:
    """At UI exit: stop runs still going and let them write their summaries. Registered after
    multiprocessing's own exit hook, so it runs first (which would otherwise SIGTERM daemonic
    children and could wait on a child blocked on a full pipe)."""
    for h in list(_LIVE):
        try:
            h.close()
        except Exception:  # noqa: BLE001 - never break interpreter exit
            pass


# =============================================================================================
# child side


class _Sender:
    """The child's end of the stream: wire dicts on the queue, nothing once the UI is gone."""

    def __init__(self, out):
        self.out = out
        self.orphaned = False

    def __call__(self, msg) -> None:
        if self.orphaned:
            return
        try:
            self.out.put(msg.to_wire())
        except (OSError, ValueError):
            pass

    def orphan(self) -> None:
        self.orphaned = True
        try:
            self.out.cancel_join_thread()
        except (AttributeError, OSError):
            pass


def _redirect_output(path: Path | None) -> None:
    """Send this process's stdout / stderr (library warnings, a native crash's last words) to
    `path`, or nowhere, instead of the lab's terminal, where they would scribble over the screen."""
    try:
        fd = os.open(path if path is not None else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def lower_priority() -> None:
    """This (child) process runs LAB_NICE steps nicer than the lab (POSIX; else nothing)."""
    try:
        os.nice(LAB_NICE)
    except (AttributeError, OSError):
        pass


def _child_main(config: dict, runs_dir: str, out, ctl, parent_pid: int) -> None:
    """Entry point of the spawned training process."""
    lower_priority()
    sys.exit(run_job({"job": "run", "config": config, "runs_dir": runs_dir}, out, ctl, parent_pid)[0])


def _sweep_child_main(config: dict, runs_dir: str, param: str, values: list, ray: dict | None, grid: list | None,
                      out, ctl, parent_pid: int) -> None:
    """Entry point of the spawned sweep process (`SweepHandle`)."""
    lower_priority()
    job = {"job": "sweep", "config": config, "runs_dir": runs_dir, "param": param, "values": values, "ray": ray,
           "grid": grid}
    sys.exit(run_job(job, out, ctl, parent_pid)[0])


def run_job(job: dict, out, ctl, parent_pid: int, signalled: list[int] | tuple = ()) -> tuple[int, bool]:
    """One session in this (child) process: `job` is {"job": "run" | "sweep", "config",
    "runs_dir", and for a sweep "param", "values", "ray", "grid" ([param2, values2] or None)}. Returns the exit code and whether the process
    is clean enough to train again (`warm.py`): the session ended completed, early-stopped or
    cancelled by the lab (or never started), no signal, no crash, the lab still there, the control
    feed closed. `signalled`: SIGTERM / SIGHUP that came before the job (they stop it at once)."""
    from .session import run_session, sweep_session

    runs_dir = job["runs_dir"]
    if job["job"] == "sweep":
        param, values, ray = job["param"], job["values"], job.get("ray")
        param2, values2 = job.get("grid") or (None, None)
        return _child_entry(out, ctl, parent_pid, job["config"],
                            lambda cfg, **kw: sweep_session(cfg, param, values, runs_dir, ray=ray, param2=param2,
                                                            values2=values2, **kw), signalled)
    return _child_entry(out, ctl, parent_pid, job["config"], lambda cfg, **kw: run_session(cfg, runs_dir, **kw),
                        signalled)


def _child_entry(out, ctl, parent_pid: int, config: dict, session, signalled=()) -> tuple[int, bool]:
    """Signals, the control feed and the last-resort failure report around one session."""
    from .config import ConfigError, validate
    from .control import QueueFeed, RunControl
    from .session import fail_directory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the UI owns Ctrl+C
    _redirect_output(None)  # until the run directory exists and its worker.log takes over
    send = _Sender(out)
    control = RunControl(on_warning=lambda text: send(Warning(text)))
    signals: list[int] = []

    def on_signal(signum, frame=None) -> None:
        signals.append(signum)
        control.on_signal(signum, frame)

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, on_signal)
    for signum in list(signalled):  # (read after our handlers are in: none is missed)
        on_signal(signum)
    feed = QueueFeed(control, ctl, parent_pid, on_orphaned=send.orphan).start()
    made: list[Path] = []

    def ready(_trainer, run_dir: Path) -> None:
        made.append(run_dir)
        _redirect_output(run_dir / "worker.log")

    code, clean = 1, False
    try:
        try:
            cfg = validate(config)
        except ConfigError as exc:
            send(Error(str(exc)))
            code, clean = 2, True
        else:
            outcome = session(cfg, control=control, emit=send, on_ready=ready)
            code = 0 if outcome.error is None else (1 if outcome.cancelled else 2)
            # a session that failed to start (data, device) is not trusted again: only a stop
            clean = outcome.cancelled or (outcome.summary or {}).get("status") in REUSABLE
    except BaseException as exc:  # noqa: BLE001 - report, and close the run dir if one exists
        message = f"the training process failed: {type(exc).__name__}: {exc}"
        summary = fail_directory(made[0] if made else None, message)
        send(Summary({"status": "failed", "reason": summary["reason"]}) if made else Error(message))
    finally:
        feed.close()
        _redirect_output(None)  # worker.log is the run's: nothing more goes there
    return code, clean and not signals and not send.orphaned and feed.closed
