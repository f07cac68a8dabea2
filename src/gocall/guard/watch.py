"""A guardian for the call in flight when gocall is killed outright (SIGKILL, the OOM killer).

No handler runs on SIGKILL. The kernel detaches gocall's tracee and resumes it; run on by
itself, the thread reaches the next INT3 of debugCallV2 untraced, and a SIGTRAP is fatal to a
Go program. So the session's first call forks a guardian (twice: init reaps it; in a session of
its own: a terminal hangup or a process-group kill does not reach it) that sleeps on a pidfd of
gocall. gocall writes what the guardian needs into a slot the two share (an anonymous MAP_SHARED
mapping made before the fork: plain stores, no system call, no message): the open run's saved
registers, XSAVE image and lock (Go < 1.21), and the registers of the trap the thread waits at.
When gocall ends, the guardian reads the slot: a run open, it seizes the thread, puts it back at
its trap, finishes debugCallV2 and restores the thread exactly as gocall would have
(call/protocol.py ``see_through``), detaches; then it looks at the other threads once (below),
and exits. A gocall server's child (cli/server.py) forks no guardian: the server, its parent,
shares a slot with it and, when the child ends with a run open (or its net in), forks one that
does the same (:func:`guarded_by_parent`).

What a kill resumes the thread with (measured, kernel 6.18): a stop its tracer has *waited for*
resumes with no signal (wait_task_stopped clears the stop's exit_code, which is the signal a
tracer's death delivers), whatever kind of stop it is; only a stop not collected yet takes its
SIGTRAP. Either way the thread runs on by itself from a trap, or toward one.

With the trap net (guard/net.py: runtime.testSigtrap pointed at runtime.abort's ``JMP .`` while
the guardian watches), the next INT3 of debugCallV2 it reaches untraced, or the SIGTRAP it was
stopped for, leaves it spinning inside the runtime's signal handler; the guardian seizes it
(~1 ms: pidfd wake-up, PTRACE_SEIZE), lets it out of the handler to run the INT3 again, traced
now, and finishes the run from that trap. So the thread is not parked at R12=0 and 1: from
those traps it runs into the net by itself. After R12=16 no INT3 follows, and the runtime's tail
must not run (it leaves RFLAGS and the X registers changed, below): while its net is in, the
session keeps an INT3 on the tail's first instruction (:attr:`Watch.tail`: written once, after
its entry in the breakpoint table below, and taken out just before the net). gocall performs the
tail itself at R12=16 (call/protocol.py ``_restore``) and never lets it run, so no thread reaches
that INT3 while gocall lives; a thread let go at R12=16 reaches it untraced, into the net, and
the guardian, which keeps that one INT3 in until the run is seen through, lets it out to run it
again, traced: that stop, its PC put back by one, is the R12=16 trap again. (A hardware
breakpoint armed on the run's thread did this before: three PTRACE_POKEUSER per guarded call,
each DR7 write an IPI of 15-19 us.) The run's state is in the slot before the thread is sent
into debugCallV2 (``_ENTERING``: a thread found running then, which has not trapped within a
second, never entered). Once the run is seen through, every other thread nobody traces is seized
once (``_sweep``): a single step or hardware breakpoint of gocall's search for a thread
(call/advance.py) outlives its death, as the debug registers and a queued SIGTRAP survive the
detach; their debug registers are cleared, a thread the net holds for such a SIGTRAP let go on;
then the net is taken out.

Without a net (no ``runtime.testSigtrap`` found, no room for its funcval, or the hook already
set), at each trap gocall has collected the thread waits parked (Injector._park, one SETREGS):
its PC in runtime.procyield's PAUSE loop, where a kill leaves it spinning until the guardian
seizes it and puts the trap's registers back. Not runtime.abort's ``JMP .`` outside a handler:
the runtime turns any signal that lands on abort's PC (a preemption SIGURG) into a fatal error.

What is covered, and what is not (bench/guard_window.py measures it):

* with a net: every moment of a run, from just before its thread is sent into debugCallV2 to
  its restore (a callee in flight however long), and a thread gocall's search for a thread was
  single-stepping or had hardware breakpoints on;
* with a net, breakpoints in (a session with ``guard`` that set breakpoints: ``gocall attach``,
  ``gocall call --break``, ``attach(pid, guard=True)``; the guardian is started before the first
  INT3 goes in, session.py ``Process.debugger``): every INT3 gocall wrote is in the slot's table
  (``Watch.breakpoint``, appended before the INT3 is written; nothing per hit or step). The
  guardian puts every original byte back first, lets a thread the net caught on one of them run
  the original instruction (Net.release ``retired``), then sees through a run of a call at a
  stop, of a call lent a thread while the program runs, or kept open at a stop between two
  evaluations (stops/calls.py ``held``) like any other: the tail's INT3 covers those runs too;
* not covered, with a net: the instants between the restore's last SETREGS and the slot marked
  idle (the thread restored, nothing lost); a thread that runs ``_ENTRY_CPU`` of CPU time
  between the kill and its first trap (taken for one that never entered; none does); a thread in
  a displaced step over a breakpoint (process/displaced.py) when gocall dies: a signal pending
  then (the preemption SIGURG, nearly always) lands on a PC in the padding, which the runtime
  throws on ("invalid pc-encoded table"; 4 of 4 kills there, both releases). Its signals blocked
  for the step (PTRACE_SETSIGMASK twice: 3.4 us of CPU, ~4% of a false-condition hit) would be
  half of a fix: SIGTRAP must stay unblocked (a forced signal that is blocked is delivered with
  SIG_DFL), so the thread runs the copy into the slot's INT3, into the net, and the guardian
  would need the slots and the thread's own mask in the slot to send it on; a signal of the
  program's whose stop gocall had collected and not passed on yet (the kernel's detach drops it:
  mostly a preemption SIGURG); ``gocall run``'s program, killed with gocall by design
  (PTRACE_O_EXITKILL); a session without ``guard``;
* not safe while a guarded session with a net lives: another debugger's call injection (Delve
  single-steps the runtime's tail after R12=16, and would step the tail's INT3); that debugger
  can attach between gocall's calls, and finds the text as built once the session ends;
* without a net: each round trip from a resume to gocall collecting the next trap, three per call
  (into debugCallV2 to R12=0, the callee to R12=1, on to R12=16): a kill in it delivers the
  SIGTRAP (~40% of the kills of a back-to-back short-call loop).

While the net is in, a SIGTRAP the program raises itself (``runtime.Breakpoint()`` untraced) is
held by the net until gocall's session ends instead of killing the program then.

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
import logging
import mmap
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from ..errors import GocallError, ProcessError, PtraceError
from ..process import affinity, ptrace
from ..process.memory import Memory
from ..process.regs import user_regs_struct
from ..process.permissions import tracers
from ..process.threads import Thread, cpu_time, task_state, thread_ids
from ..process.waiting import interrupts, waitpid
from ..call.lock import Lock
from ..call.protocol import EPILOGUE_RELOADS, INT3, Run
from ..runtime.layouts import Layout
from . import pending
from .net import Net
from .alone import live_alone

if TYPE_CHECKING:
    from ..call.protocol import Injector

log = logging.getLogger("gocall.call")

# The slot's state word: 0 idle; _OPEN a debugCallV2 run is open on the thread (it runs toward a
# trap, or waits at one); _RESTORING it is at the R12=16 trap, parked, or restored already;
# _ENTERING it is sent into debugCallV2, or about to be (with a trap net only).
_OPEN, _RESTORING, _ENTERING = 1, 2, 3
# How long a guardian waits for a thread found _ENTERING to reach its first trap before it takes it
# for one that never entered: from debugCallV2's entry to its first INT3 nothing blocks, and it
# runs for microseconds (debugCallCheck). So in the thread's CPU time, not the clock's (on a loaded
# machine a thread that did enter may wait for a CPU longer than any wall-clock limit), and a
# thread found asleep (blocked in a system call) is not on its way there. The clock's limit is the
# last resort, for a thread that neither runs nor sleeps (state D).
_ENTRY_CPU = 0.1
_ENTRY_WAIT = 30.0
# The slot: state, the target's pid, tid, g, capacity, has_lock, Lock's first 4 fields, xstate length,
# the callee's PC, the net installed by this session, Lock's g; then the saved registers, the frame's registers
# (where callees start), the registers of the trap the thread is parked at (call/protocol.py
# Injector._park), and the XSAVE image.
_HEAD = struct.Struct("<14Q")
_NET_AT = 12 * 8
_REGS = ctypes.sizeof(user_regs_struct)
_SAVED, _READY, _PARKED = _HEAD.size, _HEAD.size + _REGS, _HEAD.size + 2 * _REGS
_XSTATE = _PARKED + _REGS
# Then the table of gocall's software breakpoints (process/swbreak.py): a count, then (address,
# original byte) pairs, appended before each INT3 goes in and never rewritten, so that a kill
# mid-write leaves it as it was. Every address ever used, removed ones too: a byte put back
# already is left as it is.
_BREAKS = _XSTATE + 16384
_BREAK = struct.Struct("<QQ")
_MAX_BREAKS = 4096
# Then the thread whose CPU mask gocall has narrowed (process/affinity.py), if any: its tid (0:
# none) and its own mask, CPUs 0-1023 as in a cpu_set_t, for the guardian to give back.
_PIN = _BREAKS + 8 + _MAX_BREAKS * _BREAK.size
_PIN_MASK = struct.Struct("<16Q")
_SIZE = _PIN + 8 + _PIN_MASK.size
_STOP_TIMEOUT = 5.0
_CLOSED = b"."
_GWAITING, _GSCAN = 4, 0x1000  # runtime/runtime2.go: the interrupted goroutine while the call runs
# runtime.procyield's loop, ``again: PAUSE; SUBL $1, AX; JNZ again`` (asm_amd64.s, every release).
# Not runtime.abort's ``JMP .``: the runtime makes any signal that lands on abort's PC fatal.
SPIN = bytes.fromhex("f390" "83e801" "75f9")
_TAIL_BYTE = EPILOGUE_RELOADS[:1]  # the first byte of debugCallV2's tail, under Watch.tail's INT3


class Watch:
    """gocall's side: the shared slot, the trap net (guard/net.py) if the target has one, and the
    guardian sleeping on gocall's pidfd and on a pipe whose end :meth:`close` closes (the session
    is over: the guardian exits). Starting it costs gocall a fork (~2 ms CPU) and, with a net, two
    writes to the target; no wait: the guardian gets ready on its own. In a gocall server's child
    the server guards instead (:func:`guarded_by_parent`): no fork."""

    def __init__(self, guardian: Guardian) -> None:
        global _parent_slot
        self.spin = guardian.spin  # see Guardian
        # debugCallV2's tail, where this session keeps an INT3 while its net is in (see above): a
        # run's thread let go at R12=16 goes into the net, not through the tail. None: no INT3.
        self.tail: int | None = None
        self.pid = guardian.injector.thread.pid
        self._child = 0
        self._mem = guardian.injector.mem
        self._xstate = b""  # the XSAVE image in the slot
        self._breaks = 0  # entries in the slot's breakpoint table
        if _parent_slot is not None:  # one session at a time uses it; another forks its own guardian
            self.slot, _parent_slot = _parent_slot, None
        else:
            self.slot = new_slot()
            r, self._session = os.pipe()
            self._child = _fork(self.slot, guardian, r)
            os.close(r)
        # Installed once a guardian is there to take it out if gocall dies now.
        net = guardian.net
        self.net = net if net is not None and net.install(self._mem) else None
        struct.pack_into("<QQ", self.slot, 0, 0, self.pid)
        struct.pack_into("<Q", self.slot, _NET_AT, self.net is not None)
        struct.pack_into("<Q", self.slot, _BREAKS, 0)
        if self.net is not None and guardian.tail is not None and self._mem.read(guardian.tail, 1) == _TAIL_BYTE:
            self.breakpoint(guardian.tail, _TAIL_BYTE)
            self._mem.write(guardian.tail, INT3)
            self.tail = guardian.tail

    def close(self) -> None:
        """The session is over: the net out, the guardian exits (and the fork between, long gone,
        is reaped)."""
        global _parent_slot
        if self.tail is not None:  # before the net: a thread let go on it would die of its SIGTRAP
            with contextlib.suppress(GocallError, OSError):  # the target gone: nothing to take out
                _put_back(self._mem, {self.tail: _TAIL_BYTE[0]})
            self.tail = None
        if self.net is not None:
            with contextlib.suppress(GocallError, OSError):  # the target gone: nothing to take out
                self.net.remove(self._mem)
            self.net = None
            struct.pack_into("<Q", self.slot, _NET_AT, 0)
        struct.pack_into("<Q", self.slot, _BREAKS, 0)  # the session's breakpoints are out (Debugger.release)
        if not self._child:  # the parent's slot: idle, and free for the next session
            self.idle()
            _parent_slot = self.slot
            return
        os.write(self._session, _CLOSED)  # not just closed: gocall's death closes it too
        os.close(self._session)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._child, 0)

    def active(self, tid: int, run: Run, fn: int, parked: user_regs_struct, restoring: bool = False) -> None:
        """A run is open on ``tid``: what the guardian needs if gocall dies now. ``parked``: the
        registers of the trap the thread is parked at, used when the guardian finds it spinning;
        ``fn``: the function called (0: none yet); ``restoring``: at the R12=16 trap. The XSAVE
        image is written again unless the run's was written by :meth:`entering` on this thread
        (a trap net: three of these per call)."""
        self._write(_RESTORING if restoring else _OPEN, tid, run, fn, parked, run.xstate is not self._xstate)

    def entering(self, tid: int, run: Run) -> None:
        """``run`` is about to start on ``tid``: it may or may not have entered debugCallV2."""
        self._write(_ENTERING, tid, run, 0, run.regs, True)

    def entered(self) -> None:
        """The thread of :meth:`entering` is sent into debugCallV2."""
        struct.pack_into("<Q", self.slot, 0, _OPEN)

    def _write(self, state: int, tid: int, run: Run, fn: int, parked: user_regs_struct, xstate: bool) -> None:
        slot, locked = self.slot, run.locked
        slot[_SAVED:_XSTATE] = bytes(run.regs) + bytes(run.ready) + bytes(parked)
        if xstate:
            slot[_XSTATE : _XSTATE + len(run.xstate)] = self._xstate = run.xstate
        _HEAD.pack_into(slot, 0, state, self.pid, tid, run.g, run.capacity, locked is not None,
                        *(locked.m, locked.lockedg, locked.locked_ext, locked.locked_int) if locked else (0,) * 4,
                        len(run.xstate), fn, self.net is not None, locked.g if locked else 0)  # fmt: skip

    def breakpoint(self, addr: int, original: bytes) -> None:
        """An INT3 of gocall's goes in at ``addr`` over ``original`` (process/swbreak.py
        ``SoftwareBreakpoints.record``): if gocall dies with it in, the guardian puts the byte back
        and lets a thread that trapped on it run the original instruction. Told once per address,
        before the INT3 is written; nothing per hit or step."""
        n = self._breaks
        if n >= _MAX_BREAKS:
            if n == _MAX_BREAKS:
                log.warning("more than %d breakpoint addresses: a kill of gocall would leave the later ones in", n)
            self._breaks = n + 1
            return
        _BREAK.pack_into(self.slot, _BREAKS + 8 + n * _BREAK.size, addr, original[0])
        self._breaks = n + 1
        struct.pack_into("<Q", self.slot, _BREAKS, n + 1)  # after the entry: the table is whole at any moment

    def pinned(self, tid: int, mask: frozenset[int] | None) -> None:
        """``tid`` is about to be narrowed (to gocall's CPU for the protocol's steps, or to the
        others for a woken thread's last step), ``mask`` its own (process/threads.py ``Thread.on_pin``); None: it
        has its mask back. The tid is written after the mask: the record is whole at any moment."""
        if mask is None:
            struct.pack_into("<Q", self.slot, _PIN, 0)
            return
        words = [0] * 16
        for cpu in mask:
            if cpu < 1024:
                words[cpu >> 6] |= 1 << (cpu & 63)
        _PIN_MASK.pack_into(self.slot, _PIN + 8, *words)
        struct.pack_into("<Q", self.slot, _PIN, tid)

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
    net: Net | None = None  # the trap net (guard/net.py), if the target has room for one
    tail: int | None = None  # debugCallV2's tail after R12=16, where Watch.tail's INT3 goes (None: not the known code)


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
    """The target's pid if a run is open in ``slot`` (its gocall ended mid-call), or the net its
    session put in is still there (it was killed), or a thread is narrowed to its CPU, else None."""
    head = _HEAD.unpack_from(slot, 0)
    pinned = struct.unpack_from("<Q", slot, _PIN)[0]
    return head[1] if head[0] or head[_NET_AT // 8] or _breakpoints(slot) or pinned else None


def _breakpoints(slot: mmap.mmap) -> dict[int, int]:
    """gocall's breakpoints as the slot has them: address -> original byte."""
    (n,) = struct.unpack_from("<Q", slot, _BREAKS)
    return dict(_BREAK.unpack_from(slot, _BREAKS + 8 + i * _BREAK.size) for i in range(min(n, _MAX_BREAKS)))


def _put_back(mem: Memory, breaks: dict[int, int]) -> None:
    """The original bytes under gocall's INT3s back, first thing: every thread runs already."""
    for addr, byte in breaks.items():
        if mem.read(addr, 1) == INT3:
            mem.write(addr, bytes([byte]))


def see_through(slot: mmap.mmap, guardian: Guardian) -> None:
    """The run open in ``slot``, if any, seen through and its thread restored (gocall has ended:
    the kernel has let the thread go); then every other thread looked at once, and the net
    taken out (:func:`_sweep`)."""
    state, pid, tid, g, capacity, has_lock, m, lockedg, ext, internal, xlen, fn, net, locked_g = _HEAD.unpack_from(slot, 0)
    if not pid:
        return
    # First: a narrowed thread that runs on (the rescue runs it, or the net lets it out) starts
    # threads with its mask. Those a callee started between gocall's death and now keep it.
    _unpin(slot)
    mem = guardian.injector.mem = Memory(pid)  # a guardian's own: gocall's was closed with its other files
    breaks = _breakpoints(slot)
    # The tail's INT3 (Watch.tail) stays in while the run is seen through: its thread, let go at
    # R12=16, is caught on it (in the net, or on its way there), and runs it again, traced.
    early = {addr: byte for addr, byte in breaks.items() if addr != guardian.tail}
    with contextlib.suppress(GocallError, OSError):  # nothing to tell anyone: gocall is gone
        _put_back(mem, early)
    if state:
        regs, ready, parked = (user_regs_struct.from_buffer_copy(slot[at : at + _REGS])
                               for at in (_SAVED, _READY, _PARKED))  # fmt: skip
        run = Run(regs, bytes(slot[_XSTATE : _XSTATE + xlen]), ready, capacity, g,
                  Lock(m, lockedg, ext, internal, locked_g) if has_lock else None)  # fmt: skip
        if early:
            # Threads that ran into our INT3s before the bytes were back spin in the net, their Ps
            # held: out first, the run may wait for them (a callee's GC stops the world).
            with contextlib.suppress(GocallError, OSError):
                _sweep(pid, tid, guardian.net, mem, False, early)
        with contextlib.suppress(GocallError, OSError):
            _rescue(guardian, run, parked, state, fn, tid, early)
    # The tail's byte back, then the other threads after the run's; the net out before they run again.
    with contextlib.suppress(GocallError, OSError):
        _put_back(mem, breaks)
    with contextlib.suppress(GocallError, OSError):
        _sweep(pid, tid if state else 0, guardian.net, mem, bool(net), breaks)


def _unpin(slot: mmap.mmap) -> None:
    """A thread whose CPU mask gocall had narrowed when it died (:meth:`Watch.pinned`) gets its
    own back (the rescue narrows nothing: its thread's options are not gocall's, and it steps no
    run with ``narrow``)."""
    (tid,) = struct.unpack_from("<Q", slot, _PIN)
    if tid:
        words = _PIN_MASK.unpack_from(slot, _PIN + 8)
        affinity.unpin(tid, frozenset(i << 6 | b for i, w in enumerate(words) for b in range(64) if w >> b & 1))
        struct.pack_into("<Q", slot, _PIN, 0)


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


def _rescue(guardian: Guardian, run: Run, parked: user_regs_struct, state: int, fn: int, tid: int,
            breaks: dict[int, int]) -> None:  # fmt: skip
    """Seize the thread the kernel let go, stop it, and see the run through: from the trap it was
    parked at (it spins at ``guardian.spin``), from the trap it stopped at, out of the net, or
    after its callee returns. ``breaks``: gocall's breakpoints, their bytes back (the callee may
    have run into one before); not the tail's (Watch.tail), still in."""
    injector, layout, mem = guardian.injector, guardian.layout, guardian.injector.mem
    pid = mem.pid
    interrupts.signal, interrupts.count = None, 0
    try:
        ptrace.seize(tid)
    except PtraceError:
        return  # gone (the process died of it already), or someone else's
    thread = Thread(pid, tid)
    thread.traced = True
    thread.hw_armed = True  # a hardware breakpoint of call/advance.py's search, if any: cleared by the detach
    stopped = _stop(thread)
    if stopped is None:
        return
    now, trapped = stopped
    goroutine = mem.u64((run.g or run.regs.r14) + layout.g_goid)
    pending.record(pending.Pending(pid, tid, goroutine, guardian.name(fn) if fn else "debugCallV2", os.getpid(),
                                   time.time()))  # fmt: skip
    try:
        if guardian.spin is not None and guardian.spin <= now.rip < guardian.spin + len(SPIN):  # in the loop
            ptrace.setregs(tid, parked)  # back at the trap, as gocall left it
            injector.see_through(run, thread, parked)
        elif trapped:
            # At a trap: the callee returned just now, or the tail's INT3's SIGTRAP came first.
            injector.see_through(run, thread, _at_restore(guardian, now))
        elif guardian.net is not None and guardian.net.holds(now):
            # Out of the net: to trap again (an INT3 of the run's, the tail's), or at a breakpoint
            # of gocall's, its byte back. There, at R12=16 (a run without the tail's INT3 and not
            # parked), the thread ran the runtime's tail: nothing left to restore; _ENTERING, it
            # was at that breakpoint, a stop's thread, and may never have entered.
            if guardian.net.release(tid, mem, now, retired=breaks) or state != _RESTORING:
                now = ptrace.getregs(tid)
                trap = _first_trap(thread, guardian.net, mem, now, state == _ENTERING, breaks)
                if trap is not None:
                    injector.see_through(run, thread, _at_restore(guardian, trap))
        elif state == _RESTORING:  # at the R12=16 trap; on the tail's INT3; or restored already: nothing to do
            if now.rip == parked.rip:  # not run on yet
                injector.see_through(run, thread, now)
            elif guardian.net is not None and guardian.tail is not None and (now.rip == guardian.tail + 1
                                                                              or _in_handler(tid)):  # fmt: skip
                # Past the tail's INT3, its SIGTRAP pending (the interrupt's stop comes first), or
                # in the signal handler on its way to the net (or restored, in some other handler).
                trap = _first_trap(thread, guardian.net, mem, now, True, breaks)
                if trap is not None:
                    injector.see_through(run, thread, _at_restore(guardian, trap))
        elif guardian.net is not None:  # it runs toward a trap, or is in the net already
            trap = _first_trap(thread, guardian.net, mem, now, state == _ENTERING, breaks)
            if trap is not None:  # else it never entered debugCallV2
                injector.see_through(run, thread, _at_restore(guardian, trap))
        elif struct.unpack("<I", mem.read(run.regs.r14 + layout.g_atomicstatus, 4))[0] & ~_GSCAN == _GWAITING:
            injector.see_through(run, thread)
        thread.detach()
    finally:
        pending.forget(pid, tid)


def _at_restore(guardian: Guardian, regs: user_regs_struct) -> user_regs_struct:
    """The registers of a trap of the run: a stop after the tail's INT3 (Watch.tail) is the R12=16
    trap's, that INT3 having changed nothing but the PC."""
    if guardian.tail is not None and regs.rip == guardian.tail + 1:
        regs.rip = guardian.tail
    return regs


def _stop(thread: Thread) -> tuple[user_regs_struct, bool] | None:
    """Stop the seized, running ``thread``: its registers, and whether it stopped at a trap (an
    INT3 it ran traced); None if it exited."""
    ptrace.interrupt(thread.tid)
    status = waitpid(thread.tid, _STOP_TIMEOUT)
    if status is None or os.WIFEXITED(status) or os.WIFSIGNALED(status):
        return None
    thread.stopped = True
    event, sig = status >> 16, os.WSTOPSIG(status)
    # Any stop will do. A signal's stop (a preemption SIGURG, every 10 ms to a thread that spins)
    # may come first and then cancels the interrupt (kernel/signal.c ptrace_stop: "any trap
    # clears pending STOP trap"): waiting on for the interrupt's stop would wait for ever. The
    # signal is delivered at the first resume.
    if not event and sig != signal.SIGTRAP:
        thread.deferred.append(sig)
    return ptrace.getregs(thread.tid), not event and sig == signal.SIGTRAP


def _first_trap(thread: Thread, net: Net, mem: Memory, now: user_regs_struct,
                elsewhere: bool, breaks: dict[int, int]) -> user_regs_struct | None:  # fmt: skip
    """The registers of the next trap of the run, however the thread gets there: traced now, it
    stops at its next INT3; but if it took one untraced before it was seized, it was in the signal
    handler on its way to the net, or in it, and spins there without a stop. So the wait is looked
    at after 10 ms, then less and less often (a callee may run for ever), for the thread in the net.
    ``elsewhere``: the thread may be running outside debugCallV2 (it never entered, or was restored
    already); None once it has run ``_ENTRY_CPU`` of CPU time, or is found asleep, without a trap
    and outside the net."""
    wait, waited = 0.01, 0.0
    ran = cpu_time(thread.pid, thread.tid) if elsewhere else None
    while True:
        if net.holds(now):
            net.release(thread.tid, mem, now, retired=breaks)
        stop = thread.run_until_trap(wait)
        if stop is not None:
            return stop.regs
        waited += wait
        wait = min(wait * 4, 1.0)
        asleep = elsewhere and task_state(thread.pid, thread.tid) == b"S"
        stopped = _stop(thread)
        if stopped is None:
            raise ProcessError(f"thread {thread.tid} exited while the call ran")
        now, trapped = stopped
        if trapped:
            return now
        if elsewhere and not net.holds(now) and (asleep or waited >= _ENTRY_WAIT or _ran(thread, ran) >= _ENTRY_CPU):
            return None


def _ran(thread: Thread, since: float | None) -> float:
    """The CPU time ``thread`` has run since ``since`` (its :func:`cpu_time` then), in seconds."""
    now = cpu_time(thread.pid, thread.tid)
    return now - since if now is not None and since is not None else 0.0


def _sweep(pid: int, skip: int, net: Net | None, mem: Memory, ours: bool, breaks: dict[int, int]) -> None:
    """Every thread but the run's (``skip``) that nobody traces, seized once: a single step or a
    hardware breakpoint of gocall's (call/advance.py, the search for a thread) outlives its death
    (the debug registers and a queued SIGTRAP survive the detach): its SIGTRAP, dropped here or
    held by the net, would be fatal. Each thread's debug registers are cleared (Thread.detach,
    hw_armed), a thread in the net let out. One found inside a signal handler on its way to the
    net (SIGTRAP blocked) is let run a moment and looked at again. The net is taken out (if
    ``ours``) before they run again: a thread it held on an INT3 that is not the run's (the
    program's own ``runtime.Breakpoint()``) meets it as it would have without gocall. A thread
    it held on one of gocall's breakpoints (``breaks``, their bytes back) is let out to run the
    original instruction at the breakpoint's address."""
    held = []
    try:
        traced = tracers(pid)
        for tid in thread_ids(pid):
            if tid == skip or traced.get(tid):
                continue
            try:
                ptrace.seize(tid)
            except PtraceError:
                continue
            thread = Thread(pid, tid)
            thread.traced = thread.hw_armed = True
            held.append(thread)  # detached below whatever happens here: its debug registers cleared then
            with contextlib.suppress(GocallError, OSError):  # one thread's trouble does not end the sweep
                _look_at(thread, net, mem, breaks)
    finally:
        if ours and net is not None:
            net.remove(mem)
        for thread in held:
            with contextlib.suppress(GocallError, OSError):
                thread.detach()


def _look_at(thread: Thread, net: Net | None, mem: Memory, breaks: dict[int, int]) -> None:
    """Stop a seized thread of the sweep; drop a SIGTRAP of gocall's it stopped for, let it out of
    the net, or wait for it to get there if it is in a signal handler (see :func:`_sweep`)."""
    for _ in range(_HANDLER_LOOKS):
        stopped = _stop(thread)
        if stopped is None:
            return
        regs, trapped = stopped
        if trapped and ptrace.getsiginfo_code(thread.tid) not in (ptrace.TRAP_TRACE, ptrace.TRAP_HWBKPT, ptrace.TRAP_PERF):
            thread.deferred.append(signal.SIGTRAP)  # the program's own: it gets it, as without gocall
        if net is not None and net.holds(regs):
            net.release(thread.tid, mem, regs, retired=breaks)
            return
        if not _in_handler(thread.tid):
            return
        thread.resume()
        time.sleep(0.002)


_HANDLER_LOOKS = 50


def _in_handler(tid: int) -> bool:
    """Whether the stopped thread runs a signal handler, by its blocked SIGTRAP (SigBlk): the Go
    runtime blocks every signal in its handlers (and while it creates a thread), nowhere else."""
    try:
        return bool(ptrace.blocked_signals(tid) & 1 << (signal.SIGTRAP - 1))
    except PtraceError:
        return False  # gone: nothing left to let out
