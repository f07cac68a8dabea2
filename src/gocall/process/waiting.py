"""Waiting for ptrace stops with a deadline, and without losing Ctrl-C.

``waitpid`` has no timeout, so the tracer blocks SIGCHLD (which the kernel
sends it on every tracee state change) and sleeps in ``sigtimedwait`` between
``WNOHANG`` polls. SIGINT and SIGTERM are blocked for as long as a thread is
traced and are collected at the same wait points: an interrupt never lands
between two protocol steps, it is noticed at the next stop, where the call
engine can unwind the target properly (see call/protocol.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

from ..errors import TargetExited
from .ptrace import WALL

_WAKE = {signal.SIGCHLD, signal.SIGINT, signal.SIGTERM}
_STOPPING = {signal.SIGINT, signal.SIGTERM}


class InterruptState:
    """SIGINT/SIGTERM received while signals were held."""

    def __init__(self) -> None:
        self.signal: int | None = None


interrupts = InterruptState()
_depth = 0
_lock = threading.Lock()


@contextlib.contextmanager
def signals_held() -> Iterator[InterruptState]:
    """Block SIGCHLD, SIGINT and SIGTERM in this thread while the block runs.

    A SIGINT/SIGTERM taken by :func:`waitpid` is recorded in the yielded
    state for the call engine to act on; one that arrived elsewhere stays
    pending and is delivered when the mask is restored, i.e. once the target
    is safe again (KeyboardInterrupt for SIGINT, exit for SIGTERM).
    """
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            interrupts.signal = None
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _WAKE)
    try:
        yield interrupts
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Nap:
    """Sleep until a SIGCHLD (or SIGINT/SIGTERM) or a short, growing nap ends.

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
        info = signal.sigtimedwait(_WAKE, self.cap if remaining is None else min(remaining, self.cap))
        self.cap = min(self.cap * 2, 0.05)
        if info is not None and info.si_signo in _STOPPING:
            interrupts.signal = info.si_signo
        return True


def waitpid(tid: int, timeout: float | None = None) -> int | None:
    """Wait for a state change of ``tid``; the raw status, or None on timeout.

    Must run inside :func:`signals_held`. A SIGINT/SIGTERM seen meanwhile is
    recorded in ``interrupts`` and the wait goes on: the caller decides when it
    is safe to act on it.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    nap = _Nap()
    while True:
        try:
            pid, status = os.waitpid(tid, os.WNOHANG | WALL)
        except ChildProcessError:
            raise TargetExited(f"thread {tid} is gone (target exited or was killed)") from None
        if pid == tid:
            return status
        if not nap(deadline):
            return None


def waitany(tids: list[int], timeout: float | None = None) -> tuple[int, int] | None:
    """Wait for a state change of any of ``tids``: ``(tid, raw status)``, or None on timeout.

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
        if not nap(deadline):
            return None
