"""The protocol's exact wire form and rules (gengap_tui/protocol.py, docs/ARCHITECTURE.md "Messages"
and "Control"): what each message and command looks like as a dict, what a bad record is told,
the live-tweak limits at their edges, and the names and numbers both sides write (run
directories, `--set` values). Pure and fast: no torch, no app, no threads."""

from __future__ import annotations  # (as in protocol.py: a field's type is the text of its annotation)

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import pydantic
import pytest

from gengap_tui import config, protocol
from gengap_tui.protocol import (USER_STOP, Epoch, Error, Event, Message, Pause, Progress, ProtocolError, Resume, RunDir,
                                 Stop, Summary, SweepMeta, SweepRows, SweepSummary, Tweak, TweakRule, Warning, _build,
                                 _num, _rule,
                                 check_tweaks, decode, decode_command, exact_value, fmt_value, point_dir_name,
                                 run_config)

KNOWN = "run_dir, epoch, event, summary, error, warning, progress, sweep_meta, sweep_rows, sweep_summary"


# ------------------------------------------------------------------------------ the wire form
@pytest.mark.parametrize("msg, wire", [
    (RunDir("/runs/a"), {"type": "run_dir", "path": "/runs/a"}),
    (Epoch({"epoch": 1, "val_err": 0.25}), {"type": "epoch", "row": {"epoch": 1, "val_err": 0.25}}),
    (Event({"event": "paused", "epoch": 3}), {"type": "event", "event": {"event": "paused", "epoch": 3}}),
    (Summary({"status": "completed"}), {"type": "summary", "summary": {"status": "completed"}}),
    (Error("bad width"), {"type": "error", "message": "bad width", "cancelled": False}),
    (Error("stopped", cancelled=True), {"type": "error", "message": "stopped", "cancelled": True}),
    (Warning("tweak refused: lr"), {"type": "warning", "message": "tweak refused: lr"}),
    (Progress({"epoch": 2, "values": [2.0]}), {"type": "progress", "row": {"epoch": 2, "values": [2.0]}}),
    (SweepMeta({"param": "model.width"}), {"type": "sweep_meta", "meta": {"param": "model.width"}}),
    (SweepRows([{"value": 2.0}]), {"type": "sweep_rows", "rows": [{"value": 2.0}]}),
    (SweepSummary({"status": "cancelled"}), {"type": "sweep_summary", "summary": {"status": "cancelled"}}),
])
def test_each_message_is_a_plain_dict_named_by_its_type_and_decodes_back(msg, wire):
    assert msg.to_wire() == wire
    back = decode(json.loads(json.dumps(wire)))
    assert back == msg and type(back) is type(msg)


@pytest.mark.parametrize("cmd, wire", [
    (Pause(), {"cmd": "pause"}),
    (Resume(), {"cmd": "resume"}),
    (Stop(), {"cmd": "stop", "reason": "stopped by the user"}),
    (Stop("terminal closed (SIGHUP)"), {"cmd": "stop", "reason": "terminal closed (SIGHUP)"}),
    (Tweak({"lr": 0.5, "patience": 4}), {"cmd": "tweak", "changes": {"lr": 0.5, "patience": 4}}),
    (Tweak(), {"cmd": "tweak", "changes": {}}),
])
def test_each_command_is_a_plain_dict_named_by_its_cmd_and_decodes_back(cmd, wire):
    assert cmd.to_wire() == wire
    back = decode_command(json.loads(json.dumps(wire)))
    assert back == cmd and type(back) is type(cmd)


def test_fields_left_out_on_the_wire_take_their_defaults():
    assert decode({"type": "error", "message": "bad"}) == Error("bad", cancelled=False)
    assert decode_command({"cmd": "stop"}) == Stop(USER_STOP) and USER_STOP == "stopped by the user"
    assert decode_command({"cmd": "tweak"}) == Tweak({})
    # what the wire carries besides the fields (control.jsonl's time) is no part of the command
    assert decode_command({"cmd": "pause", "time": 1.5}) == Pause()


@dataclass(frozen=True)
class Note(Message):
    """A message kind with more than one default and an optional field (the decoder is generic)."""
    TYPE: ClassVar[str] = "note"
    text: str
    level: str = "info"
    tags: list | None = None


@pytest.mark.parametrize("wire, note", [
    ({"type": "note", "text": "a"}, Note("a")),
    ({"type": "note", "text": "a", "tags": ["x"]}, Note("a", "info", ["x"])),  # read past a default left out
    ({"type": "note", "text": "a", "level": "warn"}, Note("a", "warn")),
])
def test_every_field_on_the_wire_is_read_and_the_ones_left_out_take_their_defaults(wire, note):
    assert _build({"note": Note}, "type", wire, "message") == note


