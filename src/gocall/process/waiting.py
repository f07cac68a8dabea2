"""Waiting for ptrace stops with a deadline, and without dying of a signal meanwhile.

``waitpid`` has no timeout, so the tracer blocks SIGCHLD (which the kernel
sends it on every tracee state change) and sleeps in ``sigtimedwait`` between
``WNOHANG`` polls. Every signal that would end gocall (process/signals.py
TERMINATING: SIGINT, SIGTERM, SIGHUP, SIGUSR1, the real-time ones...) is blocked
for as long as a thread is traced and collected at the same wait points: an
interrupt never lands between two protocol steps, it is noticed at the next stop,
where the call engine can unwind the target properly (see call/protocol.py).

A collected signal is acted on by its disposition now: ignored, it is dropped;
with a handler of someone else's (a harness's SIGALRM, the batch timer), that
handler runs here, where it would have run unblocked; otherwise it is recorded
in ``interrupts`` for the engine, which raises ``Interrupted`` once the target is
safe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from ..errors import TargetExited
from .ptrace import WALL
from .signals import TERMINATING, SigSet, ends_gocall, getsignal, pthread_sigmask, sigtimedwait

_WAKE = SigSet({signal.SIGCHLD, *TERMINATING})
_TERMINATING = SigSet(TERMINATING)


class InterruptState:
    """A signal that would end gocall, received while signals were held (the first one)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.count = 0  # how many such signals came (a second Ctrl-C means more than the first)

    def note(self, signum: int) -> None:
        """Act on a signal collected by a wait (see the module docstring)."""
        if signum == signal.SIGCHLD:
            return
        if ends_gocall(signum):
            if self.signal is None:
                self.signal = signum
            self.count += 1
            return
        handler = getsignal(signum)
        if callable(handler):
            handler(signum, None)


interrupts = InterruptState()
_depth = 0
_old_mask: set[int] = set()
_lock = threading.Lock()


def defer(signum: int) -> bool:
    """While signals are held, note ``signum`` as a wait would have (True); else False. For a
    front end's handlers, which Python may run in the middle of a call (process/signals.py)."""
    if _depth == 0:
        return False
    interrupts.note(signum)
    return True


@contextlib.contextmanager
def signals_held() -> Iterator[InterruptState]:
    """Block SIGCHLD and every terminating signal in this thread while the block runs.

    One taken by :func:`waitpid` is recorded in the yielded state for the call
    engine to act on (the ``Interrupted`` it raises carries its ``signum``);
    one that arrived elsewhere stays pending and is delivered when the mask is
    restored, i.e. once the target is safe again (its default action, Python's
    KeyboardInterrupt, or process/signals.py's Signalled).
    """
    global _depth, _old_mask
    with _lock:
        _depth += 1
        if _depth == 1:
            interrupts.signal, interrupts.count = None, 0
            _old_mask = pthread_sigmask(signal.SIG_BLOCK, _WAKE.signals)
    try:
        yield interrupts
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                pthread_sigmask(signal.SIG_SETMASK, _old_mask)


def holding() -> bool:
    """Whether :func:`signals_held` is in force or at work (its lock held: by this thread, when a
    signal handler runs between two of its bytecodes, which Python allows). A handler must not
    enter it then: it would wait for ever on that lock (call/batch.py defers its work)."""
    return _depth > 0 or _lock.locked()


class _Nap:
    """Sleep until a SIGCHLD (or a terminating signal) or a short, growing nap ends.

    SIGCHLD is process-directed: when the tracer has other threads (a test
    harness's pipe readers, a watchdog), the kernel may hand it to one of them,
    which discards it, and this thread would sleep on. So the nap is capped,
    starting at 0.5 ms and doubling to 50 ms: a stolen wake-up costs at most
    that, and a long wait (a callee that sleeps) costs ~20 wake-ups a second.
    """

    def __init__(self) -> None:
        self.cap = 0.0005

    def __call__(self, deadline: float | None) -> bool:
        """Nap once; False when the deadline has passed."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        signum = sigtimedwait(_WAKE, self.cap if remaining is None else min(remaining, self.cap))
        self.cap = min(self.cap * 2, 0.05)
        if signum is not None:
            interrupts.note(signum)
        return True


def take_interrupt() -> bool:
    """Collect a terminating signal pending now, without waiting (a loop that may never nap);
    True when ``interrupts.signal`` is set. Inside :func:`signals_held` only."""
    while interrupts.signal is None:
        signum = sigtimedwait(_TERMINATING, 0)
        if signum is None:
            break
        interrupts.note(signum)
    return interrupts.signal is not None


# How long a resumed thread's stop is polled for while no task waits for a CPU (_poll): a trap of
# debugCallV2's comes 15-40 µs after the resume on a 2-vCPU VM; a callee that runs longer is napped for.
_POLL = 60e-6


class _Runnable:
    """How many tasks the kernel has running or waiting for a CPU, machine-wide: the fourth field
    of /proc/loadavg ("1/101": running/threads), kept open and re-read with one pread (~2 µs)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.cpus = len(os.sched_getaffinity(0))  # the CPUs gocall may run on

    def count(self) -> int | None:
        try:
            if self._fd is None:
                self._fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(self._fd, 128, 0).split()[3].partition(b"/")[0])
        except (OSError, IndexError, ValueError):
            return None

    def cpu_free(self, extra: int = 0) -> bool:
        """Whether every task that wants a CPU has one (gocall and the thread it just resumed
        included, and ``extra`` more): nothing would run on gocall's CPU if it slept."""
        n = self.count()
        return n is not None and n + extra <= self.cpus


