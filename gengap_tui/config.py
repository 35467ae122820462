"""The experiment schema (docs/ARCHITECTURE.md, "Config"): strict pydantic models, `--set` overrides, TOML presets.

Every number is range-checked, unknown keys are errors, and every error is reported as one line
that names the dotted field, the bad value and what is allowed (`ConfigError`). Nothing here
touches the disk except reading a preset file.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DATASETS = ("mnist1d", "moons", "circles", "spirals", "xor", "mnist", "fashion-mnist", "cifar10", "cifar100",
            "digits", "npz")
FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "npz")
SEQUENCE_DATASETS = ("mnist1d", "mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "npz")
# sets of images (N, C, H, W): 2-D convnets and augmentation (an npz file's arrays are checked
# when it is read: feature vectors there are refused then)
IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "npz")
AUGMENTS = ("none", "crop", "flip", "crop-flip")
IMAGE_MODELS = ("cnn2d", "resnet18")


DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:(\d{1,2}))?)$")
DEVICES_ALLOWED = "'auto', 'cpu', 'cuda' or 'cuda:N' (N: a GPU's index, as PyTorch counts them)"


def parse_device(name: str) -> tuple[str, int | None]:
    """("auto" | "cpu" | "cuda", index or None); ValueError naming what is allowed."""
    m = DEVICE_RE.match(name or "")
    if not m:
        raise ValueError(f"device: {name!r} is not a device (allowed: {DEVICES_ALLOWED})")
    kind = m.group(1).split(":")[0]
    return kind, int(m.group(3)) if m.group(3) is not None else None


class ConfigError(ValueError):
    """A rejected config. `problems` holds one line per bad field."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"invalid config ({source})" if source else "invalid config"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class RunSection(_Section):
    seeds: int = Field(1, ge=1, le=64)  # K seeds (seed, seed+1, ...) trained together as one stacked model
    precision: Literal["float32", "bfloat16"] = "float32"  # bfloat16: autocast forward passes (weights stay fp32)
    # "auto": on a CUDA device with a constant learning rate, record each epoch and each evaluation
    # as a CUDA graph and replay it (core/graphs.py); "off": always eager
    cuda_graphs: Literal["auto", "off"] = "auto"
    # the CPU threads torch trains with (`cpu_threads`); 0: auto, max(1, cores - 1). Part of the
    # config because the thread count changes the numbers (summation order), so a preset gives the
    # same numbers in the lab and headless on one machine
    threads: int = Field(0, ge=0, le=1024)
    # the lab keeps a training process ready (torch imported, the device and this preset's data
    # prepared) so that ctrl+r trains at once (worker.py, warm.py); no effect on the numbers
    prewarm: bool = True


def cpu_threads(threads: int) -> int:
    """The CPU threads torch trains with for `run.threads = threads`: that many, or for 0
    max(1, cores - 1), cores being the CPUs this process may run on (cgroup / taskset limits
    honoured), which leaves one for the lab's UI or the rest of the machine."""
    if threads > 0:
        return threads
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


class DataSection(_Section):
    dataset: Literal[DATASETS] = "mnist1d"  # type: ignore[valid-type]
    n_train: int = Field(4000, ge=10, le=1_000_000)
    n_val: int = Field(1000, ge=10, le=1_000_000)
    n_test: int = Field(1000, ge=10, le=1_000_000)
    binary: bool = False
    path: str = ""
    synthetic_noise: float = Field(0.1, ge=0.0, le=10.0)


class NoiseSection(_Section):
    label_noise: float = Field(0.0, ge=0.0, le=1.0)
    kind: Literal["symmetric", "pairflip", "random"] = "symmetric"


class ModelSection(_Section):
    kind: Literal["mlp", "cnn1d", "cnn2d", "resnet18"] = "mlp"
    depth: int = Field(2, ge=0, le=32)
    width: int = Field(256, ge=1, le=65536)
    activation: Literal["relu", "tanh", "gelu", "silu", "leaky_relu", "sigmoid"] = "relu"
    channels: int = Field(64, ge=1, le=4096)
    conv_layers: int = Field(3, ge=1, le=8)
    kernel_size: int = Field(5, ge=1, le=63)


