"""``Process.batch()``: one thread kept traced across a burst of calls (call/batch.py).

What must hold: calls in a batch give the results they give outside one; the
kept thread is really left as found (registers, XSAVE) while it waits stopped;
after ``linger`` it is let go, so the program (its GC included) goes on between
calls; and however the batch is left, no thread of the target stays traced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import gocall
from gocall.process import ptrace, waiting
from harness import tracer_pids


def _traced_by_us(pid: int) -> list[int]:
    """The target's threads whose TracerPid is this process."""
    return [tid for tid, tracer in tracer_pids(pid).items() if tracer == os.getpid()]


def test_batch_results_match_and_nothing_stays_traced(target):  # type: ignore[no-untyped-def]
    exprs = {"main.Add(1, 2)": 3, "main.Greet(7)": "hello #7", "main.Multi(3)": (6, False, 3.5, "n=3"),
             "main.F64(1.25)": 2.5}  # fmt: skip
    with gocall.attach(target.pid) as proc:
        outside = {e: proc.eval(e) for e in exprs}
        assert outside == exprs
        with proc.batch(linger=10.0) as batch:  # long enough that every call finds the thread stopped
            for _ in range(20):
                assert {e: proc.eval(e) for e in exprs} == exprs
            assert _traced_by_us(target.pid) == [batch.thread.tid]
        assert _traced_by_us(target.pid) == []
        assert {e: proc.eval(e) for e in exprs} == exprs
    target.assert_healthy()


