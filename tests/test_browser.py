"""The served lab in a real headless browser: `gengap-tui serve`, Chromium (Debian's package)
driven by Playwright. The page draws on a canvas (xterm.js), so what is checked is what the labs
write (run directories, events, control.jsonl), which processes live, and the picture itself:
a tab trains and draws; a second tab attaches to the first one's run and pauses it, closing it
leaves the run alone, and stopping the server closes the run; a tab closed mid-run cancels its run and leaves no process behind.

Needs textual-serve, playwright, Pillow (`pip install -e '.[serve,browser-tests]'`) and
/usr/bin/chromium (`apt-get install chromium`): skipped without them, except under CI (the CI
variable set), where a missing piece fails the tests. `GENGAP_UPDATE_SCREENSHOTS=1` also writes
the picture of the first test to screenshots/browser.png (screenshots/regenerate.sh does)."""

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("GENGAP_CHROMIUM", "/usr/bin/chromium")
# a fresh profile (Playwright makes one per launch) and no traffic of Chromium's own: the network
# is closed here, and without these it keeps trying
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZE = {"width": 1280, "height": 800}
CLOSE_S = 10.0  # a closed tab's run has its summary, and its processes are gone, this soon
# a run that goes on for minutes (so that a tab can attach, pause, close mid-run); the default
# preset's data, so the session's data cache has it
LONG = 'name = "long"\ndevice = "cpu"\n[optim]\nepochs = 5000\n[early_stopping]\nenabled = false\n'


