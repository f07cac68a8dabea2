"""Non-stop calls into a mostly sleeping program (issue 14 part 3): no thread runs Go code when
the call starts, so the engine catches a parked goroutine where it returns into user code
(call/engine.py ``_catch_parked``: hardware breakpoints on every thread, ThreadGroup.arm_running:
perf breakpoint events on running threads where the kernel allows them, else debug registers, each
thread armed and let run again as its stop comes in), makes the call there, and leaves every
thread untraced and disarmed. Against tests/fixtures/breaks in ``loop 5`` mode (four goroutines
handling a request, then sleeping 5 ms), on every Go release."""

from __future__ import annotations

import contextlib
import errno
import os
import time

import pytest

import gocall
from gocall.binary import GoBinary
from gocall.call import engine
from gocall.process import perfbreak
from gocall.process.group import ThreadGroup
from gocall.process.threads import TaskStates, thread_ids
from harness import Target, main_parked, tracer_pids


def _in_user_code(site: engine.Site | None) -> bool:
    """Where a call was made: the program's or the standard library's Go code, never the runtime's.
    Mostly main's workers, caught at their returns into main; but a thread a watch told about
    (perfbreak.PointWatch) is stopped a little after the point, wherever it runs by then (a worker
    in strconv.Itoa's code), and a loaded machine may run os/signal's loop goroutine for the first
    time during the test (caught at os/signal.loop's entry)."""
    return site is not None and site.function is not None and not site.function.startswith("runtime.")


@pytest.fixture
def sleeper(build_fixture, start_target) -> Target:  # type: ignore[no-untyped-def]
    return start_target(build_fixture("breaks"), ["loop", "5"])


