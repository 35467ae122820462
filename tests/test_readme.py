"""Every code block of the README runs here (issue 26), so that the README cannot drift from the
code. Generic: whatever blocks the README has are run; a new block needs no change here unless it
is long or cannot run on this machine.

- ```python blocks run as written, in order, in one fresh interpreter (one reader's session: a
  later block may use what an earlier one imported), in a temporary working folder.
- ```toml blocks are the preset format: each must parse, and a block that is a whole preset (it has
  a `name`) must validate as one.
- ```sh blocks: each command line runs, in a temporary working folder (so `runs/` is a temporary
  one), with the `gengap-tui` of this checkout, and
    * the placeholders `runs/<run-dir>` (and <a>, <b>, `path/to/my-preset.toml`, `my-tour.toml`)
      stand for real files made beforehand: copies of the recorded runs in tests/fixtures;
    * `run` and `sweep` get `--set optim.epochs=2` (long commands, shortened: EPOCHS_CAP), and the
      few lines in REWRITES are changed as that table says (and why);
    * a command that opens the lab (a terminal UI: the lab, replay, attach, compare, a tour played
      here) runs in a pseudo-terminal until the lab has drawn, then quits with ctrl+q (exit 0);
    * lines that cannot run here are skipped with the reason (SKIPS: installing, other machines,
      network, a Ray cluster, players that are not ours); each skip is reported, none is silent.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, wait_until
from gengap_tui import runs

README = ROOT / "README.md"
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
BLOCK = re.compile(r"^```(\w+)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
EPOCHS_CAP = ["--set", "optim.epochs=2"]

# (a regular expression found in the line, why it does not run here)
SKIPS = [
    (r"^(python3 -m venv|pip |\.venv/bin/pip )|&&", "installs packages (the network, minutes): .ci/run does this"),
    (r"pytest", "the test suite itself"),
    (r"^ssh ", "a tunnel from another machine"),
    (r"^[\w.-]+\$ ", "a command on another machine of a Ray cluster"),
    (r"^(asciinema|agg) ", "a third-party player, not installed here (tests/test_recording.py checks the .cast)"),
    (r"--ray (auto|\d)", "needs a running Ray cluster (tests/test_ray_sweep.py starts a local one)"),
    (r"data\.path=~/", "reads the user's own data files (CIFAR-10, MNIST), which cannot be had here "
                        "(tests/test_imagefiles.py writes tiny ones)"),
    (r"--device cuda|--gpus-per-task", "needs a CUDA GPU (tests/test_sysmetrics.py checks the refusal on a CPU machine; "
                                       "bench/gpu.sh runs them on a GPU)"),
    (r"<sweep-dir>", "a sweep directory of the reader's (tests/test_figures.py draws and tabulates sweeps it makes)"),
    (r"--view examples", "the recorded fixture runs predate examples.npz (tests/test_figures.py draws the view from "
                         "a fresh run)"),
    (r"^gengap-tui serve\b", "a server that runs until it is stopped (tests/test_serve.py and test_browser.py run it)"),
]
# the exact README line (its command, comment left out) -> the command run instead, and why
REWRITES = {
    # ~5 min: 30 epochs, then the run is attached to and resumed by the next lines (see _stop_run)
    "gengap-tui run default --set optim.epochs=2000 --set early_stopping.observe=true --detach":
        ("gengap-tui run default --set optim.epochs=2000 --set early_stopping.observe=true "
         "--set data.n_train=300 --set data.n_val=300 --detach", "a smaller data set: the run is stopped anyway"),
    "gengap-tui run default --set noise.label_noise=0 --set model.kind=cnn1d --runs-dir /tmp/runs":
        ("gengap-tui run default --set noise.label_noise=0 --set model.kind=cnn1d --runs-dir runs-elsewhere "
         "--set optim.epochs=2", "a folder of the test's own, not the machine's /tmp/runs; two epochs"),
    # a whole tour, recorded without a terminal: its pauses 20 times shorter
    "gengap-tui tour memorization --record memorization.cast":
        ("gengap-tui tour memorization --record memorization.cast --speed 20", "the tour's pauses shortened"),
}
LAB_COMMANDS = {None, "replay", "attach"}  # subcommands that open the lab (None: the lab itself)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(README.read_text(encoding="utf-8")) if kind == lang]


def sh_lines() -> list[str]:
    out = []
    for body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():  # a continued line is one command
            command = " ".join(shlex.split(line, comments=True)) if line.strip() else ""
            if command:
                out.append(command)
    return out


def skip_reason(line: str) -> str | None:
    return next((why for pattern, why in SKIPS if re.search(pattern, line)), None)


def test_the_readme_has_blocks_of_each_kind_and_no_unknown_language():
    kinds = {kind for kind, _ in BLOCK.findall(README.read_text(encoding="utf-8"))}
    assert kinds <= {"sh", "python", "toml"}, kinds  # a new language needs a way to run it here
    assert blocks("python") and blocks("sh") and blocks("toml")
    # every line of every sh block is either run or skipped with its reason
    assert all(line.startswith("gengap-tui") or skip_reason(line) for line in sh_lines()), \
        [line for line in sh_lines() if not line.startswith("gengap-tui") and not skip_reason(line)]


def test_the_toml_blocks_are_the_preset_format():
    import tomllib

    from gengap_tui.config import build

    for body in blocks("toml"):
        raw = tomllib.loads(body)
        if "name" in raw:
            build(raw, [])  # a whole preset: it validates (ConfigError names the field otherwise)


@pytest.mark.slow
def test_the_python_blocks_run_as_written(tmp_path):
    code = "\n\n".join(blocks("python"))
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "GENGAP_RUNS_DIR": str(tmp_path / "runs")})
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "runs" / "my-sweep").is_dir()  # the sweep block wrote where it says


class Placeholders:
    """Real files for the README's placeholders, in the test's working folder."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.recorded = {}
        for name, fixture in (("<run-dir>", "label-noise-es"), ("<a>", "label-noise-es"), ("<b>", "label-noise-wd")):
            dest = cwd / "recorded" / name.strip("<>")
            if not dest.exists():
                shutil.copytree(FIXTURES / fixture, dest)
            self.recorded[name] = dest
        self.detached: Path | None = None  # the run `--detach` started: <run-dir> after it
        (cwd / "path" / "to").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "presets" / "default.toml", cwd / "path" / "to" / "my-preset.toml")
        (cwd / "my-tour.toml").write_text('preset = "default"\nset = ["device=cpu", "data.n_train=300", '
                                          '"data.n_val=300", "optim.epochs=3"]\n'
                                          '[[step]]\ncaption = "train"\nkeys = ["ctrl+r"]\nwait = "run_done"\n'
                                          '[[step]]\nwait = "pause 1"\n')

    def fill(self, argv: list[str]) -> list[str]:
        out = []
        for a in argv:
            if a == "runs/<run-dir>":
                a = str(self.detached or self.recorded["<run-dir>"])
            for name, path in self.recorded.items():
                a = a.replace(f"runs/{name}", str(path))
            out.append(a)
        return out


