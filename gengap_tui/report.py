"""The command line's shared parts (exit codes, `fail`, `load_config`) and what a headless run prints: one progress line on stderr (rewritten in place on a terminal,
throttled lines otherwise) and the one-line summary at the end (`gengap-tui run`)."""

from __future__ import annotations

import sys
import time
from typing import Any

from .config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGHUP, EXIT_SIGTERM = 130, 129, 143


class DeviceMissing(ConfigError):
    """A valid device name whose GPU is not here (exit 2): said as it is, not as an invalid config."""

    def __str__(self) -> str:
        return self.problems[0]


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    """Say what is wrong on stderr, as `gengap-tui: ...`; returns `code` (the exit status)."""
    print(f"gengap-tui: {msg}", file=sys.stderr)
    return code


def load_config(preset: str, sets: list[str], device: str | None):
    """A preset (name or path) with `--set` overrides and `--device`; raises ConfigError."""
    from . import presets

    from .gpus import check_device

    overrides = list(sets or [])
    if device:
        overrides.append(f"device={device}")
    cfg = presets.load(preset, overrides)
    if problem := check_device(cfg.device):  # a GPU that is not there: before any directory
        raise DeviceMissing([problem])
    return cfg


def fmt_or_dash(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


class Progress:
    """One status line on stderr: rewritten in place on a terminal, throttled lines otherwise."""

    def __init__(self, total: int, patience: int | None, enabled: bool):
        """`patience`: early stopping's, None when it is off; `enabled`: show anything at all."""
        self.total, self.patience, self.enabled = total, patience, enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.pending: str | None = None

    def _patience(self, row: dict) -> str:
        """As the lab's meter: `patience 7/10`, `patience 10/10 (+8)` past it (observe mode), and
        no count when early stopping is off (it counted on: `patience 18/10`)."""
        if self.patience is None:
            return "early stopping off"
        wait = row.get("es_wait") or 0
        over = f" (+{wait - self.patience})" if wait > self.patience else ""
        return f"patience {min(wait, self.patience)}/{self.patience}{over}"

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        line = (f"epoch {row['epoch']:>4}/{self.total}  train_err {fmt_or_dash(row['train_err'])}  "
                f"val_err {fmt_or_dash(row['val_err'])}  gap {fmt_or_dash(row['gap_err'], '+.3f')}  "
                f"{self._patience(row)}  "
                f"best {fmt_or_dash(row['es_best'])}@{row['es_best_epoch'] or '-'}")
        if "noisy_memorized" in row:
            line += f"  memorized {fmt_or_dash(row['noisy_memorized'], '.0%')}"
        now = time.monotonic()
        if now - self.last >= (0.1 if self.tty else 1.0):
            self._show(line)
            self.last = now
            self.pending = None
        else:
            self.pending = line

    def note(self, text: str) -> None:
        if self.enabled:
            self.flush()
            print(text, file=sys.stderr, flush=True)

    def _show(self, line: str) -> None:
        if self.tty:
            print("\r\033[K" + line, end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def flush(self) -> None:
        if self.pending:
            self._show(self.pending)
            self.pending = None
        if self.tty and self.last:
            print(file=sys.stderr, flush=True)
            self.last = 0.0


def summary_line(s: dict) -> str:
    status = s["status"]
    parts = [status]
    if status == "early_stopped":
        parts[0] += f" at epoch {s['stop_epoch']} (kept epoch {s['best_epoch']})"
    elif status == "diverged":  # the diverging epoch is not counted in epochs_run
        parts[0] += f" in epoch {s['epochs_run'] + 1}" + (f" (kept epoch {s['best_epoch']})"
                                                          if s.get("restored_best") else "")
    elif s.get("restored_best"):
        parts[0] += f" after {s['epochs_run']} epochs (kept epoch {s['best_epoch']})"
    else:
        parts[0] += f" after {s['epochs_run']} epochs"
    if s.get("test_err") is not None:
        parts.append(f"test_err {s['test_err']:.4f} (acc {1 - s['test_err']:.1%})")
        if s.get("test_err_std") is not None:
            parts[-1] += (f", mean of {s['members']} seeds ± {s['test_err_std']:.4f} "
                          f"(min {s['test_err_min']:.4f}, max {s['test_err_max']:.4f})")
    if s.get("final_val_err") is not None:
        parts.append(f"last val_err {s['final_val_err']:.4f}")
    if s.get("would_stop_epoch") is not None:
        w = f"would stop @ {s['would_stop_epoch']}"
        if s.get("would_stop_test_err") is not None:
            w += f" (test_err {s['would_stop_test_err']:.4f} vs {s['final_test_err']:.4f} at the end)"
        parts.append(w)
    if s.get("baseline_knn_test_err") is not None:
        parts.append(f"k-NN test_err {s['baseline_knn_test_err']:.4f}")
    if s.get("baseline_ntk_test_err") is not None:
        parts.append(f"NTK test_err {s['baseline_ntk_test_err']:.4f}")
    if s.get("ratt_bound") is not None:
        parts.append(f"RATT bound {s['ratt_bound']:.4f} at epoch {s['ratt_epoch']}")
    parts.append(f"{s['wall_seconds']:.1f} s on {s['device']}")
    if s.get("reason") and status not in ("completed", "early_stopped"):
        parts.append(f"reason: {s['reason']}")
    return " | ".join(parts)
