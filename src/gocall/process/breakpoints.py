"""Hardware execution breakpoints in one thread's debug registers.

Why hardware and not INT3: gocall traces only the thread it works on. An INT3
written into shared text would also be hit by the other, untraced threads of
the Go program, and an untraced thread that executes INT3 dies of SIGTRAP
with the whole process. DR0-DR3 are per thread (the kernel switches them
with the task), so a breakpoint set through PTRACE_POKEUSER fires only on the
thread it was set on, and nothing is written into the target's memory.

DR7 layout (Intel SDM vol. 3, 18.2.4): bit 2n enables DRn locally; bits
16+4n..19+4n select its condition and length, 00/00 = instruction execution.
An execution breakpoint is a fault: the thread stops with RIP *at* the address,
before executing it (the kernel sets RFLAGS.RF so that resuming does not fire
it again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import ProcessError, PtraceError
from . import ptrace

if TYPE_CHECKING:
    from .threads import Thread

SLOTS = 4  # DR0-DR3
_DR7 = 7


def set_breakpoints(thread: Thread, pcs: Sequence[int]) -> None:
    """Arm execution breakpoints at ``pcs`` (at most four) on a stopped thread; ``[]`` disarms.

    An armed thread is marked ``hw_armed``: its detach disarms it again and takes a hit's
    SIGTRAP that may still be queued (Thread.detach), as the debug registers and a queued
    signal both outlive PTRACE_DETACH."""
    if len(pcs) > SLOTS:
        raise ProcessError(f"{len(pcs)} hardware breakpoints asked for; x86 has {SLOTS} debug registers")
    tid = thread.tid
    if thread.hw_armed:
        ptrace.set_debugreg(tid, _DR7, 0)  # disarm first: DR0-3 may only change while unused
    thread.events_only = False
    dr7 = 0
    for n, pc in enumerate(pcs):
        ptrace.set_debugreg(tid, n, pc)
        dr7 |= 1 << (2 * n)
    if dr7:
        thread.hw_armed = True
        ptrace.set_debugreg(tid, _DR7, dr7)
    # DR6 is not written: the kernel ORs each hit's B0-B3 into the thread's copy, which only
    # PTRACE_PEEKUSER reads, and gocall tells its breakpoints apart by the stopped PC (one
    # request less per thread of a catch, call/engine.py _catch_parked).


@contextlib.contextmanager
def breakpoints(thread: Thread, pcs: Sequence[int]) -> Iterator[None]:
    """Breakpoints armed on a stopped thread for the block; disarmed again (the thread
    must be stopped at the end of the block too)."""
    set_breakpoints(thread, pcs)
    try:
        yield
    finally:
        try:
            set_breakpoints(thread, [])
        except PtraceError as e:
            if e.errno != 3:  # ESRCH: the thread is gone, and its debug registers with it
                raise
