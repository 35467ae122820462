"""The control channel (gengap_tui/control.py, docs/ARCHITECTURE.md "Control"): a session's
RunControl and the feeds that hand it commands (control.jsonl, the lab's queue).

Exact reasons, events and warnings; a pause that holds the training thread until a resume or a
stop, driven poll by poll (a stand-in clock, no sleeping); feeds whose threads are waited for by
their state (the flag a command sets, the thread having ended), never by a fixed sleep."""

import os
import queue
import threading
import time

import pytest

from gengap_tui import control as control_mod
from gengap_tui import runs
from gengap_tui.control import PAUSE_POLL_S, FileFeed, QueueFeed, RunControl, _Feed
from gengap_tui.protocol import USER_STOP, Pause, Resume, Stop, Tweak

T0 = 1000.0
LAB_GONE = "stopped because the lab process went away"


class Target:
    """A trainer (tweakable) or a sweep (its tweak raises, as worker.py's does)."""

    def __init__(self, tweakable=True, refuses=None, blocks=None):
        self.stops, self.tweaks = [], []
        self.refuses, self.blocks = refuses, blocks
        if tweakable:
            self.tweak = self._tweak

    def _tweak(self, **changes):
        if self.blocks is not None:
            self.blocks.wait(10)
        if self.refuses:
            raise ValueError(self.refuses)
        self.tweaks.append(changes)

    def request_stop(self, reason=None):
        self.stops.append(reason)


class Clock:
    """Stands in for control.py's `time`: each sleep is one poll of a paused session, and
    `actions[n]` runs at the n-th poll (what another thread would do meanwhile)."""

    def __init__(self, actions=None, limit=50):
        self.sleeps: list[float] = []
        self.actions, self.limit = actions or {}, limit

    def time(self) -> float:
        return T0 + len(self.sleeps)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > self.limit:
            raise AssertionError(f"still held after {self.limit} polls")
        action = self.actions.get(len(self.sleeps))
        if action is not None:
            action()


@pytest.fixture
def clock(monkeypatch):
    def install(actions=None):
        c = Clock(actions)
        monkeypatch.setattr(control_mod, "time", c)
        return c
    return install


@pytest.fixture
def fast_feeds(monkeypatch):
    """Feeds poll every 10 ms (their wait for a command, and close's join, scale with it)."""
    monkeypatch.setattr(control_mod, "FEED_POLL_S", 0.01)