class RegularizationSection(_Section):
    weight_decay: float = Field(0.0, ge=0.0, le=10.0)
    decoupled: bool = False
    l1: float = Field(0.0, ge=0.0, le=10.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    input_noise: float = Field(0.0, ge=0.0, le=100.0)
    # image sets: random crops (of the image padded by crop_pad pixels) and / or horizontal flips,
    # drawn per example per epoch from the run's data-order generator (core/augment.py)
    augment: Literal[AUGMENTS] = "none"  # type: ignore[valid-type]
    crop_pad: int = Field(4, ge=1, le=32)


class OptimSection(_Section):
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(0.001, gt=0.0, le=1e6)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    batch_size: int = Field(128, ge=1, le=1_000_000)
    epochs: int = Field(200, ge=1, le=100_000)
    # the learning rate at each epoch (docs/ARCHITECTURE.md, "Learning-rate schedules"): `lr` times
    # the schedule's factor, after a linear warm-up over the first `warmup_epochs`
    schedule: Literal["constant", "cosine", "step", "exponential"] = "constant"
    warmup_epochs: int = Field(0, ge=0, le=100_000)
    step_every: int = Field(30, ge=1, le=100_000)            # step: x step_factor every step_every epochs
    step_factor: float = Field(0.1, gt=0.0, le=1.0)
    exp_factor: float = Field(0.95, gt=0.0, le=1.0)          # exponential: x exp_factor every epoch (Zhang et al.)

    @model_validator(mode="after")
    def _warmup_fits(self) -> "OptimSection":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"optim.warmup_epochs: {self.warmup_epochs} leaves no epoch after the warm-up "
                             f"(allowed: 0 to epochs - 1 = {self.epochs - 1})")
        return self


class EarlyStoppingSection(_Section):
    enabled: bool = True
    monitor: Literal["val_err", "val_loss"] = "val_err"
    patience: int = Field(10, ge=1, le=100_000)
    min_delta: float = Field(0.0, ge=0.0, le=1e6)
    min_delta_mode: Literal["abs", "rel"] = "abs"
    start_from_epoch: int = Field(0, ge=0, le=100_000)
    restore_best: bool = True
    observe: bool = False


class BaselinesSection(_Section):
    knn: bool = False
    knn_k: int = Field(1, ge=1, le=1000)
    knn_metric: Literal["euclidean", "cosine", "manhattan"] = "euclidean"
    ntk: bool = False


class RattSection(_Section):
    enabled: bool = False
    n_random: int = Field(1000, ge=1, le=1_000_000)
    delta: float = Field(0.05, gt=0.0, lt=1.0)


# a swept value: a number (stored as a float), true / false, or a choice's name
SweepValue = float | bool | str


class SweepSection(_Section):
    """What `gengap-tui sweep` and the lab's f4 sweep (docs/ARCHITECTURE.md, "Sweeps over any
    setting"): `param` over `values`, any number, switch or choice of the schema. With `param2`
    and `values2` the sweep is the grid of the two: one line of `param` per value of `param2`."""
    param: str = "model.width"
    values: list[SweepValue] = Field(default_factory=list, max_length=256)
    param2: str = ""
    values2: list[SweepValue] = Field(default_factory=list, max_length=64)


