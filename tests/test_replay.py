import json

from gengap_tui.compare import diff_labels
from gengap_tui.sources import ReplaySource
from gengap_tui.runs import load_run

from conftest import wire, ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "label-noise-es"


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


class FakeClock:
    """Stands in for the replay's `time` module: time moves only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def epochs(msgs):
    return [m["row"]["epoch"] for m in msgs if m["type"] == "epoch"]


def test_replay_keeps_the_recorded_pace(monkeypatch):
    from gengap_tui.sources import files

    clock = FakeClock()
    monkeypatch.setattr(files, "time", clock)
    rec = load_run(FIXTURE)
    steps = [r["epoch_seconds"] for r in rec.metrics]
    src = ReplaySource(FIXTURE, speed=4.0)
    assert epochs(wire(src.poll())) == []  # no replay time has passed
    start, eps, shown, msgs = clock.now, min(steps) / 4.0 * 1e-3, [], []
    for k in range(1, len(steps) + 1):
        # at 4x, epoch k is out once a quarter of the time recorded up to its end has passed, not before
        clock.now = start + sum(steps[:k]) / 4.0 - eps
        msgs += wire(src.poll())
        assert epochs(msgs) == list(range(1, k)) and not src.finished, k
        clock.now = start + sum(steps[:k]) / 4.0 + eps
        msgs += wire(src.poll())
        assert epochs(msgs) == list(range(1, k + 1)), k
    assert msgs[-1]["type"] == "summary" and src.finished


def test_replay_pause_holds_and_stop_skips_to_the_end(monkeypatch):
    from gengap_tui.sources import files

    clock = FakeClock()
    monkeypatch.setattr(files, "time", clock)
    rec = load_run(FIXTURE)
    total = sum(r["epoch_seconds"] for r in rec.metrics)
    src = ReplaySource(FIXTURE, speed=1.0)
    wire(src.poll())
    clock.now += rec.metrics[0]["epoch_seconds"] * 1.001
    assert epochs(wire(src.poll())) == [1]
    src.pause()
    clock.now += 10 * total  # time enough for the whole run: nothing comes while paused
    assert epochs(wire(src.poll())) == [] and not src.finished
    src.resume()  # the clock goes on from where it was held
    assert epochs(wire(src.poll())) == []
    clock.now += rec.metrics[1]["epoch_seconds"] * 1.001
    assert epochs(wire(src.poll())) == [2]
    src.pause()
    src.stop()  # a stop while paused skips to the end at once
    msgs = wire(src.poll())
    assert epochs(msgs) == list(range(3, len(rec.metrics) + 1))
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