def wait_until(cond, timeout=5.0):
    """Poll `cond()` until it holds (True) or `timeout` seconds pass (False): every 2 ms, as a
    feed here acts within one of its 10 ms polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.002)
    return bool(cond())


def recorder():
    events, warnings = [], []
    return RunControl(on_event=events.append, on_warning=warnings.append), events, warnings


# ------------------------------------------------------------------------------ commands and stops
def test_a_new_control_holds_nothing():
    c = RunControl()
    assert (c.target, c.stop_requested, c.stop_reason, c.paused, c.pending_tweaks, c.epoch) == \
        (None, False, None, False, {}, 0)
    assert (c.on_event, c.on_warning) == (None, None)


@pytest.mark.parametrize("reason, kept", [(None, USER_STOP), ("", USER_STOP), ("stopped by SIGTERM", "stopped by SIGTERM")])
def test_a_stop_says_why_and_a_stop_that_names_no_cause_is_the_users(reason, kept):
    c = RunControl()
    c.request_stop(reason)  # no target yet: kept for the one attached later
    assert c.stop_requested is True and c.stop_reason == kept
    t = Target()
    c.attach(t)
    assert t.stops == [kept]


def test_the_first_stop_reason_is_the_one_every_later_stop_passes_on():
    c = RunControl()
    t = Target()
    c.attach(t)
    c.command(Stop("terminal closed (SIGHUP)"))
    c.command(Stop())
    c.request_stop("stopped by SIGTERM")
    assert c.stop_reason == "terminal closed (SIGHUP)"
    assert t.stops == ["terminal closed (SIGHUP)"] * 3


def test_pause_and_resume_only_set_the_flag_the_training_thread_reads():
    c, events, _ = recorder()
    t = Target()
    c.attach(t)
    c.command(Pause())
    assert c.paused is True
    c.command(Pause())
    assert c.paused is True
    c.command(Resume())
    assert c.paused is False and events == [] and t.stops == [] and t.tweaks == [] and not c.stop_requested


def test_tweaks_before_a_trainer_are_kept_then_handed_over_once():
    c = RunControl()
    c.command(Tweak({"lr": 0.5}))
    c.command(Tweak({"lr": 0.25, "patience": 3}))
    assert c.pending_tweaks == {"lr": 0.25, "patience": 3}
    t = Target()
    c.attach(t)
    assert t.tweaks == [{"lr": 0.25, "patience": 3}] and c.pending_tweaks == {}
    c.command(Tweak({"observe": True}))  # with a trainer: straight to it
    assert t.tweaks == [{"lr": 0.25, "patience": 3}, {"observe": True}] and c.pending_tweaks == {}
    assert t.stops == []


def test_attaching_with_nothing_pending_tweaks_nothing():
    c = RunControl()
    t = Target()
    c.attach(t)
    assert c.target is t and t.tweaks == [] and t.stops == []


def test_a_target_that_cannot_be_tweaked_keeps_the_tweaks_pending():
    c = RunControl()
    c.command(Tweak({"lr": 0.5}))
    sweep = Target(tweakable=False)
    c.attach(sweep)
    assert c.pending_tweaks == {"lr": 0.5} and sweep.stops == []
    c.command(Tweak({"patience": 2}))
    assert c.pending_tweaks == {"lr": 0.5, "patience": 2}
    trainer = Target()
    c.attach(trainer)
    assert trainer.tweaks == [{"lr": 0.5, "patience": 2}] and c.pending_tweaks == {}


# ------------------------------------------------------------------------------ commands off the wire
def test_a_good_command_off_the_wire_is_obeyed_without_a_word():
    c, events, warnings = recorder()
    t = Target()
    c.attach(t)
    c.command_wire({"cmd": "tweak", "changes": {"patience": 4.0}, "time": 1.0})
    c.command_wire({"cmd": "pause"})
    c.command_wire({"cmd": "stop", "reason": "stopped from elsewhere"})
    assert t.tweaks == [{"patience": 4}] and c.paused and t.stops == ["stopped from elsewhere"]
    assert events == [] and warnings == []


@pytest.mark.parametrize("record, event, warning", [
    ({"cmd": "tweak", "changes": {"lr": -1}}, "tweak_refused",
     "tweak refused: command 'tweak': lr = -1: expected 0 < lr <= 1e6"),
    ({"cmd": "launch"}, "control_refused",
     "launch refused: unknown command cmd 'launch' (known: pause, resume, stop, tweak)"),
    ({"reason": "x"}, "control_refused",
     "control message refused: unknown command cmd None (known: pause, resume, stop, tweak)"),
    ("stop", "control_refused", "control message refused: a command is a dict, got str"),
    ({"cmd": "stop", "reason": 3}, "control_refused", "stop refused: command 'stop': reason = 3 is not a str"),
])
def test_a_bad_command_is_refused_with_an_event_and_a_warning_and_the_run_goes_on(clock, record, event, warning):
    clock()
    c, events, warnings = recorder()
    t = Target()
    c.attach(t)
    c.between_epochs(4)
    c.command_wire(record)
    assert warnings == [warning]
    assert events == [{"event": event, "time": T0, "epoch": 4, "error": warning.split(" refused: ", 1)[1]}]
    assert (c.stop_requested, c.paused, t.stops, t.tweaks) == (False, False, [], [])


def test_a_refusal_before_the_first_epoch_names_epoch_0():
    c, events, _ = recorder()
    c.command_wire({"cmd": "launch"})
    assert events[0]["epoch"] == 0


def test_a_sweep_refuses_a_tweak_and_says_why():
    c, events, warnings = recorder()
    c.attach(Target(refuses="a sweep cannot be tweaked live"))
    c.command_wire({"cmd": "tweak", "changes": {"lr": 0.1}})
    assert warnings == ["tweak refused: a sweep cannot be tweaked live"]
    assert [(e["event"], e["error"]) for e in events] == [("tweak_refused", "a sweep cannot be tweaked live")]


def test_a_refusal_with_nobody_listening_is_dropped_quietly():
    c = RunControl()
    c.command_wire({"cmd": "launch"})
    c.command_wire({"cmd": "tweak", "changes": {"lr": 0}})
    assert not c.stop_requested and c.pending_tweaks == {}


# ------------------------------------------------------------------------------ the training thread
def test_between_epochs_notes_the_epoch_and_returns_at_once_unless_paused(clock):
    tick = clock()
    c, events, _ = recorder()
    c.between_epochs(3)
    assert c.epoch == 3 and events == [] and tick.sleeps == []


def test_a_pause_holds_the_training_thread_until_a_resume(clock):
    c, events, _ = recorder()
    c.command(Pause())
    tick = clock({3: lambda: c.command(Resume())})  # resumed while it waits, at its third poll
    c.between_epochs(5)
    assert tick.sleeps == [PAUSE_POLL_S] * 3
    assert events == [{"event": "paused", "epoch": 5, "time": T0}, {"event": "resumed", "epoch": 5, "time": T0 + 3}]
    assert c.epoch == 5 and not c.paused


def test_a_stop_while_paused_ends_the_hold_without_a_resumed_event(clock):
    c, events, _ = recorder()
    t = Target()
    c.attach(t)
    c.command(Pause())
    tick = clock({2: lambda: c.command(Stop("terminal closed (SIGHUP)"))})
    c.between_epochs(7)
    assert len(tick.sleeps) == 2 and events == [{"event": "paused", "epoch": 7, "time": T0}]
    assert t.stops == ["terminal closed (SIGHUP)"] and c.paused  # the trainer ends the run as cancelled


def test_a_stopped_run_is_not_held_by_a_pause(clock):
    tick = clock()
    c, events, _ = recorder()
    c.command(Pause())
    c.request_stop()
    c.between_epochs(2)
    assert events == [] and tick.sleeps == [] and c.epoch == 2


def test_a_pause_with_nobody_listening_still_holds(clock):
    c = RunControl()
    c.command(Pause())
    tick = clock({2: lambda: c.command(Resume())})
    c.between_epochs(1)
    assert len(tick.sleeps) == 2


def test_a_paused_thread_waits_for_a_resume_from_another_thread():
    """The real clock and a real second thread: the hold ends on the resume, and not before."""
    c, events, _ = recorder()
    c.command(Pause())
    held = threading.Thread(target=c.between_epochs, args=(9,), daemon=True)
    held.start()
    assert wait_until(lambda: events, 5)
    assert held.is_alive() and [e["event"] for e in events] == ["paused"]
    c.command(Resume())
    held.join(5)
    assert not held.is_alive() and [e["event"] for e in events] == ["paused", "resumed"]


# ------------------------------------------------------------------------------ feeds
def feed_threads():
    return {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("gengap-control")}


def test_the_control_file_feed_obeys_commands_appended_while_it_runs(tmp_path, fast_feeds):
    c, events, warnings = recorder()
    t = Target()
    c.attach(t)
    feed = FileFeed(c, tmp_path)  # no control.jsonl yet: the first line is read when it comes
    assert feed.start() is feed
    try:
        assert feed_threads() == {"gengap-control-file": True}  # named, and never keeps a process alive
        runs.send_control(tmp_path, **Pause().to_wire())
        assert wait_until(lambda: c.paused, 5)
        runs.send_control(tmp_path, **Tweak({"lr": 0.5}).to_wire())
        assert wait_until(lambda: t.tweaks, 5) and t.tweaks == [{"lr": 0.5}]
        runs.send_control(tmp_path, **Resume().to_wire())
        assert wait_until(lambda: not c.paused, 5)
        runs.send_control(tmp_path, **Stop("stopped from elsewhere").to_wire())
        assert wait_until(lambda: t.stops, 5) and t.stops == ["stopped from elsewhere"]
    finally:
        feed.close()
    assert feed.closed and feed_threads() == {} and events == [] and warnings == []


def test_the_control_file_feed_skips_what_was_written_before_it_started(tmp_path, fast_feeds):
    """A resumed run's control.jsonl holds its earlier session's commands: none is obeyed again."""
    runs.send_control(tmp_path, **Stop("stopped from elsewhere").to_wire())
    runs.send_control(tmp_path, **Tweak({"lr": 0.5}).to_wire())
    c, events, _ = recorder()
    t = Target()
    c.attach(t)
    feed = FileFeed(c, tmp_path).start()
    try:
        runs.send_control(tmp_path, **Pause().to_wire())
        assert wait_until(lambda: c.paused, 5)  # read after (in file order) whatever it read before
    finally:
        feed.close()
    assert not c.stop_requested and t.stops == [] and t.tweaks == [] and events == []


def test_a_closed_feed_has_ended_its_thread(tmp_path, fast_feeds):
    feed = FileFeed(RunControl(), tmp_path).start()
    assert not feed.closed
    feed.close()
    assert feed.closed and feed_threads() == {}
    feed.close()  # twice is harmless
    assert feed.closed


def test_closing_a_feed_that_never_started_is_harmless(tmp_path):
    feed = QueueFeed(RunControl(), queue.Queue(), os.getppid(), on_orphaned=lambda: None)
    feed.close()
    assert feed.closed


def test_the_bare_feed_has_no_transport():
    with pytest.raises(NotImplementedError):
        _Feed(RunControl()).step()


def test_the_queue_feed_obeys_the_labs_commands_and_closes_promptly(fast_feeds):
    c, events, warnings = recorder()
    t = Target()
    c.attach(t)
    q = queue.Queue()
    orphaned = []
    feed = QueueFeed(c, q, os.getppid(), on_orphaned=lambda: orphaned.append(1)).start()
    try:
        assert feed_threads() == {"gengap-control-queue": True}
        q.put(Pause().to_wire())
        assert wait_until(lambda: c.paused, 5)
        q.put(Tweak({"patience": 3}).to_wire())
        q.put({"cmd": "launch"})
        assert wait_until(lambda: warnings, 5)
        assert t.tweaks == [{"patience": 3}] and warnings == [
            "launch refused: unknown command cmd 'launch' (known: pause, resume, stop, tweak)"]
    finally:
        feed.close()  # while it waits on an empty queue: its wait is short, so this returns with it ended
    assert feed.closed and not orphaned and not feed.orphaned and not c.stop_requested


class FlakyQueue:
    """The lab's queue, whose first reads fail as given (a closed pipe, a broken queue)."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.inner = queue.Queue()

    def get(self, timeout=None):
        if self.errors:
            raise self.errors.pop(0)
        return self.inner.get(timeout=timeout)


