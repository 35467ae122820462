"""The run picker (f3; `run_index`, `tui.dialogs.PickRuns`): each row shows preset, the settings
that differ from the other runs of that preset, status, test error and date; a sweep's runs are
grouped under it; typing filters; up to 4 are compared as before."""

import json

import pytest
from conftest import wait_for
from gengap_tui.run_index import filtered, index
from gengap_tui.tui.app import GengapApp

SMALL = ["data.n_train=300", "data.n_val=300", "model.width=64", "optim.epochs=20", "device=cpu"]
ROW = {"epoch": 1, "train_loss": 2.0, "train_err": 0.8, "val_loss": 2.1, "val_err": 0.82, "gap_loss": 0.1,
       "gap_err": 0.02, "lr": 0.01, "epoch_seconds": 0.1, "samples_per_s": 1000, "es_wait": 0,
       "es_best": 0.82, "es_best_epoch": 1}


def make_run(d, name, summary=None, **sections):
    d.mkdir(parents=True)
    cfg = {"name": name, "optim": {"epochs": 20, "lr": 0.01}, "regularization": {"weight_decay": 0.0},
           "torch_version": "x", "device_name": "y"}
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text(json.dumps(ROW) + "\n")
    if summary:
        (d / "summary.json").write_text(json.dumps(summary))


def runs_dir(tmp_path):
    r = tmp_path / "runs"
    make_run(r / "20260102T030400Z-label-noise-aaaaaa", "label-noise", {"status": "completed", "test_err": 0.25},
             regularization={"weight_decay": 0.01})
    make_run(r / "20260102T050000Z-label-noise-bbbbbb", "label-noise", {"status": "early_stopped", "test_err": 0.2},
             regularization={"weight_decay": 0.0})
    make_run(r / "20260103T000000Z-default-cccccc", "default", {"status": "cancelled", "test_err": 0.5})
    sw = r / "20260104T101500Z-sweep-double-descent-dddddd"
    sw.mkdir()
    (sw / "sweep.json").write_text(json.dumps({"param": "model.width", "values": [4, 16],
                                               "config": {"name": "double-descent"}}))
    (sw / "summary.json").write_text(json.dumps({"status": "completed"}))
    for w, te in ((16, 0.4), (4, 0.6)):
        make_run(sw / f"width-{w}", "double-descent", {"status": "completed", "test_err": te}, model={"width": w})
    return r


def test_index_rows_and_filter(tmp_path):
    entries = index(runs_dir(tmp_path))
    # newest first; the sweep's runs grouped under it, in the order of their values
    assert [e.kind for e in entries] == ["sweep", "run", "run", "run"]
    sweep = entries[0]
    assert [v.settings for v in sweep.values] == ["width=4", "width=16"]
    assert "model.width = 4, 16 (2 values)" in sweep.line() and "2026-01-04 10:15" in sweep.line()
    by_name = {e.path.name: e for e in entries}
    a = by_name["20260102T030400Z-label-noise-aaaaaa"]
    assert (a.preset, a.settings, a.status, a.test_err, a.date) == ("label-noise", "wd=0.01", "completed", 0.25,
                                                                    "2026-01-02 03:04")
    assert "test err 0.250" in a.line()
    assert by_name["20260103T000000Z-default-cccccc"].settings == ""  # nothing to tell it from
    assert [e.path.name for e in filtered(entries, "LABEL-noise early")] == ["20260102T050000Z-label-noise-bbbbbb"]
    # a value matches: its sweep is shown above it; the sweep matches: all its runs
    assert [e.settings for e in filtered(entries, "width=16")] == [sweep.settings, "width=16"]
    assert len(filtered(entries, "double-descent")) == 3
    assert filtered(entries, "nothing-like-this") == []


