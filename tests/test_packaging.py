"""The packaged presets live in the top-level presets/ (the project card's layout) and are found
by a wheel install and an editable install alike."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT
from gengap_tui import presets

ON_DISK = {p.stem for p in (ROOT / "presets").glob("*.toml")}


def test_the_presets_are_the_top_level_folder():
    assert ON_DISK >= {"default", "early-stopping-vs-noise", "weight-decay-interpolation"}
    assert not (ROOT / "gengap_tui" / "presets").exists()
    assert presets.packaged_names() == ON_DISK


def test_an_editable_install_lists_every_preset(tmp_path):
    # this test suite runs on the editable install (.ci/run: pip install -e)
    env = {**os.environ, "GENGAP_PRESETS_DIR": str(tmp_path / "no-user-presets")}
    out = subprocess.run([sys.executable, "-m", "gengap_tui.cli", "presets"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert {line.split()[0] for line in out.stdout.splitlines()} == ON_DISK


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_lists_every_preset(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    # setuptools' warning that a data folder is "importable" but absent from `packages` (the old
    # gengap_tui/presets/ beside gengap_tui/presets.py) is gone
    assert "importable" not in build.stdout + build.stderr
    [wheel] = list(wheels.glob("gengap_tui-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr
    # the dependencies (pydantic, ...) from this venv; gengap_tui itself only from the wheel
    # (a site-packages folder on PYTHONPATH does not run its .pth files: no editable finder)
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"],
           "GENGAP_PRESETS_DIR": str(tmp_path / "no-user-presets")}
    where = subprocess.run([str(py), "-c", "from gengap_tui import presets; print(presets.packaged_dir())"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(env_dir)
    out = subprocess.run([str(py), "-m", "gengap_tui.cli", "presets"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert {line.split()[0] for line in out.stdout.splitlines()} == ON_DISK
    tours = subprocess.run([str(py), "-m", "gengap_tui.cli", "tour", "--list"], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=60)
    assert tours.returncode == 0 and "early-stopping" in tours.stdout and "broken" not in tours.stdout
