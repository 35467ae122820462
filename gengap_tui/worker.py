"""Training in a separate, *spawned* process (DESIGN §1), steered and read from the UI process.

    from gengap_tui.worker import RunHandle, prepare_multiprocessing
    prepare_multiprocessing()                   # once, before a Textual App.run()
    h = RunHandle.start(cfg.dump(), "runs")     # the child validates, trains, writes the run dir
    for msg in h.poll():                        # non-blocking; call it from a timer or a worker
        ...                                     # {"type": "run_dir" | "epoch" | "event" | "summary" | "error" | "warning"}
    h.pause(); h.resume(); h.tweak(lr=0.01); h.stop()

A sweep runs the same way: `SweepHandle.start(cfg.dump(), "runs", "model.width", [2, 4, 8])` spawns
a child that calls `core.sweep.Sweep(...).run(sweep_dir)` (see `SweepHandle`).

The UI side of this module never imports torch (a test checks it): the child imports torch, the
trainer and the data inside `_child_main`. The child writes the run directory itself (exactly as
`gengap-tui run` does: config.json with torch_version and device_name, metrics.jsonl and
events.jsonl flushed every epoch, summary.json at the end), so nothing is lost if the UI dies;
the queue is only a live stream of the same records.

Messages (plain dicts, child -> UI):
    {"type": "run_dir", "path": str}                 the run directory exists (first message of a run)
    {"type": "epoch", "row": {...}}                  one metrics.jsonl row
    {"type": "event", "event": {...}}                one events.jsonl record (plus paused / resumed)
    {"type": "summary", "summary": {...}}            the run ended (the summary.json contents); last
    {"type": "error", "message": str}                nothing was trained and no run dir was created:
                                                     a bad config / data / runs dir (the message names
                                                     the field), or a stop before training started
    {"type": "warning", "message": str}              a control message was refused (a bad tweak)
If the child dies without a summary (SIGKILL, OOM killer, a crash in C code), `poll()` says so
with a `failed` event and summary and writes them into the run dir, keeping every finished epoch.

Control (UI -> child): pause / resume / stop / tweak. A thread in the child reads them at once:
stop and tweaks reach the trainer within one batch (`Trainer.request_stop` / `Trainer.tweak` are
thread-safe; tweaks apply at the next epoch and the trainer records a `tweaked` event); a pause
takes effect at the end of the current epoch, where the training thread waits, and is recorded as
`paused` / `resumed` events with that epoch. A stop while paused ends the run at once as cancelled.

Signals in the child: SIGINT is ignored (the UI owns Ctrl+C; the terminal sends it to the whole
process group); SIGTERM and SIGHUP end the run as cancelled with its summary written. The child
also watches its parent: when the UI process goes away, the run ends as cancelled.
"""

from __future__ import annotations

import atexit
import collections
import math
import multiprocessing
import multiprocessing.util  # noqa: F401 - its atexit hook must be registered before ours
import os
import queue
import signal
import sys
import threading
import time
import traceback
import weakref
from pathlib import Path
from typing import Any

from . import runs

# Mirrors gengap_tui.core.trainer.TWEAKABLE (not imported: that module imports torch).
TWEAKABLE = ("lr", "weight_decay", "patience", "observe", "min_delta")
PAUSE_POLL_S = 0.05       # how often a paused child looks for resume / stop
CONTROL_POLL_S = 0.25     # how often the control thread wakes up to check on its parent
EXIT_GRACE_S = 10.0       # at interpreter exit: how long a stopped child may take to write its summary