def command_for(line: str, places: Placeholders) -> list[str]:
    """The argv run for a README line: its rewrite if it has one, else the line with the epoch
    cap for `run` and `sweep` (a later --set wins), the placeholders filled in."""
    rewritten = line in REWRITES
    argv = shlex.split(REWRITES[line][0] if rewritten else line)
    if subcommand(argv[1:]) in ("run", "sweep") and "--resume" not in argv and not rewritten:
        argv += EPOCHS_CAP
    return [sys.executable, "-m", "gengap_tui.cli", *places.fill(argv[1:])]


def subcommand(args: list[str]) -> str | None:
    return args[0] if args and not args[0].startswith("-") else None


def opens_the_lab(argv: list[str]) -> bool:
    args = argv[3:]
    sub = subcommand(args)
    if sub == "tour":
        return "--record" not in args and "--list" not in args
    return sub in LAB_COMMANDS and "--help" not in args


def _stop_run(run_dir: Path, timeout: float = 120) -> None:
    """Stop a detached run as the lab's f7 does (its control file), and wait for its summary."""
    if runs.read_json(run_dir / "summary.json") is None:
        runs.send_control(run_dir, cmd="stop")
        assert wait_until(lambda: runs.read_json(run_dir / "summary.json") is not None, timeout), run_dir