def _missing() -> str | None:
    for module, extra in (("textual_serve", "serve"), ("playwright", "browser-tests"), ("PIL", "browser-tests")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[{extra}]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _missing()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`gengap-tui serve` on a free port of 127.0.0.1, in its own process group."""

    def __init__(self, tmp_path: Path, preset: str):
        self.runs_dir = tmp_path / "runs"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(tmp_path / "serve.log", "wb")
        self.proc = subprocess.Popen([PYTHON, "-m", "gengap_tui.cli", "serve", "--port", str(self.port),
                                      "--runs-dir", str(self.runs_dir), "--preset", preset],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return True
            except OSError:
                return self.proc.poll() is not None

        assert wait_until(listening, 60) and self.proc.poll() is None, self.log_text()

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def open_tab(self, browser):
        page = browser.new_page(viewport=SIZE)
        page.goto(self.url)
        page.wait_for_selector("body.-first-byte", timeout=60_000)  # the tab's lab is writing
        page.focus("textarea.xterm-helper-textarea")  # keys go to the terminal (as a click would)
        return page

    def runs(self) -> list[Path]:
        return sorted(p for p in self.runs_dir.glob("*") if (p / "config.json").is_file())

    def labs(self) -> dict[int, list[int]]:
        """Each tab's lab process (pid) with its training processes (multiprocessing children)."""
        tree = _children()
        labs = [pid for pid in _descendants(self.proc.pid, tree) if "gengap_tui.cli" in _cmdline(pid)
                and not _cmdline(pid).startswith("/bin/sh")]
        return {lab: [c for c in tree.get(lab, []) if "--multiprocessing-fork" in _cmdline(c)
                      and "resource_tracker" not in _cmdline(c)] for lab in labs}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # closes every tab's lab first
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


@pytest.fixture
def serve(browser, tmp_path, request):
    request.getfixturevalue("data_cache")  # after `browser`: a test that cannot run does not make the data
    servers = []

    def start(preset: str = "default") -> Served:
        if preset == "long":
            (tmp_path / "long.toml").write_text(LONG)
            preset = str(tmp_path / "long.toml")
        servers.append(Served(tmp_path, preset))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


# ------------------------------------------------------------------------------------------ /proc


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # state ppid pgrp ...


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[0] not in "ZX":
            tree.setdefault(int(st[1]), []).append(int(entry))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    out = []
    for c in tree.get(pid, []):
        out += [c, *_descendants(c, tree)]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in "ZX"


# ------------------------------------------------------------------------------------------ helpers


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def _epochs(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def _summary(run_dir: Path) -> dict | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _new_run(served: Served, before: list[Path], timeout: float = 60) -> Path:
    assert wait_until(lambda: len(served.runs()) > len(before), timeout), served.log_text()
    (run,) = [p for p in served.runs() if p not in before]
    return run


def _curves_drawn(png: Path) -> tuple[int, int]:
    """(distinct colours of the page, strongly coloured pixels in the plot area): the curves are
    purple / green / red dots; the empty lab's plot area has none (text and frames are grey)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    h, w, _ = rgb.shape
    plot = rgb[int(h * 0.08):int(h * 0.85), int(w * 0.32):]
    return len(np.unique(rgb.reshape(-1, 3), axis=0)), int(((plot.max(2) - plot.min(2)) > 100).sum())


def _pixels(page):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)


def _still(page, timeout: float, what: str, pause: float = 0.3):
    """Wait until two pictures of the page `pause` s apart are the same; returns the last one."""
    shots = [_pixels(page)]

    def still() -> bool:
        time.sleep(pause)
        shots.append(_pixels(page))
        return bool((shots[-1] == shots[-2]).all())

    assert wait_until(still, timeout), f"{what}: the page never stood still"
    return shots[-1]


def _press_and_see(page, key: str, share: float = 0.05, timeout: float = 30) -> None:
    """Once the page is still (its first frames drawn), press `key` and wait until the page shows
    what it did: a share of the pixels changed (a dialog opening or closing). The next key then
    goes to the right screen however slow the machine is."""
    before = _still(page, timeout, key)
    page.keyboard.press(key)
    assert wait_until(lambda: (_pixels(page) != before).any(axis=2).mean() > share, timeout), f"{key}: nothing changed"


# ------------------------------------------------------------------------------------------ tests


def test_a_browser_tab_trains_the_default_preset_and_draws_its_curves(browser, serve, tmp_path):
    served = serve("default")
    page = served.open_tab(browser)
    page.keyboard.press("Control+r")
    run = _new_run(served, [])
    assert wait_until(lambda: _summary(run) is not None, 120), served.log_text()
    assert _summary(run)["status"] == "early_stopped"
    assert (run / "model.pt").is_file() and _epochs(run) == _summary(run)["epochs_run"]
    png = tmp_path / "browser.png"

    def drawn() -> bool:  # the run's last frames reach the page
        page.screenshot(path=str(png))
        return _curves_drawn(png)[1] > 1000

    assert wait_until(drawn, 20), f"no curves on the page: {_curves_drawn(png)}"
    _still(page, 20, "after the run", pause=0.6)  # the run's last frame (early stop, outcome) is drawn
    page.screenshot(path=str(png))
    from PIL import Image

    assert Image.open(png).size == (SIZE["width"], SIZE["height"])
    colours, curve_pixels = _curves_drawn(png)
    assert colours > 200 and curve_pixels > 1000
    if os.environ.get("GENGAP_UPDATE_SCREENSHOTS"):
        shutil.copy(png, ROOT / "screenshots" / "browser.png")
    page.close()


def test_a_second_tab_attaches_to_the_first_tabs_run_and_pauses_it(browser, serve):
    """... and closing that tab leaves the run alone; stopping the server then closes the run."""
    served = serve("long")
    a = served.open_tab(browser)
    a.keyboard.press("Control+r")
    run = _new_run(served, [])
    assert wait_until(lambda: _epochs(run) >= 2, 60), served.log_text()
    (a_lab,) = served.labs()
    b = served.open_tab(browser)
    assert wait_until(lambda: len(served.labs()) == 2, 30)  # two tabs, two labs
    (b_lab,) = [lab for lab in served.labs() if lab != a_lab]
    # each tab's lab has one training process: the first's trains the run, the second's is its warm
    # process, waiting for a ctrl+r that never comes
    assert wait_until(lambda: all(len(trainers) == 1 for trainers in served.labs().values()), 30), served.labs()
    labs = served.labs()
    pids = [pid for lab, trainers in labs.items() for pid in (lab, *trainers)]
    assert len(pids) == 4
    _press_and_see(b, "F3")  # the runs dialog opens over the lab
    _press_and_see(b, "a")  # it closes: attached to the highlighted (newest) run, its curves drawn
    b.keyboard.press("F6")  # pause
    assert wait_until(lambda: any(e.get("event") == "paused" for e in _events(run)), 30), _events(run)[-5:]
    # it came from the second tab: through the run's control file, as `gengap-tui attach` steers
    commands = [json.loads(line) for line in (run / "control.jsonl").read_text().splitlines()]
    assert {"cmd": "pause"}.items() <= commands[0].items()
    # held at the epoch its paused event names: no row after it, not ended
    paused_at = next(e["epoch"] for e in _events(run) if e.get("event") == "paused")
    assert _epochs(run) == paused_at and _summary(run) is None
    # the attached tab closes: its lab goes, the run (not its own) goes on, still paused
    b.close()
    assert wait_until(lambda: not _alive(b_lab) and not any(_alive(p) for p in labs[b_lab]), CLOSE_S)
    assert _summary(run) is None and len(served.labs()) == 1
    assert _epochs(run) == paused_at  # still held, seconds later (the tab's lab took them to go)
    # the server stopped (SIGTERM) with both tabs open: the run's owner closes it with the reason
    served.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: _summary(run) is not None, CLOSE_S), served.log_text()
    summary = _summary(run)
    assert summary["status"] == "cancelled" and summary["reason"].startswith("the lab's server was stopped"), summary
    assert served.proc.wait(CLOSE_S) == 0
    assert wait_until(lambda: not any(_alive(pid) for pid in pids), 5), [p for p in pids if _alive(p)]
    a.close()


def test_a_tab_closed_mid_run_cancels_its_run_and_leaves_no_process(browser, serve):
    served = serve("long")
    page = served.open_tab(browser)
    page.keyboard.press("Control+r")
    run = _new_run(served, [])
    assert wait_until(lambda: _epochs(run) >= 3, 60), served.log_text()
    labs = served.labs()
    assert len(labs) == 1, labs
    ((lab, trainers),) = labs.items()
    assert len(trainers) == 1, (lab, trainers, _children().get(lab))
    page.close()
    closed = time.monotonic()
    assert wait_until(lambda: _summary(run) is not None, CLOSE_S), served.log_text()
    summary = _summary(run)
    assert summary["status"] == "cancelled" and summary["reason"].startswith("browser tab closed"), summary
    assert wait_until(lambda: not _alive(lab) and not _alive(trainers[0]), CLOSE_S - (time.monotonic() - closed))
    assert served.labs() == {} and served.proc.poll() is None  # the server goes on, ready for the next tab
