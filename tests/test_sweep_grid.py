"""Sweeps over any setting, and grids of two (docs/ARCHITECTURE.md, "Sweeps over any setting"):
a categorical sweep, a grid whose lines train their widths together with each line's own data,
the per-line summary, `gengap-tui sweep` with two --param, bad grid input, and the lab's view of
a grid sweep and of a categorical axis."""

import math
from types import SimpleNamespace

import pytest

from conftest import plotted, small_cfg, wait_for
from gengap_tui import runs
from gengap_tui.cli import main
from gengap_tui.config import ConfigError, build
from gengap_tui.core.sweep import Sweep, shape_of
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.commands import LabCommands
from gengap_tui.tui.plots import sweep_plot
from gengap_tui.tui.screenshot import settle_curves
from gengap_tui.tui.state import SweepState

WIDTHS = [2.0, 8.0, 32.0]
NOISE = [0.0, 0.3]


def tiny(*more):
    return small_cfg("optim.epochs=3", "data.n_train=300", "data.n_val=200", "optim.lr=0.01", *more)


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    """A real grid sweep: widths 2, 8, 32 (trained together) x label noise 0 and 0.3."""
    d = tmp_path_factory.mktemp("grid") / "sweep-grid"
    summary = Sweep(tiny(), "model.width", WIDTHS, param2="noise.label_noise", values2=NOISE).run(d)
    assert summary["status"] == "completed"
    return d


def test_categorical_sweep_writes_a_row_per_choice_in_its_order(tmp_path):
    sw = Sweep(tiny(), "optim.optimizer", ["sgd", "adamw", "adam"])
    assert not sw.together  # a different optimizer is another training: one at a time
    s = sw.run(tmp_path / "opt")
    rows = runs.read_jsonl(tmp_path / "opt" / "sweep.jsonl")
    assert [r["value"] for r in rows] == ["sgd", "adamw", "adam"]  # as given, not sorted
    assert all(r["param"] == "optim.optimizer" and r["status"] == "completed" and r["epochs_run"] == 3
               and "param2" not in r for r in rows)
    for r in rows:  # each value's run trained with that optimizer
        assert r["run_dir"] == f"optimizer-{r['value']}"
        cfg = runs.read_json(tmp_path / "opt" / r["run_dir"] / "config.json")
        assert cfg["optim"]["optimizer"] == r["value"]
        assert runs.read_jsonl(tmp_path / "opt" / r["run_dir"] / "metrics.jsonl")[-1]["epoch"] == 3
    assert s["param"] == "optim.optimizer" and s["values"] == ["sgd", "adamw", "adam"]
    assert {k: s[k] for k in shape_of(rows)} == shape_of(rows)
    progress = runs.read_jsonl(tmp_path / "opt" / "progress.jsonl")
    assert {v for p in progress for v in p["values"]} == {"sgd", "adamw", "adam"}
    # SGD and Adam do not train alike: the rows are the values' own numbers
    assert rows[0]["test_loss"] != rows[2]["test_loss"]


def test_switch_sweep_sets_the_switch(tmp_path):
    cfg = tiny("regularization.weight_decay=0.5", "optim.optimizer=adam")
    sw = Sweep(cfg, "regularization.decoupled", [True, False])
    sw.run(tmp_path / "wd")
    rows = runs.read_jsonl(tmp_path / "wd" / "sweep.jsonl")
    assert [r["value"] for r in rows] == [True, False] and [r["run_dir"] for r in rows] == [
        "decoupled-true", "decoupled-false"]
    assert [runs.read_json(tmp_path / "wd" / r["run_dir"] / "config.json")["regularization"]["decoupled"]
            for r in rows] == [True, False]
    assert rows[0]["test_loss"] != rows[1]["test_loss"]  # coupled and decoupled decay of 0.5 differ


