"""Run directories, exactly (docs/ARCHITECTURE.md, "Run directory"; issue 26's mutation round):
where runs go, how a run directory is named, what each file holds byte for byte where a reader
depends on it, and how readers cope with files still being written or damaged."""

import json
import locale
import math
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gengap_tui import runs


# ---------------------------------------------------------------------------------------------
# where runs go


def test_runs_dir_is_the_argument_first(monkeypatch):
    monkeypatch.setenv("GENGAP_RUNS_DIR", "/from/env")
    assert runs.default_runs_dir("mine") == Path("mine")
    assert runs.default_runs_dir(Path("/abs/runs")) == Path("/abs/runs")


def test_runs_dir_is_the_environment_without_an_argument(monkeypatch):
    monkeypatch.setenv("GENGAP_RUNS_DIR", "/from/env")
    assert runs.default_runs_dir() == Path("/from/env")
    assert runs.default_runs_dir("") == Path("/from/env")


@pytest.mark.parametrize("env", [None, ""])
def test_runs_dir_is_runs_in_the_working_folder_otherwise(monkeypatch, env):
    if env is None:
        monkeypatch.delenv("GENGAP_RUNS_DIR", raising=False)
    else:
        monkeypatch.setenv("GENGAP_RUNS_DIR", env)
    assert runs.default_runs_dir() == Path("runs")
    assert runs.default_runs_dir(None) == Path("runs")


def test_check_writable_creates_missing_parents(tmp_path):
    d = tmp_path / "a" / "b" / "runs"
    runs.check_writable(d)
    assert d.is_dir()


def test_check_writable_says_why_a_folder_cannot_be_created(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError) as info:
        runs.check_writable(f / "runs")
    assert str(info.value) == f"cannot create the runs directory {str(f / 'runs')!r}: Not a directory"


def test_check_writable_refuses_a_folder_one_cannot_write_and_enter(tmp_path, monkeypatch):
    # a read-only folder, as an unprivileged user sees it (root would be let in): it exists
    # (F_OK) but is not writable
    monkeypatch.setattr(os, "access", lambda path, mode: mode & os.W_OK == 0)
    with pytest.raises(OSError) as info:
        runs.check_writable(tmp_path)
    assert str(info.value) == f"the runs directory {str(tmp_path)!r} is not a writable folder"


def test_check_writable_asks_for_write_and_enter_permission(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(os, "access", lambda path, mode: asked.append(mode) or True)
    runs.check_writable(tmp_path)
    assert asked == [os.W_OK | os.X_OK]


# ---------------------------------------------------------------------------------------------
# run directory names

NAME = re.compile(r"^(\d{8}T\d{6}Z)-(.+)-([0-9a-f]{6})$")


@pytest.mark.parametrize("preset, safe", [
    ("default", "default"),
    ("my preset/../x", "my-preset-..-x"),      # no path separator, no space
    ("a_b.c-d", "a_b.c-d"),
    ("étude", "étude"),                         # letters of any script stay
    ("///", "---"),
    ("", "run"),
    ("p" * 50, "p" * 40),                       # at most 40 characters
])
def test_a_run_directory_is_named_utc_time_preset_and_a_short_random_id(tmp_path, preset, safe):
    d = runs.new_run_dir(tmp_path / "runs", preset)
    assert d.parent == tmp_path / "runs" and d.is_dir()
    m = NAME.match(d.name)
    assert m, d.name
    assert m.group(2) == safe


def test_the_time_in_a_run_directorys_name_is_utc_whatever_the_machines_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "XST-09:30")  # a zone 9.5 hours east of UTC
    time.tzset()
    try:
        d = runs.new_run_dir(tmp_path, "x")
    finally:
        monkeypatch.undo()
        time.tzset()
    stamp = datetime.strptime(NAME.match(d.name).group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60


def test_a_name_clash_draws_a_new_id(tmp_path, monkeypatch):
    ids = iter(["aaaaaa", "aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runs.secrets, "token_hex", lambda n: next(ids))
    first = runs.new_run_dir(tmp_path, "x")
    second = runs.new_run_dir(tmp_path, "x")
    assert first.name.endswith("-x-aaaaaa") and second.name.endswith("-x-bbbbbb")


def test_new_run_dir_gives_up_after_100_clashes_naming_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda fmt, t: "20260101T000000Z")
    (tmp_path / "20260101T000000Z-x-aaaaaa").mkdir()
    drawn = []
    monkeypatch.setattr(runs.secrets, "token_hex", lambda n: drawn.append(n) or "aaaaaa")
    with pytest.raises(OSError) as info:
        runs.new_run_dir(tmp_path, "x")
    assert str(info.value) == f"could not create a unique run directory in {str(tmp_path)!r}"
    assert drawn == [3] * 100  # 3 random bytes: 6 hex digits


# ---------------------------------------------------------------------------------------------
# what is written


def test_non_finite_numbers_are_written_as_strings_at_any_depth():
    obj = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, {"c": math.nan})], "d": "nan", "e": 3}
    assert runs._clean(obj) == {"a": "nan", "b": [1.5, "inf", ["-inf", {"c": "nan"}]], "d": "nan", "e": 3}
    assert json.loads(runs.dumps(obj)) == runs._clean(obj)
    assert "\n" not in runs.dumps(obj)


