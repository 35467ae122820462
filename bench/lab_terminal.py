"""The lab as a user meets it: `gengap-tui` in a real pseudo-terminal (120x36, xterm-256color),
its output parsed by a terminal emulator (pyte), times taken when the screen shows something.

    python bench/lab_terminal.py [--repeats 5] [--no-prewarm] [--code DIR] [--first-frame]

`--code DIR` runs another checkout's gengap-tui (e.g. the commit before a change, to measure
before and after under the same load); one without a warm process is measured as --no-prewarm is.

Per fresh lab process (`python -m gengap_tui --preset default --set device=cpu --set
early_stopping.enabled=false --set optim.epochs=100000`):
  first frame     process start -> the status bar and the patience meter are on the screen
  panels          process start -> the settings panels and the footer are on the screen too
  warm            process start -> the status says the training process is warm (prewarm only)
  first epoch     ctrl+r -> "epoch N/" (N >= 1) in the status bar (the user waited for "warm" plus 0.5 s,
                  as one reads the screen before pressing a key; without prewarm: for the panels)
  palette         ctrl+p while it trains -> the command palette on the screen (3 times; escape
                  closes it in between)
  restart         ctrl+r while it trains -> the new run's first epoch on the screen
  quit            ctrl+q -> the lab and every process of its group gone (no warm process left)
and the warm process's memory (VmRSS) while it waits. Also run by bench/ui.py.

`--first-frame`: only the first frame, side by side with a bare Textual app's (a header, one line,
a footer: `BARE`), started alternately in the same pty size under the same load; prints both
medians and their ratio (target, issue 25: the lab within 1.5x of the bare app).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parent.parent
COLS, ROWS = 120, 36
# the default preset on the CPU, trained until stopped (as bench/ui.py): the palette opens mid-run
LAB = ["--preset", "default", "--set", "device=cpu", "--set", "early_stopping.enabled=false",
       "--set", "optim.epochs=100000"]
EPOCH = re.compile(r"epoch (\d+)/")
WARM_TEXT = "training process is warm"


def command(code: Path) -> str:
    """The module `gengap-tui` runs in checkout `code`: gengap_tui/__main__.py (which holds the
    garbage collector while the command starts, as the installed script does), or in a checkout
    from before it, gengap_tui.cli."""
    return "gengap_tui" if (code / "gengap_tui" / "__main__.py").is_file() else "gengap_tui.cli"


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a shell, even if this runs under nohup


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                out.append(int(entry))
    return out


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


class Terminal:
    """A program in a pty that is its controlling terminal. A reader thread drains the pty as
    the program writes, noting each chunk's arrival time; a parser thread feeds the chunks to a
    pyte screen and notes when each awaited text first shows: the arrival time of the chunk
    that put it there.

    (The two are apart because pyte parses ~4 KB in 8-20 ms on the 2-core box, and the kernel's
    pty buffer holds 4 KB: a reader that parsed before reading again held the program's writes
    back, and a full-screen frame reached the "screen" 50-100 ms after the program wrote it,
    where a real terminal shows it within a few ms.)"""

    def __init__(self, argv: list[str], env: dict | None = None, cwd: Path = ROOT):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self._waits: list[list] = []  # [predicate, threading.Event, time seen]
        self._chunks: list[tuple[float, bytes]] = []  # read, not yet parsed: (arrival time, bytes)
        self._arrived = threading.Condition()
        env = {**os.environ, **(env or {}), "TERM": "xterm-256color"}
        env.pop("COLUMNS", None), env.pop("LINES", None)
        # the reader must get the GIL back promptly while the parser works (the default is 5 ms)
        sys.setswitchinterval(0.0005)
        self.t0 = time.perf_counter()
        # (`python -m` puts the working directory first on sys.path: it picks the code that runs)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=_controlling_terminal)
        os.close(slave)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._parser = threading.Thread(target=self._parse, daemon=True)
        self._reader.start()
        self._parser.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.01)
                data = os.read(self.master, 65536) if ready else b""
            except OSError:
                time.sleep(0.02)
                continue
            if data:
                with self._arrived:
                    self._chunks.append((time.perf_counter(), data))
                    self._arrived.notify()

    def _parse(self) -> None:
        while not self._stop.is_set():
            with self._arrived:
                if not self._chunks:
                    self._arrived.wait(0.05)
                chunks, self._chunks = self._chunks, []
            for arrived, data in chunks:
                with self._lock:
                    self.stream.feed(data)
                    if not any(w[2] is None for w in self._waits):
                        continue
                    text = "\n".join(self.screen.display)
                    for w in self._waits:
                        if w[2] is None and w[0](text):
                            w[2] = arrived
                            w[1].set()

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.screen.display)

    def wait(self, pred, timeout: float = 60.0) -> float:
        """perf_counter time at which `pred(screen text)` first held (now, if it holds already)."""
        w = [pred, threading.Event(), None]
        with self._lock:
            if pred("\n".join(self.screen.display)):
                return time.perf_counter()
            self._waits.append(w)
        if not w[1].wait(timeout):
            raise TimeoutError(f"not on screen within {timeout:.0f} s; the screen:\n{self.text()}")
        return w[2]

    def send(self, data: bytes) -> float:
        t = time.perf_counter()
        os.write(self.master, data)
        return t

    def close(self) -> None:
        self._stop.set()
        self._reader.join()
        self._parser.join()
        for pid in group_members(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        os.close(self.master)


def one_lab(runs_dir: str, prewarm: bool, palettes: int = 3, code: Path = ROOT) -> dict:
    has_flag = "no-prewarm" in (code / "gengap_tui" / "cli.py").read_text()
    argv = [sys.executable, "-m", command(code), "--runs-dir", runs_dir, *LAB]
    argv += ["--no-prewarm"] if has_flag and not prewarm else []
    prewarm = prewarm and has_flag
    term = Terminal(argv, env={"PYTHONPATH": str(code)}, cwd=code)
    out: dict = {}
    try:
        t0 = term.t0
        out["first_frame"] = term.wait(lambda s: "epoch -/" in s and "patience -/" in s) - t0
        out["panels"] = term.wait(lambda s: "Early stopping" in s and "Start" in s) - t0
        if prewarm:
            out["warm"] = term.wait(lambda s: WARM_TEXT in s, 120) - t0
            kids = [p for p in group_members(term.proc.pid) if p != term.proc.pid]
            rss = [(p, rss_mib(p)) for p in kids if "resource_tracker" not in _cmdline(p)]
            out["warm_rss_mib"] = max((r for _, r in rss if r is not None), default=None)
        time.sleep(0.5)
        t = term.send(b"\x12")  # ctrl+r
        # (a lab that polls seldom may show epoch 2 first)
        out["first_epoch"] = term.wait(lambda s: (m := EPOCH.search(s)) is not None and int(m.group(1)) >= 1, 120) - t
        term.wait(lambda s: (m := EPOCH.search(s)) is not None and int(m.group(1)) >= 5, 60)
        pal = []
        for _ in range(palettes):
            t = term.send(b"\x10")  # ctrl+p
            pal.append(term.wait(lambda s: "Search for commands" in s, 20) - t)
            term.send(b"\x1b")
            term.wait(lambda s: "Search for commands" not in s, 20)
            time.sleep(0.3)
        out["palette"] = pal
        t = term.send(b"\x12")  # ctrl+r again: a restart while the run trains
        term.wait(lambda s: "epoch -/" in s, 20)
        out["restart"] = term.wait(lambda s: (m := EPOCH.search(s)) is not None and int(m.group(1)) >= 1, 120) - t
        t = term.send(b"\x11")  # ctrl+q
        term.proc.wait(20)
        deadline = time.monotonic() + 10
        while group_members(term.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        out["quit_s"] = time.perf_counter() - t
        out["left_behind"] = group_members(term.proc.pid)
    finally:
        term.close()
    return out


BARE = """
from textual.app import App
from textual.widgets import Footer, Header, Static

