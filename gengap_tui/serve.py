"""`gengap-tui serve`: the lab in a browser (docs/ARCHITECTURE.md, "In a browser").

textual-serve (the optional extra `gengap-tui[serve]`; the only module that imports it) runs an
aiohttp server; each browser tab that opens the page gets its own lab process, the plain
`gengap-tui --preset P --runs-dir D` command, spoken to over a websocket and drawn by xterm.js.
Tabs share nothing but the runs directory: a run started in one tab is attached to from another
(f3, then a) or from a terminal (`gengap-tui attach`), and the other way round. How a tab's lab
keeps its stdout for the protocol and ends when the tab closes: `tui/web.py`.

Everything is checked before the server starts (exit 2, the flag named): the port's range and
whether it is free, `--public-url`, the preset, the runs directory, textual-serve itself. It
binds 127.0.0.1 unless `--host` says otherwise, and then warns: whoever reaches the port can
train on this machine. Stopping the server (Ctrl+C, SIGTERM, SIGHUP) closes every tab's lab
first, so their runs end as cancelled with "the lab's server was stopped".
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import shlex
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .config import ConfigError
from .report import EXIT_OK, fail, load_config

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
INSTALL = "pip install 'gengap-tui[serve]'"
WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """What to say before listening on an address other machines may reach (None for loopback)."""
    if is_loopback(host):
        return None
    return (f"warning: serving the lab on {host or '*'}:{port}: anyone who can reach this port can start "
            "training on this machine and read its runs directory (no login). Prefer the default "
            f"(127.0.0.1) and an SSH tunnel: ssh -L {port}:localhost:{port} THIS-HOST")


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, found by binding it now (None: it can).
    SO_REUSEADDR as aiohttp sets it, so a port in TIME_WAIT is not mistaken for one in use."""
    if not 1 <= port <= 65535:
        return f"--port = {port}: must be 1..65535"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"--host = {host!r}: cannot resolve it ({exc.strerror})"
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} is in use on {addr[0]} (another server?): pick a free one with --port"
                if exc.errno == errno.EACCES:
                    return f"port {port}: this user may not listen on it (below 1024 needs root): pick another with --port"
                return f"--host = {host!r}: cannot listen on {addr[0]} port {port} ({exc.strerror})"
    return None


def public_url(host: str, port: int, given: str | None) -> str:
    """The URL browsers use, without a trailing slash; the page's websocket URL is made from it
    (ws:// or, for https, wss://). Raises ValueError naming --public-url."""
    if given is None:
        name = socket.gethostname() if host in WILDCARDS else host
        return f"http://{f'[{name}]' if ':' in name else name}:{port}"
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"--public-url = {given!r}: expected http://HOST[:PORT][/PATH] or https://… "
                         "(the address browsers open, e.g. http://localhost:9000 behind ssh -L 9000:localhost:8000)")
    return given.rstrip("/")


def tab_command(preset: str, runs_dir: Path, prewarm: bool = True, device: str | None = None) -> str:
    """The shell command textual-serve runs for each tab: the lab itself, with this process's
    Python (`exec`: the lab is the server's child, no shell in between). Each tab's lab keeps its
    own warm training process (~320 MB) unless `prewarm` is off (`serve --no-prewarm`); `device`
    (`serve --device cuda:1`) is every tab's."""
    if Path(preset).is_file():
        preset = str(Path(preset).resolve())
    argv = [sys.executable, "-m", "gengap_tui.cli", "--preset", preset, "--runs-dir", str(runs_dir)]
    argv += ["--device", device] if device else []
    return "exec " + shlex.join(argv + ([] if prewarm else ["--no-prewarm"]))


def cmd_serve(args: argparse.Namespace) -> int:
    from . import runs

    host = DEFAULT_HOST if args.host is None else args.host
    if not 1 <= args.port <= 65535:
        return fail(f"--port = {args.port}: must be 1..65535")
    try:
        url = public_url(host, args.port, args.public_url)
    except ValueError as exc:
        return fail(str(exc))
    try:  # (a GPU that is not there: before serving)
        load_config(args.preset, [], getattr(args, "device", None))
    except ConfigError as exc:
        return fail(str(exc))
    runs_dir = runs.default_runs_dir(args.runs_dir).resolve()
    try:
        runs.check_writable(runs_dir)
    except OSError as exc:
        return fail(str(exc))
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        return fail(f"serve needs textual-serve, an optional extra: {INSTALL}")
    if (warning := exposure_warning(host, args.port)) is not None:
        print(f"gengap-tui: {warning}", file=sys.stderr)
    if (problem := port_problem(host, args.port)) is not None:
        return fail(problem)
    command = tab_command(args.preset, runs_dir, not args.no_prewarm, getattr(args, "device", None))
    server = make_server(command, host, args.port, url, runs_dir)
    try:
        server.serve()
    except OSError as exc:  # taken between the check and the bind
        return fail(f"cannot listen on {host} port {args.port}: {exc.strerror or exc}")
    return EXIT_OK


def make_server(command: str, host: str, port: int, url: str, runs_dir: Path):
    """textual-serve's Server, told about each tab so that stopping the server closes them first."""
    import asyncio

    from aiohttp import WSCloseCode
    from textual_serve.server import Server

    from .tui.web import SERVER_STOPPED

    class LabServer(Server):
        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title="gengap-tui", public_url=url)
            self.tabs: dict = {}  # websocket -> its lab (textual_serve AppService)

        async def _process_messages(self, websocket, app_service) -> None:
            self.tabs[websocket] = app_service
            try:
                await super()._process_messages(websocket, app_service)
            finally:
                self.tabs.pop(websocket, None)

        async def on_startup(self, app) -> None:
            await super().on_startup(app)
            self.console.print(f"gengap-tui: open {url} (every tab is a lab on {runs_dir})", highlight=False)

        async def on_shutdown(self, app) -> None:
            """Each tab's lab closes its run with the reason, then its websocket closes (else
            aiohttp would wait a minute for the open websockets before cancelling them)."""
            for websocket, service in list(self.tabs.items()):
                await service.send_meta({"type": "quit", "reason": SERVER_STOPPED})
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")

        def serve(self, debug: bool = False) -> None:
            # the loop textual-serve will get from asyncio.get_event_loop(), with SIGHUP (the
            # server's terminal closed) a graceful exit like its SIGINT and SIGTERM
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            if hasattr(signal, "SIGHUP"):
                loop.add_signal_handler(signal.SIGHUP, self.request_exit)
            super().serve(debug)

    return LabServer()
