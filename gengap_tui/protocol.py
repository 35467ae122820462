"""What training and the UI say to each other, in one place: the messages (training -> UI), the
control commands (UI -> training), the live-tweak rules and the constants and formatting both
sides share. Imports neither torch nor Textual: the UI process, the training process and the
run-directory readers all import it, so nothing is mirrored by hand (docs/ARCHITECTURE.md,
"Messages" and "Control").

On the wire (a multiprocessing queue, control.jsonl) a message is a plain dict with a "type" (a
command: a "cmd"); `decode` / `decode_command` turn such a dict back into its class and refuse one
that does not fit (`ProtocolError`), so a bad record is caught where it crosses the boundary.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Union

# ------------------------------------------------------------------------------ shared constants
FIT_ERR = 0.01  # training error at which the training labels count as fitted (interpolation)
# config.json keys that are not in the schema (`gpu`: the GPU's name, index, driver, memory)
RUN_EXTRA_KEYS = ("torch_version", "device_name", "torch_threads", "gpu")
# a metrics.jsonl row's system fields (core/sysmetrics.py; the GPU ones only where NVML reads the GPU)
SYS_KEYS = ("gpu_util", "gpu_mem_used_mb", "gpu_mem_run_mb", "gpu_mem_peak_mb", "gpu_power_w", "gpu_temp_c",
            "cpu_percent", "rss_mb")
# a row's measurements of the machine rather than of the model: they differ between two runs
# that give the same numbers (tests that compare runs leave them out)
MEASURED_KEYS = ("epoch_seconds", "samples_per_s") + SYS_KEYS
STATUSES = ("completed", "early_stopped", "diverged", "cancelled", "failed")
USER_STOP = "stopped by the user"  # the reason of a stop that names no other cause


def run_config(raw: dict | None) -> dict:
    """A run's config.json without the keys that are not part of the schema."""
    return {k: v for k, v in (raw or {}).items() if k not in RUN_EXTRA_KEYS}


def fmt_value(v: float | bool | str) -> str:
    """A number as people write it: integers without a decimal point, else 6 significant digits;
    a swept switch as true / false, a choice as its name."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def exact_value(v: float | bool | str) -> str:
    """A number as a `--set` value that parses back to exactly `v` (integers without a point);
    a switch as true / false, a choice as its name."""
    if isinstance(v, (bool, str)):
        return fmt_value(v)
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def point_dir_name(param: str, value, value2=None, param2: str | None = None) -> str:
    """A sweep point's run directory in its sweep directory (docs/ARCHITECTURE.md, "Run
    directory"): `width-8`, `kind-cnn1d`, and in a grid (`value2` given) `width-8+label_noise-0.1`."""
    name = f"{param.split('.')[-1]}-{exact_value(value)}"
    if value2 is not None:
        name += f"+{(param2 or 'value2').split('.')[-1]}-{exact_value(value2)}"
    return name.replace("/", "_").replace("\\", "_")


# ------------------------------------------------------------------------------ live tweaks
@dataclass(frozen=True)
class TweakRule:
    kind: str                  # "float" | "int" | "bool"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False      # lo itself is not allowed
    hi_open: bool = False
    text: str = ""             # the allowed values as a message says them


# the lab panel field of each setting a running run accepts
TWEAK_FIELDS = {"optim.lr": "lr", "regularization.weight_decay": "weight_decay",
                "early_stopping.patience": "patience", "early_stopping.observe": "observe",
                "early_stopping.min_delta": "min_delta", "optim.step_factor": "step_factor",
                "optim.exp_factor": "exp_factor"}
TWEAKABLE = tuple(TWEAK_FIELDS.values())


def _num(x: float) -> str:
    return fmt_value(x) if abs(x) < 1e6 else f"{x:.0e}".replace("e+0", "e").replace("e+", "e")


def _rule(dotted: str) -> TweakRule:
    """A tweak's limits are the config field's own (config.py): one home for them."""
    import annotated_types as at

    from .config import SECTIONS

    section, name = dotted.split(".")
    info = SECTIONS[section].model_fields[name]
    kind = {bool: "bool", int: "int", float: "float"}[info.annotation]
    if kind == "bool":
        return TweakRule(kind, text="true or false")
    lo = hi = None
    lo_open = hi_open = False
    for m in info.metadata:
        if isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
        elif isinstance(m, at.Le):
            hi = m.le
    text = ("an integer " if kind == "int" else "") + " ".join(
        part for part in (f"{_num(lo)} {'<' if lo_open else '<='}" if lo is not None else "", name,
                          f"{'<' if hi_open else '<='} {_num(hi)}" if hi is not None else "") if part)
    return TweakRule(kind, lo, hi, lo_open, hi_open, text)


TWEAKS: dict[str, TweakRule] = {name: _rule(dotted) for dotted, name in TWEAK_FIELDS.items()}


