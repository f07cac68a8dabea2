"""``Process.batch()``: one thread kept traced across a burst of calls (call/batch.py).

What must hold: calls in a batch give the results they give outside one; the
kept thread is really left as found (registers, XSAVE) while it waits stopped;
after ``linger`` it runs on, so the program (its GC included) goes on between
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
from gocall.process import ptrace
from gocall.process.threads import task_state
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
    there, one protocol stop each; at the linger's end the run is resumed to R12=16 and restored
    from the SIGCHLD handler, and the program runs on; the next call starts afresh."""
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
            assert batch.thread is None or not batch.thread.stopped
            steps.clear()
            assert proc.eval("main.Add(2, 3)") == 5
            assert steps == ["enter", "FRAME_READY", "RETURNED"]
        assert "RESTORE" in steps  # the batch's end restored the run the last call left open
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_program_runs_and_collects_between_calls(target):  # type: ignore[no-untyped-def]
    """After ``linger`` the thread runs on: the worker's health reports move (its heap keeps
    changing, so the GC runs, and a stop-the-world needs every P, the kept thread's too)."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=0.001) as batch:
            for i in range(5):
                assert proc.eval(f"main.CallGC({i + 10})") == (i + 10) * (i + 9) // 2  # runtime.GC() twice
                target.assert_healthy()  # ~150 ms: the thread was resumed, signals were handed over
                assert batch.thread is None or not batch.thread.stopped
            assert proc.eval("main.Add(1, 2)") == 3
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_leaving_through_an_exception_detaches(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        with pytest.raises(ZeroDivisionError), proc.batch(linger=10.0):
            assert proc.eval("main.Add(1, 2)") == 3
            assert _traced_by_us(target.pid)
            1 / 0  # noqa: B018
        assert _traced_by_us(target.pid) == []
        with pytest.raises(gocall.GoPanic), proc.batch(linger=0):  # resumed at once: running, seized
            assert proc.eval("main.Add(1, 2)") == 3
            proc.eval("main.Boom(1)")
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_stop_seen_while_the_kept_thread_resumes(target):  # type: ignore[no-untyped-def]
    """Issue 19's batch flake ("thread N did not stop within 5 s", state t): the SIGCHLD handler ran
    between Thread.resume's PTRACE_CONT and its ``stopped = False`` (Python runs it at any bytecode
    boundary of the main thread once another thread took the signal), saw ``stopped``, and dropped
    the stop it had collected; the thread then sat in a stop no wait would see again. Here the
    handler is made to run at exactly that point, after the thread stopped for a SIGURG."""
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=10.0) as batch:
            assert proc.eval("main.Add(1, 2)") == 3
            batch.settle()  # back where it was found (not in the call's open run)
            thread = batch.thread
            assert thread is not None and thread.stopped
            handler = signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it runs when the test says
            try:
                ptrace.cont(thread.tid, 0)  # Thread.resume's request; its flag is not updated yet
                ptrace.tgkill(target.pid, thread.tid, signal.SIGURG)  # the runtime's preemption signal
                deadline = time.monotonic() + 10
                while task_state(target.pid, thread.tid) != b"t":  # in its signal-delivery stop
                    assert time.monotonic() < deadline, "the thread never stopped for its SIGURG"
                    time.sleep(0.001)
                batch._on_child(signal.SIGCHLD, None)
            finally:
                signal.signal(signal.SIGCHLD, handler)
            thread.stopped = False  # the rest of Thread.resume
            assert proc.eval("main.Add(2, 3)") == 5  # the next call interrupts the thread, and it stops
        assert _traced_by_us(target.pid) == []
    target.assert_healthy()


def test_target_killed_during_a_batch(target):  # type: ignore[no-untyped-def]
    with gocall.attach(target.pid) as proc:
        with proc.batch(linger=10.0):
            assert proc.eval("main.Add(1, 2)") == 3
            target.proc.kill()
            target.proc.wait(5)
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


def test_calls_pass_over_a_thread_another_batch_keeps(target):  # type: ignore[no-untyped-def]
    """A shell at its prompt (another process's batch) keeps a thread seized between its calls; a
    call from elsewhere takes another thread instead of failing with "already traced by"."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, gocall\n"
         "with gocall.attach(int(sys.argv[1])) as proc, proc.batch():\n"
         "    print(proc.eval('main.Add(1, 2)'), flush=True)\n"
         "    sys.stdin.read()\n", str(target.pid)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "3\n"
        assert sorted(t for t in tracer_pids(target.pid).values() if t) == [holder.pid]  # its kept thread
        for i in range(20):  # each call's search starts afresh: most list the kept thread among the running
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
