"""What a thread that had hardware breakpoints takes with it when detached (issue 19).

The debug registers and a queued signal both outlive PTRACE_DETACH, and an untraced
Go program dies of a SIGTRAP ("SIGTRAP: trace trap", sigcode 4 = TRAP_HWBKPT). The
crash was seen after parked-goroutine catches and advances (call/engine.py, call/advance.py):
a thread hit one of their breakpoints just before gocall's PTRACE_INTERRUPT, the kernel
reported the interrupt stop first (get_signal takes a jobctl trap before it dequeues a
signal), and the detach let the queued SIGTRAP through. Here both states are built on a
thread of the breaks fixture's ``spin 1`` mode (one goroutine calling main.hot without
pause), and the goroutine must go on calling hot, unharmed, after the detach.
"""

from __future__ import annotations

import ctypes
import subprocess
import signal
import time
from collections.abc import Iterator

import pytest

from gocall.binary import GoBinary
from gocall.errors import TargetExited
from gocall.process import breakpoints, ptrace
from gocall.process.group import ThreadGroup
from gocall.process.memory import Memory
from gocall.process.threads import Thread, signal_pending
from gocall.process.waiting import signals_held, waitpid
from harness import Target

PTRACE_GETSIGMASK, PTRACE_SETSIGMASK = 0x420A, 0x420B  # include/uapi/linux/ptrace.h


def _queued(pid: int, tid: int, sig: int) -> bool:
    """``sig`` in the thread's SigPnd (/proc: readable once it is detached, unlike ptrace's view)."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        pending = next(int(line.split()[1], 16) for line in f if line.startswith("SigPnd:"))
    return bool(pending & 1 << (sig - 1))


@pytest.fixture
def spin(build_fixture, start_target) -> Iterator[tuple[Target, int, int]]:  # type: ignore[no-untyped-def]
    """The breaks fixture spinning on one goroutine: (target, main.hot's entry, &main.Calls)."""
    binary = build_fixture("breaks")
    with GoBinary(binary) as b:
        hot, calls = b.pclntab.func_by_name("main.hot"), b.symbol("main.Calls")
    assert hot is not None and calls is not None
    yield start_target(binary, ["spin", "1"]), hot.entry, calls


def _caught_at_hot(target: Target, hot: int) -> Thread:
    """The thread running the spinning goroutine, stopped at main.hot by a hardware breakpoint
    (a parked-goroutine catch's way: every thread armed, the first hit kept, the others let go)."""
    group = ThreadGroup(target.pid)
    try:
        group.seize_all()
        group.stop_all()
        group.arm([hot])
        group.resume_all()
        got = group.wait_trap(10)
        assert got is not None, "main.hot was not reached in 10 s"
        thread, trap = got
        assert trap.regs.rip == hot and ptrace.getsiginfo_code(thread.tid) == ptrace.TRAP_HWBKPT
        group.release(thread)
        group.keep = [thread.tid]
    finally:
        group.detach_all()
    return thread


def _runs_on(target: Target, calls: int) -> None:
    """The spinning goroutine calls hot 100,000 more times, and the process lives: a SIGTRAP
    reaching it, or a breakpoint still armed at hot, would have ended it at once."""
    mem = Memory(target.pid)

    def count() -> int:
        try:
            return mem.u64(calls)
        except TargetExited:
            pytest.fail(f"the target died: {target.stderr()}")

    start = count()
    deadline = time.monotonic() + 20
    while count() < start + 100_000:
        assert time.monotonic() < deadline, "the spinning goroutine stopped calling main.hot"
        time.sleep(0.001)
    assert target.proc.poll() is None, target.stderr()


def test_detach_disarms(spin) -> None:  # type: ignore[no-untyped-def]
    target, hot, calls = spin
    with signals_held():
        thread = _caught_at_hot(target, hot)  # still armed at hot
        thread.detach()
    _runs_on(target, calls)


def test_detach_takes_a_hit_queued_behind_an_interrupt(spin) -> None:  # type: ignore[no-untyped-def]
    """The hit's SIGTRAP is put back in the queue (PTRACE_CONT with it while the thread blocks it:
    ptrace_signal requeues a blocked signal with its siginfo), then taken over by an interrupt
    stop, and unblocked: the state a hit just before PTRACE_INTERRUPT leaves."""
    target, hot, calls = spin
    with signals_held():
        thread = _caught_at_hot(target, hot)
        breakpoints.set_breakpoints(thread, [])
        mask = ctypes.c_uint64()
        ptrace.ptrace(PTRACE_GETSIGMASK, thread.tid, ctypes.sizeof(mask), ctypes.addressof(mask))
        unblocked = mask.value
        mask.value |= 1 << (signal.SIGTRAP - 1)
        ptrace.ptrace(PTRACE_SETSIGMASK, thread.tid, ctypes.sizeof(mask), ctypes.addressof(mask))
        ptrace.interrupt(thread.tid)
        ptrace.cont(thread.tid, signal.SIGTRAP)
        status = waitpid(thread.tid, 10)
        assert status is not None and status >> 16 == ptrace.PTRACE_EVENT_STOP
        mask.value = unblocked
        ptrace.ptrace(PTRACE_SETSIGMASK, thread.tid, ctypes.sizeof(mask), ctypes.addressof(mask))
        assert signal_pending(thread.tid, signal.SIGTRAP) and _queued(target.pid, thread.tid, signal.SIGTRAP)
        thread.detach()
        assert not _queued(target.pid, thread.tid, signal.SIGTRAP)
    _runs_on(target, calls)


def test_signal_readers_agree_with_proc() -> None:
    """ptrace.queued_signals reads a thread's whole private queue, past one request's 16 entries,
    and ptrace.blocked_signals its mask: the readers process/tracee.py and guard/watch.py use
    where they parsed /proc's SigPnd and SigBlk before. A real process (sleep), stopped, with 20
    real-time signals and a SIGTRAP queued to it, and SIGUSR2 blocked."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with signals_held():
            ptrace.seize(sleeper.pid)
            ptrace.interrupt(sleeper.pid)
            waitpid(sleeper.pid)
            mask = ctypes.c_uint64(1 << (signal.SIGUSR2 - 1))
            ptrace.ptrace(PTRACE_SETSIGMASK, sleeper.pid, ctypes.sizeof(mask), ctypes.addressof(mask))
            sent = [signal.SIGRTMIN + i % 8 for i in range(20)] + [signal.SIGTRAP]
            for sig in sent:
                ptrace.tgkill(sleeper.pid, sleeper.pid, sig)
            queued = ptrace.queued_signals(sleeper.pid)
            assert sorted(queued) == sorted(sent)
            assert all(_queued(sleeper.pid, sleeper.pid, sig) for sig in sent)
            assert ptrace.blocked_signals(sleeper.pid) == 1 << (signal.SIGUSR2 - 1)
    finally:
        sleeper.kill()
        sleeper.wait()
