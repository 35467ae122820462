"""`gengap-tui serve` without a browser: what it refuses before starting (exit 2, the flag or the
port named), the embedded path never importing textual-serve, and a served lab's stdout carrying
nothing but the protocol while stray output flies around (tui/web.py). The browser: test_browser.py."""

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import PYTHON, ROOT, wait_until

from gengap_tui.cli import main
from gengap_tui.serve import INSTALL, exposure_warning, is_loopback, public_url


def test_loopback_or_a_warning():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert is_loopback(host) and exposure_warning(host, 8000) is None, host
    for host in ("0.0.0.0", "::", "192.0.2.7", "gpu-box.example.org"):
        text = exposure_warning(host, 8000)
        assert text is not None and "anyone who can reach this port can start training" in text, host
    assert public_url("127.0.0.1", 8000, None) == "http://127.0.0.1:8000"
    assert public_url("::1", 8001, None) == "http://[::1]:8001"
    assert public_url("127.0.0.1", 8000, "https://lab.example.org/gengap/") == "https://lab.example.org/gengap"


@pytest.mark.parametrize("argv, named", [
    (["--port", "0"], "--port = 0: must be 1..65535"),
    (["--port", "70000"], "--port = 70000: must be 1..65535"),
    (["--public-url", "localhost:8000"], "--public-url = 'localhost:8000'"),
    (["--public-url", "ftp://box:8000"], "--public-url"),
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
])
def test_bad_input_is_refused_before_serving(argv, named, tmp_path, capsys):
    assert main(["serve", "--runs-dir", str(tmp_path / "runs"), *argv]) == 2
    assert named in capsys.readouterr().err


def needs_textual_serve() -> None:
    """The `serve` extra: without it `serve` stops at its install hint (tested above); the tests
    of what comes after skip, except under CI, where a missing extra is a failure."""
    import importlib.util

    if importlib.util.find_spec("textual_serve") is None:
        problem = "textual-serve is not installed (pip install -e '.[serve]')"
        if os.environ.get("CI"):
            pytest.fail(f"the serve tests cannot run in CI: {problem}")
        pytest.skip(problem)


def test_a_port_in_use_is_exit_2_with_the_port_and_another_host_warns_first(tmp_path, capsys):
    needs_textual_serve()  # the port is checked once the extra is known to be there
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"port {port} is in use" in err and "--port" in err
        assert "warning" not in err  # the default host is loopback
        # any other address: the warning, before the port check (which fails here too)
        assert main(["serve", "--host", "0.0.0.0", "--port", str(port), "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "anyone who can reach this port can start training" in err
        assert err.index("warning") < err.index(f"port {port} is in use")


def test_without_textual_serve_it_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # what a missing package looks like to import
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert main(["serve", "--runs-dir", str(tmp_path)]) == 2
    assert INSTALL in capsys.readouterr().err


def test_the_lab_and_the_cli_never_import_textual_serve():
    code = ("import sys; import gengap_tui.cli as c, gengap_tui.tui.app; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual_serve', 'aiohttp')))")
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# a served lab's stdout

# a library that prints when it is imported, in every Python process of the served lab but the lab
# itself: the training process and multiprocessing's resource tracker (they inherit fd 1)
NOISY_SITE = textwrap.dedent("""
    import os
    if str(os.getppid()) != os.environ.get("NOISE_SPARES_CHILDREN_OF"):
        print(f"stray output from pid {os.getpid()}", flush=True)
""")


def _packets(data: bytes) -> list[tuple[bytes, bytes]]:
    """textual-serve's framing, strictly: type D / M / P, a 4-byte big-endian length, the payload;
    anything else (a stray byte) fails."""
    out, i = [], 0
    while i < len(data):
        kind, (size,) = data[i:i + 1], struct.unpack(">I", data[i + 1:i + 5])
        assert kind in (b"D", b"M", b"P") and size < 2**24, f"not a packet at byte {i}: {data[i:i + 40]!r}"
        out.append((kind, data[i + 5:i + 5 + size]))
        i += 5 + size
    assert i == len(data), "the stream ends in the middle of a packet"
    return out


def _read_all(f, buf: bytearray) -> None:
    while chunk := f.read1(65536):
        buf.extend(chunk)


def _packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


@pytest.mark.slow
@pytest.mark.usefixtures("data_cache")
def test_a_served_lab_writes_nothing_but_the_protocol_to_stdout(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NOISY_SITE)
    runs_dir = tmp_path / "runs"
    # the environment textual-serve gives each tab (textual_serve.app_service.AppService)
    env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver", "TEXTUAL_FPS": "60",
           "TEXTUAL_COLOR_SYSTEM": "truecolor", "TERM_PROGRAM": "textual", "COLUMNS": "120", "ROWS": "36",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(ROOT), os.environ.get("PYTHONPATH")])),
           "NOISE_SPARES_CHILDREN_OF": str(os.getpid())}
    lab = subprocess.Popen([PYTHON, "-m", "gengap_tui.cli", "--runs-dir", str(runs_dir), "--set", "device=cpu"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = bytearray(), bytearray()
    readers = [threading.Thread(target=_read_all, args=(f, buf), daemon=True) for f, buf in ((lab.stdout, out), (lab.stderr, err))]
    for r in readers:
        r.start()
    try:
        assert wait_until(lambda: len(out) > 5000, 60), f"the lab drew nothing: {bytes(err)[-2000:]!r}"
        lab.stdin.write(_packet(b"D", b"\x12"))  # ctrl+r, as the tab's keyboard sends it
        lab.stdin.flush()
        summary = lambda: next(runs_dir.glob("*/summary.json"), None)  # noqa: E731
        assert wait_until(lambda: summary() is not None, 90), bytes(err)[-2000:]
        assert json.loads(summary().read_text())["status"] == "early_stopped"
        time.sleep(0.5)  # the last frames
        lab.stdin.write(_packet(b"M", json.dumps({"type": "quit"}).encode()))  # the tab closes
        lab.stdin.flush()
        lab.wait(15)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    for r in readers:
        r.join(5)
    prelude = b"__GANGLION__\n"
    assert bytes(out).startswith(prelude), bytes(out[:200])
    packets = _packets(bytes(out[len(prelude):]))
    assert packets[-1] == (b"M", b'{"type": "exit"}')
    # the training process and the resource tracker did print; it went to stderr, not into the protocol
    noisy = {int(line.rsplit(b" ", 1)[1]) for line in bytes(err).splitlines() if line.startswith(b"stray output from pid")}
    assert len(noisy) >= 2 and lab.pid not in noisy, bytes(err)[-2000:]
    assert b"stray output" not in bytes(out)


def test_each_tab_runs_the_lab_command_and_can_leave_out_the_warm_process(tmp_path):
    """What textual-serve runs per tab is the plain lab, which the CLI parses back: with the
    preset and runs directory given, and `--no-prewarm` only when asked."""
    import shlex

    from gengap_tui.cli import build_parser
    from gengap_tui.serve import tab_command

    for prewarm in (True, False):
        argv = shlex.split(tab_command("label-noise", tmp_path, prewarm))
        assert argv[0] == "exec" and argv[2:4] == ["-m", "gengap_tui.cli"]
        args = build_parser().parse_args(argv[4:])
        assert args.command is None  # the lab itself
        assert (args.preset, args.runs_dir, args.no_prewarm) == ("label-noise", str(tmp_path), not prewarm)
