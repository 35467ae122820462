"""Sweeps: widths trained together give the numbers of one-at-a-time training; the files a sweep
writes; `gengap-tui sweep`; cancellation; the double-descent shape summary."""

import json
import subprocess

import pytest

from conftest import PYTHON, ROOT, small_cfg
from gengap_tui import presets, runs
from gengap_tui.config import ConfigError
from gengap_tui.core.sweep import Sweep, shape_of

SWEEP_KEYS = {"param", "value", "width", "n_params", "train_err", "val_err", "test_err", "epochs_run", "run_dir"}


def sweep_rows(out):
    return runs.read_jsonl(out / "sweep.jsonl")


@pytest.mark.parametrize("extra", [
    ["optim.optimizer=sgd", "optim.lr=0.05", "noise.label_noise=0.15"],
    ["optim.optimizer=adam", "run.seeds=2", "regularization.weight_decay=0.01"],
])
def test_batched_sweep_equals_one_at_a_time(tmp_path, extra):
    cfg = small_cfg("optim.epochs=5", "model.depth=2", *extra)
    widths = [2, 3, 5, 8, 13, 21, 34, 55]
    together = Sweep(cfg, "model.width", widths)
    assert together.together
    s1 = together.run(tmp_path / "together")
    s2 = Sweep(cfg, "model.width", widths, together=False).run(tmp_path / "each")
    assert s1["status"] == s2["status"] == "completed"
    a, b = sweep_rows(tmp_path / "together"), sweep_rows(tmp_path / "each")
    assert [r["value"] for r in a] == [r["value"] for r in b] == widths
    for ra, rb in zip(a, b):
        assert SWEEP_KEYS <= set(ra)
        assert ra["n_params"] == rb["n_params"]
        assert ra["epochs_run"] == rb["epochs_run"] == 5
        for k in ("train_err", "val_err", "test_err"):
            assert ra[k] == pytest.approx(rb[k], abs=2.5e-3), (ra["value"], k)
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], rel=1e-4)
    meta = json.loads((tmp_path / "together" / "sweep.json").read_text())
    assert meta["together"] and meta["buckets"] < meta["members"] and meta["padded_fraction"] <= 1.25


def test_one_wide_bucket_equals_one_at_a_time(tmp_path):
    """Every width padded to the widest in one bucket (what a CUDA sweep does by default, where the
    padded arithmetic is free and launches are not): the padded units stay exactly zero, so the
    numbers are the one-at-a-time ones."""
    cfg = small_cfg("optim.epochs=4", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05",
                    "optim.momentum=0.9", "noise.label_noise=0.15")
    widths = [2, 5, 13, 34]
    together = Sweep(cfg, "model.width", widths, max_waste=10.0)
    s1 = together.run(tmp_path / "together")
    s2 = Sweep(cfg, "model.width", widths, together=False).run(tmp_path / "each")
    assert s1["status"] == s2["status"] == "completed"
    meta = json.loads((tmp_path / "together" / "sweep.json").read_text())
    assert meta["buckets"] == 1 and meta["padded_fraction"] > 2
    for ra, rb in zip(sweep_rows(tmp_path / "together"), sweep_rows(tmp_path / "each")):
        for k in ("train_err", "val_err", "test_err"):
            assert ra[k] == pytest.approx(rb[k], abs=2.5e-3), (ra["value"], k)
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], rel=1e-4)


def test_sweep_directory_holds_a_run_per_value_and_live_progress(tmp_path):
    cfg = small_cfg("optim.epochs=3", "noise.label_noise=0.2")
    out = tmp_path / "sw"
    seen = []
    Sweep(cfg, "model.width", [16, 4, 8]).run(out, on_progress=seen.append)
    rows = sweep_rows(out)
    assert [r["value"] for r in rows] == [4, 8, 16]  # widths in order
    prog = runs.read_jsonl(out / "progress.jsonl")
    assert prog == json.loads(json.dumps(seen)) and [p["epoch"] for p in prog] == [1, 2, 3]
    assert prog[-1]["values"] == [4, 8, 16] and len(prog[-1]["test_err"]) == 3
    assert prog[-1]["test_err"] == pytest.approx([r["test_err"] for r in rows])
    for r in rows:
        rec = runs.load_run(out / r["run_dir"])
        assert rec.config["model"]["width"] == r["width"]
        assert rec.config["early_stopping"]["enabled"] is False  # sweeps report the final epoch
        assert len(rec.metrics) == 3 and rec.summary["status"] == "completed"
        assert rec.metrics[-1]["train_err"] == pytest.approx(r["train_err"])
        assert "noisy_memorized" in rec.metrics[-1]
        assert all(m["cpu_percent"] >= 0 and m["rss_mb"] > 0 for m in rec.metrics)  # system metrics (issue 24)
    assert all(p["cpu_percent"] >= 0 for p in prog)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["param"] == "model.width"