def test_a_json_file_is_written_indented_and_ends_with_a_newline(tmp_path):
    p = tmp_path / "summary.json"
    runs.write_json_atomic(p, {"status": "completed", "test_err": math.nan, "é": [1]})
    assert p.read_bytes().decode("utf-8") == (
        '{\n  "status": "completed",\n  "test_err": "nan",\n  "\\u00e9": [\n    1\n  ]\n}\n')


def test_replace_atomic_writes_a_hidden_temp_file_next_to_the_target(tmp_path):
    target = tmp_path / "model.pt"
    seen = []

    def write(tmp):
        seen.append(Path(tmp))
        Path(tmp).write_text("new")

    runs.replace_atomic(target, write)
    tmp, = seen
    # the same folder (so the rename is atomic), hidden and marked as a temp file
    assert tmp.parent == tmp_path and tmp.name.startswith(".model.pt.") and tmp.name.endswith(".tmp")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def write(tmp):
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.replace_atomic(target, write)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_send_control_appends_one_timed_line_per_command(tmp_path):
    before = time.time()
    runs.send_control(tmp_path, "pause")
    runs.send_control(str(tmp_path), "tweak", changes={"lr": 0.01, "note": "é"})
    lines = (tmp_path / "control.jsonl").read_bytes().decode("utf-8").splitlines()
    first, second = (json.loads(ln) for ln in lines)
    assert set(first) == {"cmd", "time"} and first["cmd"] == "pause"
    assert before <= first["time"] <= second["time"] <= time.time()
    assert second["cmd"] == "tweak" and second["changes"] == {"lr": 0.01, "note": "é"}


def test_run_writer_holds_no_summary_until_it_finishes(tmp_path):
    w = runs.RunWriter(tmp_path, {"name": "x"})
    assert w.summary is None
    w.finish({"status": "stopped", "reason": "r"})
    assert w.summary == {"status": "stopped", "reason": "r"}
    assert runs.read_json(tmp_path / "summary.json") == {"status": "stopped", "reason": "r"}


def test_a_closed_writer_writes_no_more_and_closes_once(tmp_path):
    w = runs.RunWriter(tmp_path, {"name": "x"})
    w.metrics({"epoch": 1})
    w.close()
    w.close()
    with pytest.raises(ValueError):
        w.metrics({"epoch": 2})
    with pytest.raises(ValueError):
        w.event({"event": "late"})
    assert runs.read_jsonl(tmp_path / "metrics.jsonl") == [{"epoch": 1}]


def test_resuming_a_run_appends_and_keeps_its_config(tmp_path):
    w = runs.RunWriter(tmp_path, {"name": "x"}, {"torch_version": "t"})
    w.metrics({"epoch": 1})
    w.close()
    w = runs.RunWriter(tmp_path, None)
    w.metrics({"epoch": 2})
    w.event({"event": "resumed"})
    w.close()
    rec = runs.load_run(tmp_path)
    assert rec.path == tmp_path and rec.config == {"name": "x", "torch_version": "t"}
    assert rec.metrics == [{"epoch": 1}, {"epoch": 2}] and rec.events == [{"event": "resumed"}]
    assert rec.summary is None and not rec.finished


# ---------------------------------------------------------------------------------------------
# reading


def test_blank_and_broken_lines_are_skipped_not_the_rest(tmp_path):
    text = '{"a": 1}\n\n   \n[1, 2]\nnot json\n{"b": 2}\n{"c"'
    assert runs.parse_lines(text) == ([{"a": 1}, {"b": 2}], '{"c"')