@pytest.mark.parametrize("events", [True, False], ids=["perf-events", "debug-registers"])
def test_calls_catch_parked_goroutines_and_leave_no_breakpoint(sleeper: Target, events: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if not events:  # as where perf_event_open is refused (perf_event_paranoid 3, seccomp, Linux < 5.13)
        monkeypatch.setattr(perfbreak, "_refused", errno.EACCES)
    caught = 0
    with gocall.attach(sleeper.pid, timeout=5) as proc:
        main_parked(proc)
        before = proc.eval("Total")
        for i in range(40):
            assert proc.eval(f"main.Double({i})") == 2 * i
            site = proc.engine.last_site
            assert _in_user_code(site), site
            caught += site.hops >= 1  # reached through the catch (a return into user code waited for)
            assert set(tracer_pids(sleeper.pid).values()) == {0}  # every thread let go after each call
        assert caught, "no call needed the catch: the fixture's goroutines no longer sleep"
        # A debug register left armed on any thread would kill the program (SIGTRAP) at the next
        # return through a resume point: ~80 wake-ups of its goroutines in the next 0.1 s.
        time.sleep(0.1)
        assert proc.eval("Total") > before
    assert sleeper.proc.poll() is None, "the target died: " + sleeper.stderr()[:200]
    assert not _perf_fds(), "perf events left open"


@pytest.mark.parametrize("events", [True, False], ids=["perf-events", "debug-registers"])
def test_a_catch_moves_the_last_catchs_points_when_they_changed(sleeper: Target, events: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A catch arms the last catch's points before it walks the goroutines (one waking up during the
    walk is caught at its point): points that changed since are moved to the walk's at once, not
    left armed where nobody comes for the catch's whole slice. The last points are made stale
    here: main.IsNeg's entry, which loop mode never runs."""
    if not events:
        monkeypatch.setattr(perfbreak, "_refused", errno.EACCES)
    slices: list[float] = []  # the timeouts of the catch's waits that nothing ended
    wait_trap = ThreadGroup.wait_trap

    def timed(group: ThreadGroup, timeout: float | None):  # type: ignore[no-untyped-def]
        got = wait_trap(group, timeout)
        if got is None and not (group.woken is not None and group.woken()):  # not a watched thread's news
            slices.append(timeout or 0.0)
        return got

    monkeypatch.setattr(ThreadGroup, "wait_trap", timed)
    caught = 0
    with gocall.attach(sleeper.pid, timeout=5) as proc:
        main_parked(proc)
        stale = proc.binary.pclntab.func_by_name("main.IsNeg").entry
        for i in range(40):
            proc.engine._last_points = None, [stale]
            assert proc.eval(f"main.Double({i})") == 2 * i
            site = proc.engine.last_site
            assert _in_user_code(site), site
            caught += site.hops >= 1
            assert set(tracer_pids(sleeper.pid).values()) == {0}
        assert caught, "no call needed the catch: the fixture's goroutines no longer sleep"
        # Only a wait cut short for a goroutine seen running (engine._RUNNING_SLICE) may end unhit.
        assert all(t <= engine._RUNNING_SLICE for t in slices), slices
        time.sleep(0.1)  # a breakpoint left armed would kill the program at its goroutines' next wake-up
        assert proc.eval("Total") > 0
    assert sleeper.proc.poll() is None, "the target died: " + sleeper.stderr()[:200]
    assert not _perf_fds(), "perf events left open"


@pytest.mark.parametrize("events", [True, False], ids=["perf-events", "debug-registers"])
def test_threads_asleep_in_futex_are_watched_not_seized(sleeper: Target, events: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle Ms asleep in futex(2) are watched by a catch (perfbreak.PointWatch: events that only
    tell), not seized: one that passes a point is stopped where it runs on, or, back asleep before
    that, seized and armed for the rest of the catch. Here every thread is taken for one, as if
    the program had no timer or poller thread; the fixture's goroutines run a few microseconds
    between their sleeps, so both ways are taken. Where perf events are refused, every thread is
    seized and armed as before."""
    if not events:
        monkeypatch.setattr(perfbreak, "_refused", errno.EACCES)
    monkeypatch.setattr(TaskStates, "in_futex", lambda states, tid: True)
    told: list[int] = []
    passed = perfbreak.PointWatch.passed

    def noted(watch: perfbreak.PointWatch) -> int | None:
        tid = passed(watch)
        if tid is not None:
            told.append(tid)
        return tid

    monkeypatch.setattr(perfbreak.PointWatch, "passed", noted)
    with gocall.attach(sleeper.pid, timeout=5) as proc:
        main_parked(proc)
        for i in range(40):
            assert proc.eval(f"main.Double({i})") == 2 * i
            site = proc.engine.last_site
            assert _in_user_code(site), site
            assert set(tracer_pids(sleeper.pid).values()) == {0}
        assert bool(told) == events, told
        time.sleep(0.1)  # a breakpoint left armed would kill the program at its goroutines' next wake-up
        assert proc.eval("Total") > 0
    assert sleeper.proc.poll() is None, "the target died: " + sleeper.stderr()[:200]
    assert not _perf_fds(), "perf events left open"


def _perf_fds() -> list[int]:
    """This process's open perf events (a catch's, a watch's): none once a catch is over."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]":
                fds.append(int(fd))
    return fds


def test_a_thread_seized_before_its_clone_is_reported_keeps_its_events(sleeper: Target) -> None:
    """A catch seizes more than once (watched threads refused or back asleep, call/engine.py), while
    the threads it traces run with PTRACE_O_TRACECLONE: seize_all can list a thread one of them has
    just created, traced by us already, before its creator's clone event is read. That Thread is
    the group's and gets armed; the clone event read later must not put an unarmed twin in its
    place. The replaced one's perf events were never closed: detached, the thread died of their
    SIGTRAP at its next pass ("SIGTRAP: trace trap", sigcode 6, TRAP_PERF: exit status 2), and
    their slots, shared with ptrace's debug registers, made a later catch's PTRACE_POKEUSER fail
    with ENOSPC (b734014's two CI failures, reverted in 100a08a). Built here by noting every other
    seized thread as the first one's clone."""
    with GoBinary(sleeper.binary) as b:
        handle = b.pclntab.func_by_name("main.handle")
    assert handle is not None
    assert not _perf_fds()
    group = ThreadGroup(sleeper.pid)
    try:
        group.seize_all()
        group.arm_running([handle.entry])  # every worker calls main.handle every 5 ms
        creator, *created = group.threads.values()
        creator.cloned.extend(t.tid for t in created)  # as _clone_event notes a PTRACE_EVENT_CLONE
        group.adopt()
    finally:
        group.detach_all()
    time.sleep(0.1)  # ~80 passes through main.handle: an event left armed would kill the program
    assert sleeper.proc.poll() is None, "the target died: " + sleeper.stderr()[:200]
    assert not _perf_fds(), "perf events left open on a detached thread"


def test_a_goroutine_parked_for_ever_is_not_armed_for(build_fixture, start_target):  # type: ignore[no-untyped-def]
    """``select {}`` (main.main of tests/fixtures/goroutines) never returns: a catch arms the other
    parked goroutines' resume points only, and that one only when nothing else is parked."""
    target = start_target(build_fixture("goroutines"), ["2"])
    with gocall.attach(target.pid) as proc:
        tab = proc.binary.pclntab

        def armed(goid: int | None) -> set[str]:
            return {f.name for pc in proc.engine.resume_points(goid, None) if (f := tab.func_for_pc(pc)) is not None}

        deadline = time.monotonic() + 10  # it says 'ready' just before its select {}
        while (state := proc.runtime.goroutine(1).state) != "select (no cases)":
            assert time.monotonic() < deadline, f"goroutine 1 is still {state!r} after 10 s"
            time.sleep(0.005)
        everyone = armed(None)
        assert "main.worker" in everyone and "main.main" not in everyone, everyone
        assert armed(1) == {"main.main"}  # alone: armed, as the catch always did (it waits quietly)
        assert proc.eval("main.Counter") == 0
        # sysmon's thread, which a catch leaves alone (it runs no goroutine): one of the program's, not
        # its main thread (which runs goroutines from the start).
        sysmon = proc.engine._sysmon()
        assert sysmon in thread_ids(target.pid) and sysmon != target.pid, (sysmon, thread_ids(target.pid))
    assert target.proc.poll() is None, "the target died"


@pytest.mark.parametrize("events", [True, False], ids=["perf-events", "debug-registers"])
def test_after_a_catch_a_running_goroutine_is_taken_once_armed(build_fixture, start_target, events: bool,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """After a call that caught a parked goroutine the next one arms the last points before it
    looks at any thread (_find_any), and looks only if the walk saw a goroutine running: here
    three spin in user code (a program that slept at its last call and runs now), so a thread of
    the armed group is stopped, moved on to a safe point (the spin loop has few) and taken out of
    the group for the call; the others are let go, disarmed. The last points are made up: main.IsNeg's entry, never run."""
    if not events:
        monkeypatch.setattr(perfbreak, "_refused", errno.EACCES)
    spin = start_target(build_fixture("breaks"), ["spin", "3"])
    taken: list[bool] = []
    take_running = engine.CallEngine._take_running

    def spy(self: engine.CallEngine, *args):  # type: ignore[no-untyped-def]
        got = take_running(self, *args)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(engine.CallEngine, "_take_running", spy)
    with gocall.attach(spin.pid, timeout=5) as proc:
        stale = proc.binary.pclntab.func_by_name("main.IsNeg").entry
        for i in range(20):
            proc.engine._last_points = None, [stale]
            proc.engine._preferred_tid = None  # not the last call's thread first: the catch's look
            assert proc.eval(f"main.Double({i})") == 2 * i
            assert _in_user_code(proc.engine.last_site), proc.engine.last_site
            assert set(tracer_pids(spin.pid).values()) == {0}
        # Most (15-20 of 20 here, loaded or not): a look may find no spinner's thread running or
        # runnable (Ms parked in futex while their goroutines wait for a P); the catch then waits.
        assert taken.count(True) >= 5, taken
        time.sleep(0.1)  # a breakpoint left armed would kill the program at IsNeg... or a stray SIGTRAP
        assert proc.eval("Calls") > 0
    assert spin.proc.poll() is None, "the target died: " + spin.stderr()[:200]
    assert not _perf_fds(), "perf events left open"
