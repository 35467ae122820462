"""Scripted tours: the same demo every time (`gengap-tui tour NAME|FILE.toml`).

A tour is a TOML file: the lab it opens (a preset with `--set` overrides, or a recorded run or
sweep to replay) and steps, each with an optional caption (shown in the lab's status line), keys
to press, and a condition to wait for before the next step:

    name = "early-stopping"
    description = "the counter fills on noisy labels, early stopping fires and keeps the best epoch"
    preset = "default"
    set = ["data.n_train=1000", "optim.epochs=200"]

    [[step]]
    caption = "ctrl+r trains the preset: train error falls, validation error stops following"
    keys = ["ctrl+r"]
    wait = "epoch 5"            # epoch N | early_stop | would_stop | run_done | sweep_done | pause S
    timeout = 120               # seconds; a step that waits longer ends the tour (exit 2, naming it)

The file is checked whole before anything runs (unknown keys, unknown conditions, keys the lab
does not bind). Waits are on the lab's own state, so a tour gives the same sequence of screens
whatever the machine's speed; `--speed` scales the fixed pauses and the reading times.

A tour is for an audience: each caption stays on screen at least its reading time,
`read_base_s + read_per_char_s * len(caption)` (tour settings, 1 s + 0.05 s a character unless
the file says otherwise), counted from when it appears; a step whose wait is met sooner holds
the lab's training (paused, resumed after) until it has been read, so the screen matches the
words; the lab's own status messages never replace a caption (`GengapApp.caption`). With
`--step` (a live lecture), each step waits for a key once it is done, the training held:
space, → or PageDown go on, ← or PageUp show the step before again (its caption; keys are not
pressed twice). No torch here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

WAIT_RE = re.compile(r"^(epoch (?P<epoch>[1-9][0-9]*)|early_stop|would_stop|run_done|sweep_done|"
                     r"pause (?P<pause>[0-9]+(\.[0-9]+)?))$")
KEYS = {"ctrl+r", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "escape", "enter", "tab", "ctrl+q"}
TOUR_KEYS = {"name", "description", "preset", "set", "replay", "speed", "step", "read_base_s", "read_per_char_s"}
READ_BASE_S, READ_PER_CHAR_S = 1.0, 0.05  # a caption's reading time: 1 s + 0.05 s a character
NEXT_KEYS, BACK_KEYS = ("space", "right", "pagedown"), ("left", "pageup")  # --step: a clicker sends PageDown / PageUp
STEP_KEYS = {"caption", "keys", "wait", "timeout"}
MAX_TIMEOUT = 600.0


class TourError(ValueError):
    """A tour that cannot run; the message names the file and the step."""


@dataclass
class Step:
    number: int
    caption: str = ""
    keys: list[str] = field(default_factory=list)
    wait: str = "pause 1"
    timeout: float = 120.0


@dataclass
class Tour:
    name: str
    description: str
    path: Path
    steps: list[Step]
    preset: str = "default"
    overrides: list[str] = field(default_factory=list)
    replay: Path | None = None
    speed: float = 0.0  # the replay's speed (0: the whole recording at once)
    read_base_s: float = READ_BASE_S
    read_per_char_s: float = READ_PER_CHAR_S

    def reading_s(self, caption: str) -> float:
        """How long `caption` stays on screen at least (at --speed 1)."""
        return self.read_base_s + self.read_per_char_s * len(caption) if caption else 0.0


def packaged_dir() -> Path:
    return Path(str(resources.files("gengap_tui") / "tours"))


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(packaged_dir().glob("*.toml"))}


def load(ref: str) -> Tour:
    """A packaged tour by name, or a tour file; TourError for anything it could not run."""
    path = available().get(ref) or Path(ref)
    if not path.is_file():
        raise TourError(f"tour {ref!r}: no such packaged tour ({', '.join(available())}) or file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TourError(f"{path}: {exc}") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Tour:
    where = str(path)
    bad = sorted(set(raw) - TOUR_KEYS)
    if bad:
        raise TourError(f"{where}: unknown key(s) {', '.join(bad)} (allowed: {', '.join(sorted(TOUR_KEYS))})")
    if "preset" in raw and "replay" in raw:
        raise TourError(f"{where}: give preset or replay, not both")
    steps_raw = raw.get("step") or []
    if not isinstance(steps_raw, list) or not steps_raw:
        raise TourError(f"{where}: a tour needs at least one [[step]]")
    steps = []
    for i, s in enumerate(steps_raw, 1):
        at = f"{where}, step {i}"
        if not isinstance(s, dict):
            raise TourError(f"{at}: a step is a table")
        bad = sorted(set(s) - STEP_KEYS)
        if bad:
            raise TourError(f"{at}: unknown key(s) {', '.join(bad)} (allowed: {', '.join(sorted(STEP_KEYS))})")
        keys = s.get("keys", [])
        if not isinstance(keys, list) or any(k not in KEYS for k in keys):
            raise TourError(f"{at}: keys = {keys!r}: each one of {', '.join(sorted(KEYS))}")
        wait = s.get("wait", "pause 1")
        if not isinstance(wait, str) or not WAIT_RE.match(wait):
            raise TourError(f"{at}: wait = {wait!r}: one of 'epoch N', 'early_stop', 'would_stop', "
                            "'run_done', 'sweep_done', 'pause S'")
        timeout = s.get("timeout", 120.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
            raise TourError(f"{at}: timeout = {timeout!r}: seconds, 0 < timeout <= {MAX_TIMEOUT:g}")
        caption = s.get("caption", "")
        if not isinstance(caption, str):
            raise TourError(f"{at}: caption = {caption!r}: a text")
        steps.append(Step(i, caption, list(keys), wait, float(timeout)))
    sets = raw.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
        raise TourError(f"{where}: set = {sets!r}: a list of 'key=value' texts")
    replay = raw.get("replay")
    if replay is not None:
        replay = path.parent / replay  # in the tour's folder (an absolute path stays itself: pathlib's `/`)
        if not replay.is_dir():
            raise TourError(f"{where}: replay = {str(replay)!r} is not a run or sweep directory")
    reading = {}
    for key, default in (("read_base_s", READ_BASE_S), ("read_per_char_s", READ_PER_CHAR_S)):
        v = raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 60:
            raise TourError(f"{where}: {key} = {v!r}: seconds, 0..60")
        reading[key] = float(v)
    return Tour(str(raw.get("name", path.stem)), str(raw.get("description", "")), path, steps,
                str(raw.get("preset", "default")), sets, replay, float(raw.get("speed", 0.0)), **reading)


def condition(app, wait: str) -> bool:
    """Whether the lab's state meets `wait` (a pause is not a condition: always True)."""
    m = WAIT_RE.match(wait)
    run, sweep = app.state.run, app.state.sweep
    if m.group("epoch"):
        last = run.series.last or {}
        return (last.get("epoch") or 0) >= int(m.group("epoch"))
    return {"early_stop": lambda: run.stop is not None,
            "would_stop": lambda: run.event_epoch("would_stop") is not None,
            "run_done": lambda: run.summary is not None,
            "sweep_done": lambda: sweep is not None and sweep.summary is not None}.get(wait, lambda: True)()


