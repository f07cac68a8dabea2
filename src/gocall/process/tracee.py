"""Every thread of a process traced, for as long as software breakpoints are in it.

An INT3 in shared text is executed by whichever thread gets there first, and an
untraced thread that executes one dies of SIGTRAP with the whole program. So while
gocall has breakpoints in a process, every thread is traced: a launched program is
seized before its first instruction (process/launch.py), an attached one thread by
thread until /proc/PID/task lists no new one; PTRACE_O_TRACECLONE makes every thread
created later start traced.

Threads run freely while traced: each wait status is handled here, and the
program's own signals (SIGURG for preemption, SIGPROF, SIGINT...) are handed back
to it at once. What comes out of :meth:`Tracee.wait` is a thread stopped on an INT3
(:class:`Trapped`) or the end of the process (:class:`Exited`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..errors import GocallError, ProcessError, PtraceError, TargetExited
from . import breakpoints, launch, ptrace
from .group import detach_strays
from .memory import Memory
from .ptrace import WALL
from .regs import user_regs_struct
from .signals import SigSet, sigtimedwait
from .swbreak import SoftwareBreakpoints, Trap
from .threads import Thread, thread_ids, traced_by_us
from .waiting import _Nap, interrupts

log = logging.getLogger("gocall.ptrace")

SI_KERNEL = 0x80  # si_code of the SIGTRAP an INT3 raises (x86 do_int3 -> force_sig)
_STOP_TIMEOUT = 5.0
_SIGCHLD = SigSet({signal.SIGCHLD})
_FIRST_NAP = 0.0005  # waiting._Nap's first cap: SIGCHLD may go to another thread of ours, so naps are short
_STRAY_SCAN = 0.05  # seconds between looks in /proc/PID/task for threads no clone event announced


@dataclass(frozen=True)
class Trapped:
    """A thread stopped on an INT3: one of our breakpoints (``ours``; RIP already rewound
    to its address) or the program's own (``runtime.Breakpoint()``; RIP just past it)."""

    thread: Thread
    regs: user_regs_struct
    ours: bool


@dataclass(frozen=True)
class Caught:
    """A thread stopped on a hardware breakpoint of a catch (:meth:`Tracee.catch`): a parked
    goroutine back in user code, RIP at the address (an execution breakpoint is a fault)."""

    thread: Thread
    regs: user_regs_struct


@dataclass(frozen=True)
class Exited:
    """The process ended: ``code`` is its exit status, or -signal when killed."""

    code: int

    @property
    def text(self) -> str:
        return f"exited with status {self.code}" if self.code >= 0 else \
            f"was killed by {signal.Signals(-self.code).name}"


