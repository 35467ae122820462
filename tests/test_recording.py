"""`--record FILE.cast`: asciicast v2 recordings of the real lab in a pseudo-terminal, played back
through a terminal emulator (pyte) to see what a viewer would see."""

import fcntl
import os
import signal
import struct
import sys
import termios
import time

import pyte
import pytest

from conftest import ROOT, wait_until
from gengap_tui.cli import main
from gengap_tui.tui.recording import CastWriter, read_cast
from test_terminal_loss import InPty

FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "label-noise-es"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")


def screens(header, events):
    """Every screen a player would show, as text, one per output event (resizes applied)."""
    screen = pyte.Screen(header["width"], header["height"])
    stream = pyte.Stream(screen)
    for t, kind, data in events:
        if kind == "r":
            cols, rows = (int(x) for x in data.split("x"))
            screen.resize(rows, cols)
        elif kind == "o":
            stream.feed(data)
            yield t, "\n".join(screen.display)


@pytest.fixture
def ptys(tmp_path):
    started = []

    def start(*argv):
        started.append(InPty(tmp_path, argv=[sys.executable, "-m", "gengap_tui.cli", *argv], size_in_env=False))
        return started[-1]

    yield start
    for p in started:
        p.close()


@pytest.mark.slow
def test_a_recorded_replay_plays_back_what_the_terminal_showed(ptys, tmp_path):
    cast = tmp_path / "replay.cast"
    lab = ptys("replay", str(FIXTURE), "--speed", "0", "--record", str(cast), "--runs-dir", str(tmp_path))
    assert lab.wait_drawn("EARLY STOP")
    fcntl.ioctl(lab.master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # the user resizes
    assert wait_until(lambda: any(e[1] == "r" for e in read_cast(cast)[1]), 20)
    # drawn again at the new size: the footer on the last of 30 rows (a player's resize alone
    # leaves the old footer on row 36, cut off)
    def redrawn(text):
        rows = text.split("\n")
        return len(rows) == 30 and len(rows[0]) == 100 and "palette" in rows[-1]

    assert wait_until(lambda: any(redrawn(text) for _, text in screens(*read_cast(cast))), 20)
    os.write(lab.master, b"\x11")  # ctrl+q
    assert lab.exit_within(time.monotonic(), 20) is not None

    header, events = read_cast(cast)
    assert header["version"] == 2 and (header["width"], header["height"]) == (120, 36)
    assert header["idle_time_limit"] > 0 and "TERM" in header["env"]
    times = [e[0] for e in events]
    assert times == sorted(times) and all(e[1] in ("o", "r") for e in events)
    assert [e[2] for e in events if e[1] == "r"] == ["100x30"]
    shown = [text for _, text in screens(header, events)]
    stop = next(i for i, text in enumerate(shown) if "EARLY STOP @ epoch" in text)
    assert "patience" in shown[stop]
    assert any("EARLY STOP @ epoch" in text and redrawn(text) for text in shown[stop:])


@pytest.mark.slow
def test_a_killed_lab_leaves_a_playable_recording(ptys, tmp_path):
    cast = tmp_path / "killed.cast"
    lab = ptys("--record", str(cast), "--runs-dir", str(tmp_path), "--set", "device=cpu")
    assert lab.wait_drawn("patience")
    lab.proc.send_signal(signal.SIGKILL)
    lab.proc.wait(10)
    header, events = read_cast(cast)
    assert header["version"] == 2 and events and all(e[1] == "o" for e in events)
    last = list(screens(header, events))[-1][1]
    assert "patience" in last  # what the terminal showed when the process died


def test_a_recording_never_goes_back_in_time_and_notes_only_real_resizes(tmp_path):
    w = CastWriter(tmp_path / "a.cast", 80, 24)
    w.output("hello")
    w.resize(80, 24)  # the start-up's resize to the same size: nothing
    w.resize(100, 30)
    w.output("")      # nothing sent: nothing recorded
    w.output("world")
    w.close()
    header, events = read_cast(tmp_path / "a.cast")
    assert (header["width"], header["height"]) == (80, 24)
    assert [(k, d) for _, k, d in events] == [("o", "hello"), ("r", "100x30"), ("o", "world")]
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)


@pytest.mark.parametrize("argv,needle", [
    (["--record", "demo.txt"], "a .cast file"),
    (["replay", str(FIXTURE), "--record", "/nonexistent-dir/x.cast"], "not a writable folder"),
])
def test_a_bad_record_path_is_refused_before_the_screen_opens(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--record" in err and needle in err