class Bare(App):
    BINDINGS = [("ctrl+q", "quit", "Quit")]

    def compose(self):
        yield Header()
        yield Static("a bare textual app: one line")
        yield Footer()

Bare().run()
"""


def compile_package(code: Path) -> None:
    """Byte-compile the checkout's gengap_tui, as an installed package is (pip compiles at install;
    Textual's, which the bare app runs, is). Where PYTHONDONTWRITEBYTECODE is set (these boxes set
    it) an uncompiled checkout compiles ~50 modules from source at every start: ~70 ms of the
    lab's first frame on the 2-core box that no installed lab pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "gengap_tui")], check=True)


def first_frames(repeats: int, runs_dir: str, code: Path = ROOT) -> dict:
    """The lab's first frame and a bare Textual app's, alternately, `repeats` times each."""
    compile_package(code)
    lab, bare = [], []
    for _ in range(repeats):
        term = Terminal([sys.executable, "-c", BARE], cwd=code)
        try:
            bare.append(term.wait(lambda s: "one line" in s and "Quit" in s) - term.t0)
        finally:
            term.close()
        term = Terminal([sys.executable, "-m", command(code), "--runs-dir", runs_dir, "--no-prewarm", *LAB],
                        env={"PYTHONPATH": str(code)}, cwd=code)
        try:
            lab.append(term.wait(lambda s: "epoch -/" in s and "patience -/" in s) - term.t0)
        finally:
            term.close()
    # the ratio of the medians (the target's), and two that a burst of the host's load moves less:
    # the median of each side-by-side pair's ratio, and the ratio of the fastest of each
    return {"lab": lab, "bare": bare, "ratio": statistics.median(lab) / statistics.median(bare),
            "pair_ratio": statistics.median(a / b for a, b in zip(lab, bare)), "best_ratio": min(lab) / min(bare)}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def bench(repeats: int = 5, prewarm: bool = True, runs_dir: str | None = None, code: Path = ROOT) -> dict:
    """Medians over `repeats` fresh labs (and every lab's numbers under "labs")."""
    compile_package(code)
    with tempfile.TemporaryDirectory(prefix="gengap-bench-term-") as tmp:
        labs = [one_lab(runs_dir or tmp, prewarm, code=code) for _ in range(repeats)]
    prewarm = all("warm" in x for x in labs)
    med = lambda key: statistics.median(x[key] for x in labs) if all(x.get(key) is not None for x in labs) else None  # noqa: E731
    return {"n": repeats, "prewarm": prewarm, "labs": labs, "first_frame": med("first_frame"), "panels": med("panels"),
            "warm": med("warm") if prewarm else None, "first_epoch": med("first_epoch"),
            "palette": statistics.median(p for x in labs for p in x["palette"]),
            "palette_max": max(p for x in labs for p in x["palette"]),
            "warm_rss_mib": med("warm_rss_mib") if prewarm else None, "quit_s": med("quit_s"),
            "restart": med("restart"),
            "left_behind": sum(len(x["left_behind"]) for x in labs)}