def test_kept_thread_waits_exactly_as_found(target, caplog):  # type: ignore[no-untyped-def]
    """Between calls the kept thread waits in the last call's open run (one stop per call); once
    that run ends (``settle``, the linger's end, leaving the batch) it is exactly as found."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=10.0) as batch:
            assert proc.eval("main.Add(40, 2)") == 42
            batch.settle()
            thread = batch.thread
            assert thread is not None and thread.stopped
            regs, xstate = ptrace.getregs(thread.tid), ptrace.getxstate(thread.tid)
            assert proc.eval("main.F64(2.5)") == 5.0  # float arguments and results: the X registers
            assert proc.eval("main.Add(1, 2)") == 3  # in the same run
            assert batch.thread is thread
            batch.settle()
            assert ptrace.getregs(thread.tid).as_dict() == regs.as_dict()
            assert ptrace.getxstate(thread.tid) == xstate
    assert "registers differ" not in caplog.text  # call/protocol.py _restore found the frame as saved
    target.assert_healthy()


def test_batched_calls_share_one_debugcallv2_run(target):  # type: ignore[no-untyped-def]
    """The first call of a batch leaves its run open at the callee's return; the next ones start
    there, one protocol stop each; at the linger's end the run is resumed to R12=16, restored and
    let go from the timer's handler, and the program runs on; the next call starts afresh."""
    steps: list[str] = []
    with gocall.attach(target.pid) as proc:
        proc.engine.protocol_hook = steps.append
        with proc.batch(linger=0.2) as batch:
            assert proc.eval("main.Add(1, 2)") == 3
            assert steps == ["enter", "FRAME_READY", "RETURNED"]
            for i in range(5):
                assert proc.eval(f"main.Add({i}, 1)") == i + 1
            assert proc.eval('main.Greet(7)') == "hello #7"
            assert steps[3:] == ["RETURNED"] * 6
            deadline = time.monotonic() + 10
            while "RESTORE" not in steps:  # the linger's end (signal handlers run in the sleeps)
                assert time.monotonic() < deadline, steps
                time.sleep(0.01)
            target.assert_healthy()  # the worker runs again
            assert batch.thread is None and _traced_by_us(target.pid) == []
            steps.clear()
            assert proc.eval("main.Add(2, 3)") == 5
            assert steps == ["enter", "FRAME_READY", "RETURNED"]
        assert "RESTORE" in steps  # the batch's end restored the run the last call left open
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_program_runs_between_calls(target):  # type: ignore[no-untyped-def]
    """After ``linger`` the thread is let go: the worker's health reports move (its heap keeps
    changing, so the GC runs, and a stop-the-world needs every P, the kept thread's too)."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=0.001) as batch:
            for i in range(5):
                assert proc.eval(f"main.CallGC({i + 10})") == (i + 10) * (i + 9) // 2  # runtime.GC() twice
                target.assert_healthy()  # ~150 ms: the thread was let go
                assert batch.thread is None and _traced_by_us(target.pid) == []
            assert proc.eval("main.Add(1, 2)") == 3
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_linger_ends_while_another_thread_takes_sigchld(target):  # type: ignore[no-untyped-def]
    """The kernel sends SIGCHLD to the process: another thread that does not block it may take it
    while the main thread sleeps in a blocking call, and Python runs a handler only when that call
    returns. Sessions 8-10 kept the thread seized and running after the linger, its stops (the
    R12=16 trap, every SIGURG) collected by a SIGCHLD handler: CI saw the program held 5 s so (the
    harness's reader thread took it). Here the main thread blocks SIGCHLD outright while it waits
    for the worker's reports (stalled on go1.27 2 runs of 3 with that design): the linger's end,
    on the timer's signal, which is the main thread's, lets the thread go and the program runs."""
    taker = threading.Thread(target=time.sleep, args=(4,))  # started first: SIGCHLD not blocked there
    taker.start()
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=0.001) as batch:
            for i in range(3):
                assert proc.eval(f"main.CallGC({i + 10})") == (i + 10) * (i + 9) // 2
                old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
                try:
                    target.assert_healthy()  # blocks in a lock's wait for the worker's reports
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
                assert batch.thread is None
        assert _traced_by_us(target.pid) == []
    taker.join()
    target.assert_healthy()


def test_linger_ends_inside_signals_helds_own_work(target):  # type: ignore[no-untyped-def]
    """Python runs a signal handler at any bytecode of the main thread, inside waiting.signals_held
    too, while it holds its lock (a dry run hung so: the timer fired as a call's hold let its
    signals go, and the let-go's own signals_held waited on that lock for ever). Here the linger
    ends while the test holds that lock: the let-go is put off, and done once the lock is free."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=0.01) as batch:
            assert proc.eval("main.Add(1, 2)") == 3
            with waiting._lock:
                assert batch.thread is not None
                time.sleep(0.1)  # the timer's handler runs in the sleep, the lock held
                assert batch.thread is not None  # put off
            deadline = time.monotonic() + 10
            while batch.thread is not None:
                assert time.monotonic() < deadline, "never let go"
                time.sleep(0.001)  # the timer's handler runs in the sleeps
            assert _traced_by_us(target.pid) == []
            assert proc.eval("main.Add(2, 3)") == 5
    target.assert_healthy()


def test_leaving_through_an_exception_detaches(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        with pytest.raises(ZeroDivisionError), proc.batch(linger=10.0):
            assert proc.eval("main.Add(1, 2)") == 3
            assert _traced_by_us(target.pid)
            1 / 0  # noqa: B018
        assert _traced_by_us(target.pid) == []
        with pytest.raises(gocall.GoPanic), proc.batch(linger=0):  # let go after each call
            assert proc.eval("main.Add(1, 2)") == 3
            proc.eval("main.Boom(1)")
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_target_killed_during_a_batch(target):  # type: ignore[no-untyped-def]
    """A process killed while a batch keeps one of its threads stopped cannot be waited for until
    its tracer collects that thread's exit (kernel/exit.c delay_group_leader): the linger's end
    does (the let-go finds it gone and reaps it), so its parent waits ``linger`` at most."""
    with gocall.attach(target.pid) as proc:
        for _ in range(50):  # on a thread other than the main one if it can: the case that needs the reap
            assert proc.eval("main.Add(1, 2)") == 3
            if proc.engine.last_site is not None and proc.engine.last_site.tid != target.pid:
                break
        with proc.batch(linger=0.5):
            assert proc.eval("main.Add(1, 2)") == 3  # on the same thread (the engine prefers it)
            target.proc.kill()
            target.proc.wait(5)  # the timer's handler runs in its sleeps
        with pytest.raises(gocall.TargetExited):
            proc.eval("main.Add(1, 2)")


def test_batch_off_the_main_thread_keeps_nothing(target):  # type: ignore[no-untyped-def]
    seen: list[object] = []

    def run() -> None:
        with gocall.attach(target.pid) as proc, proc.batch(linger=10.0):
            seen.append(proc.eval("main.Add(1, 2)"))
            seen.append(_traced_by_us(target.pid))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert seen == [3, []]
    time.sleep(0)
    target.assert_healthy()


def test_breakpoints_during_a_batch(target):  # type: ignore[no-untyped-def]
    """Attaching the debugger (stop.py traces every thread) takes the batch's thread over."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=10.0):
            assert proc.eval("main.Add(1, 2)") == 3
            assert proc.debugger.tracee.threads  # no EPERM seizing the batch's thread
    assert _traced_by_us(target.pid) == []
    target.assert_healthy()


_HOLDER = """
import os, select, sys, gocall
from gocall.process import ptrace, waiting
pid = int(sys.argv[1])
with gocall.attach(pid) as proc:  # a thread that runs Go code: the one a call found
    assert proc.eval("main.Add(1, 2)") == 3
    tid = proc.engine.last_site.tid
ptrace.seize(tid)
print("held", flush=True)
while not select.select([sys.stdin], [], [], 0.001)[0]:
    got, status = os.waitpid(tid, os.WNOHANG | ptrace.WALL)
    if got:  # a signal-delivery stop (SIGURG at every GC): handed over at once, as a debugger does
        ptrace.cont(tid, 0 if status >> 16 else os.WSTOPSIG(status))
ptrace.interrupt(tid)
_, status = os.waitpid(tid, ptrace.WALL)
ptrace.detach(tid, 0 if status >> 16 else os.WSTOPSIG(status))
"""


def test_calls_pass_over_a_thread_another_tracer_holds(target):  # type: ignore[no-untyped-def]
    """Another tool keeps one thread seized, running (another gocall's batch during its linger, a
    tracer of the program's own): a call from elsewhere takes another thread instead of failing
    with "already traced by"."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target.pid)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert sorted(t for t in tracer_pids(target.pid).values() if t) == [holder.pid]  # its thread
        for i in range(20):  # each call's search starts afresh: most list the held thread among the running
            with gocall.attach(target.pid) as proc:
                assert proc.eval(f"main.Add({i}, 1)") == i + 1
        assert sorted(t for t in tracer_pids(target.pid).values() if t) == [holder.pid]
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    assert set(tracer_pids(target.pid).values()) == {0}
    target.assert_healthy()


_SIGNALLED_IN_A_BATCH = """
import os, signal, sys, gocall
with gocall.attach(int(sys.argv[1])) as proc, proc.batch(linger=30.0):  # the run certainly kept open
    assert proc.eval("main.Add(1, 2)") == 3
    print("called", flush=True)
    os.kill(os.getpid(), int(sys.argv[2]))  # its default action: this process ends here
    print("still here", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1])
def test_ending_signal_between_calls_lets_the_thread_go_first(target, signum):  # type: ignore[no-untyped-def]
    """A signal whose default action ends the process using gocall, between two calls of a batch
    (the last call's debugCallV2 run kept open, its thread stopped at the callee's return): the
    thread is let go first, then the signal ends that process as it would have. Without it the
    thread, its tracer gone, ran on to debugCallV2's next INT3 and the program died of SIGTRAP."""
    user = subprocess.run([sys.executable, "-c", _SIGNALLED_IN_A_BATCH, str(target.pid), str(signum)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (user.returncode, user.stdout) == (-signum, "called\n"), user.stderr
    target.assert_healthy()
    assert set(tracer_pids(target.pid).values()) == {0}
