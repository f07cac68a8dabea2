"""Calls anywhere (issue 4): parked goroutines, stop-the-world, Go 1.19's migrating callee,
and interruption at each protocol step, against real processes."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import gocall
from gocall.errors import Interrupted, NoGoroutine, TargetExited
from gocall.process.waiting import interrupts
from gocall.runtime.goroutines import Status


def test_goroutine_parked_in_a_channel_receive(target):  # type: ignore[no-untyped-def]
    """Goroutine 1 (the reporter) sits in a channel receive; the call waits for it to come back
    to main.report and is injected there (a hardware breakpoint on its return address)."""
    with gocall.attach(target.pid) as proc:
        proc.engine.goroutine = 1
        for _ in range(5):
            assert proc.eval("main.Add(40, 2)") == 42
            site = proc.engine.last_site
            # Usually main.report; when caught running (printing) it is the next user code it
            # returns to, which may be fmt's (a sync.Pool's New called from the runtime).
            assert site is not None and site.goroutine == 1 and not (site.function or "runtime.").startswith("runtime.")
    target.assert_healthy()


def test_no_such_goroutine(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid, timeout=2) as proc:
        proc.engine.goroutine = 99999
        with pytest.raises(NoGoroutine, match="no goroutine 99999"):
            proc.eval("main.Add(1, 2)")
    target.assert_healthy()


def test_stop_the_world(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        proc.engine.stop_the_world = True
        for i in range(10):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
        assert proc.eval("main.CallGC(500)") == 500 * 499 // 2
    target.assert_healthy()


def test_callee_that_blocks_may_move_threads(target):  # type: ignore[no-untyped-def]
    """Go 1.19's debugCallWrap does not lock the callee to the thread: a callee that runs
    the GC or sleeps may trap on another thread, which gocall must be tracing."""
    with gocall.attach(target.pid) as proc:
        for _ in range(10):
            assert proc.eval("main.CallGC(2000)") == 2000 * 1999 // 2
            assert proc.eval("main.Sleep(5)") == 5
    target.assert_healthy()


@pytest.mark.parametrize("step", ["enter", "FRAME_READY", "callee", "RETURNED", "RESTORE"])
def test_interrupt_at_each_protocol_step(target, step):  # type: ignore[no-untyped-def]
    """SIGINT at any step: the call is finished or unwound, the thread restored, then Interrupted."""
    def hook(name: str) -> None:
        if name == step or (step == "callee" and name == "FRAME_READY"):
            # What the engine's waits do when they collect a SIGINT (process/waiting.py);
            # real signals from outside are tested in tests/cli.
            interrupts.signal = signal.SIGINT

    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = hook
        expr = "main.Sleep(300)" if step == "callee" else "main.Add(1, 2)"
        with pytest.raises(Interrupted):
            proc.eval(expr)
        proc.engine.protocol_hook = None
        assert proc.eval("main.Add(2, 3)") == 5
    target.assert_healthy()


@pytest.mark.parametrize("when", ["FRAME_READY", "callee"])
def test_target_killed_mid_call(target, when):  # type: ignore[no-untyped-def]
    """SIGKILL to the target during a call: TargetExited promptly, and every traced thread reaped
    so the process can be waited for (the kernel reports a killed group leader only after the
    other traced threads; a flaky 'did not stop within 1.0 s' came from waiting on it first)."""
    def hook(name: str) -> None:
        if name == "FRAME_READY":
            if when == "FRAME_READY":
                os.kill(target.pid, signal.SIGKILL)
            else:
                threading.Timer(0.2, os.kill, (target.pid, signal.SIGKILL)).start()

    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = hook
        start = time.monotonic()
        with pytest.raises(TargetExited):
            proc.eval("main.Sleep(3000)")
        assert time.monotonic() - start < 2.5  # the callee would have slept 3 s
    # No hang. Its status may already be taken: this test process is its tracer as well as its parent.
    target.proc.wait(10)


def worker(proc: gocall.Process) -> int:
    """The fixture's busy goroutine: the running one that is not main (goroutine 1, the reporter)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = [g.goid for g in proc.engine._goroutines() if g.status == Status.RUNNING and g.goid != 1]
        if running:
            return running[0]
        time.sleep(0.01)
    raise AssertionError("the fixture's worker goroutine is not running")


@pytest.fixture
def anywhere_binary(build_fixture):  # type: ignore[no-untyped-def]
    return build_fixture("anywhere")


@pytest.mark.parametrize("mode, function, how", [
    ("memmove", "main.copyLoop", "returns"),  # in runtime.memmove (assembly): to its return into user code
    ("nosplit", "main.mixLoop", "steps"),  # in a //go:nosplit function: steps, then to its return
])  # fmt: skip
def test_advance_to_a_safe_point(start_target, anywhere_binary, mode, function, how):  # type: ignore[no-untyped-def]
    """The only running goroutine is nearly always where the runtime refuses calls; gocall moves
    it on to the nearest safe point, injects there, and says where that was."""
    target = start_target(anywhere_binary, [mode])
    moved = []
    with gocall.attach(target.pid) as proc:
        # The worker; without this, a loaded machine may let the reporter get to user code first.
        proc.engine.goroutine = worker(proc)
        for i in range(5):
            assert proc.eval(f"main.Add({i}, 1)") == i + 1
            site = proc.engine.last_site
            assert site is not None and site.function == function and "main.go:" in site.where
            if site.moved:
                moved.append(site)
            time.sleep(0.02)  # let it get back into the loop's unsafe part
    assert moved, "never had to advance: the fixture no longer keeps the goroutine at unsafe points"
    assert all(s.hops >= 1 for s in moved)
    if how == "steps":
        assert all(s.steps >= 1 and " steps and " in s.where for s in moved)
    target.assert_healthy()


def test_no_advance_keeps_the_refusal(start_target, anywhere_binary):  # type: ignore[no-untyped-def]
    """--no-advance --goroutine N: N is only looked at where it runs, never moved; the error
    gives the runtime's own reason (runtime/debugcall.go). N never reaches a safe point here."""
    target = start_target(anywhere_binary, ["forever"])
    with gocall.attach(target.pid) as proc:
        proc.engine.goroutine, proc.engine.advance, proc.engine.timeout = worker(proc), False, 0.3
        with pytest.raises(NoGoroutine, match="call not at safe point"):
            proc.eval("main.Add(1, 2)")
    target.assert_healthy()