def prepare_multiprocessing() -> None:
    """Start multiprocessing's resource tracker now, while sys.stderr is still the real one.

    Textual replaces sys.stderr; starting the tracker lazily inside a running app then fails with
    `ValueError: bad value(s) in fds_to_keep`. Call this before `App.run()`; it is idempotent."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def check_tweaks(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate live changes with the trainer's rules and return them normalised; raise
    ValueError naming the setting. (An out-of-range value reaching the trainer would end the run
    as failed at the next epoch, so both sides check.)"""
    bad = sorted(set(changes) - set(TWEAKABLE))
    if bad:
        raise ValueError(f"cannot tweak {', '.join(bad)} live (allowed: {', '.join(TWEAKABLE)})")
    out: dict[str, Any] = {}
    for k, v in changes.items():
        if k == "observe":
            if not isinstance(v, bool):
                raise ValueError(f"observe = {v!r}: expected true or false")
            out[k] = v
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{k} = {v!r}: expected a number")
        if k == "patience":
            if int(v) != v or v < 1:
                raise ValueError(f"patience = {v!r}: expected an integer >= 1")
            out[k] = int(v)
            continue
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"{k} = {v!r}: expected a finite number")
        if k == "lr" and not (0 < v <= 1e6):
            raise ValueError(f"lr = {v!r}: expected 0 < lr <= 1e6")
        if k == "weight_decay" and not (0 <= v <= 10):
            raise ValueError(f"weight_decay = {v!r}: expected 0 <= weight_decay <= 10")
        if k == "min_delta" and v < 0:
            raise ValueError(f"min_delta = {v!r}: expected min_delta >= 0")
        out[k] = v
    return out


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

    def __init__(self, process, out_q, ctl_q, config: dict, runs_dir: Path):
        self._proc = process
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

    # ------------------------------------------------------------------------------ start
    @classmethod
    def start(cls, config: dict, runs_dir: str | os.PathLike | None = None) -> "RunHandle":
        """Spawn a child that validates `config` (a `Config.dump()` dict), trains it and writes a
        run directory under `runs_dir` (default: $GENGAP_RUNS_DIR or ./runs)."""
        config, runs_dir = _start_args(config, runs_dir)
        return cls._spawn(_child_main, (config, str(runs_dir)), config, runs_dir)

    @classmethod
    def _spawn(cls, target, args: tuple, config: dict, runs_dir: Path, name: str = "gengap-train"):
        """Start `target(*args, out_q, ctl_q, parent_pid)` in a spawned child and wrap it."""
        prepare_multiprocessing()
        ctx = multiprocessing.get_context("spawn")
        out_q, ctl_q = ctx.Queue(), ctx.Queue()
        # daemon: if the UI exits without stopping it, multiprocessing terminates it (SIGTERM ->
        # cancelled, summary written) instead of waiting for the whole run to finish
        proc = ctx.Process(target=target, name=name, daemon=True, args=(*args, out_q, ctl_q, os.getpid()))
        proc.start()
        handle = cls(proc, out_q, ctl_q, config, runs_dir)
        _LIVE.add(handle)
        return handle

    # ------------------------------------------------------------------------------ state
    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

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
    def _send(self, msg: tuple) -> None:
        if self._closed or not self._proc.is_alive():
            return
        self._ctl.put(msg)

    def pause(self) -> None:
        """Pause at the end of the current epoch (a `paused` event says when)."""
        self._send(("pause",))

    def resume(self) -> None:
        self._send(("resume",))

    def stop(self) -> None:
        """End the run as cancelled (within one batch, also while paused); the summary follows."""
        self._send(("stop",))

    def tweak(self, **changes: Any) -> None:
        """Change lr, weight_decay, patience, observe or min_delta from the next epoch on.
        Raises ValueError here, in the UI, for an unknown setting or a value out of range."""
        self._send(("tweak", check_tweaks(changes)))

    def terminate(self) -> None:
        """SIGTERM: the child ends the run as cancelled and writes its summary."""
        if self._proc.is_alive():
            self._proc.terminate()

    def kill(self) -> None:
        """SIGKILL the child. `poll` then reports the run as failed and writes summary.json."""
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

    # ------------------------------------------------------------------------------ reading
    def _get_nowait(self) -> dict | None:
        if self._closed:
            return None
        try:
            return self._out.get_nowait()
        except queue.Empty:
            return None
        except (EOFError, OSError, ValueError):
            return None

    def _drain_to_buffer(self) -> None:
        while (msg := self._get_nowait()) is not None:
            self._buffer.append(msg)

    def poll(self, max_items: int = 1000) -> list[dict]:
        """The messages that arrived since the last call, oldest first; never blocks."""
        exited = not self._proc.is_alive()  # before draining: then the drain sees everything
        items: list[dict] = []
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
        on a full pipe; `poll` still returns them). True if it has exited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._proc.is_alive():
            self._drain_to_buffer()
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                break
            self._proc.join(left)
        self._drain_to_buffer()
        return not self._proc.is_alive()

    def _note(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "run_dir":
            self._run_dir = Path(msg["path"])
        elif kind == "epoch":
            self._epochs += 1
        elif kind == "summary":
            self._summary = msg["summary"]
        elif kind == "error":
            self._error = msg.get("message", "")

    def _after_exit(self) -> list[dict]:
        """The child has exited and every message it sent has been read."""
        self._ended = True
        self._close_queues()
        if self.done:
            return []
        # it died without a summary: SIGKILL, the OOM killer, a crash in native code
        reason = _exit_reason(self._proc.exitcode)
        msgs: list[dict] = []
        summary = runs.read_json(self._run_dir / "summary.json") if self._run_dir else None
        if summary is None:  # (else it wrote the summary but died before sending it)
            summary, event = self._failed_summary(reason)
            if event is not None:
                msgs.append({"type": "event", "event": event})
            if self._run_dir is not None:
                try:
                    if event is not None:
                        _append_jsonl(self._run_dir / "events.jsonl", event)
                    runs.write_json_atomic(self._run_dir / "summary.json", summary)
                except OSError:
                    pass
        msgs.append({"type": "summary", "summary": summary})
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

    def close(self, timeout: float = EXIT_GRACE_S) -> None:
        """Stop the run if it is still going, give the child `timeout` seconds to write its
        summary, then kill it. Messages stay readable through `poll`."""
        if self._proc.is_alive():
            self.stop()
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
        h.poll()   # {"type": "run_dir", "path": <sweep dir>}, {"type": "progress", "row": ...}, ...
        h.stop()   # the sweep ends as cancelled and writes its partial sweep.jsonl / summary.json

    The same child machinery as a run (SIGTERM / SIGHUP / parent death end it as cancelled, a
    child that dies without a summary is reported as failed); the messages differ: `run_dir` names
    the sweep directory (`runs.new_run_dir(runs_dir, "sweep-<preset>")`), `progress` carries one
    progress.jsonl line, `summary` the sweep's summary.json. The files are the stream: the lab
    follows the directory (`replay.SweepSource`) whoever writes it. Pause holds the sweep at the
    end of an epoch; sweeps cannot be tweaked."""

    @classmethod
    def start(cls, config: dict, runs_dir: str | os.PathLike | None = None, param: str | None = None,
              values: list[float] | None = None) -> "SweepHandle":
        """Spawn a child that sweeps `param` (default: the config's sweep.param) over `values`
        (default: its sweep.values) and writes a sweep directory under `runs_dir`."""
        config, runs_dir = _start_args(config, runs_dir)
        sweep = config.get("sweep") or {}
        param = param or sweep.get("param") or "model.width"
        values = [float(v) for v in (values if values is not None else sweep.get("values") or [])]
        handle = cls._spawn(_sweep_child_main, (config, str(runs_dir), param, values), config, runs_dir,
                            name="gengap-sweep")
        handle.param, handle.values = param, values
        return handle

    def tweak(self, **changes: Any) -> None:  # noqa: ARG002
        raise ValueError("a sweep cannot be tweaked live (every value trains with the same settings)")

    def _failed_summary(self, reason: str) -> tuple[dict, dict | None]:
        return {"status": "failed", "reason": reason, "param": getattr(self, "param", None),
                "values": getattr(self, "values", None), "wall_seconds": time.time() - self.started_at}, None


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


class _Child:
    """State shared by the training thread, the control thread and the signal handlers.

    Plain attributes only (no locks): a signal handler runs on the main thread between
    bytecodes and must never wait on a lock that thread may hold."""

    def __init__(self, out, ctl, parent_pid: int):
        self.out, self.ctl, self.parent_pid = out, ctl, parent_pid
        self.trainer = None
        self.writer = None
        self.stop_requested = False
        self.stop_reason: str | None = None
        self.paused = False
        self.pending_tweaks: dict[str, Any] = {}
        self.orphaned = False
        self.done = False
        self.sweep_dir: Path | None = None

    # ----------------------------------------------------------------------------- output
    def send(self, msg: dict) -> None:
        if self.orphaned:
            return
        try:
            self.out.put(msg)
        except (OSError, ValueError):
            pass

    # ----------------------------------------------------------------------------- control
    def request_stop(self, reason: str | None = None) -> None:
        if not self.stop_requested:
            self.stop_reason = reason
        self.stop_requested = True
        trainer = self.trainer
        if trainer is not None:
            trainer.request_stop()

    def on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self.request_stop(f"stopped by {signal.Signals(signum).name}")

    def attach(self, trainer) -> None:
        self.trainer = trainer  # set before reading the flags: a stop in between is not lost
        if self.pending_tweaks and hasattr(trainer, "tweak"):
            trainer.tweak(**self.pending_tweaks)
            self.pending_tweaks = {}
        if self.stop_requested:
            trainer.request_stop()

    def handle(self, msg: Any) -> None:
        kind = msg[0] if isinstance(msg, (tuple, list)) and msg else msg
        if kind == "stop":
            self.request_stop()
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "tweak":
            try:
                changes = check_tweaks(dict(msg[1]))
            except (ValueError, TypeError, IndexError) as exc:
                self.send({"type": "warning", "message": f"tweak refused: {exc}"})
                return
            trainer = self.trainer
            if trainer is None:
                self.pending_tweaks.update(changes)
            else:
                trainer.tweak(**changes)
        else:
            self.send({"type": "warning", "message": f"unknown control message {msg!r}"})

    def parent_gone(self) -> bool:
        return os.getppid() != self.parent_pid

    def control_loop(self) -> None:
        while not self.done:
            if not self.orphaned and self.parent_gone():
                self.orphaned = True  # nobody reads the stream now; the files have everything
                try:
                    self.out.cancel_join_thread()
                except (AttributeError, OSError):
                    pass
                self.request_stop("stopped because the lab process went away")
            try:
                msg = self.ctl.get(timeout=CONTROL_POLL_S)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):
                time.sleep(CONTROL_POLL_S)
                continue
            try:
                self.handle(msg)
            except Exception as exc:  # noqa: BLE001 - the control thread must survive
                self.send({"type": "warning", "message": f"control message {msg!r} failed: {exc}"})

    # ----------------------------------------------------------------------------- training thread
    def event(self, ev: dict) -> None:
        if self.writer is not None:
            self.writer.event(ev)
        self.send({"type": "event", "event": ev})

    def on_epoch(self, row: dict) -> None:
        self.writer.metrics(row)
        self.send({"type": "epoch", "row": row})
        if self.paused and not self.stop_requested:
            epoch = row["epoch"]
            self.event({"event": "paused", "epoch": epoch, "time": time.time()})
            while self.paused and not self.stop_requested:
                time.sleep(PAUSE_POLL_S)
            if not self.stop_requested:
                self.event({"event": "resumed", "epoch": epoch, "time": time.time()})
            # else: the trainer sees the stop right after this call and ends as cancelled

    def main(self, config: dict, runs_dir: str) -> int:
        from .config import ConfigError, validate

        try:
            cfg = validate(config)
        except ConfigError as exc:
            self.send({"type": "error", "message": str(exc)})
            return 2
        runs_path = Path(runs_dir)
        try:
            runs.check_writable(runs_path)
        except OSError as exc:
            self.send({"type": "error", "message": str(exc)})
            return 2

        import torch

        torch.set_num_threads(_train_threads())
        from .core.data import load as load_data
        from .core.datafiles import DataFileError
        from .core.trainer import device_name, make_trainer

        try:
            trainer = make_trainer(cfg, device=None, data=load_data(cfg))
        except (ValueError, DataFileError, OSError) as exc:
            self.send({"type": "error", "message": str(exc)})
            return 2
        self.attach(trainer)
        if self.stop_requested:  # like the CLI: no run dir for a run that never trained
            self.send({"type": "error", "message": "cancelled before training started", "cancelled": True})
            return 1

        run_dir = runs.new_run_dir(runs_path, cfg.name)
        _redirect_output(run_dir / "worker.log")
        self.writer = runs.RunWriter(run_dir, cfg.dump(), {"torch_version": torch.__version__,
                                                           "device_name": device_name(trainer.device)})
        self.send({"type": "run_dir", "path": str(run_dir)})
        try:
            # checkpoint.pt lets `gengap-tui run --resume` continue a lab run that was cancelled
            summary = trainer.run(on_epoch=self.on_epoch, on_event=self.event, on_checkpoint=self.writer.checkpoint)
            if summary.get("epochs_run") and (summary.get("status") != "diverged" or summary.get("restored_best")):
                try:
                    self.writer.save_model(trainer.model.state_dict())
                except OSError as exc:
                    summary["model_error"] = f"model.pt not written: {exc}"
        except BaseException as exc:  # run() catches training failures; this is a last resort
            summary = {"status": "failed", "epochs_run": None,
                       "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        if summary.get("status") == "cancelled" and self.stop_reason:
            reason = summary.get("reason") or ""
            prefix = "stopped by the user"
            summary["reason"] = self.stop_reason + reason[len(prefix):] if reason.startswith(prefix) \
                else self.stop_reason
        self.writer.finish(summary)
        self.send({"type": "summary", "summary": summary})
        return 0


    # ----------------------------------------------------------------------------- a sweep
    def on_progress(self, row: dict) -> None:
        """One progress.jsonl line (already flushed); a pause holds the sweep here, between epochs."""
        self.send({"type": "progress", "row": row})
        while self.paused and not self.stop_requested:
            time.sleep(PAUSE_POLL_S)

    def sweep_main(self, config: dict, runs_dir: str, param: str, values: list[float]) -> int:
        from .config import ConfigError, validate

        try:
            cfg = validate(config)
            runs_path = Path(runs_dir)
            runs.check_writable(runs_path)
        except (ConfigError, OSError) as exc:
            self.send({"type": "error", "message": str(exc)})
            return 2

        import torch

        torch.set_num_threads(_train_threads())
        from .core.sweep import Sweep

        try:
            sweep = Sweep(cfg, param, values)
        except (ValueError, ConfigError) as exc:  # no values, a value out of range, no such device
            self.send({"type": "error", "message": str(exc)})
            return 2
        self.attach(sweep)  # Sweep.request_stop is what a stop, a signal or parent death calls
        if self.stop_requested:
            self.send({"type": "error", "message": "cancelled before the sweep started", "cancelled": True})
            return 1
        out_dir = runs.new_run_dir(runs_path, f"sweep-{cfg.name}")
        self.sweep_dir = out_dir
        _redirect_output(out_dir / "worker.log")
        self.send({"type": "run_dir", "path": str(out_dir)})
        try:
            summary = sweep.run(out_dir, on_progress=self.on_progress)
        except BaseException as exc:  # Sweep.run keeps training failures; this is data loading etc.
            summary = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "param": param,
                       "values": values, "traceback": traceback.format_exc()}
            runs.write_json_atomic(out_dir / "summary.json", summary)
        if summary.get("status") == "cancelled" and self.stop_reason:
            summary["reason"] = self.stop_reason
            runs.write_json_atomic(out_dir / "summary.json", summary)
        self.send({"type": "summary", "summary": summary})
        return 0

    def fail(self, message: str) -> None:
        """The last resort of `_child_entry`: close the run or sweep directory as failed."""
        summary = {"status": "failed", "reason": message, "traceback": traceback.format_exc()}
        try:
            if self.writer is not None:
                self.writer.finish(summary)
            elif self.sweep_dir is not None and runs.read_json(self.sweep_dir / "summary.json") is None:
                runs.write_json_atomic(self.sweep_dir / "summary.json", summary)
        except Exception:  # noqa: BLE001
            pass
        if self.writer is not None or self.sweep_dir is not None:
            self.send({"type": "summary", "summary": {"status": "failed", "reason": message}})
        else:
            self.send({"type": "error", "message": message})


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


def _train_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))  # honours cgroup / taskset limits
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


def _child_main(config: dict, runs_dir: str, out, ctl, parent_pid: int) -> None:
    """Entry point of the spawned training process."""
    _child_entry(out, ctl, parent_pid, lambda child: child.main(config, runs_dir))


def _sweep_child_main(config: dict, runs_dir: str, param: str, values: list[float], out, ctl,
                      parent_pid: int) -> None:
    """Entry point of the spawned sweep process (`SweepHandle`)."""
    _child_entry(out, ctl, parent_pid, lambda child: child.sweep_main(config, runs_dir, param, values))


def _child_entry(out, ctl, parent_pid: int, body) -> None:
    """Signals, the control thread and the last-resort failure report around `body(child)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the UI owns Ctrl+C
    _redirect_output(None)  # until the run directory exists and its worker.log takes over
    child = _Child(out, ctl, parent_pid)
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, child.on_signal)
    thread = threading.Thread(target=child.control_loop, name="gengap-control", daemon=True)
    thread.start()
    code = 1
    try:
        code = body(child)
    except BaseException as exc:  # noqa: BLE001 - report, and leave a summary if a run dir exists
        child.fail(f"the training process failed: {type(exc).__name__}: {exc}")
    finally:
        child.done = True
        thread.join(CONTROL_POLL_S * 2)
    sys.exit(code)
