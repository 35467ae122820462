"""The headless command as a user runs it: real processes, exit codes, files on disk."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gengap_tui.cli import main
from gengap_tui.runs import list_runs, load_run, read_jsonl

pytestmark = pytest.mark.usefixtures("data_cache")

METRIC_KEYS = {"epoch", "train_loss", "train_err", "val_loss", "val_err", "gap_loss", "gap_err", "lr",
               "epoch_seconds", "samples_per_s", "es_wait", "es_best", "es_best_epoch", "weight_norm", "spectral_norm_product",
               "cpu_percent", "rss_mb",
               "train_clean_err", "noisy_memorized", "noisy_true_acc"}
SUMMARY_KEYS = {"status", "epochs_run", "stop_epoch", "best_epoch", "best_value", "monitor", "would_stop_epoch",
                "restored_best", "test_loss", "test_err", "wall_seconds", "device", "reason"}
SECTIONS = {"data", "noise", "model", "regularization", "optim", "early_stopping", "baselines", "sweep"}


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gengap_tui.cli", *args], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.mark.slow
def test_done_means_run_writes_every_file_and_key(tmp_path):
    # patience 3: the noisy run plateaus well within 25 epochs, so observe mode records a would-stop
    p = cli("run", "label-noise", "--set", "optim.epochs=25", "--set", "early_stopping.observe=true",
            "--set", "early_stopping.patience=3", "--device", "cpu", "--runs-dir", str(tmp_path), "--quiet")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # --quiet
    [d] = list_runs(tmp_path)
    assert f"run directory: {d}" in p.stdout
    assert "completed" in p.stdout and "test_err" in p.stdout
    rec = load_run(d)
    assert SECTIONS <= set(rec.config) and {"torch_version", "device_name"} <= set(rec.config)
    assert rec.config["noise"]["label_noise"] == 0.2 and rec.config["name"] == "label-noise"
    assert len(rec.metrics) == 25 and [m["epoch"] for m in rec.metrics] == list(range(1, 26))
    for m in rec.metrics:
        assert set(m) == METRIC_KEYS
    assert SUMMARY_KEYS <= set(rec.summary)
    assert rec.summary["status"] == "completed" and rec.summary["epochs_run"] == 25
    assert rec.events[0]["event"] == "started"
    # observe mode: the first epoch whose es_wait reaches the patience is the would-stop epoch, said
    # by an event, the summary (with the test error of the weights it would have kept) and stdout
    would = next(m["epoch"] for m in rec.metrics if m["es_wait"] == 3)
    s = rec.summary
    assert s["would_stop_epoch"] == would < 25
    assert [e["epoch"] for e in rec.events if e["event"] == "would_stop"] == [would]
    assert s["would_stop_best_epoch"] == rec.metrics[would - 1]["es_best_epoch"]
    assert 0 <= s["would_stop_test_err"] <= 1 and 0 <= s["final_test_err"] <= 1
    assert (f"would stop @ {would} (test_err {s['would_stop_test_err']:.4f} vs {s['final_test_err']:.4f} "
            "at the end)") in p.stdout


@pytest.mark.parametrize("args, needle", [
    (["--set", "optim.lr=-1"], "optim.lr = -1"),
    (["--set", "model.width=wide"], "model.width = 'wide'"),
    (["--set", "optim.lrr=0.1"], "optim.lrr: unknown key"),
    (["--set", "noise.label_noise=1.5"], "noise.label_noise = 1.5"),
    (["--set", "early_stopping.patience=0"], "early_stopping.patience = 0"),
    (["--set", "optim.lr"], "expected dotted.key=value"),
])
def test_bad_input_exits_2_with_a_clear_message_and_no_run_dir(tmp_path, args, needle, capsys):
    code = main(["run", "default", "--runs-dir", str(tmp_path / "runs"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_presets_exit_2(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("[optim\nlr = 1\n")
    typed = tmp_path / "typed.toml"
    typed.write_text('[model]\nwidth = "256"\n')
    for ref, needle in (("nope", "unknown preset 'nope'"), (str(broken), "line 1"),
                        (str(typed), "model.width = '256'"), (str(tmp_path / "missing.toml"), "does not exist")):
        assert main(["run", ref, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_unwritable_runs_dir_is_refused_before_training(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("")
    assert main(["run", "default", "--runs-dir", str(f / "runs"), "--quiet"]) == 2
    assert str(f / "runs") in capsys.readouterr().err


@pytest.mark.slow
def test_diverging_run_exits_3(tmp_path):
    p = cli("run", "default", "--set", "optim.optimizer=sgd", "--set", "optim.lr=1e6", "--set", "data.n_train=300",
            "--device", "cpu", "--runs-dir", str(tmp_path), "--quiet")
    assert p.returncode == 3 and "Traceback" not in p.stderr
    [d] = list_runs(tmp_path)
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "diverged" and "diverged" in p.stdout


@pytest.mark.parametrize("sig, code, reason", [
    (signal.SIGINT, 130, "stopped by the user (Ctrl+C)"),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
    (signal.SIGHUP, 129, "terminal closed (SIGHUP)"),  # the terminal of a foreground run went away
], ids=["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.slow
def test_signal_cancels_and_keeps_every_finished_epoch(tmp_path, sig, code, reason):
    proc = subprocess.Popen([sys.executable, "-m", "gengap_tui.cli", "run", "default", "--set", "optim.epochs=5000",
                             "--set", "early_stopping.enabled=false", "--device", "cpu",
                             "--runs-dir", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list_runs(tmp_path)
        if found and len(read_jsonl(found[0] / "metrics.jsonl")) >= 3:
            metrics = found[0] / "metrics.jsonl"
            break
        time.sleep(0.1)
    assert metrics is not None, "no epochs within the deadline"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    s = json.loads((metrics.parent / "summary.json").read_text())
    rows = read_jsonl(metrics)
    assert s["status"] == "cancelled" and s["epochs_run"] == len(rows) >= 3
    # (the signal came during the epoch after the last row, or just after that row, before the check)
    assert s["reason"] in (f"{reason} during epoch {len(rows) + 1}", f"{reason} during epoch {len(rows)}")
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    assert read_jsonl(metrics.parent / "events.jsonl")[-1]["event"] == "cancelled"
    assert f"run directory: {metrics.parent}" in out and "cancelled after" in out
    assert (metrics.parent / "checkpoint.pt").is_file() and (metrics.parent / "model.pt").is_file()


def test_presets_command_lists_with_descriptions(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "default" in lines and "label-noise" in lines and "15% label noise" in lines["default"]


@pytest.mark.slow
def test_progress_display_shows_epoch_gap_and_patience(tmp_path):
    p = cli("run", "default", "--set", "optim.epochs=3", "--set", "data.n_train=300", "--device", "cpu",
            "--runs-dir", str(tmp_path))
    assert p.returncode == 0
    assert "epoch    3/3" in p.stderr and "gap" in p.stderr and "patience" in p.stderr


def test_a_bad_set_is_blamed_on_the_set_not_the_preset_file(capsys):
    assert main(["run", "default", "--set", "optim.lr=-1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "invalid config (--set)" in err and "default.toml" not in err and "optim.lr = -1" in err


def test_a_diverged_run_says_the_epoch_it_diverged_in():
    from gengap_tui.cli import summary_line

    line = summary_line({"status": "diverged", "epochs_run": 0, "restored_best": False, "wall_seconds": 0.1,
                         "device": "cpu", "reason": "train_loss became nan at epoch 1"})
    assert line.startswith("diverged in epoch 1 |") and "after 0 epochs" not in line