def _hold(app):
    """Pause the lab's live run or sweep while a caption is read; returns what resumes it (or None
    when nothing trains, or the user had paused it)."""
    src = app.source
    if src is None or src.finished or not src.can_pause:
        return None
    part = app.state.sweep if src.kind == "sweep" else app.state.run
    if part is None or part.paused:
        return None
    src.pause()
    part.paused = True

    def release() -> None:
        if app.source is src and not src.finished and part.paused:
            src.resume()
            part.paused = False

    return release


async def play(app, pilot, tour: Tour, speed: float = 1.0, step_mode: bool = False) -> None:
    """Drive `app` through the tour's steps; TourError when a step waits past its timeout. Each
    caption stays for its reading time (the training held meanwhile); with `step_mode`, each
    done step waits for the user's key (`app.tour_keys`, a queue of "next" / "back")."""
    speed = max(speed, 1e-6)
    i, done = 0, set()
    while i < len(tour.steps):
        step = tour.steps[i]
        app.caption = f"[b]tour {step.number}/{len(tour.steps)}[/] {step.caption}" if step.caption else ""
        app.show_state()
        # its reading time counts from when it is on screen: after the next frame, not before keys
        # whose work (f4 spawns a process) would hold that frame back
        await pilot.pause(0.05)
        shown = time.monotonic()
        if i not in done:
            for key in step.keys:
                await pilot.press(key)
            m = WAIT_RE.match(step.wait)
            if m.group("pause"):
                await pilot.pause(float(m.group("pause")) / speed)
            else:
                deadline = time.monotonic() + step.timeout
                while not condition(app, step.wait):
                    if time.monotonic() > deadline:
                        raise TourError(f"{tour.path}, step {step.number}: waited {step.timeout:g} s for "
                                        f"{step.wait!r}; it did not come")
                    await pilot.pause(0.05)
            done.add(i)
        left = tour.reading_s(step.caption) / speed + 0.1 - (time.monotonic() - shown)  # (+ a frame or so)
        if left > 0 or step_mode:
            release = _hold(app)  # the screen stays what the caption speaks of
            if left > 0:
                await pilot.pause(left)
            if step_mode:
                if await app.tour_keys.get() == "back" and i > 0:
                    if release is not None:
                        release()
                    i -= 1
                    continue
            if release is not None:
                release()
        i += 1