def paused_through(c, q):
    """Start a QueueFeed on `q`, send a pause through it, wait until `c` is paused, close the
    feed; the feed is returned (closed)."""
    feed = QueueFeed(c, q, os.getppid(), on_orphaned=lambda: None).start()
    try:
        q.inner.put(Pause().to_wire())
        assert wait_until(lambda: c.paused, 5)
    finally:
        feed.close()
    return feed


@pytest.mark.parametrize("error", [EOFError(), OSError("handle is closed"), ValueError("queue is closed")])
def test_a_queue_that_cannot_be_read_is_tried_again_quietly(fast_feeds, error):
    c, events, warnings = recorder()
    q = FlakyQueue(error, error)
    feed = paused_through(c, q)
    assert q.errors == [] and warnings == [] and events == [] and feed.closed


def test_a_feed_survives_a_failure_says_so_and_goes_on(fast_feeds):
    c, events, warnings = recorder()
    feed = paused_through(c, FlakyQueue(RuntimeError("queue broke"), KeyError("x")))
    assert warnings == ["control feed: RuntimeError: queue broke", "control feed: KeyError: 'x'"]
    assert feed.closed


def test_a_feed_failure_with_nobody_listening_is_survived(fast_feeds):
    assert paused_through(RunControl(), FlakyQueue(RuntimeError("queue broke"))).closed