class Tracee:
    """All threads of process ``pid``, traced."""

    def __init__(self, pid: int, threads: dict[int, Thread], launched: bool) -> None:
        self.pid = pid
        # Every thread's ptrace options (new threads inherit them); see restore_options.
        self.options = launch.OPTIONS if launched else ptrace.PTRACE_O_TRACECLONE
        self.breaks = SoftwareBreakpoints(Memory(pid))
        self.threads = threads
        self.launched = launched
        self.exited: Exited | None = None
        self._pending: list[Trapped] = []  # INT3 stops not handed out yet (stop_all, hold), threads stopped
        self.unpreempted: Thread | None = None  # see keep_unpreempted
        self._urgent = False  # a SIGURG of that thread kept back
        self._catching: frozenset[int] = frozenset()  # hardware breakpoints' addresses, during catch()
        self._next_stray_scan = 0.0

    @classmethod
    def launched_at_exec(cls, pid: int) -> Tracee:
        """The program :func:`~.launch.spawn_traced` started: one thread, stopped at its exec."""
        t = Thread(pid, pid)
        t.traced = t.stopped = True
        return cls(pid, {pid: t}, launched=True)

    @classmethod
    def attach(cls, pid: int) -> Tracee:
        """Seize every thread of a running process (they keep running)."""
        tracee = cls(pid, {}, launched=False)
        try:
            while True:
                new = [tid for tid in thread_ids(pid) if tid not in tracee.threads]
                if not new:
                    return tracee
                for tid in new:
                    t = Thread(pid, tid)
                    try:
                        t.seize(ptrace.PTRACE_O_TRACECLONE)
                    except TargetExited:
                        continue
                    tracee.threads[tid] = t
        except BaseException:
            tracee.detach()
            raise

    # -- running and waiting --------------------------------------------------------

    def resume_all(self) -> None:
        """Every stopped thread resumed, but those whose INT3 stop is pending (:meth:`hold`):
        they stay where they trapped until :meth:`wait` hands their stop out."""
        held = {id(p.thread) for p in self._pending}
        for t in list(self.threads.values()):
            if t.stopped and id(t) not in held:
                self._cont(t, 0)

    def resume(self, t: Thread) -> None:
        """Resume one stopped thread (one whose stop was held, or taken: :meth:`take`)."""
        self._cont(t, 0)

    def wait(self, timeout: float | None) -> Trapped | Exited | None:
        """The next INT3 stop (pending ones first, in the order they came) or the end of the
        process; None after ``timeout`` seconds or when SIGINT/SIGTERM reaches gocall
        (``interrupts.signal``)."""
        if self._pending:
            return self._pending.pop(0)
        if self.exited is not None:
            return self.exited
        return self.next_event(timeout)

    def hold(self, trap: Trapped) -> None:
        """Keep ``trap``'s thread stopped where it trapped, its stop handed out by a later
        :meth:`wait` (a hit that came while a call ran at another stop)."""
        self._pending.append(trap)

    def take(self, wanted: Callable[[Trapped], bool]) -> Trapped | None:
        """The first pending stop ``wanted`` accepts, no longer pending (its thread stays stopped)."""
        for i, trap in enumerate(self._pending):
            if wanted(trap):
                return self._pending.pop(i)
        return None

    def holding(self) -> bool:
        """Whether a hit of ours is pending (its thread stopped on the breakpoint)."""
        return any(trap.ours for trap in self._pending)

    def is_pending(self, t: Thread) -> bool:
        """Whether ``t``'s stop is pending (held, or collected by :meth:`stop_all`)."""
        return any(trap.thread is t for trap in self._pending)

    def forget_pending(self) -> None:
        """No stop is pending any more (their threads are being let go)."""
        self._pending.clear()

    def next_event(self, timeout: float | None, interruptible: bool = True,
                   running_only: bool = False) -> Trapped | Exited | None:  # fmt: skip
        """The next INT3 stop collected from the threads (pending ones are not looked at) or the
        end of the process; None after ``timeout`` seconds, or, if ``interruptible``, when
        SIGINT/SIGTERM reaches gocall. ``running_only``: only the threads not stopped are polled
        (a call at a stop: one or two of them instead of every thread), all of them when none
        runs (a killed process's stopped threads report their exits, the leader's last)."""
        event = self._next_event(timeout, interruptible, running_only)
        assert not isinstance(event, Caught)  # only while catching, and catch() has its own wait
        return event

    def catch(self, pcs: Sequence[int], timeout: float) -> Caught | Trapped | Exited | None:
        """Hardware breakpoints at ``pcs`` on every thread, the stopped ones resumed (but pending
        stops), until the first event: a thread at one of ``pcs`` (:class:`Caught`), an INT3
        (our breakpoints stay in: a hit meanwhile is a hit), the end of the process; None after
        ``timeout`` seconds or at SIGINT/SIGTERM. Every thread is stopped again and disarmed
        before this returns. A parked goroutine comes back to user code on whichever thread
        schedules it, so each is armed (the call engine's catch, call/engine.py, for the case
        where the owner of every thread is this tracer: stops/calls.py ``lent``)."""
        self._arm(pcs)
        self._catching = frozenset(pcs)
        try:
            self.resume_all()
            return self._next_event(timeout, interruptible=True, running_only=False)
        finally:
            try:
                # A thread that reaches a breakpoint while being interrupted stays stopped there.
                self.stop_all()
            finally:
                self._catching = frozenset()
                if self.exited is None:
                    self._arm([])

    def _arm(self, pcs: Sequence[int]) -> None:
        """Hardware breakpoints at ``pcs`` on every (stopped) thread; ``[]`` disarms. A thread
        stays ``hw_armed`` (Thread.detach): a hit's SIGTRAP may still be queued."""
        for t in list(self.threads.values()):
            if pcs or t.hw_armed:
                try:
                    breakpoints.set_breakpoints(t, pcs)
                except PtraceError as e:
                    if e.errno != errno.ESRCH:  # exiting, or new and not stopped yet: not armed
                        raise

    def _next_event(self, timeout: float | None, interruptible: bool,
                    running_only: bool) -> Trapped | Caught | Exited | None:  # fmt: skip
        if self.exited is not None:
            return self.exited
        deadline = None if timeout is None else time.monotonic() + timeout
        nap = _Nap()
        while True:
            got = self._poll(self._running() if running_only else None)
            if got is not None:
                event = self._handle(*got)
                if event is not None:
                    return event
            if interruptible and interrupts.signal is not None:
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if got is None:
                nap(deadline)
            else:
                nap.cap = _FIRST_NAP  # more statuses may be waiting: poll again at once, then nap short

    def stop_all(self, but: Thread | None = None) -> None:
        """Every running thread (but ``but``) PTRACE_INTERRUPTed and waited for. A thread that
        hits one of our breakpoints meanwhile is left stopped at it, rewound, to hit it again
        when it runs (no hit is lost); one on the program's own INT3 is returned by the next
        :meth:`wait`; one that reaches a catch's hardware breakpoint stays there."""
        waiting: set[int] = set()
        for t in list(self.threads.values()):
            if t is but or t.stopped:
                continue
            try:
                ptrace.interrupt(t.tid)
                waiting.add(t.tid)
            except PtraceError:
                pass  # exiting: its exit status is collected like any other (see _cont)
        deadline = time.monotonic() + _STOP_TIMEOUT
        nap = _Nap()
        while waiting and self.exited is None and time.monotonic() < deadline:
            got = self._poll(sorted(waiting))
            if got is None:
                nap(deadline)
                continue
            tid, status = got
            self._stopping(tid, status)
            now = self.threads.get(tid)
            if now is None or now.stopped:
                waiting.discard(tid)
            # A thread created meanwhile starts traced, reporting an event stop of its own: wait for it too.
            waiting.update(n for n, nt in self.threads.items() if not nt.stopped and nt is not but)

    @contextlib.contextmanager
    def still(self, t: Thread) -> Iterator[user_regs_struct]:
        """``t`` stopped for a look at its registers, then let run again. A running ``t`` is
        stopped as :meth:`stop_all` stops it (a breakpoint it hits meanwhile is hit again when
        it runs; the program's own INT3 waits for :meth:`wait`), or kept in the signal stop it
        stands in (while no wait() runs, a thread that gets a signal, SIGURG every 10 ms for a
        goroutine that runs long, waits for its tracer to hand it over): the goroutine's
        registers still, where handing the signal over first would show the signal handler's.
        The signal is handed over when the look is done."""
        if t.stopped:
            yield ptrace.getregs(t.tid)
            return
        sig = self._halt(t)
        try:
            yield ptrace.getregs(t.tid)
        finally:
            if t.tid in self.threads and not self.is_pending(t):
                self._cont(t, sig)

    def _halt(self, t: Thread) -> int:
        """Stop the running ``t`` (see :meth:`still`); the signal of the signal stop it is kept in, or 0."""
        deadline = time.monotonic() + _STOP_TIMEOUT
        nap = _Nap()
        interrupted = False
        got = self._poll([t.tid])  # a stop it stands in already needs no interrupt
        while True:
            if got is not None:
                status = got[1]
                if os.WIFSTOPPED(status) and not status >> 16 and os.WSTOPSIG(status) != signal.SIGTRAP:
                    t.stopped = True
                    return os.WSTOPSIG(status)
                self._stopping(*got)
                if t.tid not in self.threads:
                    raise TargetExited(f"thread {t.tid} of process {self.pid} exited")
                if t.stopped:
                    return 0
            if not interrupted:
                interrupted = True
                try:
                    ptrace.interrupt(t.tid)
                except PtraceError:
                    pass  # exiting: its exit status comes
            if time.monotonic() >= deadline or self.exited is not None:
                raise ProcessError(f"thread {t.tid} did not stop within {_STOP_TIMEOUT:g} s",
                                   hint="the machine may be overloaded: try again")
            got = self._poll([t.tid])
            if got is None:
                nap(deadline)

    def _stopping(self, tid: int, status: int) -> None:
        """A wait status of a thread being stopped: the program's own INT3 is kept for :meth:`wait`."""
        event = self._handle(tid, status, stopping=True)
        if isinstance(event, Trapped) and not event.ours:
            self._pending.append(event)

    def keep_unpreempted(self, t: Thread | None) -> None:
        """Keep back the SIGURGs of thread ``t`` (the Go runtime's asynchronous preemption
        requests) while a call runs on it; None: the call is over, one SIGURG is delivered at
        its next resume if any came.

        A callee runs on a goroutine locked to the thread: preempted, the thread would hand its
        P off and sleep until another P schedules the callee, and with the other Ps held at hits
        (stops/calls.py) none may. SIGURG is only a hint (the runtime sends it again while it
        still wants the preemption), so a late one is harmless."""
        if t is None and self.unpreempted is not None and self._urgent:
            self.unpreempted.deferred.append(signal.SIGURG)
        self.unpreempted, self._urgent = t, False

    def restore_options(self, t: Thread) -> None:
        """``t``'s ptrace options as every thread of ours has them, after the call engine set its
        own (call/protocol.py leaves a thread without PTRACE_O_TRACECLONE between calls: a thread it
        then created would run untraced, and die of the first INT3 of ours it met)."""
        t.set_options(self.options)

    # -- ending ---------------------------------------------------------------------

    def detach(self) -> None:
        """Let every thread go, each from where it is (the caller removed its breakpoints first)."""
        self._pending.clear()
        for t in list(self.threads.values()):
            try:
                t.detach()
            except GocallError:
                pass
        self.threads.clear()
        detach_strays(self.pid)  # auto-attached threads no clone event has announced yet

    def kill(self) -> Exited:
        """SIGKILL a launched program and reap it."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while self.exited is None and self.threads:
            got = self._poll()
            if got is None:
                sigtimedwait(_SIGCHLD, 0.05)
                continue
            self._handle(*got)
        return self.exited or Exited(-signal.SIGKILL)

    # -- wait statuses ----------------------------------------------------------------

    def _poll(self, tids: list[int] | None = None) -> tuple[int, int] | None:
        for tid in tids if tids is not None else list(self.threads):
            try:
                got, status = os.waitpid(tid, os.WNOHANG | WALL)
            except ChildProcessError:
                self._gone(tid)
                continue
            if got == tid:
                return tid, status
        if tids is None and self._adopt_strays():
            return self._poll()
        return None

    def _running(self) -> list[int] | None:
        """The threads not stopped, or None (every thread) when there is none."""
        return [tid for tid, t in self.threads.items() if not t.stopped] or None

    def _adopt_strays(self) -> bool:
        """Take in threads of the process that no clone event announced; True if any.

        PTRACE_O_TRACECLONE traces a new thread from its first instruction, but its
        creator's clone event stop is skipped when a fatal signal is already pending: a
        thread cloned just as the program calls exit_group is ours, unannounced. Once it has
        exited it is a zombie only its tracer can reap, and the kernel reports the group
        leader's exit only after that (kernel/exit.c delay_group_leader): without this look
        in /proc/PID/task, the end of the process would never be seen (a hang in
        ``gocall run`` of a program calling os.Exit while the runtime started an M)."""
        now = time.monotonic()
        if now < self._next_stray_scan or self.exited is not None:
            return False
        self._next_stray_scan = now + _STRAY_SCAN
        try:
            tids = thread_ids(self.pid)
        except TargetExited:
            return False
        new = [tid for tid in tids if tid not in self.threads and traced_by_us(self.pid, tid)]
        for tid in new:
            log.debug("thread %d: traced without a clone event; adopted", tid)
            self._track(tid)
        return bool(new)

    def _track(self, tid: int) -> None:
        """A thread traced since its creation (auto-attached), added to ours."""
        t = Thread(self.pid, tid)
        t.traced = True
        self.threads[tid] = t

    def _handle(self, tid: int, status: int, stopping: bool = False) -> Trapped | Caught | Exited | None:
        t = self.threads.get(tid)
        if t is None:
            return None
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self._gone(tid)
            if tid == self.pid:
                self.exited = Exited(os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status))
                return self.exited
            return None
        event, sig = status >> 16, os.WSTOPSIG(status)
        if event == ptrace.PTRACE_EVENT_CLONE:
            child_tid = ptrace.geteventmsg(tid)
            if child_tid not in self.threads:  # else adopted already (see _adopt_strays)
                self._track(child_tid)
            if stopping:
                # Entering this stop cleared our pending PTRACE_INTERRUPT (kernel/signal.c
                # ptrace_stop): resumed, the thread would never report the stop stop_all waits for.
                t.stopped = True
            else:
                self._cont(t, 0)
            return None
        if event == ptrace.PTRACE_EVENT_STOP:
            if stopping:
                t.stopped = True  # our interrupt, or a new thread's first stop while stopping all
                if self._int3_pending(t):
                    self._cont(t, 0)  # its SIGTRAP stop comes next, before it runs an instruction
            else:
                self._cont(t, 0)  # a new thread's first stop, a group-stop: run on
            return None
        if event:
            self._cont(t, 0)  # exec and other events: nothing to do
            return None
        code = ptrace.getsiginfo_code(tid) if sig == signal.SIGTRAP else 0
        if code == SI_KERNEL:
            t.stopped = True
            regs = ptrace.getregs(tid)
            kind = self.breaks.classify(regs.rip)
            if kind is Trap.FOREIGN:
                return Trapped(t, regs, ours=False)
            regs.rip -= 1  # back onto the instruction the INT3 replaced
            ptrace.setregs(tid, regs)
            if kind is Trap.RETIRED:  # removed since it was hit: as if it never was
                if not stopping:
                    self._cont(t, 0)
                return None
            return Trapped(t, regs, ours=True)
        if code == ptrace.TRAP_HWBKPT and self._catching:
            regs = ptrace.getregs(tid)
            if regs.rip in self._catching:
                t.stopped = True
                return Caught(t, regs)
        if code in (ptrace.TRAP_TRACE, ptrace.TRAP_HWBKPT):
            sig = 0  # a single step or hardware breakpoint of ours, late: not the program's
        if sig == signal.SIGURG and t is self.unpreempted:
            self._urgent = True  # delivered when the call is over (keep_unpreempted)
            ptrace.cont(tid, 0)
            t.stopped = False
            return None
        log.debug("thread %d: passing signal %d through", tid, sig)
        self._cont(t, sig)
        return None

    def exit_status(self, tid: int, status: int) -> None:
        """An exit status of ``tid`` collected elsewhere (a displaced step)."""
        self._handle(tid, status)

    def _int3_pending(self, t: Thread) -> bool:
        """Whether ``t``, in an interrupt stop, has just executed one of our INT3s.

        The kernel reports a PTRACE_INTERRUPT stop before delivering a signal already queued
        (get_signal runs job-control traps first), so a thread interrupted right after an
        INT3 stops with RIP past it and the SIGTRAP still pending. Left so, the SIGTRAP would
        be reported after the next resume, at a moment nobody expects a hit (during a call,
        as the callee's trap), or delivered to the program on detach, killing it."""
        rip = ptrace.getregs(t.tid).rip
        if self.breaks.classify(rip) is Trap.FOREIGN:
            return False
        try:
            return signal.SIGTRAP in ptrace.queued_signals(t.tid)  # blocked or not: an INT3's is forced
        except PtraceError:
            return False  # gone (exit_group): no trap left to deliver

    def _cont(self, t: Thread, sig: int) -> None:
        if not sig and t.deferred:
            sig = t.deferred.pop(0)  # a signal that arrived during a single step of ours
        try:
            ptrace.cont(t.tid, sig)
        except PtraceError:
            # ESRCH: the thread is being killed (exit_group). It stays polled: the kernel reports
            # the group leader's exit only once every traced thread's exit has been collected,
            # so dropping it here would leave the process's end unseen for ever.
            pass
        t.stopped = False

    def _gone(self, tid: int) -> None:
        t = self.threads.pop(tid, None)
        if t is not None:
            t.traced = t.stopped = False
