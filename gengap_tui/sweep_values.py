"""A sweep's values as people type them: a list (`2,4,8,16`, `true,false`, `mlp,cnn1d`) or a range
(`2..300 x20 log`: 20 values from 2 to 300, evenly spaced on a log scale; `0..0.5 x6`: linear;
`1..12`: every whole number, for a whole-number setting). Each value is checked by the swept
setting's own rules (`config.sweep_value`); every problem is one line naming the field (`key`) and
what is allowed. Shared by the lab's sweep panel and `gengap-tui sweep --values`
(docs/ARCHITECTURE.md, "Sweeps over any setting"). No torch, no Textual.
"""

from __future__ import annotations

import math
import re
from typing import Literal, get_args, get_origin

from .config import allowed, stored_sweep_value, sweep_field, sweep_value
from .protocol import exact_value, fmt_value

MAX_VALUES = 256  # config.SweepSection.values' max_length (values2: 64)
RANGE_RE = re.compile(r"^\s*(?P<lo>[^.\s][^\s]*?)\s*\.\.\s*(?P<hi>[^\s]+?)\s*"
                      r"(?:x\s*(?P<n>[^\s]+))?\s*(?P<scale>[A-Za-z]+)?\s*$")
RANGE_HELP = "a range is START..END xN [log], e.g. 2..300 x20 log or 0..0.5 x6"


def is_range(text: str) -> bool:
    return ".." in text


def _example(ann) -> str:
    if ann in (int, float):
        return "2,4,8,16 or 2..300 x20 log"
    if ann is bool:
        return "true,false"
    return ",".join(map(str, get_args(ann)[:2])) if get_origin(ann) is Literal else "a,b"


def parse_values(param: str, text: str, key: str = "--values", limit: int = MAX_VALUES) -> list:
    """The values `text` gives setting `param`, as stored (numbers as floats): a comma-separated
    list or a range. ValueError with one line naming `key` otherwise. An empty item (`8,,32`) is
    refused rather than dropped, as a typo would be; repeated values are refused."""
    _, _, ann = sweep_field(param, "--param" if key == "--values" else key.replace("values", "param"))
    text = text.strip()
    if not text:
        raise ValueError(f"{key}: no values given for {param} (give e.g. {_example(ann)})")
    out = _range(param, ann, text, key, limit) if is_range(text) else _list(param, ann, text, key)
    if len(out) > limit:
        raise ValueError(f"{key}: {len(out)} values; a sweep takes at most {limit}")
    if len(set(map(repr, out))) != len(out):
        raise ValueError(f"{key}: {param} values repeat: {text}")
    return out


def _list(param: str, ann, text: str, key: str) -> list:
    numeric = ann in (int, float)
    out = []
    for i, part in enumerate(text.split(","), 1):
        part = part.strip()
        if not part:
            raise ValueError(f"{key}: item {i} of {text!r} is empty (give e.g. {_example(ann)})")
        value: object = part
        if numeric:
            value = _number(param, part, key)
        elif ann is bool:
            if part.lower() not in ("true", "false"):
                raise ValueError(f"{key}: {part!r} is not true or false ({param} is a switch)")
            value = part.lower() == "true"
        out.append(stored_sweep_value(sweep_value(param, value, key)))
    return out


def _number(param: str, part: str, key: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise ValueError(f"{key}: {part!r} is not a number ({param} takes numbers: "
                         f"{allowed(tuple(param.split('.')))})") from None
    if not math.isfinite(value):
        raise ValueError(f"{key}: {part!r} is not a finite number")
    return value


def _range(param: str, ann, text: str, key: str, limit: int) -> list:
    """START..END xN [log|lin]: N values from START to END, both included, evenly spaced (on a
    log scale with `log`); a whole-number setting's values are rounded and kept once each.
    Without xN: every whole number from START to END (whole-number settings only)."""
    if ann not in (int, float):
        raise ValueError(f"{key}: {text!r}: a range needs a number setting; {param} takes "
                         f"{_example(ann)} (list them)")
    m = RANGE_RE.match(text)
    if m is None:
        raise ValueError(f"{key}: {text!r} is not a range ({RANGE_HELP})")
    lo, hi = _number(param, m["lo"], key), _number(param, m["hi"], key)
    scale = (m["scale"] or "lin").lower()
    if scale not in ("log", "lin"):
        raise ValueError(f"{key}: {text!r}: {m['scale']!r} is not a scale (log or lin; {RANGE_HELP})")
    for end in (lo, hi):  # the ends are values of the setting: its own rules first
        sweep_value(param, end, key)
    if not lo < hi:
        raise ValueError(f"{key}: {text!r}: the range must go up (START < END; {RANGE_HELP})")
    if scale == "log" and lo <= 0:
        raise ValueError(f"{key}: {text!r}: a log range needs START > 0")
    if m["n"] is None:
        if ann is not int or scale == "log":
            raise ValueError(f"{key}: {text!r}: give the number of values, e.g. {m['lo']}..{m['hi']} x10"
                             + ("" if scale == "log" else f" ({param} is not a whole number)"))
        n = int(hi - lo) + 1
    else:
        try:
            n = int(m["n"])
        except ValueError:
            n = 0
        if not 2 <= n <= limit or m["n"] != str(n):
            raise ValueError(f"{key}: {text!r}: x{m['n']} is not a count of values (allowed: x2 to x{limit})")
    if n > limit:
        raise ValueError(f"{key}: {text!r} has {n} values; a sweep takes at most {limit} (give xN)")
    if scale == "log":
        a, b = math.log(lo), math.log(hi)
        points = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
    else:
        points = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    points[0], points[-1] = lo, hi  # exactly the ends typed
    if ann is int:
        points = list(dict.fromkeys(float(round(p)) for p in points))
    else:
        points = [float(f"{p:.6g}") for p in points]  # 0.1, not 0.10000000000000002
    return [stored_sweep_value(sweep_value(param, p, key)) for p in points]


def shown(values: list, most: int = 8) -> str:
    """Values as a short line: `20 values: 2, 3, 4, 5, … 300`."""
    if len(values) <= most:
        return f"{len(values)} value{'s' * (len(values) != 1)}: " + ", ".join(map(fmt_value, values))
    return f"{len(values)} values: " + ", ".join(map(fmt_value, values[:most - 2])) + f", … {fmt_value(values[-1])}"


def as_text(values: list) -> str:
    """The list form of `values`, as the panel shows a preset's [sweep] values."""
    return ",".join(exact_value(v) for v in values)