def test_where_a_run_ran_is_not_a_difference_between_runs(tmp_path):
    """Two runs of a preset on different GPUs (config.json's `gpu`, and its other run-only keys:
    protocol.RUN_EXTRA_KEYS) read alike; a setting that differs is the only label."""
    r = tmp_path / "runs"
    gpu = lambda i: {"index": i, "name": "NVIDIA H100", "uuid": f"GPU-{i}", "memory_mb": 81559 + i,  # noqa: E731
                     "driver": "580", "chosen": "auto"}
    for name, i in (("20260102T030400Z-default-aaaaaa", 0), ("20260102T040000Z-default-bbbbbb", 1)):
        make_run(r / name, "default", {"status": "completed", "test_err": 0.3})
        cfg = json.loads((r / name / "config.json").read_text())
        cfg.update(gpu=gpu(i), torch_threads=1 + i, device_name=f"cuda:{i}")
        (r / name / "config.json").write_text(json.dumps(cfg))
    assert [e.settings for e in index(r)] == ["", ""]
    make_run(r / "20260102T050000Z-default-cccccc", "default", {"status": "completed", "test_err": 0.2},
             regularization={"weight_decay": 0.01})
    cfg = json.loads((r / "20260102T050000Z-default-cccccc" / "config.json").read_text())
    (r / "20260102T050000Z-default-cccccc" / "config.json").write_text(json.dumps({**cfg, "gpu": gpu(2)}))
    labels = [e.settings for e in index(r)]
    assert labels[0] == "wd=0.01" and all("wd=0" in x and "index" not in x and "uuid" not in x and "gpu" not in x
                                          for x in labels), labels


def test_a_switch_sweep_reads_true_false_and_grid_points_sort_by_number(tmp_path):
    r = tmp_path / "runs"
    sw = r / "20260104T101500Z-sweep-default-eeeeee"
    sw.mkdir(parents=True)
    (sw / "sweep.json").write_text(json.dumps({"param": "regularization.decoupled", "values": [False, True],
                                               "config": {"name": "default"}}))
    for v in ("false", "true"):
        make_run(sw / f"decoupled-{v}", "default", {"status": "completed", "test_err": 0.3})
    grid = r / "20260105T101500Z-sweep-double-descent-ffffff"
    grid.mkdir()
    (grid / "sweep.json").write_text(json.dumps({
        "param": "model.width", "values": [2, 10], "param2": "noise.label_noise", "values2": [0.1, 0.05],
        "config": {"name": "double-descent"}}))
    for w in (10, 2):
        for n in ("0.1", "0.05"):
            make_run(grid / f"width-{w}+label_noise-{n}", "double-descent", {"status": "completed", "test_err": 0.4})
    grid_entry, switch = index(r)
    assert "regularization.decoupled = false, true (2 values)" in switch.line()
    assert [v.settings for v in switch.values] == ["decoupled=false", "decoupled=true"]
    assert "model.width = 2, 10 (2 values) × noise.label_noise = 0.1, 0.05 (2 values)" in grid_entry.line()
    assert [v.path.name for v in grid_entry.values] == ["width-2+label_noise-0.05", "width-2+label_noise-0.1",
                                                        "width-10+label_noise-0.05", "width-10+label_noise-0.1"]
    assert grid_entry.values[0].settings == "width=2 label_noise=0.05"


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_picker_filters_as_you_type_and_compares(tmp_path):
    from textual.widgets import SelectionList

    app = GengapApp("default", SMALL, runs_dir=runs_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        sel = app.screen.query_one(SelectionList)
        assert sel.option_count == 6  # a sweep, its 2 runs, 3 runs
        assert sel.get_option_at_index(0).disabled  # the sweep's header is not a run
        prompts = [str(sel.get_option_at_index(i).prompt) for i in range(6)]
        assert "wd=0.01" in " ".join(prompts) and "early_stopped" in " ".join(prompts)
        await pilot.press(*"label")
        await pilot.pause()
        assert sel.option_count == 2
        await pilot.press("space", *"early")
        await pilot.pause()
        assert sel.option_count == 1 and "label-noise" in str(sel.get_option_at_index(0).prompt)
        assert "1 run match" in str(app.screen.query_one("#pick-note").render())
        await pilot.press("down", "space")  # to the list, select the one shown
        await pilot.pause()
        assert len(sel.selected) == 1
        await pilot.press("w")  # a letter typed in the list goes back to the filter: nothing matches now
        await pilot.pause()
        assert sel.option_count == 0 and app.screen.query_one("#run-filter").value == "label earlyw"
        await pilot.press("backspace")
        await pilot.pause()
        assert sel.option_count == 1 and sel.selected  # the selection survived the filtering
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: len(app.compared) == 1, 5)
        assert app.compare_dirs[0].endswith("label-noise-bbbbbb")