def test_non_width_sweeps_run_one_at_a_time(tmp_path):
    cfg = small_cfg("optim.epochs=2")
    sw = Sweep(cfg, "regularization.weight_decay", [0, 0.1])
    assert not sw.together
    sw.run(tmp_path / "wd")
    rows = sweep_rows(tmp_path / "wd")
    assert [r["value"] for r in rows] == [0, 0.1] and all(r["status"] == "completed" for r in rows)
    assert rows[0]["width"] is None


def test_bad_sweeps_name_the_setting():
    cfg = small_cfg()
    with pytest.raises(ConfigError, match=r"model\.width"):
        Sweep(cfg, "model.width", [0, 4])
    with pytest.raises(ConfigError, match="nosuch"):
        Sweep(cfg, "model.nosuch", [1])
    with pytest.raises(ValueError, match="sweep.values"):
        Sweep(cfg, "model.width", [])
    with pytest.raises(ValueError, match="repeat"):
        Sweep(cfg, "model.width", [4, 4])


def test_cancelled_sweep_keeps_what_it_measured(tmp_path):
    cfg = small_cfg("optim.epochs=50")
    sw = Sweep(cfg, "model.width", [4, 8])

    def on_progress(row):
        if row["epoch"] == 2:
            sw.request_stop()

    s = sw.run(tmp_path / "c", on_progress=on_progress)
    assert s["status"] == "cancelled"
    rows = sweep_rows(tmp_path / "c")
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"]
    assert all(r["epochs_run"] == 2 and r["test_err"] is not None for r in rows)


def test_shape_finds_threshold_peak_and_dip():
    te = [0.70, 0.55, 0.48, 0.50, 0.56, 0.54, 0.50, 0.47]
    tr = [0.70, 0.50, 0.30, 0.10, 0.005, 0.0, 0.0, 0.0]
    rows = [{"value": v, "test_err": a, "train_err": b} for v, a, b in zip([2, 4, 8, 16, 32, 64, 128, 256], te, tr)]
    s = shape_of(rows)
    assert s["interpolation_threshold"] == 32
    assert s["peak_value"] == 32 and s["dip_value"] == 8 and s["last_test_err"] == 0.47
    assert s["peak_prominence"] == pytest.approx(0.08)
    mono = shape_of([{"value": v, "test_err": 1 / v, "train_err": 1.0} for v in (1, 2, 4, 8)])
    assert mono["peak_prominence"] <= 0 and mono["interpolation_threshold"] is None


