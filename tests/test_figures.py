"""`gengap-tui figure` (PNG, PDF, SVG with the lab's markers) and `gengap-tui table` (text, CSV,
Markdown; the seeds' mean ± std) on a small run and a small sweep trained here.

The figure tests need matplotlib (`pip install -e '.[figures]'`): skipped without it, except under
CI (the CI variable set), where they fail: .ci/run installs the extra."""

import csv
import io
import json
import os
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import small_cfg
from gengap_tui.cli import main
from gengap_tui.control import RunControl
from gengap_tui.protocol import Tweak
from gengap_tui.session import run_session, sweep_session


def need_matplotlib():
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        if os.environ.get("CI"):
            pytest.fail("matplotlib is not installed, but CI runs the figure tests: .ci/run installs gengap-tui[figures]")
        pytest.skip("matplotlib is not installed (pip install 'gengap-tui[figures]')")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A label-noise run that observes early stopping (a would-stop epoch) and takes a tweak."""
    control = RunControl()

    def emit(msg):
        if getattr(msg, "row", None) and msg.row.get("epoch") == 3:
            control.command(Tweak(changes={"lr": 0.005}))

    cfg = small_cfg("noise.label_noise=0.2", "optim.epochs=12", "data.n_train=300", "early_stopping.observe=true",
                    "early_stopping.patience=2", "optim.lr=0.05")
    out = run_session(cfg, tmp_path_factory.mktemp("runs"), control=control, emit=emit)
    events = [json.loads(line)["event"] for line in (out.run_dir / "events.jsonl").read_text().splitlines()]
    assert {"would_stop", "tweaked"} <= set(events), events
    return out.run_dir


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    cfg = small_cfg("run.seeds=2", "optim.epochs=4", "data.n_train=300", "data.n_val=300")
    out = sweep_session(cfg, "model.width", [4, 8, 16], tmp_path_factory.mktemp("sweeps"))
    assert out.summary["status"] == "completed", out.summary
    return out.run_dir


def rows_of(sweep_dir):
    return [json.loads(line) for line in (sweep_dir / "sweep.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------ table
def test_table_csv_has_every_value_with_the_seeds_std(sweep_dir, capsys):
    assert main(["table", str(sweep_dir), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["model.width"]) for r in table] == [4, 8, 16]
    for r, row in zip(table, rows_of(sweep_dir)):
        assert float(r["test_err"]) == pytest.approx(row["test_err"])
        # two seeds: the population std is half the distance between them
        assert float(r["test_err_std"]) == pytest.approx((row["test_err_max"] - row["test_err_min"]) / 2, abs=1e-6)
        assert int(r["n_params"]) == row["n_params"] and r["status"] == "completed"


def test_table_markdown_and_text(sweep_dir, capsys):
    assert main(["table", str(sweep_dir), "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model.width | parameters |") and "test err (mean ± std, 2 seeds)" in lines[0]
    assert set(lines[1]) <= {"|", "-"} and len(lines) == 2 + 3
    first = rows_of(sweep_dir)[0]
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "4" and cells[1] == str(first["n_params"])
    assert f"{first['test_err']:.4f} ± " in lines[2]
    assert main(["table", str(sweep_dir)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "model.width" in text[0] and len(text) == 2 + 3 and text[2].split()[0] == "4"


def test_table_reads_any_param_columns(tmp_path, capsys):
    """A grid's rows (`param2` / `value2`, as grid sweeps write them) get a column per setting."""
    (tmp_path / "sweep.json").write_text(json.dumps({"param": "model.width", "config": {"run": {"seeds": 1}}}))
    rows = [{"param": "model.width", "value": w, "param2": "noise.label_noise", "value2": n, "test_err": 0.1 * w + n,
             "status": "completed"} for n in (0.0, 0.2) for w in (1, 2)]
    (tmp_path / "sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["table", str(tmp_path), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0])[:3] == ["model.width", "noise.label_noise", "test_err"]
    assert [(r["model.width"], r["noise.label_noise"]) for r in table] == [("1", "0.0"), ("2", "0.0"), ("1", "0.2"), ("2", "0.2")]


def test_table_refuses_what_is_not_a_sweep(run_dir, tmp_path, capsys):
    assert main(["table", str(run_dir)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    (tmp_path / "sweep.json").write_text("{}")
    assert main(["table", str(tmp_path)]) == 2
    assert "no sweep.jsonl rows" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ figure
def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def svg_texts(path):
    root = ET.parse(path).getroot()
    return " ".join("".join(t.itertext()) for t in root.iter() if t.tag.endswith("text"))


def test_figure_png_pdf_svg_of_a_run(run_dir, tmp_path, capsys):
    need_matplotlib()
    for suffix in ("png", "pdf", "svg"):
        out = tmp_path / f"error.{suffix}"
        assert main(["figure", str(run_dir), "--out", str(out)]) == 0, capsys.readouterr().err
        assert out.stat().st_size > 10_000
    w, h = png_size(tmp_path / "error.png")
    assert w >= 1000 and h >= 600
    assert (tmp_path / "error.pdf").read_bytes()[:5] == b"%PDF-"
    text = svg_texts(tmp_path / "error.svg")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    would = next(e["epoch"] for e in events if e["event"] == "would_stop")
    summary = json.loads((run_dir / "summary.json").read_text())
    # the lines and the lab's markers, with their epochs
    for label in ("train error", "validation error", "gap", f"would stop {would}",
                  f"best epoch {summary['best_epoch']}", "tweaks", "lr=0.005"):
        assert label in text, (label, text)


def test_figure_views_of_a_run(run_dir, tmp_path, capsys):
    need_matplotlib()
    for view, words in (("loss", ["train loss", "validation loss"]),
                        ("memorization", ["noisy labels memorized", "error on clean training examples"]),
                        ("examples", ["first learned, median epoch", "forgetting events", "learned for good"])):
        out = tmp_path / f"{view}.svg"
        assert main(["figure", str(run_dir), "--view", view, "--out", str(out)]) == 0, capsys.readouterr().err
        text = svg_texts(out)
        for w in words:
            assert w in text, (view, w)
    with np.load(run_dir / "examples.npz") as z:
        first, noisy = z["first_learned"][0], z["noisy"][0]
    med = np.median(first[noisy & (first > 0)])  # the noisy examples' median first-learned epoch
    assert f"noisy ({noisy.sum()}): first learned, median epoch {med:g}" in svg_texts(tmp_path / "examples.svg")


def test_figure_of_a_sweep(sweep_dir, tmp_path, capsys):
    need_matplotlib()
    out = tmp_path / "sweep.svg"
    assert main(["figure", str(sweep_dir), "--out", str(out)]) == 0, capsys.readouterr().err
    text = svg_texts(out)
    assert "error against model.width" in text and "2 seeds" in text and "test error" in text
    png = tmp_path / "sweep.png"
    assert main(["figure", str(sweep_dir), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_figure_refuses_bad_input(run_dir, sweep_dir, tmp_path, capsys):
    assert main(["figure", str(run_dir), "--out", str(tmp_path / "x.jpg")]) == 2
    assert ".png, .pdf, .svg" in capsys.readouterr().err
    assert main(["figure", str(run_dir), "--view", "sweep", "--out", str(tmp_path / "x.png")]) == 2
    assert "a run directory has the views error, loss, memorization, examples" in capsys.readouterr().err
    assert main(["figure", str(sweep_dir), "--view", "loss", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["figure", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a run or sweep directory" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