def test_when_the_lab_goes_away_the_run_is_stopped_once_saying_so(fast_feeds):
    c, events, warnings = recorder()
    t = Target()
    c.attach(t)
    q = queue.Queue()
    q.put(Pause().to_wire())
    q.put(Resume().to_wire())
    orphaned = []
    feed = QueueFeed(c, q, parent_pid=-1, on_orphaned=lambda: orphaned.append(c.stop_requested))  # not our parent
    assert feed.orphaned is False
    feed.step()
    assert feed.orphaned is True and orphaned == [False]  # told first (the stream is no longer read), then stopped
    assert c.stop_reason == LAB_GONE and t.stops == [LAB_GONE] and c.paused  # the command read is still obeyed
    feed.step()
    assert orphaned == [False] and t.stops == [LAB_GONE] and not c.paused  # once only
    assert warnings == [] and events == []


def test_while_the_lab_lives_the_run_goes_on(fast_feeds):
    c = RunControl()
    q = queue.Queue()
    q.put(Pause().to_wire())
    feed = QueueFeed(c, q, os.getppid(), on_orphaned=lambda: pytest.fail("orphaned"))
    feed.step()
    assert c.paused and not feed.orphaned and not c.stop_requested
    feed.step()  # an empty queue: waits one poll, then returns
    assert c.paused and not c.stop_requested


def test_a_feed_closed_from_its_own_thread_ends_without_error(fast_feeds):
    c, _, warnings = recorder()
    holder = []
    feed = QueueFeed(c, queue.Queue(), parent_pid=-1, on_orphaned=lambda: holder[0].close())
    holder.append(feed)
    feed.start()
    assert wait_until(lambda: feed.closed, 5)
    assert warnings == [] and c.stop_reason == LAB_GONE


def test_closing_never_hangs_on_a_feed_stuck_in_a_command(fast_feeds):
    """close() (a session's last step) waits a few polls, not for ever; the thread ends later."""
    release = threading.Event()
    safety = threading.Timer(10, release.set)
    safety.start()
    c = RunControl()
    t = Target(blocks=release)
    c.attach(t)
    q = queue.Queue()
    feed = QueueFeed(c, q, os.getppid(), on_orphaned=lambda: None).start()
    try:
        q.put(Tweak({"lr": 0.5}).to_wire())
        assert wait_until(lambda: q.empty(), 5)  # taken: the feed now waits in the trainer's tweak
        feed.close()
        assert not feed.closed and not release.is_set()
    finally:
        release.set()
        safety.cancel()
    assert wait_until(lambda: feed.closed, 5) and t.tweaks == [{"lr": 0.5}]