def test_double_descent_preset_sweeps_twenty_widths():
    cfg = presets.load("double-descent")
    assert cfg.sweep.param == "model.width" and len(cfg.sweep.values) == 20
    assert min(cfg.sweep.values) == 2 and max(cfg.sweep.values) == 300
    assert cfg.noise.label_noise == 0.15 and cfg.optim.optimizer == "sgd" and cfg.optim.epochs == 500


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_cli_sweep_writes_sweep_jsonl(tmp_path):
    out = subprocess.run(
        [PYTHON, "-m", "gengap_tui.cli", "sweep", "double-descent", "--values", "2,8,32",
         "--set", "optim.epochs=3", "--set", "data.n_train=300", "--set", "data.n_val=200",
         "--device", "cpu", "--runs-dir", str(tmp_path), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    (d,) = [p for p in tmp_path.iterdir() if p.name.endswith(tuple("0123456789abcdef"))]
    assert "sweep-double-descent" in d.name
    rows = sweep_rows(d)
    assert [r["value"] for r in rows] == [2, 8, 32]
    # the last two lines: where the sweep is, then its shape as summary.json records it
    *table, where, shape = out.stdout.strip().splitlines()
    assert where == f"sweep directory: {d}"
    for r in rows:  # one table line per value, with its errors
        assert any(line.split()[:1] == [f"{r['value']:g}"] and f"{r['test_err']:.3f}" in line for line in table)
    s = runs.read_json(d / "summary.json")
    assert s["status"] == "completed" and s["last_test_err"] == rows[-1]["test_err"]
    parts = shape.split(" | ")
    assert parts[0].startswith("completed in ") and parts[-1] == f"last {rows[-1]['test_err']:.3f}"
    threshold = [p for p in parts if p.startswith("interpolation threshold")]
    assert threshold == ([] if s["interpolation_threshold"] is None else
                         [f"interpolation threshold model.width = {s['interpolation_threshold']:g}"])
    if s["peak_value"] is None:
        assert parts[-2].startswith("no test-error peak")
    else:
        assert parts[-3:-1] == [f"test-error peak {s['peak_test_err']:.3f} at {s['peak_value']:g}",
                                f"dip before it {s['dip_test_err']:.3f} at {s['dip_value']:g}"]


@pytest.mark.parametrize("args, needle", [
    (["--values", "2,x"], "--values"),
    (["--param", "model.width", "--values", "0,2"], "model.width"),
    (["--param", "optim.nosuch", "--values", "1"], "nosuch"),
])
def test_cli_sweep_bad_input_exits_2_naming_the_field(tmp_path, args, needle):
    out = subprocess.run([PYTHON, "-m", "gengap_tui.cli", "sweep", "double-descent", *args,
                          "--runs-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert needle in out.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


def test_cli_sweep_param_without_values_is_refused(tmp_path):
    out = subprocess.run([PYTHON, "-m", "gengap_tui.cli", "sweep", "double-descent", "--param", "optim.lr",
                          "--runs-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "--values" in out.stderr
    out = subprocess.run([PYTHON, "-m", "gengap_tui.cli", "sweep", "default", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "sweep.values" in out.stderr


def test_one_at_a_time_rows_report_memorization_like_grouped_ones(tmp_path):
    cfg = small_cfg("optim.epochs=4", "optim.optimizer=sgd", "optim.lr=0.05", "noise.label_noise=0.2")
    Sweep(cfg, "model.width", [4, 16]).run(tmp_path / "together")
    Sweep(cfg, "model.width", [4, 16], together=False).run(tmp_path / "each")
    for ra, rb in zip(sweep_rows(tmp_path / "together"), sweep_rows(tmp_path / "each")):
        for k in ("train_clean_err", "noisy_memorized"):
            assert ra[k] is not None and rb[k] == pytest.approx(ra[k], abs=2.5e-3), (ra["value"], k)


@pytest.mark.parametrize("together", [True, False], ids=["grouped", "one-at-a-time"])
def test_a_full_disk_writing_one_values_examples_does_not_fail_the_sweep(tmp_path, monkeypatch, together):
    """examples.npz of the second value cannot be written (ENOSPC): that value's summary.json says
    so (`examples_error`, as a run's does), the other values keep theirs, and the sweep concludes
    (sweep.jsonl, summary.json) as completed."""
    import errno

    from gengap_tui.core.examples import ExampleCounters

    real_save, calls = ExampleCounters.save, {"n": 0}

    def save(self, path, noisy, rows=slice(None)):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_save(self, path, noisy, rows)

    monkeypatch.setattr(ExampleCounters, "save", save)
    out = tmp_path / "sw"
    s = Sweep(small_cfg("optim.epochs=2"), "model.width", [4, 8, 16], together=together).run(out)
    assert s["status"] == "completed"
    rows = sweep_rows(out)
    assert [r["status"] for r in rows] == ["completed"] * 3
    for i, r in enumerate(rows):
        rec = runs.load_run(out / r["run_dir"])
        assert rec.summary["status"] == "completed" and (out / r["run_dir"] / "model.pt").is_file()
        if i == 1:
            assert "No space left on device" in rec.summary["examples_error"]
            assert not (out / r["run_dir"] / "examples.npz").exists()
            assert not list((out / r["run_dir"]).glob(".examples.npz.*"))
        else:
            assert "examples_error" not in rec.summary and (out / r["run_dir"] / "examples.npz").is_file()