def test_read_jsonl_replaces_bytes_that_are_not_utf8(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_bytes(b'{"a": 1}\n\xff\xfe\n{"s": "x\xffy"}\n{"b": 2}\n')
    assert runs.read_jsonl(p) == [{"a": 1}, {"s": "x\ufffdy"}, {"b": 2}]


def test_read_jsonl_takes_an_unterminated_last_line_only_if_it_is_a_whole_object(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\n[3]')
    assert runs.read_jsonl(p) == [{"a": 1}]
    p.write_text('{"a": 1}\n{"b": 2}  ')
    assert runs.read_jsonl(p) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize("content, expected", [
    (b'{"status": "completed"}', {"status": "completed"}),
    (b'{"name": "\xc3\xa9"}', {"name": "é"}),
    (b"[1, 2]", None),            # JSON, but not an object
    (b'{"status": ', None),       # half written
    (b"\xff\xfe", None),          # not UTF-8
])
def test_read_json_gives_an_object_or_none(tmp_path, content, expected):
    p = tmp_path / "summary.json"
    p.write_bytes(content)
    assert runs.read_json(p) == expected
    assert runs.read_json(tmp_path / "missing.json") is None


def test_load_run_refuses_a_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        runs.load_run(tmp_path)
    assert str(info.value) == f"{str(tmp_path)!r} is not a run directory (no config.json)"


def test_list_runs_lists_run_directories_only_newest_first(tmp_path):
    for name in ("20260102T000000Z-b-000002", "20260101T000000Z-a-000001", "20260103T000000Z-c-000003",
                 "20251231T000000Z-z-000000"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "20260104T000000Z-no-config").mkdir()    # not a run (yet)
    (tmp_path / "20260105T000000Z-a-file").write_text("")  # not a folder
    assert [p.name for p in runs.list_runs(tmp_path)] == [
        "20260103T000000Z-c-000003", "20260102T000000Z-b-000002", "20260101T000000Z-a-000001",
        "20251231T000000Z-z-000000"]
    assert runs.list_runs(tmp_path / "missing") == []
    assert runs.list_runs(tmp_path / "20260105T000000Z-a-file") == []


# ---------------------------------------------------------------------------------------------
# following a file being written


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@pytest.mark.parametrize("first, rest, record", [
    (b'{"ep', b'och": 1}\n', {"epoch": 1}),  # a first unfinished line is kept until it ends
    (b'\n{"b"', b': 2}\n', {"b": 2}),         # what follows a leading newline is kept too
])
def test_follower_keeps_an_unfinished_line_until_it_ends(tmp_path, first, rest, record):
    p = tmp_path / "m.jsonl"
    f = runs.JsonlFollower(p)
    append(p, first)
    assert f.poll() == []
    append(p, rest)
    assert f.poll() == [record]
    assert f.offset == len(first + rest)


def test_follower_joins_a_character_split_across_two_writes(tmp_path):
    p = tmp_path / "m.jsonl"
    f = runs.JsonlFollower(p)
    data = '{"name": "é"}\n'.encode("utf-8")
    cut = data.index(b"\xc3") + 1  # between the two bytes of é
    append(p, data[:cut])
    assert f.poll() == []
    append(p, data[cut:])
    assert f.poll() == [{"name": "é"}]


def test_follower_replaces_bytes_that_are_not_utf8(tmp_path):
    p = tmp_path / "m.jsonl"
    f = runs.JsonlFollower(p)
    append(p, b'{"s": "x\xffy"}\n\xfe\n{"b": 2}\n')
    assert f.poll() == [{"s": "x\ufffdy"}, {"b": 2}]


# ---------------------------------------------------------------------------------------------
# files are UTF-8 whatever the locale of the session (an SSH login with LANG=C, say)


@pytest.fixture
def ascii_locale():
    """The process's locale encoding ASCII, as `open()` without an encoding would then use."""
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, old)


def test_readers_read_utf8_under_an_ascii_locale(tmp_path, ascii_locale):
    (tmp_path / "config.json").write_bytes('{"name": "étude"}'.encode("utf-8"))
    (tmp_path / "events.jsonl").write_bytes('{"event": "tweaked", "note": "λ"}\n'.encode("utf-8"))
    (tmp_path / "metrics.jsonl").write_bytes('{"epoch": 1, "tag": "ü"}'.encode("utf-8"))
    rec = runs.load_run(tmp_path)
    assert rec.config == {"name": "étude"}
    assert rec.events == [{"event": "tweaked", "note": "λ"}] and rec.metrics == [{"epoch": 1, "tag": "ü"}]
    f = runs.JsonlFollower(tmp_path / "events.jsonl")
    assert f.poll() == [{"event": "tweaked", "note": "λ"}]


def test_writers_write_under_an_ascii_locale(tmp_path, ascii_locale):
    w = runs.RunWriter(tmp_path, {"name": "étude"})
    w.metrics({"epoch": 1, "tag": "ü"})
    w.event({"event": "tweaked", "note": "λ"})
    w.finish({"status": "completed", "reason": "é"})
    runs.send_control(tmp_path, "tweak", changes={"note": "é"})
    rec = runs.load_run(tmp_path)
    assert rec.config == {"name": "étude"} and rec.summary == {"status": "completed", "reason": "é"}
    assert rec.metrics == [{"epoch": 1, "tag": "ü"}] and rec.events == [{"event": "tweaked", "note": "λ"}]
    assert runs.read_jsonl(tmp_path / "control.jsonl")[0]["changes"] == {"note": "é"}