def test_grid_sweep_rows_lines_and_per_line_summary(grid_dir):
    rows = runs.read_jsonl(grid_dir / "sweep.jsonl")
    assert [(r["value"], r["value2"]) for r in rows] == [(w, n) for n in NOISE for w in WIDTHS]
    assert all(r["param"] == "model.width" and r["param2"] == "noise.label_noise" and r["width"] == int(r["value"])
               and r["status"] == "completed" for r in rows)
    for r in rows:  # each point is a run directory trained with both settings
        assert r["run_dir"] == f"width-{int(r['value'])}+label_noise-{r['value2']:g}"
        cfg = runs.read_json(grid_dir / r["run_dir"] / "config.json")
        assert (cfg["model"]["width"], cfg["noise"]["label_noise"]) == (r["value"], r["value2"])
        # the noisy line trained on noisy labels (memorization is measured), the clean one did not
        assert (r["noisy_memorized"] is not None) == (r["value2"] > 0)
    meta = runs.read_json(grid_dir / "sweep.json")
    assert meta["param2"] == "noise.label_noise" and meta["values2"] == NOISE and meta["together"]
    assert meta["members"] == len(rows)  # both lines' widths were trained grouped
    s = runs.read_json(grid_dir / "summary.json")
    assert s["param2"] == "noise.label_noise" and [ln["value2"] for ln in s["lines"]] == NOISE
    for ln in s["lines"]:  # the shape of each line, computed on that line's rows alone
        assert {k: v for k, v in ln.items() if k != "value2"} == shape_of(
            [r for r in rows if r["value2"] == ln["value2"]])
    assert s["interpolation_threshold"] is None and s["peak_value"] is None  # no shape for the whole grid
    progress = runs.read_jsonl(grid_dir / "progress.jsonl")
    assert all(len(p["values2"]) == len(p["values"]) for p in progress)
    assert {(v, v2) for p in progress for v, v2 in zip(p["values"], p["values2"])} == {
        (w, n) for n in NOISE for w in WIDTHS}


def test_a_grid_line_gives_the_numbers_of_its_own_sweep(grid_dir, tmp_path):
    """A line of the grid is the one-setting sweep of the first setting with the second set to
    the line's value: same data (its own label-noise draw), same grouped training."""
    line = [r for r in runs.read_jsonl(grid_dir / "sweep.jsonl") if r["value2"] == 0.3]
    Sweep(tiny("noise.label_noise=0.3"), "model.width", WIDTHS).run(tmp_path / "alone")
    alone = runs.read_jsonl(tmp_path / "alone" / "sweep.jsonl")
    for a, b in zip(line, alone):
        assert a["value"] == b["value"] and a["n_params"] == b["n_params"]
        for k in ("train_err", "val_err", "test_err", "noisy_memorized"):
            assert a[k] == pytest.approx(b[k], abs=1e-6), k


def test_a_grid_line_of_another_architecture_trains_one_at_a_time():
    sw = Sweep(tiny(), "model.width", [8, 16], param2="model.kind", values2=["mlp", "cnn1d"])
    assert sw.line_together == [True, False] and not sw.together
    assert [c.model.kind for c in sw.configs] == ["mlp", "mlp", "cnn1d", "cnn1d"]


def test_bad_sweep_tables_name_the_field_the_value_and_what_is_allowed():
    cases = [
        ({"param": "model.kind", "values": ["mlp", "resnet"]}, ["sweep.values", "'resnet'", "'cnn1d'"]),
        ({"param": "model.width", "values": [8], "param2": "model.width", "values2": [4]},
         ["sweep.param2", "two different settings"]),
        ({"param": "model.width", "values": [8], "values2": [0.1]}, ["sweep.values2", "sweep.param2"]),
        ({"param": "model.width", "values": [8], "param2": "noise.label_noise"}, ["sweep.values2", "empty"]),
        ({"param": "model.width", "values": [8], "param2": "noise.label_noise", "values2": [0.1, 1.5]},
         ["sweep.values2", "label_noise = 1.5", "<= 1"]),
        ({"param": "run.seeds", "values": [1, 2]}, ["sweep.param", "[run]"]),
        ({"param": "model.widht", "values": [1]}, ["sweep.param", "did you mean model.width"]),
        ({"param": "optim.optimizer", "values": ["adam", "adam"]}, ["repeat"]),
    ]
    for table, needles in cases:
        with pytest.raises(ConfigError) as exc:
            build({"sweep": table})
        assert len(exc.value.problems) == 1
        for needle in needles:
            assert needle in exc.value.problems[0], (table, exc.value.problems)


def test_a_value_the_config_refuses_names_the_point():
    cfg = build({"data": {"dataset": "moons"}, "device": "cpu"})
    with pytest.raises(ConfigError, match=r"sweep model\.kind = cnn1d[\s\S]*'cnn1d' needs sequence inputs"):
        Sweep(cfg, "model.kind", ["mlp", "cnn1d"])


