"""The lab served to a browser (`gengap-tui serve`, textual-serve): its stdout kept for the
protocol, and a closed tab ending it like a closed terminal (docs/ARCHITECTURE.md, "In a browser").

textual-serve starts one lab process per browser tab with `TEXTUAL_DRIVER` naming Textual's
`WebDriver`, and speaks to it over pipes: the tab's keys and resizes come in on stdin, the screen
goes out on stdout as framed packets (`D`, `M`, `P` + a 4-byte length + payload). Two things
follow for the lab:

- Nothing but the driver may write to the process's stdout: one stray byte (a print, a library's
  warning, a child process that inherited fd 1) desynchronises the framing and the tab dies.
  `protect_stdout()`, called before anything is spawned, moves the protocol to a private,
  non-inheritable descriptor and points fd 1 where stderr goes (textual-serve collects stderr
  and shows it on the server's console), so every later write to fd 1, from this process or any
  child (the training process, multiprocessing's resource tracker), misses the protocol.
- When the tab closes, textual-serve sends a `quit` meta packet (and closes stdin when the server
  itself goes away). Textual's WebDriver would post `ExitApp` at once, and the lab would close
  its run as "the lab was closed". Here the driver is subclassed (`tab_close_safe`) so that a
  `quit`, the end of stdin or a write to a server that is gone is handed to `run_guarded`'s guard
  like a hangup, with its reason: the watchdog stops this lab's own run (its `cancelled` summary
  says "browser tab closed"), then asks the app to exit, and ends the process if the exit blocks.
  An attached run is not this lab's and goes on. The WebDriver routes SIGINT and SIGTERM into the
  event loop; they are taken back by the guard (a served lab shares the server's process group,
  so a Ctrl+C on `gengap-tui serve` reaches every tab).

textual_serve itself is never imported here (only `serve.py`, the server, does). No torch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

TAB_CLOSED = "browser tab closed"
SERVER_GONE = "the lab's server went away"
SERVER_STOPPED = "the lab's server was stopped"

_protocol_fd: int | None = None


def served() -> bool:
    """Whether this process is a lab that textual-serve (or textual-web) started: Textual will
    use its web driver (set in the environment, as Textual itself reads it)."""
    return "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


def protect_stdout() -> int:
    """Keep fd 1 for the protocol alone: the original stdout moves to a private descriptor (not
    inherited by children; `protocol_fd()`), and fd 1 becomes a copy of stderr. Idempotent."""
    global _protocol_fd
    if _protocol_fd is None:
        try:
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError):
            pass
        _protocol_fd = os.dup(1)  # os.dup: non-inheritable (PEP 446)
        os.dup2(2, 1)
    return _protocol_fd


def protocol_fd() -> int | None:
    return _protocol_fd


def is_web_driver(driver_class: Any) -> bool:
    try:
        from textual.drivers.web_driver import WebDriver
    except ImportError:  # pragma: no cover - part of Textual
        return False
    return isinstance(driver_class, type) and issubclass(driver_class, WebDriver)


def tab_close_safe(driver_class: type, guard) -> type:
    """`driver_class` (a WebDriver) writing to the protected descriptor, with a closed tab, the
    end of stdin and a dead server handed to `guard.hang_up(reason)` (tui/terminal.py), and
    SIGINT / SIGTERM left to the guard."""

    class TabCloseSafeDriver(driver_class):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            if _protocol_fd is not None:
                self.fileno = _protocol_fd
            self._gone = False
            self._write = self._write_all  # what every WebDriver write goes through

        def _write_all(self, data: bytes) -> None:
            """All of `data` (a pipe write can be partial, and half a packet breaks the framing),
            or nothing once the server is gone."""
            view = memoryview(data)
            while view and not self._gone:
                try:
                    view = view[os.write(self.fileno, view):]
                except OSError:  # EPIPE: the server is gone
                    self._gone = True
                    guard.hang_up(SERVER_GONE)

        def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
            if packet_type == "quit":  # the tab closed (serve.py adds a reason when it stops)
                reason = payload.get("reason")
                guard.hang_up(reason if isinstance(reason, str) and reason else TAB_CLOSED)
                return
            super().on_meta(packet_type, payload)

        def run_input_thread(self) -> None:
            super().run_input_thread()
            if not self.exit_event.is_set():  # stdin ended before the app: the server is gone
                guard.hang_up(SERVER_GONE)

        def start_application_mode(self) -> None:
            super().start_application_mode()
            if sys.platform == "win32":  # pragma: no cover
                return
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):  # the WebDriver's loop handlers: ours instead
                loop.remove_signal_handler(sig)
                signal.signal(sig, guard.on_signal)
            guard.rearm_wakeup()

    TabCloseSafeDriver.__name__ = TabCloseSafeDriver.__qualname__ = f"TabCloseSafe{driver_class.__name__}"
    return TabCloseSafeDriver