def test_an_optional_field_is_still_checked_against_its_type():
    with pytest.raises(ProtocolError) as err:
        _build({"note": Note}, "type", {"type": "note", "text": "a", "tags": "x"}, "message")
    assert str(err.value) == "message 'note': tags = 'x' is not a list | None"


def test_an_event_says_its_kind():
    assert Event({"event": "early_stop", "epoch": 9}).kind == "early_stop"


def test_a_tweak_is_checked_and_normalised_when_it_is_made():
    t = Tweak({"patience": 3.0, "lr": 1})
    assert t.changes == {"patience": 3, "lr": 1.0}
    assert type(t.changes["patience"]) is int and type(t.changes["lr"]) is float
    with pytest.raises(ValueError, match=r"^lr = 0: expected 0 < lr <= 1e6$"):
        Tweak({"lr": 0})


@pytest.mark.parametrize("record, message", [
    ("epoch", "a message is a dict, got str"),
    ([{"type": "epoch"}], "a message is a dict, got list"),
    ({"type": "nope"}, f"unknown message type 'nope' (known: {KNOWN})"),
    ({"row": {}}, f"unknown message type None (known: {KNOWN})"),
    ({"type": "epoch"}, "message 'epoch' lacks 'row'"),
    ({"type": "error", "cancelled": True}, "message 'error' lacks 'message'"),
    ({"type": "epoch", "row": [1]}, "message 'epoch': row = [1] is not a dict"),
    ({"type": "error", "message": 3}, "message 'error': message = 3 is not a str"),
    ({"type": "error", "message": "x", "cancelled": "yes"}, "message 'error': cancelled = 'yes' is not a bool"),
    ({"type": "sweep_rows", "rows": {"value": 1}}, "message 'sweep_rows': rows = {'value': 1} is not a list"),
])
def test_a_record_that_is_no_message_is_refused_saying_what_is_wrong(record, message):
    with pytest.raises(ProtocolError) as err:
        decode(record)
    assert str(err.value) == message


@pytest.mark.parametrize("record, message", [
    (None, "a command is a dict, got NoneType"),
    ({"cmd": "launch"}, "unknown command cmd 'launch' (known: pause, resume, stop, tweak)"),
    ({"type": "stop"}, "unknown command cmd None (known: pause, resume, stop, tweak)"),
    ({"cmd": "stop", "reason": 7}, "command 'stop': reason = 7 is not a str"),
    ({"cmd": "tweak", "changes": [["lr", 1]]}, "command 'tweak': changes = [['lr', 1]] is not a dict"),
    ({"cmd": "tweak", "changes": {"lr": 0}}, "command 'tweak': lr = 0: expected 0 < lr <= 1e6"),
    ({"cmd": "tweak", "changes": {"width": 8}}, "command 'tweak': cannot tweak width live (allowed: lr, weight_decay, "
                                                "patience, observe, min_delta, step_factor, exp_factor)"),
])
def test_a_record_that_is_no_command_is_refused_saying_what_is_wrong(record, message):
    with pytest.raises(ProtocolError) as err:
        decode_command(record)
    assert str(err.value) == message


def test_a_protocol_error_is_a_value_error():
    """Callers that catch ValueError (a bad value anywhere) also catch a bad record."""
    with pytest.raises(ValueError):
        decode({"type": "nope"})


# ------------------------------------------------------------------------------ names and numbers
@pytest.mark.parametrize("raw, kept", [
    (None, {}),
    ({}, {}),
    ({"model": {"width": 8}, "torch_version": "2.13", "device_name": "cpu", "torch_threads": 2,
      "gpu": {"name": "H100"}}, {"model": {"width": 8}}),
    ({"seed": 0, "run": {"epochs": 3}}, {"seed": 0, "run": {"epochs": 3}}),
])
def test_a_runs_config_is_its_schema_keys_only(raw, kept):
    assert run_config(raw) == kept


@pytest.mark.parametrize("v, text", [
    (True, "true"), (False, "false"), ("cnn1d", "cnn1d"), ("", ""),
    (3, "3"), (3.0, "3"), (0, "0"), (-2.0, "-2"), (0.5, "0.5"), (-0.25, "-0.25"),
    (1e-4, "0.0001"), (1e-7, "1e-07"), (0.1234567, "0.123457"), (123456.0, "123456"),
    (1234567.0, "1234567"), (1e6, "1000000"), (-2500000, "-2500000"),  # a whole number in full, however long
])
def test_fmt_value_writes_numbers_as_people_do(v, text):
    assert fmt_value(v) == text


@pytest.mark.parametrize("v, text", [
    (True, "true"), (False, "false"), ("mlp", "mlp"),
    (8, "8"), (8.0, "8"), (0.0, "0"), (-3.0, "-3"), (0.1, "0.1"), (0.1234567, "0.1234567"), (1e-7, "1e-07"),
    (1 / 3, "0.3333333333333333"),
])
def test_exact_value_parses_back_to_the_same_value(v, text):
    assert exact_value(v) == text
    if not isinstance(v, (bool, str)):
        assert float(text) == v