def _in_lab(argv: list[str], cwd: Path) -> None:
    from test_terminal_loss import InPty

    lab = InPty(cwd, argv=argv)
    try:
        assert lab.wait_drawn("patience", 180), lab.screen_text()[-2000:]
        # and its settings panel (mounted after the first frame): a ctrl+q before it ended the lab
        # with exit code 1 and Textual errors on this machine (issue 26's note to the lead)
        assert wait_until(lambda: "label_noise" in lab.screen_text(), 120), lab.screen_text()[-2000:]
        os.write(lab.master, b"\x11")  # ctrl+q
        assert lab.exit_within(time.monotonic(), 60) is not None, "the lab did not quit"
        assert lab.proc.returncode == 0, (lab.proc.returncode, lab.screen_text()[-2000:])
    finally:
        lab.close()


@pytest.mark.slow
def test_every_shell_command_runs(tmp_path, capsys):
    places = Placeholders(tmp_path)
    env = {**os.environ, "GENGAP_RUNS_DIR": str(tmp_path / "runs")}
    env.pop("CI", None)  # (nothing here depends on it)
    ran, skipped = [], []
    try:
        for line in sh_lines():
            why = skip_reason(line)
            if why is None and "--ray local" in line and not _has_ray():
                why = "needs the ray extra"
            if why is not None:
                skipped.append(f"{line}  ({why})")
                continue
            argv = command_for(line, places)
            if "--resume" in argv:  # the run to resume must have been stopped: f7 in `attach`, as a user would
                _stop_run(places.detached)
            if opens_the_lab(argv):
                _in_lab(argv, tmp_path)
            elif "--resume" in argv and "--detach" not in argv:
                _resume_then_ctrl_c(argv, tmp_path, env, places.detached)
            else:
                before = set(runs.list_runs(tmp_path / "runs"))
                p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
                assert p.returncode == 0, (line, p.returncode, p.stdout[-1500:], p.stderr[-1500:])
                if "--detach" in argv and "--resume" not in argv:  # <run-dir> from now on
                    [made] = set(runs.list_runs(tmp_path / "runs")) - before
                    places.detached = made
                    assert wait_until(lambda: len(runs.read_jsonl(made / "metrics.jsonl")) >= 1, 180), made
            ran.append(line)
    finally:
        if places.detached is not None:  # the detached runs go: nothing is left behind
            for _ in range(2):
                try:
                    _stop_run(places.detached, 60)
                except AssertionError:
                    pass
    with capsys.disabled():
        print(f"\nREADME: {len(ran)} commands ran; skipped:\n  " + "\n  ".join(skipped))
    assert ran


def _has_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _resume_then_ctrl_c(argv: list[str], cwd: Path, env: dict, run_dir: Path) -> None:
    """`run --resume` in the foreground trains the rest of a 2000-epoch run: it is watched until
    it has trained on (an epoch more than the stopped run had), then stopped with Ctrl+C (130)."""
    had = len(runs.read_jsonl(run_dir / "metrics.jsonl"))
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(runs.read_jsonl(run_dir / "metrics.jsonl")) > had or p.poll() is not None, 180)
        assert p.poll() is None, p.communicate()[1][-1500:]
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err[-1500:]
    assert runs.read_json(run_dir / "summary.json")["status"] == "cancelled"
