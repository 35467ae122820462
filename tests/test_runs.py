import json
import os

import pytest

from gengap_tui import runs


def test_writer_reader_round_trip(tmp_path):
    d = runs.new_run_dir(tmp_path / "runs", "my preset/../x")
    assert d.parent == tmp_path / "runs" and "/" not in d.name[16:] and ".." not in d.name.split("-", 1)[1][:3]
    w = runs.RunWriter(d, {"optim": {"lr": 0.1}}, {"torch_version": "t", "device_name": "cpu"})
    w.metrics({"epoch": 1, "train_loss": float("nan"), "val_loss": float("inf")})
    # flushed every epoch: readable before the writer closes
    assert runs.read_jsonl(d / "metrics.jsonl")[0]["train_loss"] == "nan"
    w.event({"event": "started", "epoch": 0})
    w.finish({"status": "completed"})
    rec = runs.load_run(d)
    assert rec.config == {"optim": {"lr": 0.1}, "torch_version": "t", "device_name": "cpu"}
    assert rec.metrics[0]["val_loss"] == "inf" and rec.events[0]["event"] == "started"
    assert rec.summary == {"status": "completed"} and rec.finished
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    assert runs.list_runs(tmp_path / "runs") == [d]


def test_reader_tolerates_a_half_written_last_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert runs.read_jsonl(p) == [{"epoch": 1}, {"epoch": 2}]
    p.write_text('{"epoch": 1}\n{"epoch": 2}')  # complete but unterminated
    assert runs.read_jsonl(p) == [{"epoch": 1}, {"epoch": 2}]
    p.write_text('{"epoch": 1}\ngarbage\n{"epoch": 3}\n')
    assert runs.read_jsonl(p) == [{"epoch": 1}, {"epoch": 3}]
    assert runs.read_jsonl(tmp_path / "missing.jsonl") == []


def test_follower_reads_a_growing_file(tmp_path):
    p = tmp_path / "m.jsonl"
    f = runs.JsonlFollower(p)
    assert f.poll() == []
    with open(p, "a") as out:
        out.write('{"epoch": 1}\n{"ep')
        out.flush()
        assert f.poll() == [{"epoch": 1}]
        out.write('och": 2}\n')
        out.flush()
        assert f.poll() == [{"epoch": 2}]
        assert f.poll() == []


def test_two_writers_never_share_a_directory(tmp_path):
    dirs = {runs.new_run_dir(tmp_path, "same") for _ in range(50)}
    assert len(dirs) == 50


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_runs_dir_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OSError, match=str(ro)):
        runs.check_writable(ro)


def test_runs_dir_under_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="file"):
        runs.check_writable(f / "runs")


def test_summary_is_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    runs.write_json_atomic(target, {"status": "completed"})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        runs.write_json_atomic(target, {"status": "failed"})
    assert json.loads(target.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
