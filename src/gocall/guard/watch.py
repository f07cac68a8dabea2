"""A guardian for the call in flight when gocall is killed outright (SIGKILL, the OOM killer).

No handler runs on SIGKILL. The kernel detaches gocall's tracee and resumes it; run on by
itself, the thread reaches the next INT3 of debugCallV2 untraced, and a SIGTRAP is fatal to a
Go program. So the session's first call forks a guardian (twice: init reaps it; in a session of
its own: a terminal hangup or a process-group kill does not reach it) that sleeps on a pidfd of
gocall. gocall writes what the guardian needs into a slot the two share (an anonymous MAP_SHARED
mapping made before the fork: plain stores, no system call, no message): the open run's saved
registers, XSAVE image and lock (Go < 1.21), and the registers of the trap the thread waits at.
When gocall ends, the guardian reads the slot: idle, it exits; a run open, it seizes the thread,
puts it back at its trap, finishes debugCallV2 and restores the thread exactly as gocall would
have (call/protocol.py ``see_through``), detaches, exits. A gocall server's child (cli/server.py)
forks no guardian: the server, its parent, shares a slot with it and, when the child ends with a
run open, forks one that does the same (:func:`guarded_by_parent`).

What a kill resumes the thread with (measured, kernel 6.18): a stop its tracer has *waited for*
resumes with no signal (wait_task_stopped clears the stop's exit_code, which is the signal a
tracer's death delivers), whatever kind of stop it is; only a stop not collected yet takes its
SIGTRAP. So at each trap gocall has collected, the thread waits parked (Injector._park, one
SETREGS): its PC in runtime.procyield's PAUSE loop, where a kill leaves it spinning until the
guardian seizes it (~1 ms: pidfd wake-up, PTRACE_SEIZE) and puts the trap's registers back.
Not runtime.abort's ``JMP .``: the runtime turns any signal that lands on abort's PC (a
preemption SIGURG) into a fatal error.

What is covered, and what is not (bench/guard_window.py measures it):

* covered: every moment gocall holds the thread stopped (a trap collected, the thread parked or
  restored, or in the PTRACE_EVENT_STOP of an interrupt), and a callee in flight that runs
  longer than the guardian needs to seize its thread;
* not covered: each round trip from a resume to gocall collecting the next trap, three per call
  (into debugCallV2 to R12=0, the callee to R12=1, on to R12=16): the thread runs debugCallV2's
  code, traps, and waits for gocall to be scheduled and collect the stop. A kill in it delivers
  the SIGTRAP. Microseconds on an idle machine, milliseconds under load (two scheduling
  latencies each); no tracer-side work can shorten it, as the kernel delivers that SIGTRAP
  before any other process can act.

Tried and dropped: clearing ``_SigThrow`` of SIGTRAP in the runtime's ``sigtable`` for the
session, so that the restarted thread ignores the SIGTRAP and debugCallV2 runs to its end by
itself. The program lived, but 3 of 40 kills then left it corrupted (tests/fixtures/calls'
worker: "in-order id 750, want 641"): the runtime's epilogue changes RFLAGS after reloading the
registers (delve#2985) and does not restore the X registers the callee used. A crash is better
than silently wrong results.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from ..errors import PtraceError
from ..process import ptrace
from ..process.memory import Memory
from ..process.regs import user_regs_struct
from ..process.threads import Thread
from ..process.waiting import interrupts, waitpid
from ..call.lock import Lock
from ..call.protocol import Run
from ..runtime.layouts import Layout
from . import pending
from .alone import live_alone

if TYPE_CHECKING:
    from ..call.protocol import Injector

_ACTIVE = 1  # the slot's state word: 0 idle, _ACTIVE a debugCallV2 run is open on the thread
# The slot: state, the target's pid, tid, g, capacity, has_lock, Lock's 4 fields, xstate length, the callee's PC; then
# the saved registers, the frame's registers (where callees start), the registers of the trap the
# thread is parked at (call/protocol.py Injector._park), and the XSAVE image.
_HEAD = struct.Struct("<12Q")
_REGS = ctypes.sizeof(user_regs_struct)
_SAVED, _READY, _PARKED = _HEAD.size, _HEAD.size + _REGS, _HEAD.size + 2 * _REGS
_XSTATE = _PARKED + _REGS
_SIZE = _XSTATE + 16384
_STOP_TIMEOUT = 5.0
_CLOSED = b"."
_GWAITING, _GSCAN = 4, 0x1000  # runtime/runtime2.go: the interrupted goroutine while the call runs
# runtime.procyield's loop, ``again: PAUSE; SUBL $1, AX; JNZ again`` (asm_amd64.s, every release).
# Not runtime.abort's ``JMP .``: the runtime makes any signal that lands on abort's PC fatal.
SPIN = bytes.fromhex("f390" "83e801" "75f9")


class Watch:
    """gocall's side: the shared slot, and the guardian sleeping on gocall's pidfd and on a pipe
    whose end :meth:`close` closes (the session is over: the guardian exits). Starting it costs
    gocall a fork (~2 ms CPU), and no wait: the guardian gets ready on its own. In a gocall
    server's child the server guards instead (:func:`guarded_by_parent`): no fork."""

    def __init__(self, guardian: Guardian) -> None:
        global _parent_slot
        self.spin = guardian.spin  # see Guardian
        self.pid = guardian.injector.thread.pid
        self._child = 0
        if _parent_slot is not None:  # one session at a time uses it; another forks its own guardian
            self.slot, _parent_slot = _parent_slot, None
            return
        self.slot = new_slot()
        r, self._session = os.pipe()
        self._child = _fork(self.slot, guardian, r)
        os.close(r)

    def close(self) -> None:
        """The session is over: the guardian exits (and the fork between, long gone, is reaped)."""
        global _parent_slot
        if not self._child:  # the parent's slot: idle, and free for the next session
            self.idle()
            _parent_slot = self.slot
            return
        os.write(self._session, _CLOSED)  # not just closed: gocall's death closes it too
        os.close(self._session)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._child, 0)

    def active(self, tid: int, run: Run, fn: int, parked: user_regs_struct) -> None:
        """A run is open on ``tid``: what the guardian needs if gocall dies now. ``parked``: the
        registers of the trap the thread is parked at, used when the guardian finds it spinning;
        ``fn``: the function called (0: none yet)."""
        slot, locked = self.slot, run.locked
        slot[_SAVED:_XSTATE] = bytes(run.regs) + bytes(run.ready) + bytes(parked)
        slot[_XSTATE : _XSTATE + len(run.xstate)] = run.xstate
        _HEAD.pack_into(slot, 0, _ACTIVE, self.pid, tid, run.g, run.capacity, locked is not None,
                        *(locked.m, locked.lockedg, locked.locked_ext, locked.locked_int) if locked else (0,) * 4,
                        len(run.xstate), fn)  # fmt: skip

    def idle(self) -> None:
        """No run is open (the thread is restored, or a handover guardian's)."""
        self.slot[0:8] = b"\0" * 8


