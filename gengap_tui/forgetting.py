"""Reading a run's examples.npz (docs/ARCHITECTURE.md, "Run directory"): which training examples
were learned when and how often they were forgotten, clean against noisy (Toneva et al. 2019;
Arpit et al. 2017). numpy only: the lab's examples view, `gengap-tui figure --view examples` and
the README's numbers read it.

    from gengap_tui.forgetting import load, stats
    s = stats(load("runs/…/examples.npz"))
    s["clean"]["median_first"], s["noisy"]["median_first"], s["noisy"]["events_mean"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAME = "examples.npz"
GROUPS = ("clean", "noisy")
HIST_MAX = 5  # forgetting-event bins: 0 .. HIST_MAX - 1, "HIST_MAX+", then "never learned"


def load(path: str | Path) -> dict[str, np.ndarray] | None:
    """examples.npz (a path to it or to its run directory) as arrays; None when it is absent or
    unreadable (a run still being written, a run from before the file existed)."""
    p = Path(path)
    if p.is_dir():
        p = p / NAME
    try:
        with np.load(p) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _median(v: np.ndarray) -> float | None:
    return float(np.median(v)) if v.size else None


def _share_by(epoch: np.ndarray, E: int, n: int) -> list[float]:
    """For e = 1..E, the share of `n` examples whose `epoch` is <= e: one count per epoch
    (bincount) summed up (cumsum), not one comparison of every example per epoch (50k examples,
    200 epochs, 8 seeds: the lab's examples view took a second; bench/examples_view.py). Epochs
    <= 0 count from the first epoch, epochs after E never (as `epoch <= e` would)."""
    counts = np.bincount(np.clip(epoch.ravel(), 0, E + 1).astype(np.intp), minlength=E + 2)
    return (np.cumsum(counts)[1:E + 1] / n).tolist()


def stats(a: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per group (`clean`, `noisy`; every member of a stack pooled): `n`; `learned_by` (share of
    the group first predicted right by epoch e, e = 1..epochs) and `kept_by` (share right at the
    last epoch and never wrong again after e); `median_first` (the median first-learned epoch of
    those ever learned), `never` (share never learned); `events_mean`, `forgotten` (share
    forgotten at least once), `unforgettable` (share learned and never forgotten); `hist` (share with
    0, 1, .. HIST_MAX-1, HIST_MAX or more events, then never learned). Plus `epochs`."""
    E = int(a["epochs"])
    noisy = a["noisy"].astype(bool)
    first, last, events, correct = a["first_learned"], a["last_learned"], a["forgetting_events"], a["correct"]
    out: dict[str, Any] = {"epochs": E}
    for name, mask in (("clean", ~noisy), ("noisy", noisy)):
        n = int(mask.sum())
        f, la, ev, c = first[mask], last[mask], events[mask], correct[mask].astype(bool)
        learned = f > 0
        g: dict[str, Any] = {"n": n}
        if n:
            g["learned_by"] = _share_by(f[learned], E, n)
            g["kept_by"] = _share_by(la[c], E, n)
            g["median_first"] = _median(f[learned])
            g["never"] = float((~learned).mean())
            g["events_mean"] = float(ev.mean())
            g["forgotten"] = float((ev > 0).mean())
            g["unforgettable"] = float((learned & (ev == 0)).mean())
            hist = [float((learned & (ev == k)).mean()) for k in range(HIST_MAX)]
            hist.append(float((learned & (ev >= HIST_MAX)).mean()))
            hist.append(g["never"])
            g["hist"] = hist
        out[name] = g
    return out


def hist_labels() -> list[str]:
    return [str(k) for k in range(HIST_MAX)] + [f"{HIST_MAX}+", "never"]


def summary_line(s: dict[str, Any]) -> str:
    """One line of the numbers (the README's, the view's title)."""
    parts = []
    for name in GROUPS:
        g = s[name]
        if not g["n"]:
            continue
        med = "never" if g.get("median_first") is None else f"{g['median_first']:g}"
        parts.append(f"{name} {g['n']}: median first epoch {med}, {g['events_mean']:.2f} forgetting events "
                     f"per example, {g['never']:.0%} never learned")
    return "; ".join(parts)


def view_key(run_dir: str | Path | None) -> tuple[tuple[Path, Any] | None, str]:
    """(key, message) for the lab's examples view, from a stat of `run_dir`'s examples.npz alone
    (cheap: the event loop asks on every tick): `key` is (the file, a stamp that changes when it
    does), or None with the message why there is nothing to read. The reading is `read_for_view`'s,
    in a thread (tui/view_actions.py)."""
    if run_dir is None:
        return None, "examples: start a run (ctrl+r): examples.npz is written with its checkpoints"
    p = Path(run_dir) / NAME
    try:
        st = p.stat()
    except OSError:
        return None, "examples: no examples.npz yet (written every few seconds and at the end)"
    return (p, (st.st_mtime_ns, st.st_size)), ""


def read_for_view(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """(stats, "") of an examples.npz, or (None, why not): for the view, never raises (a file cut
    short or of another shape is a message, not a crash of the reading thread)."""
    a = load(path)
    if a is None:
        return None, "examples: examples.npz could not be read"
    try:
        return stats(a), ""
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        return None, f"examples: examples.npz could not be read ({type(exc).__name__}: {exc})"


def report(s: dict[str, Any]) -> str:
    """The README's table: per group, the median first-learned epoch, the median epoch learned for
    good, never learned, forgetting events (mean, share forgotten at least once)."""
    lines = [f"{'':6} {'examples':>8} {'median first epoch':>18} {'never learned':>13} "
             f"{'events (mean)':>13} {'forgotten >= 1':>14} {'histogram 0,1,2,3,4,5+':>30}"]
    for name in GROUPS:
        g = s[name]
        if not g["n"]:
            continue
        med = "-" if g["median_first"] is None else f"{g['median_first']:g}"
        hist = " ".join(f"{h:.2f}" for h in g["hist"][:-1])
        lines.append(f"{name:6} {g['n']:>8} {med:>18} {g['never']:>13.1%} {g['events_mean']:>13.2f} "
                     f"{g['forgotten']:>14.1%} {hist:>30}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m gengap_tui.forgetting RUN_DIR
    import sys

    data = load(sys.argv[1]) if len(sys.argv) == 2 else None
    if data is None:
        sys.exit("usage: python -m gengap_tui.forgetting RUN_DIR (a run directory with examples.npz)")
    print(report(stats(data)))
