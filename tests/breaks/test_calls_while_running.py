"""Calls while the program runs with breakpoints set (stops/calls.py ``lent``), as a Delve or GDB
user expects ``call main.F()`` to work with a breakpoint armed: every thread is stopped for the
call, which runs on a goroutine at a safe point; the callee running into the breakpoint is
stepped over (``Breakpoint.skipped``), not a stop and not fatal; other threads' hits meanwhile
stay to be tested by the next wait. Before, such calls were refused (and earlier they killed the
program). Against tests/fixtures/breaks, on every Go release."""

from __future__ import annotations

import re
import time

import pytest

import gocall
from harness import Target, main_parked

from .test_attach import assert_unharmed


@pytest.fixture
def spin(build_fixture, start_target) -> Target:
    """Three goroutines calling main.hot in a tight loop."""
    return start_target(build_fixture("breaks"), ["spin", "3"])


@pytest.fixture
def loop(build_fixture, start_target) -> Target:
    """Four goroutines calling main.handle every millisecond."""
    return start_target(build_fixture("breaks"), ["loop"])


def test_calls_with_a_hot_conditional_breakpoint(spin: Target) -> None:
    """A breakpoint on the hot function whose condition is never true: calls between waits,
    among them one whose callee (HotNeg calls hot) runs into the breakpoint itself."""
    with gocall.attach(spin.pid) as proc:
        bp = proc.break_at("main.hot if n == -1")
        for i in range(20):
            assert proc.wait(0.01) is None  # hits served (false conditions), as the shell does while idle
            assert proc.eval(f"main.Double({i})") == 2 * i
            assert proc.eval(f"main.HotNeg({-i - 1})") is True  # hot(-i-1) < 0, inside the call: stepped over
            assert proc.stopped is None and proc.breakpoints == [bp]
        assert bp.skipped == 20 and bp.hits == 0 and bp.missed == 0
        assert bp.tests > 0  # the program kept hitting it between the calls
        assert proc.engine.last_site is not None and proc.engine.last_site.goroutine is not None
        pcs = bp.pcs
        proc.clear(bp)
        assert not proc.traced  # the last breakpoint gone: the program let go
        assert proc.eval("main.Double(4)") == 8  # and calls are non-stop again
    assert_unharmed(spin, pcs, counter="Calls")


def test_call_then_the_hit_it_did_not_hide(loop: Target) -> None:
    """An unconditional breakpoint on a function four goroutines call every millisecond,
    nobody waiting: the call still runs (on a goroutine at a safe point, maybe one held at
    the breakpoint, which hits it again after); the next wait reports the hit, calls at that
    stop work, and clearing it lets the program go."""
    with gocall.attach(loop.pid) as proc:
        bp = proc.break_at("main.handle")
        time.sleep(0.05)  # the goroutines reach the breakpoint and wait there for their tracer
        assert proc.eval("main.Concat(\"a\", \"b\")") == "ab"
        assert proc.eval("main.Double(21)") == 42
        stop = proc.wait(10)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp, stop
        assert stop.eval("req.Path").startswith("/loop/")
        assert stop.eval("main.Double(req.ID)") == 2 * stop.eval("req.ID")
        pcs = bp.pcs
        proc.clear(bp)
        proc.cont()
        assert not proc.traced
    assert_unharmed(loop, pcs)


def test_a_call_at_a_stop_through_the_process_is_refused(loop: Target) -> None:
    """While a hit is reported every thread is stopped: proc.eval is refused with the way to
    call there (Stop.eval), the stop untouched."""
    with gocall.attach(loop.pid) as proc:
        bp = proc.break_at("main.handle")
        stop = proc.wait(10)
        assert isinstance(stop, gocall.Stop)
        with pytest.raises(gocall.GocallError, match="calls run at the stop"):
            proc.eval("main.Double(1)")
        assert proc.stopped is stop and stop.eval("main.Double(3)") == 6
        pcs = bp.pcs
        proc.clear(bp)
        proc.cont()
    assert_unharmed(loop, pcs)


@pytest.fixture
def sleepy(build_fixture, start_target) -> Target:
    """Four goroutines calling main.handle every 200 ms: parked nearly all the time, as a
    server waiting on the network or a time.Sleep loop is."""
    return start_target(build_fixture("breaks"), ["loop", "200"])


