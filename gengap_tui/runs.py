"""Run directories (docs/ARCHITECTURE.md, "Run directory"): writer, reader and a follower for a run still being written.

    runs/<UTC time>-<preset>-<short id>/
        config.json     the validated config (sections at top level) + torch_version, device_name
        metrics.jsonl   one object per epoch, appended and flushed every epoch
        events.jsonl    started, tweaked, early_stop, would_stop, diverged, cancelled, failed, ...
        summary.json    written atomically at the end

No torch here: the lab reads runs without importing it (the training side writes checkpoint.pt and
model.pt through `replace_atomic`, session.py).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .protocol import STATUSES  # noqa: E402,F401 - the statuses a summary may have


def default_runs_dir(arg: str | os.PathLike | None = None) -> Path:
    return Path(arg or os.environ.get("GENGAP_RUNS_DIR") or "runs")


def check_writable(runs_dir: Path) -> None:
    """Refuse an unwritable runs directory before any training starts (raises OSError with
    the path in the message)."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the runs directory {str(runs_dir)!r}: {exc.strerror or exc}") from None
    if not runs_dir.is_dir() or not os.access(runs_dir, os.W_OK | os.X_OK):
        raise OSError(f"the runs directory {str(runs_dir)!r} is not a writable folder")


def new_run_dir(runs_dir: Path, preset: str) -> Path:
    """Create a fresh run directory; two processes writing the same runs dir never clash
    (exclusive mkdir with a random id)."""
    check_writable(runs_dir)
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in preset)[:40] or "run"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for _ in range(100):
        path = runs_dir / f"{stamp}-{safe}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise OSError(f"could not create a unique run directory in {str(runs_dir)!r}")


def _clean(obj: Any) -> Any:
    """JSON cannot hold NaN or infinity: write them as strings ("nan", "inf")."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), allow_nan=False)


def replace_atomic(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp_path)` a sibling temp file, then rename it over `path`: readers see the old
    file or the new one, never half of one; a failed write leaves no temp file behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    text = json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    replace_atomic(path, write)


CONTROL = "control.jsonl"  # pause / resume / stop / tweak lines for a headless run (attach)


def send_control(run_dir: Path, cmd: str, **fields: Any) -> None:
    """Ask the headless run writing `run_dir` to pause, resume, stop or tweak (`changes=...`)."""
    with open(Path(run_dir) / CONTROL, "a", encoding="utf-8") as f:
        f.write(dumps({"cmd": cmd, "time": time.time(), **fields}) + "\n")


class RunWriter:
    def __init__(self, path: Path, config: dict[str, Any] | None, extra: dict[str, Any] | None = None):
        """Open a run directory for writing; `config=None` continues an existing one (resume)."""
        self.path = Path(path)
        if config is not None:
            write_json_atomic(self.path / "config.json", {**config, **(extra or {})})
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._events = open(self.path / "events.jsonl", "a", encoding="utf-8")
        self.summary: dict[str, Any] | None = None

    def metrics(self, row: dict[str, Any]) -> None:
        self._metrics.write(dumps(row) + "\n")
        self._metrics.flush()

    def event(self, ev: dict[str, Any]) -> None:
        self._events.write(dumps(ev) + "\n")
        self._events.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        write_json_atomic(self.path / "summary.json", summary)
        self.close()

    def close(self) -> None:
        for f in (self._metrics, self._events):
            if not f.closed:
                f.close()


# ---------------------------------------------------------------------------------------------
# reading


def parse_lines(text: str) -> tuple[list[dict], str]:
    """Complete JSON lines of `text`, and the unfinished tail (a line still being written).
    A complete line that is not valid JSON is skipped."""
    *lines, tail = text.split("\n")
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out, tail


def read_jsonl(path: Path) -> list[dict]:
    """All complete records; a half-written last line is left out."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    rows, tail = parse_lines(text)
    if tail.strip():
        try:  # a last line without newline that is nonetheless complete
            obj = json.loads(tail)
            if isinstance(obj, dict):
                rows.append(obj)
        except json.JSONDecodeError:
            pass
    return rows


class JsonlFollower:
    """Reads the new complete lines of a file that grows while it is read (live tail)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:  # pragma: no mutate (cut 0, a lone leading newline, ends no record: `<= 0` reads the same)
            self._partial = data
            return []
        self._partial = data[cut + 1:]
        rows, _ = parse_lines(data[: cut + 1].decode("utf-8", errors="replace"))
        return rows


def read_json(path: Path) -> dict | None:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class RunRecord:
    path: Path
    config: dict | None
    metrics: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    summary: dict | None = None

    @property
    def finished(self) -> bool:
        return self.summary is not None


def load_run(path: str | os.PathLike) -> RunRecord:
    p = Path(path)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{str(p)!r} is not a run directory (no config.json)")
    return RunRecord(p, read_json(p / "config.json"), read_jsonl(p / "metrics.jsonl"),
                     read_jsonl(p / "events.jsonl"), read_json(p / "summary.json"))


def list_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """Run directories under `runs_dir`, newest first."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    runs = [p for p in d.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    return sorted(runs, key=lambda p: p.name, reverse=True)