class Guardian(NamedTuple):
    """What a guardian works with (inherited by the fork, or built by the server's rescuer from
    the target: cli/server.py); call/engine.py ``CallEngine.guardian`` makes it."""

    injector: Injector  # a template: the memory, the protocol's entry points, the lock layout
    layout: Layout
    spin: int | None  # runtime.procyield's PAUSE loop, where a thread waits at a protocol stop (None: not found)
    name: Callable[[int], str]  # a function's name from its PC (the binary gocall read)


# A gocall server's child (cli/server.py) is guarded by the server, its parent: it shares this slot
# with it, made before the fork; when the child ends, the server sees an open run through
# (open_run, see_through). A guardian forked from the child would cost each command ~7 ms of CPU
# on the small benchmark target (bench/cold_attach.py): the two forks of a ~26 MB process, then a
# copy of every page the command writes afterwards, shared with the guardian until then.
_parent_slot: mmap.mmap | None = None


def new_slot() -> mmap.mmap:
    return mmap.mmap(-1, _SIZE)  # MAP_SHARED | MAP_ANONYMOUS: a fork shares it


def guarded_by_parent(slot: mmap.mmap) -> None:
    """This process's calls are guarded by its parent through ``slot`` (see above)."""
    global _parent_slot
    _parent_slot = slot


def open_run(slot: mmap.mmap) -> int | None:
    """The target's pid if a run is open in ``slot`` (its gocall ended mid-call), else None."""
    state, pid = _HEAD.unpack_from(slot, 0)[:2]
    return pid if state == _ACTIVE else None