def report(r: dict) -> list[str]:
    ms = lambda v: "-" if v is None else f"{v * 1000:.0f} ms"  # noqa: E731
    lines = [f"   {'prewarm' if r['prewarm'] else '--no-prewarm'}, median of {r['n']} fresh labs: "
             f"first frame {ms(r['first_frame'])} (target <= 400), panels {ms(r['panels'])}"
             + (f", warm {r['warm']:.1f} s after start (RSS {r['warm_rss_mib']:.0f} MiB)" if r["prewarm"] else "")]
    lines.append(f"   ctrl+r -> epoch 1 on screen {ms(r['first_epoch'])} (target <= 300), a restart {ms(r['restart'])};  "
                 f"palette while training "
                 f"{ms(r['palette'])} median, {ms(r['palette_max'])} max (target <= 100);  ctrl+q -> all gone "
                 f"{ms(r['quit_s'])}, processes left behind: {r['left_behind']}")
    lines.append("   each lab: " + "; ".join(
        f"{x['first_frame'] * 1000:.0f}/{x['first_epoch'] * 1000:.0f}/{statistics.median(x['palette']) * 1000:.0f}"
        for x in r["labs"]) + "  (first frame / first epoch / palette, ms)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-prewarm", action="store_true")
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose gengap-tui runs (default: this one)")
    ap.add_argument("--first-frame", action="store_true", help="only the first frame, beside a bare Textual app's")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    if args.first_frame:
        with tempfile.TemporaryDirectory(prefix="gengap-bench-term-") as tmp:
            f = first_frames(args.repeats, tmp, args.code.resolve())
        ms = lambda xs: ", ".join(f"{x * 1000:.0f}" for x in xs)  # noqa: E731
        print(f"first frame in a pty {COLS}x{ROWS}, {len(os.sched_getaffinity(0))} cores, load {load0:.2f} -> "
              f"{os.getloadavg()[0]:.2f}: lab {statistics.median(f['lab']) * 1000:.0f} ms median ({ms(f['lab'])}), "
              f"bare Textual app {statistics.median(f['bare']) * 1000:.0f} ms ({ms(f['bare'])}): "
              f"{f['ratio']:.2f}x (target <= 1.5x); pairs' median {f['pair_ratio']:.2f}x, fastest of each "
              f"{f['best_ratio']:.2f}x")
        return
    r = bench(args.repeats, not args.no_prewarm, code=args.code.resolve())
    print(f"gengap-tui ({args.code}) in a pty {COLS}x{ROWS}, {len(os.sched_getaffinity(0))} cores, load {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}, gengap_tui byte-compiled first (compile_package)")
    print("\n".join(report(r)))


if __name__ == "__main__":
    main()