def check_tweaks(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate live changes and return them normalised (ints for patience, floats for rates);
    raise ValueError naming the setting and the allowed range. Both sides check: the UI before
    sending, the trainer before applying."""
    bad = sorted(set(changes) - set(TWEAKS))
    if bad:
        raise ValueError(f"cannot tweak {', '.join(bad)} live (allowed: {', '.join(TWEAKABLE)})")
    out: dict[str, Any] = {}
    for k, v in changes.items():
        rule = TWEAKS[k]
        if rule.kind == "bool":
            if not isinstance(v, bool):
                raise ValueError(f"{k} = {v!r}: expected {rule.text}")
            out[k] = v
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{k} = {v!r}: expected a number ({rule.text})")
        if not math.isfinite(v):
            raise ValueError(f"{k} = {v!r}: expected a finite number ({rule.text})")
        if rule.kind == "int" and int(v) != v:
            raise ValueError(f"{k} = {v!r}: expected {rule.text}")
        too_low = rule.lo is not None and (v <= rule.lo if rule.lo_open else v < rule.lo)
        too_high = rule.hi is not None and (v >= rule.hi if rule.hi_open else v > rule.hi)
        if too_low or too_high:
            raise ValueError(f"{k} = {v!r}: expected {rule.text}")
        out[k] = int(v) if rule.kind == "int" else float(v)
    return out


# ------------------------------------------------------------------------------ messages
class ProtocolError(ValueError):
    """A record that is not a message (or command) of this protocol."""


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, **asdict(self)}


@dataclass(frozen=True)
class RunDir(Message):
    """The run (or sweep) directory exists: the first message of a run."""
    TYPE: ClassVar[str] = "run_dir"
    path: str


@dataclass(frozen=True)
class Epoch(Message):
    """One metrics.jsonl row."""
    TYPE: ClassVar[str] = "epoch"
    row: dict


@dataclass(frozen=True)
class Event(Message):
    """One events.jsonl record (started, tweaked, paused, early_stop, cancelled, ...)."""
    TYPE: ClassVar[str] = "event"
    event: dict

    @property
    def kind(self) -> str:
        return str(self.event.get("event"))


@dataclass(frozen=True)
class Summary(Message):
    """The run ended: the summary.json contents. The last message of a run."""
    TYPE: ClassVar[str] = "summary"
    summary: dict


@dataclass(frozen=True)
class Error(Message):
    """Nothing was trained and no run directory was made: a bad config, data or runs dir (the
    message names the field), or a stop before training started (`cancelled`)."""
    TYPE: ClassVar[str] = "error"
    message: str
    cancelled: bool = False


@dataclass(frozen=True)
class Warning(Message):  # noqa: A001 - the protocol's name for it
    """Something to tell the user that does not end the run (a refused control message)."""
    TYPE: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class Progress(Message):
    """One progress.jsonl line of a sweep: lists aligned with `values`."""
    TYPE: ClassVar[str] = "progress"
    row: dict


@dataclass(frozen=True)
class SweepMeta(Message):
    """sweep.json: param, values, epochs, config, device, ..."""
    TYPE: ClassVar[str] = "sweep_meta"
    meta: dict


@dataclass(frozen=True)
class SweepRows(Message):
    """sweep.jsonl, once the sweep has ended: one final row per value."""
    TYPE: ClassVar[str] = "sweep_rows"
    rows: list


@dataclass(frozen=True)
class SweepSummary(Message):
    """A sweep's summary.json; the last message of a sweep."""
    TYPE: ClassVar[str] = "sweep_summary"
    summary: dict


AnyMessage = Union[RunDir, Epoch, Event, Summary, Error, Warning, Progress, SweepMeta, SweepRows, SweepSummary]
MESSAGES: dict[str, type[Message]] = {c.TYPE: c for c in (RunDir, Epoch, Event, Summary, Error, Warning, Progress,
                                                          SweepMeta, SweepRows, SweepSummary)}
_PY = {"str": str, "dict": dict, "list": list, "bool": bool}


def _build(kinds: dict[str, type], key: str, d: Any, what: str):
    if not isinstance(d, dict):
        raise ProtocolError(f"a {what} is a dict, got {type(d).__name__}")
    cls = kinds.get(d.get(key))
    if cls is None:
        raise ProtocolError(f"unknown {what} {key} {d.get(key)!r} (known: {', '.join(kinds)})")
    kw = {}
    for f in fields(cls):
        if f.name not in d:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue
            raise ProtocolError(f"{what} {d[key]!r} lacks {f.name!r}")
        want = _PY.get(str(f.type).split(" ")[0])
        if want is not None and not isinstance(d[f.name], want):
            raise ProtocolError(f"{what} {d[key]!r}: {f.name} = {d[f.name]!r} is not a {f.type}")
        kw[f.name] = d[f.name]
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{what} {d[key]!r}: {exc}") from None


def decode(d: Any) -> AnyMessage:
    """The message a wire dict holds; ProtocolError if it holds none."""
    return _build(MESSAGES, "type", d, "message")


# ------------------------------------------------------------------------------ control commands
@dataclass(frozen=True)
class Command:
    CMD: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        return {"cmd": self.CMD, **asdict(self)}


@dataclass(frozen=True)
class Pause(Command):
    """Hold the run at the end of the current epoch (a `paused` event says where)."""
    CMD: ClassVar[str] = "pause"


@dataclass(frozen=True)
class Resume(Command):
    CMD: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Stop(Command):
    """End the run as cancelled within one batch (also while paused); `reason` says who asked."""
    CMD: ClassVar[str] = "stop"
    reason: str = USER_STOP


@dataclass(frozen=True)
class Tweak(Command):
    """Change tweakable settings (`TWEAKS`) from the next epoch on."""
    CMD: ClassVar[str] = "tweak"
    changes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", check_tweaks(dict(self.changes)))


AnyCommand = Union[Pause, Resume, Stop, Tweak]
COMMANDS: dict[str, type[Command]] = {c.CMD: c for c in (Pause, Resume, Stop, Tweak)}


def decode_command(d: Any) -> AnyCommand:
    """The command a control record holds; ProtocolError if it holds none (a bad tweak too)."""
    return _build(COMMANDS, "cmd", d, "command")