@pytest.mark.parametrize("x, text", [
    (0.5, "0.5"), (0, "0"), (10.0, "10"), (999999.0, "999999"), (1e6, "1e6"), (2.5e7, "2e7"), (1e10, "1e10"),
    (1e100, "1e100"), (-1e7, "-1e7"), (-5.0, "-5"), (2e-3, "0.002"),
])
def test_a_limit_is_written_short_from_a_million_up(x, text):
    assert _num(x) == text


@pytest.mark.parametrize("args, name", [
    (("model.width", 8), "width-8"),
    (("model.width", 8.0), "width-8"),
    (("width", 8), "width-8"),
    (("model.kind", "cnn1d"), "kind-cnn1d"),
    (("optim.lr", 0.1), "lr-0.1"),
    (("a.b.c", 2), "c-2"),
    (("regularization.dropout", 0.0), "dropout-0"),
    (("data.augment", True), "augment-true"),
    (("model.width", 8, 0.1, "data.label_noise"), "width-8+label_noise-0.1"),
    (("model.width", 8, 0.1, "label_noise"), "width-8+label_noise-0.1"),
    (("model.width", 8, 0.0, "data.label_noise"), "width-8+label_noise-0"),   # a second value of 0 is a value
    (("model.width", 8, False, "data.augment"), "width-8+augment-false"),
    (("model.width", 8, 0.5), "width-8+value2-0.5"),                          # no second name given
    (("model.width", 8, None, "data.label_noise"), "width-8"),                # no second value: no grid
    (("data.file", "a/b"), "file-a_b"),                                       # never a sub-directory
    (("data.file", "a\\b"), "file-a_b"),
    (("data.file", "x", "c/d\\e", "data.other"), "file-x+other-c_d_e"),
])
def test_a_sweep_points_directory_is_named_by_its_setting_and_exact_value(args, name):
    assert point_dir_name(*args) == name


def test_point_dir_name_takes_its_second_value_by_keyword():
    assert point_dir_name("model.width", 4, param2="data.label_noise", value2=0.2) == "width-4+label_noise-0.2"


# ------------------------------------------------------------------------------ live tweaks
@pytest.mark.parametrize("dotted, rule", [
    ("optim.lr", TweakRule("float", 0.0, 1e6, True, False, "0 < lr <= 1e6")),
    ("optim.step_factor", TweakRule("float", 0.0, 1.0, True, False, "0 < step_factor <= 1")),
    ("optim.exp_factor", TweakRule("float", 0.0, 1.0, True, False, "0 < exp_factor <= 1")),
    ("regularization.weight_decay", TweakRule("float", 0.0, 10.0, False, False, "0 <= weight_decay <= 10")),
    ("early_stopping.patience", TweakRule("int", 1, 100000, False, False, "an integer 1 <= patience <= 100000")),
    ("early_stopping.min_delta", TweakRule("float", 0.0, 1e6, False, False, "0 <= min_delta <= 1e6")),
    ("early_stopping.observe", TweakRule("bool", None, None, False, False, "true or false")),
    # fields with an open upper limit (not tweakable today; the rule reads any config field)
    ("regularization.dropout", TweakRule("float", 0.0, 1.0, False, True, "0 <= dropout < 1")),
    ("optim.momentum", TweakRule("float", 0.0, 1.0, False, True, "0 <= momentum < 1")),
])
def test_a_tweak_rule_is_its_config_fields_own_limits(dotted, rule):
    assert _rule(dotted) == rule


class Lab(pydantic.BaseModel):
    """A config section whose fields have one limit or none (every field of today's config has two)."""
    floor: float = pydantic.Field(0.5, ge=0.0)
    above: float = pydantic.Field(0.5, gt=0.0)
    ceiling: int = pydantic.Field(1, le=5)
    below: float = pydantic.Field(0.5, lt=2e6)
    free: float = 0.5


@pytest.mark.parametrize("name, rule", [
    ("floor", TweakRule("float", 0.0, None, False, False, "0 <= floor")),
    ("above", TweakRule("float", 0.0, None, True, False, "0 < above")),
    ("ceiling", TweakRule("int", None, 5, False, False, "an integer ceiling <= 5")),
    ("below", TweakRule("float", None, 2e6, False, True, "below < 2e6")),
    ("free", TweakRule("float", None, None, False, False, "free")),
])
def test_a_tweak_rule_says_only_the_limits_its_field_has(monkeypatch, name, rule):
    monkeypatch.setitem(config.SECTIONS, "lab", Lab)
    assert _rule(f"lab.{name}") == rule