def stepped(lab: type) -> type:
    """The lab class for `--step`: the lecturer's keys (NEXT_KEYS, BACK_KEYS) come first
    (priority bindings), whatever has focus, and go to `app.tour_keys` as "next" / "back"."""
    from textual.binding import Binding

    class SteppedLab(lab):
        BINDINGS = lab.BINDINGS + [Binding(k, f"tour_key('{what}')", show=False, priority=True)
                                   for what, keys in (("next", NEXT_KEYS), ("back", BACK_KEYS)) for k in keys]
        tour_keys = None  # an asyncio.Queue, made in the app's loop by run_tour

        def action_tour_key(self, what: str) -> None:
            if self.tour_keys is not None:
                self.tour_keys.put_nowait(what)

        def _focus_first_field(self) -> None:
            """No field takes the focus at start: a focused input consumes a printable key (space)
            before any binding, priority ones too, so the lecturer's space would type into it."""

    return SteppedLab


def run_tour(tour: Tour, record: str | Path | None = None, speed: float = 1.0, size: tuple[int, int] = (120, 36),
             runs_dir: str | Path | None = None, headless: bool = False, step: bool = False) -> int:
    """Run `tour` in the real lab (in this terminal, or headless at `size`), recorded to `record`
    when given; `step`: each step waits for the user's key (a live lecture). Returns 0, or 2 when
    a step timed out (the message is printed on stderr)."""
    import sys

    from ..sources import is_sweep_dir
    from .app import GengapApp
    from .recording import CastWriter, terminal_size
    from .terminal import run_guarded

    lab = stepped(GengapApp) if step else GengapApp
    if tour.replay is not None:
        where = {"sweep": tour.replay} if is_sweep_dir(tour.replay) else {"replay": tour.replay, "speed": tour.speed}
        app = lab(runs_dir=runs_dir, **where)
    else:
        app = lab(tour.preset, tour.overrides, runs_dir=runs_dir)
    failed: list[str] = []

    async def pilot_fn(pilot) -> None:
        await app.panels_mounted()  # (they come right after the first frame)
        if step:
            import asyncio

            app.tour_keys = asyncio.Queue()
        try:
            await play(app, pilot, tour, speed, step_mode=step)
        except TourError as exc:
            failed.append(str(exc))
        app.shutdown_run(reason="stopped by the user: the tour ended")
        app.exit()

    app.cast = CastWriter(record, *(size if headless else terminal_size())) if record is not None else None
    try:
        if headless:
            app.run(headless=True, size=size, auto_pilot=pilot_fn)
        else:
            run_guarded(app, app.close_for_signal, record=app.cast, auto_pilot=pilot_fn)
    finally:
        app.shutdown_run()
        if app.cast is not None:
            app.cast.close()
    if failed:
        print(f"gengap-tui: {failed[0]}", file=sys.stderr)
        return 2
    return 0


def record_in_pty(argv: list[str], size: tuple[int, int]) -> int:
    """Run `argv` (a `gengap-tui tour ... --record`) in a private pseudo-terminal of `size`: a
    recording without a terminal of one's own (CI, screenshots/regenerate.sh)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the pty's size rules
    env.setdefault("TERM", "xterm-256color")
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    tail = bytearray()
    while True:  # a terminal reads what it is sent, or the lab's writes would block
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data and proc.poll() is not None:
                break
            tail = (tail + data)[-4000:]
        elif proc.poll() is not None:
            break
    os.close(master)
    if proc.returncode == 2:  # the tour's own message, as the lab printed it after leaving its screen
        import re
        import sys

        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tail.decode("utf-8", "replace"))
        line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("gengap-tui:")), "")
        print(line or "gengap-tui: the tour failed", file=sys.stderr)
    return proc.returncode
