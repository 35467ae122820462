import json
import time

from gengap_tui.compare import diff_labels
from gengap_tui.sources import ReplaySource
from gengap_tui.runs import load_run

from conftest import wire, ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "label-noise-es"


def drain(src, timeout=10.0):
    msgs = []
    deadline = time.monotonic() + timeout
    while not src.finished and time.monotonic() < deadline:
        msgs += wire(src.poll())
        time.sleep(0.01)
    return msgs


def test_replay_at_once_yields_the_recorded_stream_in_order():
    rec = load_run(FIXTURE)
    msgs = wire(ReplaySource(FIXTURE, speed=0).poll())
    assert msgs[0] == {"type": "run_dir", "path": str(FIXTURE)}
    assert [m["row"] for m in msgs if m["type"] == "epoch"] == rec.metrics
    assert [m["event"] for m in msgs if m["type"] == "event"] == rec.events
    assert msgs[-1] == {"type": "summary", "summary": rec.summary}
    # an event comes after the epoch it belongs to
    order = [(m["type"], m.get("row", m.get("event", {})).get("epoch")) for m in msgs[1:-1]]
    stop = order.index(("event", rec.summary["stop_epoch"]))
    assert order[stop - 1] == ("epoch", rec.summary["stop_epoch"])


def test_replay_keeps_the_recorded_pace():
    rec = load_run(FIXTURE)
    total = sum(r["epoch_seconds"] for r in rec.metrics)
    src = ReplaySource(FIXTURE, speed=total / 0.5)  # the whole run in about 0.5 s
    first = [m for m in wire(src.poll()) if m["type"] == "epoch"]
    assert len(first) < len(rec.metrics)
    t = time.monotonic()
    msgs = drain(src)
    assert 0.2 < time.monotonic() - t < 3.0
    assert len(first) + sum(m["type"] == "epoch" for m in msgs) == len(rec.metrics)


def test_replay_pause_holds_and_stop_skips_to_the_end():
    src = ReplaySource(FIXTURE, speed=1e-6)
    wire(src.poll())
    src.pause()
    time.sleep(0.05)
    assert not [m for m in wire(src.poll()) if m["type"] == "epoch"]
    src.stop()
    msgs = wire(src.poll())
    assert msgs[-1]["type"] == "summary" and src.finished


def test_replay_follows_a_run_that_is_still_written(tmp_path):
    d = tmp_path / "live"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"name": "x"}))
    src = ReplaySource(d, speed=0)
    assert [m["type"] for m in wire(src.poll())] == ["run_dir"]
    with open(d / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 1, "epoch_seconds": 0.1}) + "\n" + '{"epoch": 2, "epoch_se')
        f.flush()
        assert [m["row"]["epoch"] for m in wire(src.poll())] == [1]
        f.write('conds": 0.1}\n')
    assert [m["row"]["epoch"] for m in wire(src.poll())] == [2]
    assert not src.finished
    (d / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert wire(src.poll())[-1] == {"type": "summary", "summary": {"status": "completed"}}


def test_diff_labels_name_the_settings_that_differ():
    a = {"optim": {"lr": 0.01, "epochs": 10}, "regularization": {"weight_decay": 0.0}, "name": "a"}
    b = {"optim": {"lr": 0.01, "epochs": 20}, "regularization": {"weight_decay": 0.001}, "name": "b"}
    c = {"optim": {"lr": 0.1, "epochs": 10}, "regularization": {"weight_decay": 0.0}, "name": "c"}
    assert diff_labels([a, b]) == ["wd=0", "wd=0.001"]
    assert diff_labels([a, b, c]) == ["lr=0.01 wd=0", "lr=0.01 wd=0.001", "lr=0.1 wd=0"]
    assert diff_labels([a, a], ["run1", "run2"]) == ["run1", "run2"]