# ---------------------------------------------------------------------------------------- the CLI
def test_cli_grid_sweep_prints_a_shape_per_line(tmp_path, capsys):
    code = main(["sweep", "two-moons", "--param", "model.width", "--values", "2,8,32", "--param",
                 "noise.label_noise", "--values", "0,0.3", "--set", "optim.epochs=3", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (d,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    s = runs.read_json(d / "summary.json")
    lines = out.strip().splitlines()
    assert lines[-1].startswith("completed in ")
    per_line = lines[-3:-1]
    assert [ln.split(":")[0] for ln in per_line] == ["label_noise = 0", "label_noise = 0.3"]
    for text, shape in zip(per_line, s["lines"]):
        if shape["interpolation_threshold"] is not None:
            assert f"interpolation threshold model.width = {shape['interpolation_threshold']:g}" in text
        assert text.endswith(f"last {shape['last_test_err']:.3f}")
    rows = runs.read_jsonl(d / "sweep.jsonl")
    assert len(rows) == 6
    header = next(ln for ln in lines if ln.lstrip().startswith("value"))
    assert "label_nois" in header  # the table has the second setting's column


@pytest.mark.parametrize("args, needles", [
    (["--param", "model.kind", "--values", "mlp,resnet"], ["--values", "model.kind", "'resnet'", "'cnn1d'"]),
    (["--param", "regularization.decoupled", "--values", "yes"], ["'yes'", "true or false"]),
    (["--param", "model.width", "--values", "2,4", "--param", "model.width", "--values", "8"], ["twice"]),
    (["--param", "model.width", "--values", "2,4", "--param", "noise.label_noise"], ["2 --param but 1 --values"]),
    (["--param", "a.b", "--values", "1", "--param", "c.d", "--values", "1", "--param", "e.f", "--values", "1"],
     ["at most two"]),
    (["--param", "run.seeds", "--values", "1,2"], ["--param", "[run]"]),
    (["--param", "noise.label_noise", "--values", "0,,0.2"], ["item 2", "empty"]),
    (["--param", "model.kind", "--values", "mlp,cnn1d"], ["model.kind = cnn1d", "needs sequence inputs"]),
])
def test_cli_bad_grid_input_exits_2_naming_it(tmp_path, capsys, args, needles):
    code = main(["sweep", "two-moons", *args, "--device", "cpu", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    for needle in needles:
        assert needle in err, err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_a_grid_preset_is_swept_as_a_grid(tmp_path, capsys):
    preset = tmp_path / "grid.toml"
    preset.write_text('name = "grid"\ndevice = "cpu"\n[data]\ndataset = "moons"\nn_train = 200\nn_val = 100\n'
                      'n_test = 100\n[optim]\nepochs = 2\n[sweep]\nparam = "optim.optimizer"\n'
                      'values = ["sgd", "adam"]\nparam2 = "regularization.weight_decay"\nvalues2 = [0.0, 0.01]\n')
    assert main(["sweep", str(preset), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (d,) = list((tmp_path / "runs").iterdir())
    rows = runs.read_jsonl(d / "sweep.jsonl")
    assert [(r["value"], r["value2"]) for r in rows] == [("sgd", 0.0), ("adam", 0.0), ("sgd", 0.01), ("adam", 0.01)]
    out = capsys.readouterr().out
    assert "weight_decay = 0:" in out and "weight_decay = 0.01:" in out
    # --values without --param replace the preset's values in order (the first setting's here)
    assert main(["sweep", str(preset), "--values", "adamw", "--runs-dir", str(tmp_path / "r2"), "--quiet"]) == 0
    (d,) = list((tmp_path / "r2").iterdir())
    assert [(r["value"], r["value2"]) for r in runs.read_jsonl(d / "sweep.jsonl")] == [("adamw", 0.0),
                                                                                      ("adamw", 0.01)]


# ---------------------------------------------------------------------------------------- the lab
def labelled(calls, label):
    return next((a[0], a[1]) for name, a, kw in calls if name == "plot" and kw.get("label") == label)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_lab_draws_one_labelled_curve_per_line_of_a_grid(grid_dir, tmp_path):
    rows = runs.read_jsonl(grid_dir / "sweep.jsonl")
    app = GengapApp(sweep=grid_dir, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 10)
        assert app.view == "sweep" and app.state.sweep.param2 == "noise.label_noise"
        await settle_curves(app, pilot)
        calls = plotted(app)
        for noise in NOISE:
            xs, ys = labelled(calls, f"label_noise = {noise:g}")
            assert xs == pytest.approx([math.log10(w) for w in WIDTHS])
            assert ys == pytest.approx([r["test_err"] for r in rows if r["value2"] == noise])
        [(_, (title,), _)] = [c for c in calls if c[0] == "title"]
        assert title.startswith("sweep: test error against width (log x), one line per label_noise")
        status = str(app.query_one("#status").render())
        assert "sweep model.width x noise.label_noise" in status and "6/6 points" in status
        summary = str(app.query_one("#summary").render())
        assert "sweep completed" in summary and "label_noise 0: " in summary and "label_noise 0.3: " in summary
        screen = app.export_screenshot()
        assert "label_noise&#160;=&#160;0.3" in screen or "label_noise = 0.3" in screen
        await pilot.press("f9")  # against parameter count: still a curve per line
        await settle_curves(app, pilot)
        xs, _ = labelled(plotted(app), "label_noise = 0.3")
        assert xs == pytest.approx([math.log10(r["n_params"]) for r in rows if r["value2"] == 0.3])


def test_a_categorical_axis_is_drawn_as_evenly_spaced_named_categories():
    st = SweepState.expecting("optim.optimizer", ["sgd", "adam", "adamw"])
    st.series.add_progress({"epoch": 2, "values": ["sgd", "adam", "adamw"], "train_err": [0.4, 0.1, 0.0],
                            "test_err": [0.5, 0.3, 0.2]})
    plot = sweep_plot(st, 100)
    xs, ys, label, _ = next(ln for ln in plot.lines if ln[2] == "test err")
    assert xs == [0.0, 1.0, 2.0] and ys == [0.5, 0.3, 0.2]  # in the sweep's order, one step apart
    assert plot.xticks == ([0.0, 1.0, 2.0], ["sgd", "adam", "adamw"])
    assert "log" not in plot.xlabel and plot.xlabel == "optim.optimizer"
    # a grid whose first setting is a switch: categories too, a curve per line
    st = SweepState.expecting("regularization.decoupled", [True, False], "noise.label_noise", [0.0, 0.2])
    st.series.add_final([{"value": v, "value2": n, "train_err": 0.1, "test_err": 0.2 + n, "status": "completed"}
                         for n in (0.0, 0.2) for v in (True, False)])
    plot = sweep_plot(st, 100)
    assert plot.xticks == ([0.0, 1.0], ["true", "false"])
    assert [(ln[2], ln[1]) for ln in plot.lines] == [("label_noise = 0", [0.2, 0.2]),
                                                     ("label_noise = 0.2", [pytest.approx(0.4)] * 2)]


def test_the_palette_names_the_presets_real_sweep_setting():
    def titles(sweep):
        fake = SimpleNamespace(app=SimpleNamespace(cfg=SimpleNamespace(sweep=sweep)), COMMANDS=LabCommands.COMMANDS)
        return [t for t, a, _ in LabCommands.commands(fake) if a == "sweep"]

    assert titles(build({"sweep": {"param": "noise.label_noise", "values": [0.1]}}).sweep) == [
        "Sweep noise.label_noise over the sweep panel's values"]
    grid = build({"sweep": {"param": "model.width", "values": [8], "param2": "noise.label_noise",
                            "values2": [0.1]}}).sweep
    assert titles(grid) == ["Sweep model.width x noise.label_noise (a grid) over the sweep panel's values"]


def test_an_observing_grid_keeps_what_early_stopping_would_have_kept_per_point(tmp_path):
    cfg = tiny("optim.epochs=4", "early_stopping.enabled=true", "early_stopping.observe=true",
               "early_stopping.patience=1")
    sw = Sweep(cfg, "model.width", [4, 16], param2="optim.optimizer", values2=["sgd", "adam"])
    assert sw.observe and sw.line_together == [True, True]  # each optimizer's widths train together
    s = sw.run(tmp_path / "obs")
    rows = runs.read_jsonl(tmp_path / "obs" / "sweep.jsonl")
    assert [(r["value"], r["value2"]) for r in rows] == [(4.0, "sgd"), (16.0, "sgd"), (4.0, "adam"), (16.0, "adam")]
    for r in rows:  # every point trained to the end, with what stopping would have kept
        assert r["epochs_run"] == 4 and r["test_err_final"] == r["test_err"]
        assert {"best_epoch", "would_stop_epoch", "test_err_kept", "epochs_saved"} <= set(r)
        assert 1 <= r["best_epoch"] <= 4
    assert s["observe"] and [ln["value2"] for ln in s["lines"]] == ["sgd", "adam"]


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_f4_sweeps_the_presets_grid_from_the_lab(tmp_path):
    grid = ["sweep.param=model.width", "sweep.values=[4,16]", "sweep.param2=noise.label_noise",
            "sweep.values2=[0,0.2]"]
    app = GengapApp("two-moons", ["device=cpu", "optim.epochs=2", "data.n_train=200", "data.n_val=100", *grid],
                    runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        assert app.view == "sweep" and app.state.sweep.param2 == "noise.label_noise"
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 90)
        assert app.state.sweep.summary["status"] == "completed"
        await settle_curves(app, pilot)
        labels = [kw.get("label") for name, _, kw in plotted(app) if name == "plot" and kw.get("label")]
        assert labels == ["label_noise = 0", "label_noise = 0.2"]
    [d] = [p for p in tmp_path.iterdir() if "-sweep-two-moons-" in p.name]
    assert [(r["value"], r["value2"]) for r in runs.read_jsonl(d / "sweep.jsonl")] == [
        (4.0, 0.0), (16.0, 0.0), (4.0, 0.2), (16.0, 0.2)]


def test_a_cancelled_grid_keeps_the_lines_it_trained_and_leaves_the_rest_not_run(tmp_path):
    sw = Sweep(tiny("optim.epochs=50"), "model.width", [4, 8], param2="noise.label_noise", values2=[0.0, 0.2])

    def on_progress(row):
        if row["epoch"] == 2:
            sw.request_stop("stopped by the test")

    s = sw.run(tmp_path / "c", on_progress=on_progress)
    # seen at epoch 2's end: the epoch it cut short is 3, as a solo run words it (trainer.cancel_reason)
    assert s["status"] == "cancelled" and s["reason"].startswith("stopped by the test during epoch 3")
    rows = runs.read_jsonl(tmp_path / "c" / "sweep.jsonl")
    assert [(r["value2"], r["status"], r["epochs_run"]) for r in rows] == [
        (0.0, "cancelled", 2), (0.0, "cancelled", 2), (0.2, "not_run", 0), (0.2, "not_run", 0)]
    assert [ln["value2"] for ln in s["lines"]] == [0.0, 0.2] and s["lines"][1]["last_test_err"] is None


def test_a_live_grid_says_which_line_it_trains():
    from gengap_tui.tui.texts import sweep_head

    st = SweepState.expecting("model.width", [2, 8], "noise.label_noise", [0.0, 0.2])
    for e in (1, 2, 3):  # the first line ends at epoch 3, the second begins
        st.series.add_progress({"epoch": e, "values": [2.0, 8.0], "values2": [0.0, 0.0], "train_err": [0.5, 0.2],
                                "test_err": [0.5, 0.3]})
    st.series.add_progress({"epoch": 1, "values": [2.0, 8.0], "values2": [0.2, 0.2], "train_err": [0.6, 0.4],
                            "test_err": [0.6, 0.5]})
    head = sweep_head(st, 3, live=True)
    assert "sweep model.width x noise.label_noise" in head and "label_noise 0.2 (2/2): epoch 1/3" in head
    assert "4/4 points" in head
    plot = sweep_plot(st, 120)
    assert "label_noise 0.2: epoch 1" in plot.title
    assert [ln[2] for ln in plot.lines] == ["label_noise = 0", "label_noise = 0.2"]
    assert [ln[1] for ln in plot.lines] == [[0.5, 0.3], [0.6, 0.5]]


def test_a_screenshot_of_a_grid_sweep_shows_its_lines(grid_dir, tmp_path):
    from gengap_tui.tui.screenshot import screenshot_sweep

    svg = screenshot_sweep(tmp_path / "grid.svg", (120, 36), grid_dir).read_text(encoding="utf-8")
    text = svg.replace("&#160;", " ")
    assert "label_noise = 0.3" in text and "one line per label_noise" in text
    assert "sweep model.width x noise.label_noise" in text
