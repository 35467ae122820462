"""Run a Textual app so that a lost terminal (SIGHUP) or a SIGTERM ends it, whatever the moment.

    code = run_guarded(app, close_run)   # instead of app.run(); 0, or 128 + signum after a signal

Why Textual alone hangs when its terminal goes away (Textual 8.2, LinuxDriver): closing the pty
master (a dropped SSH session, a killed tmux session) hangs the terminal up, and the kernel sends
the session leader SIGHUP *and SIGCONT*. Textual's SIGCONT handler, meant for the return from
Ctrl+Z, restarts application mode on the dead terminal (`os.isatty` is now False, so it skips its
own tcsetattr check) and starts a new WriterThread. Its first write to the hung-up tty raises
OSError (EIO) and, as `WriterThread.run` catches nothing, the thread dies silently. Every later
`driver.write` is a `Queue.put` into its bounded queue (30 items) that nobody reads, so after a
few frames the event loop itself blocks in `Queue.put`, and `LinuxDriver.close` ->
`WriterThread.stop` blocks in its `put(None)` for ever. Without the SIGCONT the original writer
dies the same way at its first flush after the hangup; whether the loop then blocks depends on
how much is written before the exit, which is why the hang is intermittent (with the code before
this module, a hangup right after the first frame hung every time, an idle one sometimes). An
`app.exit()` posted to that loop never runs; a Python signal handler that does the work itself
runs at an arbitrary point of the main thread, maybe in the middle of that very `Queue.put`.

So here:
- the signal handler only records the signal (a plain attribute and one byte written to a pipe;
  `signal.set_wakeup_fd` writes the same pipe from C, even if the main thread never gets to run a
  Python handler). No lock, nothing of Textual.
- a watchdog thread, woken by that pipe, calls `close_run(reason, grace_s)` (in a thread of its
  own), then asks the app to exit through its event loop (`loop.call_soon_threadsafe(app.exit)`,
  repeated until the app has returned, since an exit asked during start-up may come too early),
  and, if the process is still there `exit_after_s` seconds after the signal, ends it with
  `os._exit(128 + signum)`: the last resort when the shutdown blocks anyway.
- the LinuxDriver is subclassed so that a dead terminal cannot wedge it: writes to it are dropped
  instead of killing the writer thread, and a SIGCONT after the signal (or on a terminal that is
  gone) does not restart application mode. The output wrapper is what keeps the shutdown from
  blocking; the rest makes it quicker and quieter. Once the terminal is gone, fds 1 and 2 are
  pointed at /dev/null (what is written at exit goes nowhere instead of failing).

Served to a browser (`gengap-tui serve`), the app runs Textual's WebDriver instead: `tui/web.py`
subclasses it so that a closed tab is a hang-up of this guard (`hang_up(reason)`, with the
reason "browser tab closed") and SIGINT / SIGTERM stay the guard's.

`loop.add_signal_handler` is not used: its callback runs in the event loop, which is exactly what
is blocked here, it only exists once the loop runs, and it would replace the handler that covers
start-up and shutdown. The loop is known from a coroutine that wraps `app.run_async()` (what
`App.run()` itself does through `asyncio.run`), so no private attribute of the app is needed.

What the app provides, `close_run(reason, timeout)`: stop every training process the lab started
so that each ends as cancelled with `reason` in its summary, wait up to `timeout` seconds (all
together) for the summaries to be written, and return. It is called from a watchdog thread, not
the event loop's, possibly while the loop is blocked: it must touch only thread-safe state (the
run handles), no widget, no `call_from_thread`. It may be called before the app has mounted, more
than once, and concurrently with the lab's own timers polling the same handles. Runs the lab does
not own (an attached detached run) are left alone.

This module imports no torch (the lab's start-up must not wait for it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any, Callable

from ..control import signal_reason  # the one wording of a signal's reason, as the training side has it

GRACE_S = 3.0        # how long close_run may take to have the run's summary written
EXIT_AFTER_S = 8.0   # the process ends this long after the signal, whatever still blocks
_EXIT_RETRY_S = 0.5  # how often the watchdog asks again for the app to exit
_DONE = b"\0"        # written to the pipe by run_guarded when the app returned without a signal


def guarded_signals() -> list[int]:
    return [s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None]


class _TerminalOutput:
    """The file Textual's writer thread writes to, made harmless when the terminal goes away: the
    first OSError (EIO from a hung-up tty) marks it dead and everything after is dropped, so the
    writer thread lives on, drains its queue and `WriterThread.stop` returns."""

    def __init__(self, file, tee=None):
        self._file = file
        self.dead = False
        self.tee = tee  # a recording (`recording.CastWriter`) of what the terminal is sent

    def write(self, text: str) -> int:
        if not self.dead:
            try:
                n = self._file.write(text)
            except (OSError, ValueError):
                self.dead = True
            else:
                if self.tee is not None:
                    self.tee.output(text)
                return n
        return len(text)

    def flush(self) -> None:
        if not self.dead:
            try:
                self._file.flush()
            except (OSError, ValueError):
                self.dead = True

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.dead and self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _hangup_safe(driver_class: type, guard: "_Guard", tee=None) -> type:
    """`driver_class` (a LinuxDriver) with its output made harmless on a dead terminal (and
    copied to `tee`, a recording, when given) and no restart of application mode on the SIGCONT
    that comes with a hangup."""

    class HangupSafeDriver(driver_class):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self._file = _TerminalOutput(self._file, tee)

        def _sigcont_application(self, *args: Any) -> None:
            # the kernel sends SIGCONT with the SIGHUP of a hangup: restarting application mode
            # on the dead terminal is what wedges Textual (see the module docstring)
            if guard.signum is not None or not _is_terminal(self._file.fileno()):
                return
            super()._sigcont_application(*args)

    HangupSafeDriver.__name__ = HangupSafeDriver.__qualname__ = f"HangupSafe{driver_class.__name__}"
    return HangupSafeDriver


class _Guard:
    def __init__(self, app, close_run: Callable[[str, float], None], grace_s: float, exit_after_s: float):
        self.app = app
        self.close_run = close_run
        self.grace_s = grace_s
        self.exit_after_s = exit_after_s
        self.signum: int | None = None   # the first SIGHUP / SIGTERM (set by the handler or the watchdog)
        self.reason: str | None = None   # a hang-up's own reason (`hang_up`), else the signal's
        self.reasons: dict[int, str] = {}  # a signal's reason where `signal_reason` is not the one
        self.signalled_at: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.returned = False            # the main thread is back from the app
        self.closer: threading.Thread | None = None
        self.signals = guarded_signals()
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)  # a full pipe must never block a signal handler
        self.tty_fds = [fd for fd in (1, 2) if _is_terminal(fd)]

    # ------------------------------------------------------------------ the signal handler
    def on_signal(self, signum: int, frame) -> None:  # noqa: ARG002
        """Record, wake the watchdog, nothing else: it runs at any point of the main thread."""
        if self.signum is None:
            self.signalled_at = time.monotonic()
            self.signum = signum
        try:
            os.write(self._w, bytes([signum]))
        except OSError:  # a full pipe: the watchdog is awake already
            pass

    def hang_up(self, reason: str) -> None:
        """What a SIGHUP does, with `reason` (a served lab's browser tab closed: tui/web.py). Any
        thread; the first hang-up or signal wins."""
        if self.signum is None:
            self.reason = reason
        self.on_signal(getattr(signal, "SIGHUP", signal.SIGTERM), None)

    def rearm_wakeup(self) -> None:
        """Take the C-level wakeup fd back if nobody holds it (the web driver's loop handlers,
        removed, left it unset)."""
        try:
            prev = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(self._w if prev == -1 else prev, warn_on_full_buffer=False)
        except (ValueError, OSError):
            pass

    # ------------------------------------------------------------------ the watchdog thread
    def watch(self) -> None:
        while True:
            try:
                data = os.read(self._r, 64)
            except OSError:
                return
            if not data or _DONE in data and self.signum is None:
                return  # the app returned without a signal
            # the C-level wakeup fd also brings SIGWINCH, SIGCONT, ...: only ours count
            got = next((b for b in data if b in self.signals), None)
            if got is None and self.signum is None:
                continue
            if self.signum is None:  # woken from C before the Python handler ran (or never will)
                self.signalled_at = time.monotonic()
                self.signum = got
            break
        signum = self.signum
        deadline = (self.signalled_at or time.monotonic()) + self.exit_after_s
        self._silence_dead_terminal()
        reason = self.reason or self.reasons.get(signum) or signal_reason(signum)
        self.closer = threading.Thread(target=self._close_run, args=(reason,),
                                       name="gengap-close-run", daemon=True)
        self.closer.start()
        # the summary first; but ask for the exit anyway if close_run overruns its grace
        self.closer.join(max(0.0, min(deadline, time.monotonic() + self.grace_s + 1.0) - time.monotonic()))
        while time.monotonic() < deadline:
            if not self.returned:
                self._ask_exit()
            time.sleep(min(_EXIT_RETRY_S, max(0.0, deadline - time.monotonic())))
        os._exit(128 + signum)  # still here: the shutdown blocks (or the process is not exiting)

    def _close_run(self, reason: str) -> None:
        try:
            self.close_run(reason, self.grace_s)
        except Exception:  # noqa: BLE001 - the exit must go on; the terminal may be gone
            pass

    def _ask_exit(self) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # not running yet: the main thread checks the signal before it starts the app
        try:
            loop.call_soon_threadsafe(self.app.exit)
        except RuntimeError:  # closed meanwhile
            pass

    def _silence_dead_terminal(self) -> None:
        """Point stdout / stderr at /dev/null if they were a terminal that is gone: whatever is
        still written (Textual's last escapes, a traceback at exit) goes nowhere instead of failing."""
        dead = [fd for fd in self.tty_fds if not _is_terminal(fd)]
        if not dead:
            return  # a SIGHUP sent with the terminal still there: Textual restores it as usual
        try:
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return
        for fd in dead:
            try:
                os.dup2(null, fd)
            except OSError:
                pass
        os.close(null)

    # ------------------------------------------------------------------ the main thread
    async def run_app(self, run_kw: dict) -> Any:
        self.loop = asyncio.get_running_loop()
        if self.signum is not None:  # a signal while starting: do not start the app at all
            return None
        return await self.app.run_async(**run_kw)


def run_guarded(app, close_run: Callable[[str, float], None], grace_s: float = GRACE_S,
                exit_after_s: float = EXIT_AFTER_S, record=None, **run_kw: Any) -> int:
    """Run `app` (as `app.run(**run_kw)` would) so that SIGHUP and SIGTERM end it safely, at any
    moment: `close_run(reason, grace_s)` is called from a watchdog thread (see the module docstring
    for its contract), then the app is asked to exit, and the process ends with os._exit(128 +
    signum) if it is still there `exit_after_s` seconds after the signal.

    `record` (a `recording.CastWriter`) gets a copy of everything the terminal is sent.

    Call it from the main thread. Returns 128 + signum when a signal ended the app (the deadline
    stays armed: the caller is expected to exit soon), else the app's return code (0 normally)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_guarded must be called from the main thread (signal handlers)")
    guard = _Guard(app, close_run, grace_s, exit_after_s)
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # Windows: no SIGHUP, no LinuxDriver
        LinuxDriver = None  # noqa: N806
    if LinuxDriver is not None and isinstance(app.driver_class, type) and issubclass(app.driver_class, LinuxDriver):
        app.driver_class = _hangup_safe(app.driver_class, guard, record)
    else:  # served to a browser (tui/web.py): a closed tab is a hang-up; Ctrl+C on the server reaches every tab
        from . import web

        if web.is_web_driver(app.driver_class):
            app.driver_class = web.tab_close_safe(app.driver_class, guard)
            guard.signals.append(signal.SIGINT)
            guard.reasons[signal.SIGINT] = f"{web.SERVER_STOPPED} (Ctrl+C)"
    watchdog = threading.Thread(target=guard.watch, name="gengap-signal-watchdog", daemon=True)
    watchdog.start()
    old = {s: signal.signal(s, guard.on_signal) for s in guard.signals}
    try:  # the same pipe, written from C: wakes the watchdog even if no Python handler gets to run
        old_wakeup = signal.set_wakeup_fd(guard._w, warn_on_full_buffer=False)
    except (ValueError, OSError):
        old_wakeup = None
    code = 0
    try:
        asyncio.run(guard.run_app(run_kw))
        code = getattr(app, "return_code", 0) or 0
    except Exception:
        if guard.signum is None:
            raise
        # after the signal, an error of the shutdown (on a dead terminal, likely) changes nothing
    finally:
        guard.returned = True
        if old_wakeup is not None:
            try:
                prev = signal.set_wakeup_fd(old_wakeup)
                if prev != guard._w:  # someone set theirs meanwhile: keep it
                    signal.set_wakeup_fd(prev)
            except (ValueError, OSError):
                pass
        if guard.signum is None:
            for s, h in old.items():
                signal.signal(s, h)
            try:
                os.write(guard._w, _DONE)  # let the watchdog go
            except OSError:
                pass
    if guard.signum is None:
        return code
    # a signal ended it (the handlers stay, so does the deadline): let close_run finish first
    deadline = (guard.signalled_at or time.monotonic()) + exit_after_s
    while guard.closer is None and watchdog.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if guard.closer is not None:
        guard.closer.join(max(0.0, deadline - time.monotonic()))
    return 128 + guard.signum
