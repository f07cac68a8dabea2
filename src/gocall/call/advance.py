"""Moving a goroutine forward to the nearest place where a call may be injected.

The runtime refuses calls at unsafe points, in runtime code and on the system
stack ("call not at safe point", debugcall.go). Instead of giving up, gocall
lets the stopped thread run on, only as far as needed:

* in user code at an unsafe PC (a write-barrier sequence, a prologue before
  its stack check): single steps, each one checked against the function's
  PCDATA_UnsafePoint table, until a safe PC;
* in the runtime, on the goroutine's stack or on the system stack: a hardware
  breakpoint (process/breakpoints.py) on the return address into user code
  (runtime/sched.py), then the thread runs freely until it gets there.

Only the one traced thread moves; the hardware breakpoint cannot fire on
another thread. The number of steps and the time are bounded; when the bound
is hit (the goroutine parked and went to another thread, say), the thread is
left stopped wherever it is, which is always a state it reached on its own.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from ..binary.pclntab import Pclntab
from ..process.breakpoints import breakpoints
from ..process.memory import Memory
from ..process.regs import user_regs_struct
from ..process.threads import Thread
from ..process.waiting import interrupts
from ..runtime import safepoint, sched
from ..runtime.goroutines import Status, thread_g
from ..runtime.layouts import Layout

log = logging.getLogger("gocall.call")

MAX_STEPS = 2000  # single steps per advance; unsafe stretches in user code are a few instructions
# Single steps in one user function before giving up on reaching a safe point inside it and
# waiting for its return instead (a //go:nosplit function has no safe point: liveness.IsUnsafe).
STEPS_IN_FUNCTION = 64


@dataclass(frozen=True)
class Advanced:
    """Where an advance ended: a thread stopped where a call may be injected."""

    regs: user_regs_struct
    verdict: safepoint.Verdict
    steps: int  # single steps taken
    hops: int  # hardware-breakpoint runs (returns from the runtime into user code)


def advance(
    thread: Thread, regs: user_regs_struct, mem: Memory, layout: Layout, tab: Pclntab,
    deadline: float, goid: int | None = None,
) -> Advanced | None:  # fmt: skip
    """Run ``thread`` (stopped, with ``regs``) on to a safe point of its goroutine.

    ``goid``: the goroutine that must be there (None: whichever the thread runs).
    None when that cannot be done before ``deadline``; the thread is then stopped.
    """
    steps = hops = 0
    stepping_in: tuple[int, int] | None = None  # (entry, steps) of the function being single-stepped
    while True:
        verdict = safepoint.check(regs, mem, layout, tab)
        g = verdict.g
        if verdict.ok and (goid is None or (g is not None and g.goid == goid)):
            if steps or hops:
                log.debug("advanced thread %d to %s in %d steps, %d breakpoint runs", thread.tid,
                          verdict.function, steps, hops)  # fmt: skip
            return Advanced(regs, verdict, steps, hops)
        if steps >= MAX_STEPS or time.monotonic() > deadline or interrupts.signal is not None:
            return None
        if goid is not None and g is not None and g.goid != goid:
            return None  # the goroutine we followed left this thread
        point = where_next(regs, mem, layout, tab)
        if point is not None and point.innermost:
            f = tab.func_for_pc(regs.rip)
            entry = f.entry if f is not None else 0
            stepping_in = (entry, stepping_in[1] + 1 if stepping_in and stepping_in[0] == entry else 1)
            if stepping_in[1] > STEPS_IN_FUNCTION:
                point = where_next(regs, mem, layout, tab, leave_innermost=True)
        if point is None:
            return None
        if point.innermost:
            stop = thread.run_until_trap(step=True)
            steps += 1
        else:
            with breakpoints(thread, [point.pc]):
                stop = thread.run_until_trap(timeout=max(0.0, deadline - time.monotonic()))
                if stop is None:
                    thread.stop()
                    return None
            hops += 1
        assert stop is not None
        regs = stop.regs


def where_next(
    regs: user_regs_struct, mem: Memory, layout: Layout, tab: Pclntab, leave_innermost: bool = False
) -> sched.ResumePoint | None:
    """Where the goroutine this thread runs will next be in user code; None if it is not advanceable
    (no goroutine, one not running, in a system call, or in a signal handler).
    ``leave_innermost``: not in the user function it is in now (sched.resume_point)."""
    if regs.orig_rax != 0xFFFFFFFFFFFFFFFF:
        return None  # in a system call: may block for ever
    tg = thread_g(mem, layout, regs.fs_base)
    g, curg = tg.g, tg.curg
    if g is None or curg is None or curg.status != Status.RUNNING:
        return None
    stack = (curg.stack_lo, curg.stack_hi)
    if tg.on_user_stack:
        return sched.resume_point(mem, tab, regs.rip, regs.rsp, stack, leave_innermost)
    if g.addr != mem.u64(g.m + layout.m_g0):
        return None  # on gsignal: a signal handler, over in microseconds; not worth following
    pc, sp = sched.sched(mem, layout, curg)  # systemstack/morestack saved where it left its stack
    point = sched.resume_point(mem, tab, pc, sp, stack)
    if point is not None and point.innermost:
        # morestack saved the PC after its call in the prologue: gogo resumes the
        # goroutine there once the stack has grown, so break there.
        point = dataclasses.replace(point, innermost=False)
    return point