_runnable: _Runnable | None = None


def cpu_free(extra: int = 0) -> bool:
    """See :meth:`_Runnable.cpu_free`: before a resume, ``extra=1`` counts the thread resumed."""
    global _runnable
    if _runnable is None:
        _runnable = _Runnable()
    return _runnable.cpu_free(extra)


def _poll(tid: int, timeout: float | None) -> int | None:
    """The stop of ``tid``, resumed just now, looked for without sleeping for up to :data:`_POLL`
    seconds; None when it did not come (or gocall's CPU is wanted: see below).

    Why: sleeping lets gocall's CPU go idle, and on a VM whose idle vCPUs halt (a Firecracker
    guest, haltpoll off) each stop then costs a wake-up through the hypervisor and the tracer
    runs on caches others' vCPUs used meanwhile: on the bench's quiet 2-vCPU VM a batched call
    took 0.30-0.36 ms where everything on one vCPU took 0.10 (bench/README, session 9). Polling
    takes a CPU nobody else wants only: when a task waits for one (a busy program's other
    threads, other load) gocall sleeps as before, since a poll then takes the CPU the target
    needs to reach its trap (329c324, reverted in c8f49d5: pause.py lost 70% of its calls/s);
    and it yields at every look, so a thread woken on gocall's own CPU (the resumed one) runs
    at once. A terminating signal that came meanwhile is collected as a nap would have."""
    if not cpu_free():
        return None
    end = time.perf_counter() + (_POLL if timeout is None else min(_POLL, timeout))
    while True:
        if (status := _look(tid)) is not None:
            while (signum := sigtimedwait(_WAKE, 0)) is not None:  # its SIGCHLD, and what else came
                interrupts.note(signum)
            return status
        if time.perf_counter() > end:
            return None
        os.sched_yield()


def waitpid(tid: int, timeout: float | None = None, resumed: bool = False,
            before_nap: Callable[[], None] | None = None) -> int | None:  # fmt: skip
    """Wait for a state change of ``tid``; the raw status, or None on timeout. ``resumed``: the
    thread was resumed just now, toward a stop its own code has to reach (a trap of debugCallV2's,
    tens of microseconds away): polled for first while a CPU is free (:func:`_poll`), else napped
    for first, not looked for first (a look that finds nothing is one of the three system calls of
    each such wait; a SIGCHLD already pending ends the nap at once). ``before_nap`` runs before
    the first nap (process/affinity.py: a thread narrowed to gocall's CPU gets its mask back).

    Must run inside :func:`signals_held`. A terminating signal seen meanwhile is
    recorded in ``interrupts`` and the wait goes on: the caller decides when it
    is safe to act on it.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    if resumed and (status := _poll(tid, timeout)) is not None:
        return status
    if before_nap is not None:
        before_nap()
    nap = _Nap()
    if resumed:
        nap(deadline)  # whatever ended it, the look below says whether the stop came
    while True:
        if (status := _look(tid)) is not None:
            return status
        if not nap(deadline):
            return None


def _look(tid: int) -> int | None:
    """``tid``'s state change, if it has one (WNOHANG): its raw status, else None."""
    try:
        pid, status = os.waitpid(tid, os.WNOHANG | WALL)
    except ChildProcessError:
        raise TargetExited(f"thread {tid} is gone (target exited or was killed)") from None
    return status if pid == tid else None


def waitany(tids: list[int], timeout: float | None = None, woken: Callable[[], object] | None = None
            ) -> tuple[int, int] | None:  # fmt: skip
    """Wait for a state change of any of ``tids``: ``(tid, raw status)``, or None on timeout, or
    once ``woken()`` is true (asked before each nap: what else a SIGCHLD may have been for).

    Polls each thread with WNOHANG instead of ``waitpid(-1)``, which could reap
    children of ours that are not the target (tests start several targets).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    nap = _Nap()
    while True:
        for tid in tids:
            try:
                pid, status = os.waitpid(tid, os.WNOHANG | WALL)
            except ChildProcessError:
                raise TargetExited(f"thread {tid} is gone (target exited or was killed)") from None
            if pid == tid:
                return tid, status
        if woken is not None and woken():
            return None
        if not nap(deadline):
            return None
