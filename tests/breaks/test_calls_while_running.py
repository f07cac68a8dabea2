"""Calls while the program runs with breakpoints set (stops/calls.py ``lent``), as a Delve or GDB
user expects ``call main.F()`` to work with a breakpoint armed: every thread is stopped for the
call, which runs on a goroutine at a safe point; the callee running into the breakpoint is
stepped over (``Breakpoint.skipped``), not a stop and not fatal; other threads' hits meanwhile
stay to be tested by the next wait. Before, such calls were refused (and earlier they killed the
program). Against tests/fixtures/breaks, on every Go release."""

from __future__ import annotations

import time

import pytest

import gocall
from harness import Target

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
