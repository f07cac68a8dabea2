"""Calls made at a stop: the stopped thread lent to the call engine as its held thread.

A condition that calls a function (``IsSeven(req.ID)``) and an expression evaluated at a
reported stop both run their calls on the stopped goroutine, through
:class:`~gocall.call.engine.Held`. All-stop (the default), the other threads are the
engine's group: resumed while a call runs (a callee may need the GC, which needs every P)
and stopped again after (the engine's stop-the-world mode), our INT3s lifted meanwhile.
Non-stop (after :meth:`~gocall.stop.Debugger.release_others`), the other threads run
untraced throughout, as for any gocall call (on Go < 1.21 too: the engine locks the call's
goroutine to this thread, call/lock.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..call.advance import Advanced
from ..call.engine import Held
from ..process import ptrace
from ..process.group import ThreadGroup
from ..runtime import safepoint
from .frame import Stop

if TYPE_CHECKING:
    from ..stop import Debugger


@contextlib.contextmanager
def held(dbg: Debugger, stop: Stop) -> Iterator[Held]:
    """The stopped thread as the call engine's held thread (see the module docstring)."""
    proc, tracee = dbg.proc, dbg.tracee
    regs = ptrace.getregs(stop.thread.tid)
    verdict = safepoint.check(regs, proc.mem, proc.layout, proc.binary.pclntab)
    group = ThreadGroup(tracee.pid, exclude=[stop.thread.tid])
    if not dbg.nonstop:
        group.threads = {tid: t for tid, t in tracee.threads.items() if t is not stop.thread}
    saved, proc.engine.stop_the_world = proc.engine.stop_the_world, not dbg.nonstop
    try:
        h = Held(proc.engine, stop.thread, Advanced(regs, verdict, 0, 0), group)
    finally:
        proc.engine.stop_the_world = saved
    tracee.breaks.suspend()
    try:
        yield h
    finally:
        tracee.breaks.resume()
        # The thread that holds the goroutine now (the engine keeps a callee on it: call/lock.py);
        # threads the runtime started during the calls were adopted by the group.
        stop.thread = h.thread
        group.threads.pop(stop.thread.tid, None)
        if dbg.nonstop:
            group.keep = [stop.thread.tid]
            group.detach_all()
            tracee.threads = {stop.thread.tid: stop.thread}
        else:
            tracee.threads = {tid: t for tid, t in group.threads.items() if t.traced}
            tracee.threads[stop.thread.tid] = stop.thread