def test_every_tweakable_setting_has_its_rule_under_its_panel_name():
    assert protocol.TWEAKABLE == ("lr", "weight_decay", "patience", "observe", "min_delta", "step_factor", "exp_factor")
    assert {name: _rule(dotted) for dotted, name in protocol.TWEAK_FIELDS.items()} == protocol.TWEAKS


@pytest.mark.parametrize("changes, normalised", [
    ({"lr": 1e6}, {"lr": 1e6}),                      # a closed upper limit is allowed
    ({"lr": 1e-12}, {"lr": 1e-12}),                  # anything above an open lower limit
    ({"lr": 2}, {"lr": 2.0}),
    ({"weight_decay": 0}, {"weight_decay": 0.0}),    # a closed lower limit is allowed
    ({"weight_decay": 10}, {"weight_decay": 10.0}),
    ({"patience": 1}, {"patience": 1}),
    ({"patience": 100000.0}, {"patience": 100000}),
    ({"step_factor": 1.0, "exp_factor": 0.5}, {"step_factor": 1.0, "exp_factor": 0.5}),
    ({"observe": True}, {"observe": True}),
    ({"observe": False}, {"observe": False}),
    ({"observe": True, "lr": 0.5, "min_delta": 0}, {"observe": True, "lr": 0.5, "min_delta": 0.0}),  # all, in order
    ({}, {}),
])
def test_a_tweak_in_range_is_taken_and_normalised(changes, normalised):
    got = check_tweaks(changes)
    assert got == normalised and list(got) == list(normalised)
    assert [type(v) for v in got.values()] == [type(v) for v in normalised.values()]


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0}, "lr = 0: expected 0 < lr <= 1e6"),
    ({"lr": -1e-12}, "lr = -1e-12: expected 0 < lr <= 1e6"),
    ({"lr": 1000000.5}, "lr = 1000000.5: expected 0 < lr <= 1e6"),
    ({"weight_decay": -1e-9}, "weight_decay = -1e-09: expected 0 <= weight_decay <= 10"),
    ({"weight_decay": 10.000001}, "weight_decay = 10.000001: expected 0 <= weight_decay <= 10"),
    ({"step_factor": 0.0}, "step_factor = 0.0: expected 0 < step_factor <= 1"),
    ({"exp_factor": 1.01}, "exp_factor = 1.01: expected 0 < exp_factor <= 1"),
    ({"patience": 0}, "patience = 0: expected an integer 1 <= patience <= 100000"),
    ({"patience": 100001}, "patience = 100001: expected an integer 1 <= patience <= 100000"),
    ({"patience": 1.5}, "patience = 1.5: expected an integer 1 <= patience <= 100000"),
    ({"patience": False}, "patience = False: expected a number (an integer 1 <= patience <= 100000)"),
    ({"lr": None}, "lr = None: expected a number (0 < lr <= 1e6)"),
    ({"lr": "0.1"}, "lr = '0.1': expected a number (0 < lr <= 1e6)"),
    ({"lr": math.inf}, "lr = inf: expected a finite number (0 < lr <= 1e6)"),
    ({"min_delta": -math.inf}, "min_delta = -inf: expected a finite number (0 <= min_delta <= 1e6)"),
    ({"observe": 0}, "observe = 0: expected true or false"),
    ({"observe": "true"}, "observe = 'true': expected true or false"),
    ({"lr": 0.5, "patience": 0}, "patience = 0: expected an integer 1 <= patience <= 100000"),  # the bad one named
    ({"observe": True, "lr": 0}, "lr = 0: expected 0 < lr <= 1e6"),           # checked after a switch too
    ({"width": 8}, "cannot tweak width live (allowed: lr, weight_decay, patience, observe, min_delta, "
                   "step_factor, exp_factor)"),
    ({"width": 8, "lr": 0.1, "depth": 2}, "cannot tweak depth, width live (allowed: lr, weight_decay, patience, "
                                          "observe, min_delta, step_factor, exp_factor)"),
])
def test_a_tweak_out_of_range_is_refused_naming_the_setting_and_its_range(changes, message):
    with pytest.raises(ValueError) as err:
        check_tweaks(changes)
    assert str(err.value) == message


@pytest.mark.parametrize("value, ok", [(0.0, True), (0.999, True), (1.0, False), (1.5, False), (-0.1, False)])
def test_an_open_upper_limit_refuses_the_limit_itself(monkeypatch, value, ok):
    """The rules are generic: a setting whose field says `lt=` (dropout) would refuse its limit."""
    monkeypatch.setitem(protocol.TWEAKS, "dropout", _rule("regularization.dropout"))
    if ok:
        assert check_tweaks({"dropout": value}) == {"dropout": value}
    else:
        with pytest.raises(ValueError, match=r"^dropout = .*: expected 0 <= dropout < 1$"):
            check_tweaks({"dropout": value})
