"""One traced thread of the target: seize, stop, resume, wait, detach.

Only the thread gocall works on is traced (non-stop): every other thread of
the Go program keeps running, so the scheduler and the GC go on, and a GC
started by the injected call can stop the world (it only has to wait for our
thread while it sits in a ptrace stop, which is microseconds).

Signals that reach the traced thread while we drive it (SIGURG for async
preemption, SIGPROF, ...) are handed back to it on the next resume: only the
SIGTRAPs raised by our own INT3s and the stops we asked for are swallowed.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from ..errors import ProcessError, PtraceError, TargetExited
from . import ptrace
from .regs import user_regs_struct
from .waiting import waitpid

log = logging.getLogger("gocall.ptrace")


@dataclass(frozen=True)
class TrapStop:
    """The thread stopped on a SIGTRAP (one of our INT3s or a single step)."""

    regs: user_regs_struct


class Thread:
    """A thread of the target, traced with PTRACE_SEIZE."""

    def __init__(self, pid: int, tid: int) -> None:
        self.pid = pid
        self.tid = tid
        self.traced = False
        self.stopped = False
        # Signals that arrived while single-stepping: delivering one then would make the
        # next step land in the signal handler, so they wait for the next plain resume.
        self.deferred: list[int] = []

    def __repr__(self) -> str:
        return f"Thread({self.tid}, traced={self.traced}, stopped={self.stopped})"

    def seize(self) -> None:
        try:
            ptrace.seize(self.tid)
        except PtraceError as e:
            if e.errno == 3:  # ESRCH
                raise TargetExited(f"thread {self.tid} of process {self.pid} exited") from None
            if e.errno == 1:  # EPERM
                raise PtraceError(
                    "SEIZE",
                    self.tid,
                    e.errno,
                    hint="another debugger may be attached; otherwise run as root or as the "
                    "target's user with kernel.yama.ptrace_scope=0",
                ) from None
            raise
        self.traced = True

    def stop(self, timeout: float = 1.0) -> user_regs_struct:
        """PTRACE_INTERRUPT the running thread and wait until it is stopped."""
        ptrace.interrupt(self.tid)
        while True:
            status = self._wait(timeout)
            if status is None:
                raise ProcessError(f"thread {self.tid} did not stop within {timeout} s")
            if self._is_event_stop(status):
                break
            sig = os.WSTOPSIG(status)
            # A signal arrived before our interrupt took effect: deliver it and wait on.
            ptrace.cont(self.tid, sig)
        self.stopped = True
        return ptrace.getregs(self.tid)

    def resume(self, sig: int = 0) -> None:
        ptrace.cont(self.tid, sig or self._take_deferred())
        self.stopped = False

    def run_until_trap(self, timeout: float | None = None, step: bool = False) -> TrapStop | None:
        """Resume (or single-step) and wait for the next SIGTRAP; None if ``timeout`` passed.

        Other signals are passed through to the thread as they arrive, except while
        single-stepping, where they are deferred to the next plain resume.
        """
        if step:
            ptrace.singlestep(self.tid, 0)
        else:
            ptrace.cont(self.tid, self._take_deferred())
        self.stopped = False
        while True:
            status = self._wait(timeout)
            if status is None:
                return None
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP and not self._is_event_stop(status):
                self.stopped = True
                return TrapStop(ptrace.getregs(self.tid))
            if self._is_event_stop(status):
                sig = 0  # a group-stop or stray interrupt: nothing to deliver
            if step:
                if sig:
                    self.deferred.append(sig)
                ptrace.singlestep(self.tid, 0)
            else:
                log.debug("thread %d: passing signal %d through", self.tid, sig)
                ptrace.cont(self.tid, sig)

    def _take_deferred(self) -> int:
        return self.deferred.pop(0) if self.deferred else 0

    def detach(self) -> None:
        """Detach; the thread continues from its current registers.

        PTRACE_DETACH needs a stopped tracee, so a running one is interrupted
        first. A signal that arrives meanwhile is handed over with the detach;
        deferred ones are sent again, so none is lost.
        """
        if not self.traced:
            return
        pending = list(self.deferred)
        self.deferred.clear()
        try:
            if not self.stopped:
                ptrace.interrupt(self.tid)
                status = self._wait(None)
                assert status is not None
                if not self._is_event_stop(status):
                    pending.insert(0, os.WSTOPSIG(status))
            ptrace.detach(self.tid, pending[0] if pending else 0)
            for sig in pending[1:]:
                ptrace.tgkill(self.pid, self.tid, sig)
        except (PtraceError, TargetExited) as e:
            if isinstance(e, PtraceError) and e.errno != 3:  # ESRCH: the thread is gone
                raise
        self.traced = False
        self.stopped = False

    def _wait(self, timeout: float | None) -> int | None:
        status = waitpid(self.tid, timeout)
        if status is None:
            return None
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.traced = False
            what = (
                f"exited with status {os.WEXITSTATUS(status)}"
                if os.WIFEXITED(status)
                else f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
            )
            raise TargetExited(f"thread {self.tid} of process {self.pid} {what}")
        return status

    @staticmethod
    def _is_event_stop(status: int) -> bool:
        return (status >> 16) == ptrace.PTRACE_EVENT_STOP


def thread_ids(pid: int) -> list[int]:
    """The target's thread ids, main thread first."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        raise TargetExited(f"process {pid} does not exist") from None
    if pid in tids:
        tids.remove(pid)
        tids.insert(0, pid)
    return tids