def see_through(slot: mmap.mmap, guardian: Guardian) -> None:
    """The run open in ``slot``, if any, seen through and its thread restored (gocall has ended:
    the kernel has let the thread go)."""
    state, _, tid, g, capacity, has_lock, m, lockedg, ext, internal, xlen, fn = _HEAD.unpack_from(slot, 0)
    if state == _ACTIVE:
        regs, ready, parked = (user_regs_struct.from_buffer_copy(slot[at : at + _REGS])
                               for at in (_SAVED, _READY, _PARKED))  # fmt: skip
        run = Run(regs, bytes(slot[_XSTATE : _XSTATE + xlen]), ready, capacity, g,
                   Lock(m, lockedg, ext, internal) if has_lock else None)  # fmt: skip
        _rescue(guardian, run, parked, fn, tid)


def _fork(slot: mmap.mmap, guardian: Guardian, session: int) -> int:
    """Start the guardian, forked twice (init reaps it); the pid of the fork between."""
    # Opened here, not by the child from getppid(): gocall may be killed before the child runs
    # (then getppid() is init's, and the guardian would wait for ever).
    watched = os.pidfd_open(os.getpid())
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                _guard(slot, guardian, watched, session)
        finally:
            os._exit(0)
    os.close(watched)
    return child


def _guard(slot: mmap.mmap, guardian: Guardian, watched: int, session: int) -> NoReturn:
    try:
        live_alone(watched, session)
        ended, _, _ = select.select([watched, session], [], [])  # gocall ends, however, or the session
        if session in ended and os.read(session, 1) == _CLOSED:
            os._exit(0)
        # gocall is dying (its files closed, the pipe's end with them): the kernel lets its tracees
        # go only after that, as it ends, which the pidfd tells.
        select.select([watched], [], [])
        see_through(slot, guardian)
    finally:
        os._exit(0)


def _rescue(guardian: Guardian, run: Run, parked: user_regs_struct, fn: int, tid: int) -> None:
    """Seize the thread the kernel let go, stop it, and see the run through: from the trap it was
    parked at (it spins at ``guardian.spin``), or its callee's return, if the call is still on:
    the goroutine it interrupted (R14 of the saved registers, ABIInternal's g) still waits for
    it, or the thread stopped at the callee's trap."""
    injector, layout = guardian.injector, guardian.layout
    pid = injector.thread.pid
    interrupts.signal, interrupts.count = None, 0
    try:
        ptrace.seize(tid)
    except PtraceError:
        return  # gone (the process died of it already), or someone else's
    thread = Thread(pid, tid)
    thread.traced = True
    ptrace.interrupt(tid)
    status = waitpid(tid, _STOP_TIMEOUT)
    if status is None or os.WIFEXITED(status) or os.WIFSIGNALED(status):
        return
    thread.stopped = True
    event, sig = status >> 16, os.WSTOPSIG(status)
    # Any stop will do. A signal's stop (a preemption SIGURG, every 10 ms to a thread that spins)
    # may come first and then cancels the interrupt (kernel/signal.c ptrace_stop: "any trap
    # clears pending STOP trap"): waiting on for the interrupt's stop would wait for ever. The
    # signal is delivered at the first resume.
    if not event and sig != signal.SIGTRAP:
        thread.deferred.append(sig)
    mem = injector.mem = Memory(pid)
    goroutine = mem.u64((run.g or run.regs.r14) + layout.g_goid)
    pending.record(pending.Pending(pid, tid, goroutine, guardian.name(fn) if fn else "debugCallV2", os.getpid(),
                                   time.time()))  # fmt: skip
    try:
        now = ptrace.getregs(tid)
        if guardian.spin is not None and guardian.spin <= now.rip < guardian.spin + len(SPIN):  # in the loop
            ptrace.setregs(tid, parked)  # back at the trap, as gocall left it
            injector.see_through(run, thread, parked)
        elif not event and sig == signal.SIGTRAP:
            injector.see_through(run, thread, now)  # at a trap: the callee returned just now
        elif struct.unpack("<I", mem.read(run.regs.r14 + layout.g_atomicstatus, 4))[0] & ~_GSCAN == _GWAITING:
            injector.see_through(run, thread)
        thread.detach()
    finally:
        pending.forget(pid, tid)
