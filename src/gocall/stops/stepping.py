"""Stepping a thread over one of our breakpoints, so that the program runs on.

*Displaced* when the instruction under the INT3 can run from a copy (process/displaced.py):
the INT3 never leaves the text and the other threads never stop, so none of their hits can
be missed. Else in place, with every other thread stopped meanwhile (all-stop), so that
none passes the address while the original byte is back. Threads the Tracee holds at a
hit of their own (stops/calls.py) stay stopped either way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ProcessError
from ..process import ptrace
from ..process.displaced import SteppedIntoExit
from ..process.threads import Thread

if TYPE_CHECKING:
    from .frame import Debugger

log = logging.getLogger("gocall.ptrace")

_INSN_MAX = 15  # bytes of the longest x86 instruction


def resume_from(dbg: Debugger, thread: Thread, regs: Any = None, alone: bool = False) -> None:
    """Step ``thread`` over the breakpoint it is stopped at and let the program run on:
    displaced (process/displaced.py), the other threads never stopped, when the
    instruction can run elsewhere; else in place, all-stop. ``regs``: its registers, if known.
    ``alone``: only ``thread`` runs on, the others stay stopped (a call at a stop, stops/calls.py)."""
    regs = regs if regs is not None else ptrace.getregs(thread.tid)
    rip = regs.rip
    tracee = dbg.tracee
    breaks = tracee.breaks
    slot = dbg.displaced.slot(rip, lambda: breaks.original(rip, _INSN_MAX)) if rip in breaks else None
    if slot is not None:
        try:
            thread.deferred.extend(dbg.displaced.step(thread.tid, slot, regs))
        except SteppedIntoExit as e:
            tracee.exit_status(thread.tid, e.status)
            raise
        except ProcessError as e:  # left at the breakpoint, unharmed: step it in place
            log.debug("%s; stepping in place", e)
        else:
            _run_on(dbg, thread, alone)
            return
    tracee.stop_all(but=thread)
    step_over(dbg, thread)
    _run_on(dbg, thread, alone)


def _run_on(dbg: Debugger, thread: Thread, alone: bool) -> None:
    if alone:
        dbg.tracee.resume(thread)
    else:
        dbg.tracee.resume_all()


def step_over(dbg: Debugger, thread: Thread) -> None:
    """Execute the instruction under our INT3 on ``thread`` alone (every other thread is stopped)."""
    if not thread.traced:
        return
    rip = ptrace.getregs(thread.tid).rip
    breaks = dbg.tracee.breaks
    if rip not in breaks:
        return
    breaks.lift(rip)
    try:
        thread.run_until_trap(step=True)
    finally:
        breaks.lower(rip)
