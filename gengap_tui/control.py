"""The one control channel of a running session: pause, resume, stop and live tweaks, whoever asks.

A session (a headless `gengap-tui run`, a detached run, the lab's training process, a sweep) owns
one `RunControl`. Commands (`protocol.Pause` / `Resume` / `Stop` / `Tweak`) reach it from feeds:

    QueueFeed    the lab's own queue to its training process (it also notices the lab dying)
    FileFeed     control.jsonl in the run directory: what `attach` (or any process) appends
    signals      `on_signal` turns SIGTERM / SIGHUP into a stop with a reason that says so

Stops and tweaks reach the trainer at once (`request_stop` / `tweak` are thread-safe: a stop ends
the run within one batch, tweaks apply at the next epoch). A pause holds the training thread in
`between_epochs`, which records `paused` / `resumed` events with the epoch. A stop while paused
ends the run at once. No torch, no Textual (docs/ARCHITECTURE.md, "Control").
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import runs
from .protocol import USER_STOP, Command, Pause, ProtocolError, Resume, Stop, Tweak, check_tweaks, decode_command

PAUSE_POLL_S = 0.05    # how often a paused session looks for resume / stop
FEED_POLL_S = 0.1      # how often a feed looks for new commands (and, for the queue, its parent)

SIGNAL_REASONS = {"SIGHUP": "terminal closed (SIGHUP)", "SIGTERM": "stopped by SIGTERM",
                  "SIGINT": "stopped by the user (Ctrl+C)"}


def signal_reason(signum: int) -> str:
    name = signal.Signals(signum).name
    return SIGNAL_REASONS.get(name, f"stopped by {name}")


class RunControl:
    """Flags shared by the training thread, the feeds' threads and signal handlers.

    Plain attributes only (no locks): a signal handler runs on the main thread between bytecodes
    and must never wait on a lock that thread may hold."""

    def __init__(self, on_event: Callable[[dict], Any] | None = None,
                 on_warning: Callable[[str], Any] | None = None):
        self.on_event = on_event          # events.jsonl records (paused, resumed, tweak_refused)
        self.on_warning = on_warning      # a message for whoever watches (the lab)
        self.target = None                # the trainer or sweep: request_stop(reason), tweak(**)
        self.stop_requested = False
        self.stop_reason: str | None = None
        self.paused = False
        self.pending_tweaks: dict[str, Any] = {}
        self.epoch = 0                    # the last finished epoch (for refused tweaks' events)

    # ------------------------------------------------------------------------- commands
    def command(self, cmd: Command) -> None:
        if isinstance(cmd, Stop):
            self.request_stop(cmd.reason)
        elif isinstance(cmd, Pause):
            self.paused = True
        elif isinstance(cmd, Resume):
            self.paused = False
        elif isinstance(cmd, Tweak):
            target = self.target
            if target is None or not hasattr(target, "tweak"):
                self.pending_tweaks.update(cmd.changes)
            else:
                target.tweak(**cmd.changes)

    def command_wire(self, record: Any) -> None:
        """A command as it came over the wire (queue or control.jsonl); a bad one is refused with
        an event and a warning, and the run goes on."""
        try:
            cmd = decode_command(record)
        except ProtocolError as exc:
            self.refuse(record, str(exc))
            return
        try:
            self.command(cmd)
        except ValueError as exc:  # a sweep cannot be tweaked
            self.refuse(record, str(exc))

    def refuse(self, record: Any, why: str) -> None:
        kind = record.get("cmd") if isinstance(record, dict) else None
        if self.on_event is not None:
            self.on_event({"event": "tweak_refused" if kind == "tweak" else "control_refused",
                           "time": time.time(), "epoch": self.epoch, "error": why})
        if self.on_warning is not None:
            self.on_warning(f"{kind or 'control message'} refused: {why}")

    def request_stop(self, reason: str | None = None) -> None:
        if not self.stop_requested:
            self.stop_reason = reason or USER_STOP
        self.stop_requested = True
        target = self.target
        if target is not None:
            target.request_stop(self.stop_reason)

    def on_signal(self, signum, frame=None) -> None:  # noqa: ARG002 - a signal handler
        self.request_stop(signal_reason(signum))

    def attach(self, target) -> None:
        """The trainer (or sweep) that stops and tweaks now go to; what came before is passed on."""
        self.target = target  # set before reading the flags: a stop in between is not lost
        if self.pending_tweaks and hasattr(target, "tweak"):
            target.tweak(**check_tweaks(self.pending_tweaks))
            self.pending_tweaks = {}
        if self.stop_requested:
            target.request_stop(self.stop_reason)

    # ------------------------------------------------------------------------- training thread
    def between_epochs(self, epoch: int) -> None:
        """Called by the training thread after each epoch: holds it while paused."""
        self.epoch = epoch
        if not self.paused or self.stop_requested:
            return
        self._event("paused", epoch)
        while self.paused and not self.stop_requested:
            time.sleep(PAUSE_POLL_S)
        if not self.stop_requested:
            self._event("resumed", epoch)
        # else: the trainer sees the stop right after this call and ends the run as cancelled

    def _event(self, kind: str, epoch: int) -> None:
        if self.on_event is not None:
            self.on_event({"event": kind, "epoch": epoch, "time": time.time()})


class _Feed:
    """A daemon thread that hands commands from one transport to a RunControl until closed."""

    name = "gengap-control"

    def __init__(self, control: RunControl):
        self.control = control
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self) -> "_Feed":
        self._thread.start()
        return self

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(FEED_POLL_S * 4)

    @property
    def closed(self) -> bool:
        """Its thread has ended: it reads no more commands."""
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._done.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the feed must survive a bad record
                if self.control.on_warning is not None:
                    self.control.on_warning(f"control feed: {type(exc).__name__}: {exc}")
                self._done.wait(FEED_POLL_S)

    def step(self) -> None:
        raise NotImplementedError


class FileFeed(_Feed):
    """Commands appended to the run directory's control.jsonl (`runs.send_control`). Commands
    written before the feed started (a resumed run's history) are skipped."""

    name = "gengap-control-file"

    def __init__(self, control: RunControl, run_dir: Path):
        super().__init__(control)
        path = Path(run_dir) / runs.CONTROL
        self.follower = runs.JsonlFollower(path)
        if path.exists():
            self.follower.offset = path.stat().st_size

    def step(self) -> None:
        for record in self.follower.poll():
            self.control.command_wire(record)
        self._done.wait(FEED_POLL_S)


class QueueFeed(_Feed):
    """Commands from the lab's queue; when the lab process goes away, the run is stopped."""

    name = "gengap-control-queue"

    def __init__(self, control: RunControl, ctl_queue, parent_pid: int, on_orphaned: Callable[[], Any]):
        super().__init__(control)
        self.queue, self.parent_pid, self.on_orphaned = ctl_queue, parent_pid, on_orphaned
        self.orphaned = False

    def step(self) -> None:
        if not self.orphaned and os.getppid() != self.parent_pid:
            self.orphaned = True  # nobody reads the stream now; the files have everything
            self.on_orphaned()
            self.control.request_stop("stopped because the lab process went away")
        try:
            record = self.queue.get(timeout=FEED_POLL_S)
        except queue.Empty:
            return
        except (EOFError, OSError, ValueError):
            self._done.wait(FEED_POLL_S)
            return
        self.control.command_wire(record)
