"""What a thread stopped on an INT3 becomes: a reported stop, or a run on past it.

A hit stops the hitting thread only. Its condition is tried first with that thread alone
stopped; a condition on locals and globals is decided there. A false one sends the thread
over the breakpoint and on (stops/stepping.py). A condition that calls a function is
evaluated again all-stop, the call made by the hitting goroutine (stops/calls.py).

``runtime.Breakpoint()`` stops are reported in the calling user frame, as Delve does: the
thread is single-stepped out of ``runtime.Breakpoint`` first, which also puts it where the
runtime accepts calls.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import GocallError, TargetExited
from ..process.threads import Thread
from ..process.tracee import Trapped
from ..process.waiting import signals_held
from .breakpoint import Breakpoint
from .calls import held
from .frame import BREAKPOINT_FUNCS, FrameVariables, Stop
from .stepping import resume_from

if TYPE_CHECKING:
    from .frame import Debugger

_STEP_OUT_MAX = 16


class _CallNeeded(BaseException):
    """The condition calls a function: it is evaluated again with every thread stopped. A
    BaseException: a signal through the evaluator, which makes every Exception the evaluation's
    error (expr/eval.py)."""


class _NoCalls:
    """The held thread for a first try at a condition with only the hitting thread stopped:
    any call (or the escape check before one) gives up."""

    site = SimpleNamespace(goroutine=None, function=None)  # what an Evaluation notes of the held thread

    @property
    def g(self) -> None:
        raise _CallNeeded

    def call(self, setup: object) -> None:
        raise _CallNeeded


_NO_CALLS = _NoCalls()


def stopped(dbg: Debugger, trap: Trapped) -> Stop | None:
    """The stop ``trap`` makes, or None when the program is to run on (a false condition)."""
    regs = trap.regs
    bp = dbg.by_pc(regs.rip) if trap.ours else None
    if trap.ours and bp is None:  # an address of ours with no breakpoint (cleared): not a stop
        resume_from(dbg, trap.thread)
        return None
    if bp is not None and bp.condition is not None:
        stop = Stop(dbg, trap.thread, regs, bp)
        bp.tests += 1
        verdict, called = condition(dbg, stop, bp)
        if verdict is False:
            # Registers as trapped, unless a call ran (they are restored, on whichever thread).
            resume_from(dbg, stop.thread, None if called else stop.regs)
            return None
        if isinstance(verdict, str):
            stop.condition_error = verdict
        dbg.tracee.stop_all(but=stop.thread)
    else:
        dbg.tracee.stop_all(but=trap.thread)
        if not trap.ours:
            regs = step_out(dbg, trap.thread, regs)
        stop = Stop(dbg, trap.thread, regs, bp)
    if bp is not None:
        bp.hits += 1
    return stop


def condition(dbg: Debugger, stop: Stop, bp: Breakpoint) -> tuple[bool | str, bool]:
    """Whether ``bp``'s condition holds at ``stop`` (a string: why it could not be evaluated),
    and whether a function was called to know.

    Tried first with only the hitting thread stopped: a condition on locals and globals
    (``n == -1``, ``req.ID == 7 && Total > 3``) reads memory and registers and is decided
    while the program runs on. One that calls a function runs again all-stop, the call on
    the hitting goroutine with the other threads resumed for its duration (stops/calls.py)."""
    assert bp.tree is not None and bp.condition is not None
    evaluator = dbg.proc.evaluator
    called = False
    try:
        scope = FrameVariables(dbg.frames.scope(stop, 0, stop.regs), stop.thread)
        try:
            ev = evaluator.evaluate(bp.tree, bp.condition, held=_NO_CALLS, scope=scope)  # type: ignore[arg-type]
        except _CallNeeded:
            called = True
            dbg.tracee.stop_all(but=stop.thread)
            with signals_held(), held(dbg, stop) as h:
                ev = evaluator.evaluate(bp.tree, bp.condition, held=h, scope=scope)
    except TargetExited:
        raise  # not the condition's fault: the program is ending (Debugger.wait)
    except GocallError as e:
        return str(e), called
    if ev.error is not None or ev.panic is not None:
        return ev.error or "the condition panicked", called
    if len(ev.results) != 1 or not isinstance(ev.results[0].value, bool):
        return f"condition {bp.condition!r} is not a bool", called
    return ev.results[0].value, called


def step_out(dbg: Debugger, thread: Thread, regs: Any) -> Any:
    """From inside runtime.Breakpoint to the instruction after its call in the caller."""
    tab = dbg.proc.binary.pclntab
    for _ in range(_STEP_OUT_MAX):
        f = tab.func_for_pc(regs.rip)
        if f is None or f.name not in BREAKPOINT_FUNCS:
            return regs
        step = thread.run_until_trap(step=True)
        assert step is not None
        regs = step.regs
    return regs
