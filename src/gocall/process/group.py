"""Every thread of the target traced at once, for the two cases that need it.

* ``--stop-the-world``: Delve's all-stop behaviour; every thread is stopped
  whenever the thread driving the call is, and runs while it runs.
* Waiting for a parked goroutine to come back to user code: it may wake on
  any thread, so each thread gets the same hardware breakpoints and runs on,
  traced, until one of them hits (process/breakpoints.py).

Threads created after :meth:`ThreadGroup.seize_all` are not part of the group.
A thread that exits meanwhile is dropped; the process exiting is an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from ..errors import PtraceError, TargetExited
from . import breakpoints, perfbreak, ptrace
from .threads import Thread, TrapStop, exiting, thread_ids, traced_by_us
from .waiting import waitany

log = logging.getLogger("gocall.ptrace")


class ThreadGroup:
    """The target's threads but ``exclude``, traced."""

    def __init__(self, pid: int, exclude: Sequence[int] = ()) -> None:
        self.pid = pid
        self.exclude = set(exclude)
        self.threads: dict[int, Thread] = {}
        self.keep: Sequence[int] = ()  # traced by us but not the group's: released to the caller
        self.woken: Callable[[], object] | None = None  # wait_trap returns once it is true

    def seize_all(self) -> None:
        for tid in thread_ids(self.pid):
            if tid in self.exclude or tid in self.threads:
                continue
            t = Thread(self.pid, tid)
            try:
                # TRACECLONE: a thread the runtime starts meanwhile (a new M) is traced too;
                # a Go 1.19 callee may move onto it and trap there.
                t.seize(ptrace.PTRACE_O_TRACECLONE)
            except TargetExited:
                continue  # ended between listing and seizing
            self.threads[tid] = t

    def stop_all(self) -> None:
        # Every thread interrupted before any is waited for: asleep (a futex, a timer), each has
        # to be woken and scheduled to stop, and those wake-ups overlap instead of adding up.
        running = [t for t in self.threads.values() if not t.stopped]
        self._each(lambda t: ptrace.interrupt(t.tid) if t in running else None)
        self._each(lambda t: t.halt(interrupted=True) if t in running else None)
        if self.adopt():
            self.stop_all()

    def adopt(self, extra: Sequence[Thread] = ()) -> bool:
        """Take in threads created by traced ones (auto-attached, about to report an event stop)."""
        new = False
        for t in [*self.threads.values(), *extra]:
            while t.cloned:
                tid = t.cloned.pop()
                if tid in self.threads:
                    # Listed and seized by seize_all (traced by us already) before its creator's
                    # clone event was read, and maybe armed since: the group's Thread keeps it. A
                    # twin in its place left that one's perf events open on the thread, detached:
                    # it died of their SIGTRAP at its next pass, and a later catch's debug
                    # registers found every slot taken (ENOSPC).
                    continue
                child = Thread(self.pid, tid)
                child.traced = True
                self.threads[child.tid] = child
                new = True
        return new

    def resume_all(self) -> None:
        self._each(lambda t: t.resume() if t.stopped else None)

    def arm(self, pcs: Sequence[int]) -> None:
        """Hardware breakpoints at ``pcs`` on every (stopped) thread of the group."""
        self._each(lambda t: breakpoints.set_breakpoints(t, pcs))

    def arm_running(self, pcs: Sequence[int]) -> None:
        """Hardware breakpoints at ``pcs`` on every thread not armed yet, each left running
        again as soon as it is armed. Every one is interrupted before any is waited for (asleep
        in the kernel, each has to be woken and scheduled to stop: the wake-ups overlap), and
        none waits for the others' stops: stop_all, arm, resume_all held the whole program
        stopped until the slowest had stopped (~2.8 ms of a catch at load 9, the program's
        wake-up delayed as long; call/engine.py _catch_parked). A thread armed and running
        may hit a breakpoint while later ones are armed: its stop waits for wait_trap.

        A running thread is armed through perf events (process/perfbreak.py) where the kernel
        allows them: not stopped at all. Debug registers are the way for the others."""
        todo = [t for t in self.threads.values() if not t.hw_armed]
        self._arm(todo, todo, pcs)
        if self.adopt():  # created meanwhile (a new M): traced from its start, armed in turn
            self.arm_running(pcs)

    def rearm_running(self, pcs: Sequence[int]) -> None:
        """Move the breakpoints of every armed thread to ``pcs``, as :meth:`arm_running` put
        them. An old event's hit that was already on its way stops its thread as any hit does
        (at a return into user code: the catch advances whoever it catches to a safe point), and
        ``hw_armed`` stays set, so that a detach still takes a SIGTRAP that is queued."""
        armed = [t for t in self.threads.values() if t.hw_armed]
        events = [t for t in armed if t.events_only]  # the others keep to their debug registers
        for t in events:
            t.close_events()
        self._arm(armed, events, pcs)
        if self.adopt():
            self.arm_running(pcs)

    def _arm(self, todo: Sequence[Thread], events: Sequence[Thread], pcs: Sequence[int]) -> None:
        """Arm ``todo`` at ``pcs``: perf events for those of ``events`` that are running and the
        kernel lets have them, debug registers (stopped, armed, let go) for the rest."""
        self._each(lambda t: self._arm_events(t, pcs) if t in events and not t.stopped else None)
        todo = [t for t in todo if not t.events]
        self._each(lambda t: ptrace.interrupt(t.tid) if t in todo and not t.stopped else None)

        def arm(t: Thread) -> None:
            if t in todo:
                if not t.stopped:
                    t.halt(interrupted=True)
                breakpoints.set_breakpoints(t, pcs)
                t.resume()

        self._each(arm)

    @staticmethod
    def _arm_events(t: Thread, pcs: Sequence[int]) -> None:
        """Perf breakpoints at ``pcs`` on running ``t``, or none when refused."""
        for pc in pcs:
            fd = perfbreak.open_breakpoint(t.tid, pc)
            if fd is None:
                t.close_events()
                return
            t.events.append(fd)
        t.hw_armed = t.events_only = True

    def wait_trap(self, timeout: float | None) -> tuple[Thread, TrapStop] | None:
        """The first SIGTRAP stop of a running thread of the group (others' signals are passed
        through); None at the timeout, or as soon as :attr:`woken` says so (asked whenever the
        wait wakes up: perfbreak.PointWatch's events wake it)."""
        woken = self.woken
        # One deadline for the whole wait: a thread that keeps getting signals (SIGURG every
        # ~10 ms for a spinning goroutine) must not restart the timeout each time.
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.threads or woken is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = waitany(list(self.threads), left, woken)
            if got is None:
                return None
            t = self.threads[got[0]]
            try:
                trap = t.on_status(got[1])
            except TargetExited:
                self._drop(t)
                if not self.threads or exiting(self.pid):
                    raise
                continue  # one thread ended (an M exiting), the program goes on
            self.adopt()
            if trap is not None:
                return t, trap
        return None

    def lend(self, thread: Thread) -> None:
        """The call's thread (stopped, about to run) waited for with the group's (call/protocol.py);
        the threads it creates meanwhile are traced, as a Go 1.19 callee may move onto a new M."""
        thread.set_options(ptrace.PTRACE_O_TRACECLONE)
        self.threads[thread.tid] = thread

    def took_back(self, thread: Thread) -> None:
        """The call's thread, stopped at the protocol's trap: between calls the threads it would
        create are not the group's to trace (they would run untraced after detach_strays)."""
        thread.set_options(0)

    def release(self, thread: Thread) -> None:
        """Take ``thread`` out of the group (the caller now owns it)."""
        self.threads.pop(thread.tid, None)

    def hand_over(self, thread: Thread) -> None:
        """``thread``, caught for a call (call/engine.py _catch_parked), out of the group and kept
        traced by :meth:`detach_all`; the threads it creates from now on are not traced (they
        would be strays of the group's)."""
        self.release(thread)
        self.keep = [thread.tid]
        thread.set_options(0)

    def detach_all(self) -> None:
        """Disarm and detach every thread, leaving each running from where it is (Thread.detach
        disarms an armed thread and takes a hit's SIGTRAP still queued).

        Never raises for threads that exited: this is the way out after errors too. The
        group leader goes last: if the process is dying, the kernel reports the leader's
        exit only once every other thread's has been collected (kernel/exit.c
        delay_group_leader), which stopping each of them here does.
        """
        self.adopt()
        leader_last = sorted(self.threads.values(), key=lambda t: t.tid == self.pid)
        for t in leader_last:
            t.close_events()  # no hit from now on (one queued already is taken by its detach)
        # Every running thread interrupted before any is waited for (as stop_all does): most sleep
        # in the kernel, and their wake-ups overlap instead of adding up.
        sent: set[int] = set()
        for t in leader_last:
            if not t.stopped:
                try:
                    ptrace.interrupt(t.tid)
                    sent.add(t.tid)
                except PtraceError:
                    pass  # exiting: halt() sees it
        for t in leader_last:
            try:
                if not t.stopped:
                    t.halt(interrupted=t.tid in sent)  # its clone events noted (new threads: strays)
                t.detach()
            except TargetExited:
                t.reap()
        detached = list(self.threads)
        self.threads.clear()
        # Threads left out were never seized by it (sysmon's, others' holds): not strays of ours either.
        detach_strays(self.pid, keep=[*self.keep, *detached, *self.exclude])

    def _each(self, action: Callable[[Thread], object]) -> None:
        """``action`` on every thread; threads that exited meanwhile are dropped, and
        TargetExited is raised once the whole process is exiting."""
        for t in list(self.threads.values()):
            try:
                action(t)
            except TargetExited:
                self._drop(t)
            except PtraceError as e:
                if e.errno != 3:  # ESRCH: it exited under us
                    raise
                self._drop(t)
        if exiting(self.pid):
            raise TargetExited(f"process {self.pid} exited or was killed")

    def _drop(self, t: Thread) -> None:
        self.threads.pop(t.tid, None)
        t.traced = False
        t.close_events()  # an exited thread's perf events hold their fds until closed


def detach_strays(pid: int, keep: Sequence[int] = ()) -> None:
    """Detach every thread of ``pid`` that this process still traces, but ``keep`` (threads
    kept traced, or just detached by the caller: their TracerPid need not be read, a /proc
    read per thread of each catch of parked goroutines, call/engine.py).

    With PTRACE_O_TRACECLONE a thread the runtime creates (a new M) is traced from its
    first instruction, before its creator reports the clone; one that nobody adopted
    would sit stopped for ever, holding its P, and the next stop-the-world (a GC) would
    wait for it for ever. The kernel says who traces each thread (TracerPid).
    """
    try:
        tids = thread_ids(pid)
    except TargetExited:
        return  # nothing left to detach; the caller's own error says what happened
    for tid in tids:
        if tid not in keep and traced_by_us(pid, tid):
            log.debug("thread %d: a stray of ours (created while traced); detaching it", tid)
            t = Thread(pid, tid)
            t.traced = True
            t.hw_armed = True  # whatever it went through: its detach disarms it and takes a queued hit
            try:
                t.halt()
                t.detach()
            except TargetExited:
                pass
