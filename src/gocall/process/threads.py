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
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..errors import ProcessError, PtraceError, TargetExited
from . import affinity, breakpoints, ptrace
from .regs import user_regs_struct
from .waiting import cpu_free, waitpid

log = logging.getLogger("gocall.ptrace")

_FUTEX = b"202"  # futex(2) on x86_64 (arch/x86/entry/syscalls/syscall_64.tbl)
_EXIT_POLL = 0.05  # seconds between looks at the process state while waiting for an asked-for stop
_STOP_TIMEOUT = 5.0  # a live thread stops within microseconds; seconds are for an overloaded machine


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
        # Threads this one created while traced with PTRACE_O_TRACECLONE (they start traced,
        # in an event stop): the owner of the thread group adopts them (process/group.py).
        self.cloned: list[int] = []
        # Hardware breakpoints were armed on it (process/breakpoints.py): see _disarm.
        self.hw_armed = False
        self.events_only = False  # armed through perf events only, its debug registers untouched (perfbreak.py)
        self.events: list[int] = []  # perf breakpoint events armed on it (process/perfbreak.py), their fds
        # Its ptrace options as set through this object (None: not known, e.g. auto-attached).
        self.options: int | None = None
        # Its own CPU mask while it is narrowed to gocall's CPU for a polled resume (process/affinity.py),
        # and who is told of each narrowing and give-back (the guardian's slot, guard/watch.py).
        self.pinned: frozenset[int] | None = None
        self.on_pin: Callable[[int, frozenset[int] | None], None] | None = None
        # Set while PTRACE_O_TRACECLONE is on for narrowed runs (:meth:`_watch_clones`): the mask a
        # thread it creates gets before it is let go, its creator's own.
        self.let_go: frozenset[int] | None = None
        # Caught at its return from a park (call/engine.py _catch_parked): let go, it runs on at
        # once (a sleepy program's burst), so its last step runs away from gocall's CPU (``away``).
        self.woken = False

    def __repr__(self) -> str:
        return f"Thread({self.tid}, traced={self.traced}, stopped={self.stopped})"

    def seize(self, options: int = 0) -> None:
        self.options, self.let_go = None, None
        try:
            ptrace.seize(self.tid, options)
        except PtraceError as e:
            if e.errno == 3 or (e.errno == 1 and exiting(self.pid, self.tid)):  # ESRCH; EPERM: exiting
                raise TargetExited(f"thread {self.tid} of process {self.pid} exited") from None
            if e.errno == 1 and traced_by_us(self.pid, self.tid):
                # Cloned, since it was listed, by a thread we trace with PTRACE_O_TRACECLONE:
                # auto-attached, ours already (its first stop is an event stop like a seized one's).
                self.traced = True
                return
            if e.errno == 1:  # EPERM: another tracer, Yama, credentials... the one diagnosis
                from .permissions import attach_error

                raise attach_error(self.pid, e.errno, self.tid) from None
            raise
        self.traced = True
        self.options = options

    def set_options(self, options: int) -> None:
        """PTRACE_SETOPTIONS on this stopped thread (the threads it creates from now on are
        another's to let go: :attr:`let_go` ends)."""
        ptrace.setoptions(self.tid, options)
        self.options, self.let_go = options, None

    def stop(self, timeout: float = _STOP_TIMEOUT) -> user_regs_struct:
        """PTRACE_INTERRUPT the running thread and wait until it is stopped; its registers."""
        self.halt(timeout)
        return ptrace.getregs(self.tid)

    def halt(self, timeout: float = _STOP_TIMEOUT, interrupted: bool = False) -> None:
        """:meth:`stop` without reading the registers (a group stopped to be armed or detached);
        ``interrupted``: PTRACE_INTERRUPT was sent already (a group interrupts all, then waits)."""
        if not interrupted:
            ptrace.interrupt(self.tid)
        while True:
            status = self._wait_asked(timeout)
            if self._is_event_stop(status):
                break
            if self._clone_event(status):
                # Entering any ptrace-stop clears a pending PTRACE_INTERRUPT (kernel/signal.c
                # ptrace_stop: "any trap clears pending STOP trap"), and a clone event stop is
                # entered from the syscall, not from get_signal where the interrupt is taken first.
                ptrace.interrupt(self.tid)
                continue
            sig = os.WSTOPSIG(status)
            if self._ours(sig):
                sig = 0  # a hardware breakpoint of ours was hit meanwhile: never deliver that SIGTRAP
            # A signal arrived before our interrupt took effect: deliver it and wait on.
            ptrace.cont(self.tid, sig)
        self.stopped = True

    def resume(self, sig: int = 0) -> None:
        self.unpin()
        ptrace.cont(self.tid, sig or self._take_deferred())
        self.stopped = False

    def run_until_trap(self, timeout: float | None = None, step: bool = False, narrow: bool = False,
                       away: bool = False) -> TrapStop | None:  # fmt: skip
        """Resume (or single-step) and wait for the next SIGTRAP; None if ``timeout`` passed.

        Other signals are passed through to the thread as they arrive, except while
        single-stepping, where they are deferred to the next plain resume. ``narrow``: a trap
        expected within microseconds (a protocol step), run to on gocall's CPU while a CPU is
        free (process/affinity.py), the threads it creates meanwhile watched for
        (:meth:`_watch_clones`); without, it has its own mask for the resume. ``away``: the last
        step of a :attr:`woken` thread, run on its other CPUs instead: stopped there, it is woken
        there by the detach (its previous CPU, idle), not on gocall's, where its burst ran before
        gocall returned (DETACH 114-157 µs, bench/README issue 14 sessions 11 and 12).
        """
        if step:
            ptrace.singlestep(self.tid, 0)
        else:
            if not narrow or (self.let_go is None and self.options != 0):  # options not gocall's alone
                self.unpin()
            else:
                if self.pinned is None and cpu_free(1):  # polled for if it stays so (process/waiting.py)
                    self._pin()
                    if self.pinned is not None:
                        self._watch_clones()
                if away and self.woken and self.pinned is not None:
                    others = self.pinned - {affinity.current_cpu()}
                    if others:
                        affinity.narrow(self.tid, others)
            ptrace.cont(self.tid, self._take_deferred())
        self.stopped = False
        # A single step traps within microseconds: looked for first; a resume's trap is Go code away.
        return self.wait_trap(timeout, step, resumed=not step)

    def _pin(self) -> None:
        """Narrow this stopped thread to gocall's CPU for the resume and poll to come (see
        process/affinity.py); told first, so that a kill of gocall at any moment after leaves
        the guardian its own mask."""
        found = affinity.narrowable(self.tid)
        if found is None:
            return
        cpu, mask = found
        if self.on_pin is not None:
            self.on_pin(self.tid, mask)
        if affinity.narrow(self.tid, (cpu,)):
            self.pinned = mask
        elif self.on_pin is not None:
            self.on_pin(self.tid, None)

    def _watch_clones(self) -> None:
        """PTRACE_O_TRACECLONE on, for a thread just narrowed (its options gocall's alone, 0): a
        thread it creates stops before its first instruction and is let go with :attr:`let_go`,
        the mask it would have inherited (:meth:`_clone_event`). Once per seize."""
        if self.let_go is None:
            self.set_options(ptrace.PTRACE_O_TRACECLONE)
            self.let_go = self.pinned

    def unpin(self) -> None:
        """Its own CPU mask back, if it was narrowed (:meth:`_pin`)."""
        mask, self.pinned = self.pinned, None
        if mask is not None:
            affinity.unpin(self.tid, mask)
            if self.on_pin is not None:
                self.on_pin(self.tid, None)

    def wait_trap(self, timeout: float | None = None, step: bool = False, resumed: bool = False) -> TrapStop | None:
        """Wait for the running thread's next SIGTRAP (see :meth:`run_until_trap`); None on timeout,
        the thread still running. ``resumed``: just now (see :func:`~.waiting.waitpid`)."""
        # One deadline for the whole wait: signals passed through on the way (SIGURG every ~10 ms
        # for a goroutine that runs long) must not restart the timeout.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self._wait(None if deadline is None else max(0.0, deadline - time.monotonic()), resumed)
            resumed = False
            if status is None:
                return None
            if self._clone_event(status, step):
                continue
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

    def on_status(self, status: int) -> TrapStop | None:
        """Handle one wait status of this running thread (from :func:`~.waiting.waitany`).

        A SIGTRAP stop is returned with the thread left stopped; any other signal
        is passed through and the thread resumed, so a signal is never swallowed.
        """
        self._check_exit(status)
        if self._clone_event(status):
            return None
        sig = os.WSTOPSIG(status)
        if sig == signal.SIGTRAP and not self._is_event_stop(status):
            self.stopped = True
            return TrapStop(ptrace.getregs(self.tid))
        ptrace.cont(self.tid, 0 if self._is_event_stop(status) else sig)
        return None

    def _clone_event(self, status: int, step: bool = False) -> bool:
        """A PTRACE_EVENT_CLONE stop: note the new thread (or let it go, :meth:`_watch_clones`)
        and let this one go on."""
        if (status >> 16) != ptrace.PTRACE_EVENT_CLONE:
            return False
        tid = ptrace.geteventmsg(self.tid)
        if self.let_go is not None:
            self._let_go(tid, self.let_go)
        else:
            self.cloned.append(tid)
        (ptrace.singlestep if step else ptrace.cont)(self.tid, 0)
        return True

    def _let_go(self, tid: int, mask: frozenset[int]) -> None:
        """A thread created by this one since it was narrowed (:meth:`_watch_clones`):
        traced from its creation, it stops before its first instruction; it gets ``mask`` and
        goes, as if never traced."""
        child = Thread(self.pid, tid)
        child.traced = True
        status = child._wait_asked(_STOP_TIMEOUT)
        child.stopped = True
        if not child._is_event_stop(status):
            child.deferred.append(os.WSTOPSIG(status))  # a signal sent to it already: handed over
        affinity.unpin(tid, mask)
        child.detach()

    def _ours(self, sig: int) -> bool:
        """A SIGTRAP caused by our single steps or hardware breakpoints (not for the program)."""
        return sig == signal.SIGTRAP and ptrace.getsiginfo_code(self.tid) in (ptrace.TRAP_TRACE, ptrace.TRAP_HWBKPT,
                                                                               ptrace.TRAP_PERF)

    def close_events(self) -> None:
        """Take out the perf breakpoints armed on it (process/perfbreak.py), running or not; a hit's
        SIGTRAP may still be queued (``hw_armed``: taken by the detach)."""
        while self.events:
            os.close(self.events.pop())

    def _take_deferred(self) -> int:
        return self.deferred.pop(0) if self.deferred else 0

    def detach(self) -> None:
        """Detach; the thread continues from its current registers.

        PTRACE_DETACH needs a stopped tracee, so a running one is interrupted
        first. A signal that arrives meanwhile is handed over with the detach;
        deferred ones are sent again, so none is lost.
        """
        self.close_events()
        self.unpin()
        if not self.traced:
            return
        pending = list(self.deferred)
        self.deferred.clear()
        try:
            if not self.stopped:
                ptrace.interrupt(self.tid)
                status = self._wait_asked(_STOP_TIMEOUT)
                while self._clone_event(status):  # a thread it created meanwhile: asked again (see halt)
                    ptrace.interrupt(self.tid)
                    status = self._wait_asked(_STOP_TIMEOUT)
                if not self._is_event_stop(status) and not self._ours(os.WSTOPSIG(status)):
                    pending.insert(0, os.WSTOPSIG(status))
            if self.hw_armed:
                self._disarm(pending)
            ptrace.detach(self.tid, pending[0] if pending else 0)
            for sig in pending[1:]:
                ptrace.tgkill(self.pid, self.tid, sig)
        except (PtraceError, TargetExited) as e:
            if isinstance(e, PtraceError) and e.errno != 3:  # ESRCH: the thread is gone
                raise
            self.reap()
        self.traced = False
        self.stopped = False
        self.options, self.let_go = None, None  # the kernel drops a tracee's options with it
        self.woken = False

    def disarm(self) -> None:
        """Take this stopped thread's breakpoints off before it runs code of ours (a catch's thread
        taken by a look, not at a hit: call/engine.py _take_running): as a detach does
        (:meth:`_disarm`), a hit's SIGTRAP queued behind the stop is taken, and another signal met
        on the way is kept for the next plain resume. Else that SIGTRAP arrives at the call's
        first resume, a trap outside debugCallV2 (seen with debug registers)."""
        self.close_events()
        if self.hw_armed:
            pending: list[int] = []
            self._disarm(pending)
            self.deferred[:0] = pending

    def _disarm(self, pending: list[int]) -> None:
        """Before the detach of a thread that had hardware breakpoints: clear its debug registers,
        and take the SIGTRAP of a hit that is still queued, since both outlive PTRACE_DETACH and
        an untraced Go program dies of the signal ("SIGTRAP: trace trap", sigcode 4).

        A hit just before a PTRACE_INTERRUPT leaves its SIGTRAP queued behind the interrupt stop
        (get_signal takes a pending jobctl trap before it dequeues a signal). Another interrupt
        would race it the same way, so the thread is resumed with none pending: it dequeues the
        SIGTRAP before it runs an instruction (a fault's signal goes first,
        dequeue_synchronous_signal) and stops for it; ours is dropped, any other signal handed
        over with the detach. A blocked SIGTRAP cannot be taken so (Go blocks signals only in
        its handlers and while creating a thread, never where our breakpoints are).
        """
        if not self.events_only:
            breakpoints.set_breakpoints(self, [])
        self.events_only = False
        while signal_pending(self.tid, signal.SIGTRAP):
            log.debug("thread %d: a SIGTRAP is queued (a hardware breakpoint hit); taken before the detach", self.tid)
            ptrace.cont(self.tid, 0)
            status = self._wait_asked(_STOP_TIMEOUT)
            sig = 0 if self._is_event_stop(status) else os.WSTOPSIG(status)
            if sig and not self._ours(sig):
                pending.insert(0, sig)
        self.hw_armed = False

    def reap(self, timeout: float = 1.0) -> None:
        """Collect the exit of this traced thread of a dying process. Until its tracer
        does, an exited traced thread stays a zombie and its process cannot be waited
        for (kernel/exit.c exit_notify); gocall exiting would release it, a library
        user's process would not."""
        if not self.traced:
            return  # its exit status was already collected
        try:
            self._wait(timeout)
        except TargetExited:
            pass  # reaped now, or by someone else (ECHILD)
        self.traced = False
        self.stopped = False

    def _wait_asked(self, timeout: float) -> int:
        """The next status after a PTRACE_INTERRUPT, which a live thread reports at once.

        A thread of a dying process may never report: the kernel holds a killed group
        leader's exit back until every other thread is reaped, and the traced ones only
        by us (kernel/exit.c delay_group_leader). So the process's state is looked at
        between short waits: TargetExited when it is exiting, not a hang.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self._wait(max(0.0, min(_EXIT_POLL, deadline - time.monotonic())))
            if status is not None:
                return status
            if exiting(self.pid, self.tid):
                raise TargetExited(f"thread {self.tid} of process {self.pid} is exiting (the process was killed "
                                   "or exited)")  # fmt: skip
            if time.monotonic() >= deadline:
                raise ProcessError(f"thread {self.tid} did not stop within {timeout:g} s ({self._whereabouts()})")

    def _whereabouts(self) -> str:
        """What /proc says the thread is doing, for an error about a stop that never came (a
        thread asleep uninterruptibly, 'D', cannot stop; 't' is a ptrace stop nobody reported)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.tid}/wchan") as f:
                wchan = f.read().strip() or "-"
        except OSError:
            wchan = "?"
        state = task_state(self.pid, self.tid)
        return f"state {state.decode() if state else 'gone'}, kernel wait channel {wchan}"

    def _wait(self, timeout: float | None, resumed: bool = False) -> int | None:
        status = waitpid(self.tid, timeout, resumed, None if self.pinned is None else self.unpin)
        if status is not None:
            self._check_exit(status)
        return status

    def _check_exit(self, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.traced = False
            what = (
                f"exited with status {os.WEXITSTATUS(status)}"
                if os.WIFEXITED(status)
                else f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
            )
            raise TargetExited(f"thread {self.tid} of process {self.pid} {what}")

    @staticmethod
    def _is_event_stop(status: int) -> bool:
        return (status >> 16) == ptrace.PTRACE_EVENT_STOP


def task_state(pid: int, tid: int | None = None) -> bytes | None:
    """The state letter of process ``pid`` (or its thread ``tid``) in /proc/.../stat, after the
    command name in parentheses (b"R", b"S", b"Z"...); None when it is gone from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        # os.open and one read: a buffered open() adds 6 system calls (fstat, ioctl, lseek...),
        # and this is read before every unbatched call (CallEngine._look_preferred).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            line = os.read(fd, 4096)  # pid, comm (at most 64 bytes) and 50 numbers: well under a page
        finally:
            os.close(fd)
        return line.rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return None


def cpu_time(pid: int, tid: int) -> float | None:
    """Seconds thread ``tid`` has run on a CPU (/proc/PID/task/TID/schedstat, in ns); None once it
    is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class TaskStat:
    """A thread's /proc/PID/task/TID/stat kept open, its state letter re-read with one pread:
    ~5 µs, where opening the path again costs ~11 µs more (/proc's lookup) before every
    unbatched call (CallEngine._look_preferred). The file stays the thread's: once it has
    exited, reads fail, even if its id is reused."""

    def __init__(self, pid: int, tid: int) -> None:
        self.pid = pid
        self.tid = tid
        self._file = open(f"/proc/{pid}/task/{tid}/stat", "rb", buffering=0)  # closed with the object too
        self._syscall: int | None = None  # /proc/PID/task/TID/syscall, opened when first asked

    def state(self) -> bytes | None:
        """The state letter (as :func:`task_state`); None once the thread is gone."""
        try:
            return os.pread(self._file.fileno(), 4096, 0).rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            return None

    def in_futex(self) -> bool:
        """Whether the thread sleeps in futex(2) (the system call's number first in
        /proc/PID/task/TID/syscall, ~1 µs a pread): a Go M parked idle (notesleep) does."""
        try:
            if self._syscall is None:
                self._syscall = os.open(f"/proc/{self.pid}/task/{self.tid}/syscall", os.O_RDONLY | os.O_CLOEXEC)
            return os.pread(self._syscall, 32, 0).split(b" ", 1)[0] == _FUTEX
        except OSError:
            return False

    def close(self) -> None:
        self._file.close()
        if self._syscall is not None:
            os.close(self._syscall)
            self._syscall = None


class TaskStates:
    """The stat files of a process's threads kept open (:class:`TaskStat`), at most ``limit``:
    their state letters, one pread each, looked at before every unbatched call that finds no
    goroutine on the last call's thread (CallEngine._candidate_tids): ~40 µs less a call for a
    program of 5 threads than opening each path again."""

    def __init__(self, pid: int, limit: int = 64) -> None:
        self.pid = pid
        self.limit = limit
        self._files: dict[int, TaskStat] = {}

    def state(self, tid: int) -> bytes | None:
        """As :func:`task_state` for thread ``tid``."""
        f = self._files.get(tid)
        if f is not None:
            if (got := f.state()) is not None:
                return got
            del self._files[tid]  # exited: its id may be another thread's now, opened again below
            f.close()
        if len(self._files) >= self.limit:
            return task_state(self.pid, tid)
        try:
            f = self._files[tid] = TaskStat(self.pid, tid)
        except OSError:
            return None
        return f.state()

    def tids(self) -> list[int]:
        """The threads whose state was read (whose files are open)."""
        return list(self._files)

    def in_futex(self, tid: int) -> bool:
        """As :meth:`TaskStat.in_futex`, for a thread whose state was read (False for others)."""
        f = self._files.get(tid)
        return f is not None and f.in_futex()

    def keep_only(self, tids: Collection[int]) -> None:
        """Close the files of threads not in ``tids`` (exited)."""
        for tid in [t for t in self._files if t not in tids]:
            self._files.pop(tid).close()

    def close(self) -> None:
        self.keep_only(())


def exiting(pid: int, tid: int | None = None) -> bool:
    """Process ``pid`` (or its thread ``tid``) has exited or is exiting: gone from /proc, or a zombie."""
    return task_state(pid, tid) in (None, b"Z", b"X", b"x")


def signal_pending(tid: int, sig: int) -> bool:
    """Whether ``sig`` is queued for the stopped thread ``tid`` and not blocked by it: the thread
    takes it at its next return to user mode. (Two ptrace requests only when it is queued; read
    from /proc/.../status before, ~25 µs a thread, each thread of a catch of parked goroutines
    paid it when detached.)"""
    return sig in ptrace.queued_signals(tid) and not ptrace.blocked_signals(tid) & 1 << (sig - 1)


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


def traced_by_us(pid: int, tid: int) -> bool:
    """Whether this process is ``tid``'s tracer (TracerPid in /proc/.../status)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("TracerPid:")), 0) == os.getpid()
    except OSError:
        return False