def test_calls_into_a_sleeping_program_with_breakpoints_set(sleepy: Target) -> None:
    """No thread runs Go code to lend: the call catches a parked goroutine where it comes back
    into user code (hardware breakpoints set by the tracer that owns every thread), and the
    breakpoint its goroutine then runs into is still reported by the next wait, once. A chosen
    goroutine is caught for itself. Before, such a call waited for a running goroutine until
    its timeout ("parked goroutines are not waited for then")."""
    with gocall.attach(sleepy.pid, timeout=5) as proc:
        main_parked(proc)
        bp = proc.break_at("main.handle")
        for i in range(3):
            assert proc.eval(f"main.Double({i})") == 2 * i
            site = proc.engine.last_site
            assert site is not None and site.function in ("main.loop.func1", "main.handle"), site
            stop = proc.wait(5)
            assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp, stop
            assert stop.eval("main.Double(req.ID)") == 2 * stop.eval("req.ID")
            proc.cont()
        assert bp.hits == 3
        pcs = bp.pcs
        proc.clear(bp)
        never = proc.break_at("main.IsNeg")  # never called: the program keeps every thread traced
        workers = [g.goid for g in proc.runtime.goroutines()
                   if (go := proc.runtime.info(g, stop_running=False).go) is not None and go.function == "main.loop"]
        assert len(workers) == 4, workers
        for goid in workers[:2]:
            proc.engine.goroutine = goid
            assert proc.eval("main.Double(5)") == 10
            site = proc.engine.last_site
            assert site is not None and site.goroutine == goid, site
        proc.engine.goroutine = None
        assert never.hits == 0 and proc.stopped is None
        proc.clear(never)
        assert not proc.traced
    assert_unharmed(sleepy, pcs)


def test_a_hit_while_a_call_waits_for_its_goroutine(sleepy: Target) -> None:
    """A call on a goroutine parked for good (main's, in a channel receive) waits for it with the
    breakpoints in. Another goroutine's hit meanwhile is tested as a wait tests it: a false
    condition runs on (the call then ends at its timeout, saying what each goroutine waits
    for); a stop ends the wait, the call not made, and is the program's stop."""
    with gocall.attach(sleepy.pid, timeout=1) as proc:
        main_parked(proc)
        never = proc.break_at("main.handle if req.ID == 99")
        proc.engine.goroutine = 1
        with pytest.raises(gocall.GocallError, match=r"goroutine 1 did not reach Go user code .* goroutine 1: waiting "
                           r"in runtime\.chanrecv1 called from main\.loop"):
            proc.eval("main.Double(1)")
        assert never.tests > 0 and never.hits == 0 and proc.stopped is None
        proc.clear(never)
        bp = proc.break_at("main.handle")
        with pytest.raises(gocall.GocallError, match=r"breakpoint main\.handle stopped goroutine (\d+) at main\.handle "
                           r"\(.*\) while the call waited for goroutine 1; the call was not made") as raised:
            proc.eval("main.Double(1)")
        proc.engine.goroutine = None
        stop = proc.stopped
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp, stop
        assert str(stop.goroutine) == re.search(r"stopped goroutine (\d+)", str(raised.value))[1]  # type: ignore[index]
        assert bp.hits == 1 and stop.eval("main.Double(21)") == 42
        pcs = bp.pcs
        proc.clear(bp)
        proc.cont()
        assert not proc.traced
    assert_unharmed(sleepy, pcs)


def test_goroutines_stack_and_roots_with_breakpoints_set(build_fixture, start_target) -> None:
    """With breakpoints in, every thread is the debugger's: the runtime view asks it for a running
    goroutine's registers. Before, it seized the thread itself (EPERM, taken for a thread cloned
    traced), waited for a stop the debugger's thread never reports (at a stop: every thread is
    stopped already) and failed after 5 s with 'thread N did not stop' (goroutines, stack, roots
    and the shell's commands at every stop); while the program ran it would have taken the
    debugger's stops and detached its thread, with our INT3s in the text."""
    spin = start_target(build_fixture("breaks", ("-gcflags=all=-N -l",)), ["spin", "3"])  # hot not inlined
    with gocall.attach(spin.pid) as proc:
        never = proc.break_at("main.IsNeg")  # never hit: the spinners run on, every thread traced
        spinners = [i for i in proc.goroutines() if i.go is not None and i.go.function == "main.spin"]
        assert len(spinners) == 3, spinners
        running = [i for i in spinners if i.goroutine.state == "running"]
        assert running, "a spinner runs on a thread"  # 3 spinners, 2 cores: one at least
        for i in running:  # read from the thread the debugger stopped for it, not from g.sched
            # The user location: the innermost frame may be the runtime's (runtime.asyncPreempt
            # when the thread stopped in a preemption the GC or sysmon asked for; CI saw it once).
            assert i.user is not None and i.user.function in ("main.hot", "main.spin.func1"), i
        proc.clear(never)
        bp = proc.break_at("main.hot")
        stop = proc.wait(10)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp, stop
        for evaluated in (False, True):  # and after an evaluation, whose debugCallV2 run is kept open
            if evaluated:
                assert stop.eval("main.Double(n)") == 2 * stop.eval("n") and stop.kept is not None
            mine = next(i for i in proc.goroutines() if i.goid == stop.goroutine)
            assert mine.goroutine.state == "running" and mine.current is not None, mine
            assert mine.current.function == "main.hot" and stop.kept is None, mine
            assert [fr.function for fr in proc.stack(stop.goroutine)][:2] == ["main.hot", "main.spin.func1"]
            assert proc.roots(stop.goroutine)[0].frame.function == "main.hot"
        assert stop.eval("main.Double(3)") == 6
        pcs = bp.pcs
        proc.clear(bp)
        proc.cont()
        assert not proc.traced
    assert_unharmed(spin, pcs, counter="Calls")