class Config(_Section):
    name: str = Field("custom", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = Field("", max_length=2000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (gpus.parse_device; whether GPU N is there: core/devices.py)
    run: RunSection = Field(default_factory=RunSection)
    data: DataSection = Field(default_factory=DataSection)
    noise: NoiseSection = Field(default_factory=NoiseSection)
    model: ModelSection = Field(default_factory=ModelSection)
    regularization: RegularizationSection = Field(default_factory=RegularizationSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    early_stopping: EarlyStoppingSection = Field(default_factory=EarlyStoppingSection)
    baselines: BaselinesSection = Field(default_factory=BaselinesSection)
    sweep: SweepSection = Field(default_factory=SweepSection)
    ratt: RattSection = Field(default_factory=RattSection)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        parse_device(v)  # ValueError: "device: 'gpu' is not a device (allowed: ...)"
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        d = self.data
        if d.dataset in FILE_DATASETS and not d.path:
            what = "the .npz file" if d.dataset == "npz" else "the folder that holds them"
            raise ValueError(
                f"data.path: dataset {d.dataset!r} is read from local files; "
                f"set data.path to {what}"
            )
        aug = self.regularization.augment
        if aug != "none" and d.dataset not in IMAGE_DATASETS:
            raise ValueError(
                f"regularization.augment: {aug!r} crops and flips images, but dataset {d.dataset!r} is not "
                f"a set of images (allowed with augment: {', '.join(IMAGE_DATASETS)}; else augment = 'none')"
            )
        if self.model.kind == "cnn1d" and d.dataset not in SEQUENCE_DATASETS:
            raise ValueError(
                f"model.kind: 'cnn1d' needs sequence inputs ({', '.join(SEQUENCE_DATASETS)}); "
                f"dataset {d.dataset!r} is 2-D points: use 'mlp'"
            )
        if self.model.kind in IMAGE_MODELS and d.dataset not in IMAGE_DATASETS:
            raise ValueError(
                f"model.kind: {self.model.kind!r} needs an image data set ({', '.join(IMAGE_DATASETS)}); "
                f"dataset {d.dataset!r} has no images: use 'mlp'" + (" or 'cnn1d'" if d.dataset in SEQUENCE_DATASETS else "")
            )
        if d.dataset == "mnist1d" and d.n_test != 1000:
            raise ValueError(
                "data.n_test: MNIST-1D uses its canonical 1000-example test split; leave n_test at 1000"
            )
        problem = check_sweep(self.sweep)
        if problem:
            raise ValueError(problem)
        return self

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # pragma: no mutate (every field is a JSON type: any mode dumps the same)


SECTIONS = {
    name: info.annotation
    for name, info in Config.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}


# ---------------------------------------------------------------------------------------------
# error messages: field, bad value, what is allowed


def _field_info(loc: tuple) -> Any:
    model: Any = Config
    info = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = info.annotation
    return info


def allowed(loc: tuple) -> str:
    """Describe what a field accepts, from its type and constraints."""
    info = _field_info(loc)
    if info is None:
        return ""
    ann = info.annotation
    if get_origin(ann) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(ann)
    if kind is None:
        if get_origin(ann) is list:
            return "a list of numbers, true / false or choice names"
        return ""
    lo = hi = None  # pragma: no mutate (None or "": both read as "no bound" below, equivalent)
    for m in info.metadata:
        if isinstance(m, at.Ge):
            lo = f"{m.ge} <= "
        elif isinstance(m, at.Gt):
            lo = f"{m.gt} < "
        elif isinstance(m, at.Le):
            hi = f" <= {m.le:g}" if isinstance(m.le, float) else f" <= {m.le}"
        elif isinstance(m, at.Lt):
            hi = f" < {m.lt}"
    if lo or hi:
        return f"{kind}, {lo or ''}{loc[-1]}{hi or ''}"
    return kind


def _fmt_value(v: Any) -> str:
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return f"an integer of {len(hex(abs(v))) - 2} hex digits"  # repr() refuses > 4300 decimal digits
    try:
        s = repr(v)
    except (ValueError, RecursionError):
        return f"a {type(v).__name__} too large to show"
    return s if len(s) <= 60 else s[:57] + "..."


UNION_TAGS = ("float", "bool", "str")  # pydantic's names of SweepValue's kinds in an error's loc


def explain(err: ValidationError, prefix: tuple = ()) -> list[str]:
    out = []
    items_seen = set()
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        if len(loc) > 2 and isinstance(loc[-2], int) and loc[-1] in UNION_TAGS:
            # a list item that is none of a sweep value's kinds: pydantic reports it once per kind
            # (`sweep.values.0.float`, `...bool`, `...str`); one line for the item says it all
            item = loc[:-1]
            if item not in items_seen:
                items_seen.add(item)
                out.append(f"{'.'.join(map(str, item))} = {_fmt_value(e.get('input'))}: not a number, "
                           f"true / false or a name (allowed: {allowed(item[:-1])})")
            continue
        dotted = ".".join(str(p) for p in loc) if loc else "(a top-level key)"
        etype = e["type"]
        if etype == "extra_forbidden":
            parent = loc[:-1]
            model: Any = Config if not parent else (_field_info(parent).annotation if _field_info(parent) else None)
            keys = list(model.model_fields) if model is not None else []
            close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
            hint = f" (did you mean {'.'.join(map(str, parent + (close[0],)))}?)" if close else ""
            where = f"[{'.'.join(map(str, parent))}]" if parent else "the top level"
            out.append(f"{dotted}: unknown key{hint}; keys allowed in {where}: {', '.join(keys)}")
            continue
        if etype == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            out.append(msg if ":" in msg.split(" ")[0] else f"{dotted}: {msg}")
            continue
        what = allowed(loc)
        msg = e["msg"]
        if etype == "literal_error":
            msg = "not a known choice"
        value = e.get("input")
        if isinstance(value, float) and not math.isfinite(value):  # nan fails `<=`: say what is wrong
            msg = "must be a finite number"
        line = f"{dotted} = {_fmt_value(value)}: {msg}"
        if what:
            line += f" (allowed: {what})"
        out.append(line)
    return out


# ---------------------------------------------------------------------------------------------
# building configs


def validate(data: dict[str, Any], source: str | None = None) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(explain(err), source) from None


def parse_value(text: str) -> Any:
    """A `--set` value: TOML syntax when it parses (numbers, booleans, lists, quoted strings),
    otherwise the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        # not TOML (or TOML that tomllib refuses: integers over 4300 digits, deep nesting)
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` strings to a raw config dict (a deep copy is returned)."""
    import copy

    try:
        data = copy.deepcopy(data)
    except RecursionError:
        raise ConfigError(["the preset nests tables too deeply"], "--set") from None
    problems = []
    for item in overrides:
        shown = _fmt_value(item)
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {shown}: expected dotted.key=value, e.g. optim.lr=0.01")
            continue
        parts = key.split(".")
        if any(not p for p in parts):
            problems.append(f"--set {shown}: {_fmt_value(key)} is not a dotted key")
            continue
        if len(parts) > 1 and parts[0] in Config.model_fields and parts[0] not in SECTIONS:
            problems.append(f"--set {shown}: {parts[0]} is a value, not a section")
            continue
        node = data
        for i, p in enumerate(parts[:-1]):
            sub = node.setdefault(p, {})
            if not isinstance(sub, dict):
                problems.append(f"--set {shown}: {'.'.join(parts[: i + 1])[:60]} is a value, not a section")
                break
            node = sub
        else:
            node[parts[-1]] = parse_value(value.strip())
    if problems:
        raise ConfigError(problems, "--set")
    return data


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a UTF-8 text file"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror or exc})"], str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already says "(at line L, column C)"
        raise ConfigError([f"{path}: TOML syntax error: {exc}"], str(path)) from None
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise ConfigError([f"{path}: unreadable value: {exc}"], str(path)) from None
    except RecursionError:
        raise ConfigError([f"{path}: arrays or tables nested too deeply"], str(path)) from None


def build(raw: dict[str, Any], overrides: list[str] | None = None, source: str | None = None) -> Config:
    """Validate `raw` with `overrides` applied. A problem that only the overrides bring is
    blamed on them (`invalid config (--set)`), not on the preset file."""
    if not overrides:
        return validate(raw, source)
    try:
        return validate(apply_overrides(raw, overrides), source)
    except ConfigError as exc:
        if not (source or "").endswith(".toml"):
            raise
        try:
            validate(raw)
        except ConfigError:
            raise exc from None
        raise ConfigError(exc.problems, "--set") from None


def to_toml(cfg: Config) -> str:
    """Write a config as a preset TOML (readable back by `read_toml` + `validate`)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        out = []
        for ch in str(v):
            if ch in '\\"':
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")  # TOML basic strings cannot hold control characters
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    d = cfg.dump()
    lines = []
    for k, v in d.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {val(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines.extend(f"{kk} = {val(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# sweeps over any setting (docs/ARCHITECTURE.md, "Sweeps over any setting")

UNSWEPT_SECTIONS = ("run", "sweep")  # how a sweep trains, not what: not sweepable


def sweep_field(param: str, key: str = "sweep.param") -> tuple[type, str, Any]:
    """(section model, field name, annotation) of a sweepable dotted setting; ValueError naming
    `key` and what is allowed otherwise."""
    section, _, name = param.partition(".")
    sweepable = [s for s in SECTIONS if s not in UNSWEPT_SECTIONS]
    if section in UNSWEPT_SECTIONS:
        raise ValueError(f"{key}: {_fmt_value(param)} is a [{section}] setting: it says how a sweep trains, not what; "
                         f"sweep a setting of {', '.join(sweepable)}")
    if section not in sweepable or not name or "." in name:
        raise ValueError(f"{key}: {_fmt_value(param)} is not a setting (allowed: section.name of "
                         f"{', '.join(sweepable)}, e.g. model.width, noise.label_noise, model.kind)")
    model = SECTIONS[section]
    info = model.model_fields.get(name)
    ann = info.annotation if info is not None else None
    if info is None or not (ann in (int, float, bool, str) or get_origin(ann) is Literal):
        keys = [k for k, f in model.model_fields.items()
                if f.annotation in (int, float, bool, str) or get_origin(f.annotation) is Literal]
        close = difflib.get_close_matches(name, keys, n=1)
        hint = f" (did you mean {section}.{close[0]}?)" if close else ""
        raise ValueError(f"{key}: {_fmt_value(param)} is not a setting one can sweep{hint}; "
                         f"[{section}] has {', '.join(keys)}")
    return model, name, ann


def sweep_value(param: str, value: Any, key: str = "sweep.values") -> Any:
    """`value` as setting `param` takes it (an int for an integer setting), checked by the
    setting's own rules; ValueError naming `key`, the setting, the value and what is allowed."""
    model, name, ann = sweep_field(param)
    typed = value
    if ann is int and isinstance(value, float) and value.is_integer():
        typed = int(value)
    elif ann is float and isinstance(value, int) and not isinstance(value, bool):
        typed = float(value)
    try:
        model.model_validate({name: typed})
    except ValidationError as err:
        line = explain(err, (param.split(".")[0],))[0]
        raise ValueError(f"{key}: {line}" if key else line) from None
    return typed


def stored_sweep_value(typed: Any) -> Any:
    """How a swept value is stored (sweep.json, sweep.jsonl): numbers as floats, switches and
    choices as themselves."""
    return float(typed) if isinstance(typed, (int, float)) and not isinstance(typed, bool) else typed


def check_sweep(s: SweepSection) -> str | None:
    """What is wrong with a [sweep] table, or None: each setting sweepable, each value allowed by
    its setting's rules, no value twice, and `param2` / `values2` together, a second setting."""
    try:
        sweep_field(s.param, "sweep.param")
        for v in s.values:
            sweep_value(s.param, v, "sweep.values")
        if len(set(map(repr, s.values))) != len(s.values):
            return f"sweep.values: {s.param} values repeat: {s.values}"
        if not s.param2:
            if s.values2:
                return "sweep.values2: given without sweep.param2 (the grid's second setting)"
            return None
        sweep_field(s.param2, "sweep.param2")
        if s.param2 == s.param:
            return f"sweep.param2: {s.param2!r} is sweep.param too (a grid needs two different settings)"
        if not s.values2:
            return f"sweep.values2: empty; a grid over {s.param} x {s.param2} needs the values of {s.param2}"
        for v in s.values2:
            sweep_value(s.param2, v, "sweep.values2")
        if len(set(map(repr, s.values2))) != len(s.values2):
            return f"sweep.values2: {s.param2} values repeat: {s.values2}"
    except ValueError as exc:
        return str(exc)
    return None
