"""Non-stop calls into a mostly sleeping program (issue 14 part 3): no thread runs Go code when
the call starts, so the engine catches a parked goroutine where it returns into user code
(call/engine.py ``_catch_parked``: hardware breakpoints on every thread, ThreadGroup.arm_running:
perf breakpoint events on running threads where the kernel allows them, else debug registers, each
thread armed and let run again as its stop comes in), makes the call there, and leaves every
thread untraced and disarmed. Against tests/fixtures/breaks in ``loop 5`` mode (four goroutines
handling a request, then sleeping 5 ms), on every Go release."""

from __future__ import annotations

import errno
import time

import pytest

import gocall
from gocall.process import perfbreak
from gocall.process.threads import thread_ids
from harness import Target, main_parked, tracer_pids


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
            assert site is not None and site.function is not None and site.function.startswith("main."), site
            caught += site.hops >= 1  # reached through the catch (a return into user code waited for)
            assert set(tracer_pids(sleeper.pid).values()) == {0}  # every thread let go after each call
        assert caught, "no call needed the catch: the fixture's goroutines no longer sleep"
        # A debug register left armed on any thread would kill the program (SIGTRAP) at the next
        # return through a resume point: ~80 wake-ups of its goroutines in the next 0.1 s.
        time.sleep(0.1)
        assert proc.eval("Total") > before
    assert sleeper.proc.poll() is None, "the target died"


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
