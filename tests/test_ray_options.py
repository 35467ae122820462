"""`--ray`, `--gpus-per-task`, `--cpus-per-task` (gengap_tui/ray_options.py): bad input is refused
before anything slow, naming the flag (exit 2); without Ray installed `--ray` says how to install
it; and the default path (a local sweep) never loads Ray. None of this needs Ray."""

import subprocess

import pytest

from conftest import PYTHON, ROOT
from gengap_tui import cli, ray_options
from gengap_tui.ray_options import RayOptions, check


def test_addresses_and_limits():
    assert check("local", None, 1) == RayOptions("local", None, 1)
    assert check(" auto ", 0.25, 2).address == "auto"
    assert check("10.0.0.5:6379", 1, 4) == RayOptions("10.0.0.5:6379", 1.0, 4)
    assert RayOptions.from_wire(RayOptions("auto").to_wire()) == RayOptions("auto")
    for address, why in (("10.0.0.5", "HOST:PORT"), ("head:0", "1..65535"), ("ray://head:10001", "not supported"),
                         ("sweep", "expected local, auto or HOST:PORT")):
        with pytest.raises(ValueError, match=why) as err:
            check(address, None, 1)
        assert f"--ray {address!r}" in str(err.value)
    with pytest.raises(ValueError, match=r"--gpus-per-task 1.5: above 1 it must be a whole number"):
        check("local", 1.5, 1)
    with pytest.raises(ValueError, match=r"--gpus-per-task -1: must be 0..16"):
        check("local", -1, 1)
    with pytest.raises(ValueError, match=r"--cpus-per-task 0: must be a whole number 1..1024"):
        check("local", None, 0)


@pytest.mark.parametrize("argv, message", [
    (["sweep", "double-descent", "--ray", "nowhere"], "--ray 'nowhere': expected local, auto or HOST:PORT"),
    (["sweep", "double-descent", "--ray", "--gpus-per-task", "20"], "--gpus-per-task 20.0: must be 0..16"),
    (["sweep", "double-descent", "--cpus-per-task", "2"], "--cpus-per-task applies to a sweep on Ray: give --ray"),
    (["--ray", "head:99999"], "--ray 'head:99999'"),  # the lab: refused before its screen opens
])
def test_bad_ray_flags_exit_2_naming_the_flag(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["sweep", "double-descent", "--ray"], ["--ray", "local", "--preset", "double-descent"]])
def test_without_ray_installed_ray_says_how_to_install_it(argv, monkeypatch, capsys):
    monkeypatch.setattr(ray_options, "ray_installed", lambda: False)  # as on a machine without the extra
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Ray, which is not installed" in err and "pip install 'gengap-tui[ray]'" in err


@pytest.mark.slow
def test_a_local_sweep_never_loads_ray(tmp_path):
    code = ("import sys; from gengap_tui import cli; "
            "code = cli.main(['sweep', 'double-descent', '--values', '2,4', '--set', 'optim.epochs=1', "
            f"'--set', 'data.n_train=300', '--set', 'data.n_val=300', '--runs-dir', {str(tmp_path)!r}, '--quiet']); "
            "assert code == 0, code; "
            "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'gengap_tui.core.raysweep'))); "
            "assert not loaded, loaded; print('ray not loaded')")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ray not loaded" in out.stdout
