"""Stopping where you want: breakpoints, the stops they produce, and expressions
evaluated in a stopped frame.

:class:`Debugger` owns a :class:`~gocall.process.tracee.Tracee` (every thread of the
process traced, for as long as one INT3 of ours is in its text) and the breakpoints.

What stops when:

* A hit stops the hitting thread only. A condition on locals and globals
  (``main.hot if n == -1``) is decided there, the other threads running on; when it is
  false the thread is stepped over the breakpoint *displaced* (process/displaced.py: the
  instruction runs from a copy, the INT3 never leaves the text) and resumed. The program
  never stops as a whole for a false condition, and no other thread's hit can be missed.
* An instruction that cannot run elsewhere (a jump, a call) is stepped in place instead,
  with every other thread stopped meanwhile (all-stop), so that none passes the address
  while the original byte is back.
* A condition that calls a function (``IsSeven(req.ID)``, Delve's cannot) is evaluated
  all-stop: the other threads are stopped and stay so while the call runs, unless the callee
  needs them (its thread sleeps: the GC, a lock, a channel), when they are resumed until the
  expression is done, then stopped again. Our INT3s stay in
  (stops/calls.py): another thread's hit meanwhile is held at its breakpoint and tested
  after the call, in order, none lost; the callee's own hit of one of ours is stepped over
  untested (``Breakpoint.skipped``).
* A reported stop (a true condition, no condition, ``runtime.Breakpoint()``) is all-stop:
  the program does not move while it is looked at. :meth:`Debugger.release_others` makes
  it non-stop from there (``gocall call PID --break``): breakpoints removed, every other
  thread detached and running while expressions are evaluated on the stopped goroutine.

``Breakpoint.hits`` counts the stops, ``Breakpoint.tests`` every evaluation of the
condition, ``Breakpoint.missed`` hits let go untested (stops/calls.py: only when a call at a
stop waits on held threads for a second).

This module is the front; the ideas live in gocall/stops/: breakpoints and locations
(breakpoint.py), stops and their frames (frame.py), what a hit becomes (hits.py), stepping
over a breakpoint (stepping.py), calls at a stop with the breakpoints kept in (calls.py).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from .call import waits
from .errors import GocallError, ProcessError, TargetExited
from .expr.eval import Evaluation
from .expr.parse import Assign, parse, parse_statement
from .process.displaced import DisplacedSteps
from .process.tracee import Exited, Tracee, Trapped
from .process.waiting import interrupts, signals_held, take_interrupt
from .stops import hits, stepping
from .stops.breakpoint import Breakpoint, resolve
from .stops.calls import held, lent, settle
from .stops.frame import Frames, FrameVariables, Stop

if TYPE_CHECKING:
    from .call.engine import Held
    from .process.regs import user_regs_struct
    from .stops.host import Process

__all__ = ["Breakpoint", "Debugger", "Exited", "Stop"]

_POLL_INTERRUPTS = 0.1  # seconds between looks for a held SIGINT, SIGTERM... while hits keep coming


class Debugger:
    """Breakpoints in one process and the stops they produce (see the module docstring)."""

    def __init__(self, proc: Process, tracee: Tracee) -> None:
        self.proc = proc
        self.tracee = tracee
        self.breakpoints: list[Breakpoint] = []
        self.stop: Stop | None = None  # the current stop, until cont()
        self.nonstop = False  # release_others() was called: only the stopped thread is traced
        self.displaced = DisplacedSteps(proc.mem, proc.binary.pclntab)
        self.frames = Frames(proc)
        # Evaluations at a stop whose calls needed the other threads resumed (stops/calls.py: the
        # callee's thread slept, or ran 1 s), counted for bench/call_latency.py.
        self.others_resumed = 0

    # -- breakpoints ------------------------------------------------------------------

    def break_at(self, location: str, condition: str | None = None) -> Breakpoint:
        """A breakpoint at ``pkg.Func``, ``file.go:LINE`` or ``*0xADDR``; ``location`` may end
        with ``if COND``. Inserted at once; the program need not be stopped."""
        if self.nonstop:
            raise ProcessError("no new breakpoints after release_others(): the other threads are no longer traced",
                               hint="set every breakpoint before the first stop")
        if condition is None and " if " in location:
            location, condition = (part.strip() for part in location.split(" if ", 1))
        tree = parse(condition) if condition is not None else None  # a syntax error is reported now
        bp = Breakpoint(location, resolve(self.proc, location.strip()), condition, tree=tree)
        for pc in bp.pcs:
            self.tracee.breaks.insert(pc)
        self.breakpoints.append(bp)
        return bp

    def clear(self, bp: Breakpoint) -> None:
        self.breakpoints.remove(bp)
        still = {pc for b in self.breakpoints for pc in b.pcs}
        for pc in bp.pcs:
            if pc not in still:
                self.tracee.breaks.remove(pc)

    def by_pc(self, pc: int) -> Breakpoint | None:
        return next((b for b in self.breakpoints if pc in b.pcs), None)

    # -- running ----------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Stop | Exited | None:
        """Run until a breakpoint (whose condition holds) or runtime.Breakpoint() stops a
        goroutine, or the program ends; None on ``timeout`` or Ctrl-C."""
        observer = self.proc.engine.observer  # told what is awaited (call/waits.py)
        if observer is None:
            return self._wait(timeout)
        wait = waits.Hit(self.breakpoints, None if timeout is None else time.monotonic() + timeout)
        observer.waiting(wait)
        try:
            return self._wait(timeout)
        finally:
            observer.done(wait)

    def _wait(self, timeout: float | None) -> Stop | Exited | None:
        with signals_held():
            if self.stop is not None:
                self.cont()
            self.tracee.resume_all()  # a launched program starts stopped at its exec
            deadline = None if timeout is None else time.monotonic() + timeout
            polled = time.monotonic()
            while True:
                if time.monotonic() - polled > _POLL_INTERRUPTS:
                    # Among a storm of false-condition hits the tracee may never nap, where it
                    # would notice Ctrl-C: look for one now and then.
                    polled = time.monotonic()
                    if take_interrupt():
                        return None
                # Hits whose condition is false come back here: the deadline is the whole wait's.
                # Checked here too: hits held during condition calls (stops/calls.py) keep the
                # Tracee's pending stops coming, and those are handed out without a wait; left
                # pending, they are tested by the next wait.
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                try:
                    event = self.tracee.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    if event is None or isinstance(event, Exited):
                        return event
                    stop = hits.stopped(self, event)
                except TargetExited:
                    continue  # the program is ending under our hands: its exit status comes next
                if stop is not None:
                    self.stop = stop
                    return stop

    def cont(self) -> None:
        """Resume every thread from the current stop (stepping over its breakpoint)."""
        with signals_held():
            self.settle()
            stop, self.stop = self.stop, None
            if stop is not None:
                stepping.step_over(self, stop.thread)
            self.tracee.resume_all()

    # -- evaluating at a stop -----------------------------------------------------------

    def settle(self) -> None:
        """End the debugCallV2 run the last evaluation at the stop left open (stops/calls.py
        held), if any: before anything else looks at the stopped thread or moves it."""
        if self.stop is not None and self.stop.kept is not None:
            with signals_held():
                settle(self, self.stop)

    def still(self, tid: int) -> contextlib.AbstractContextManager[user_regs_struct] | None:
        """Thread ``tid`` held still for a look at its registers if it is one of ours (the runtime
        view's ``traced``), else None: at a stop as the stop has them (the debugCallV2 run an
        evaluation kept open ended first); a running one is stopped meanwhile (Tracee.still)."""
        t = self.tracee.threads.get(tid)
        if t is None:
            return None
        self.settle()
        return self.tracee.still(t)

    def evaluate_at(self, stop: Stop, expr: str, frame: int, unsafe: bool) -> Evaluation:
        try:
            tree = parse_statement(expr)
            if isinstance(tree, Assign):
                settle(self, stop)  # a local in a register is written to the thread (FrameVariables.store)
            # Without DWARF a frame has no variables, but package members (and calls) still evaluate.
            scope = FrameVariables(self.frames.scope(stop, frame, stop.known_regs()), stop.thread) \
                if self.proc.binary.dwarf is not None else None
        except GocallError as e:
            return Evaluation(expr, error=str(e), exception=e)
        try:
            with signals_held(), held(self, stop) as h:
                return self.proc.evaluator.evaluate(tree, expr, unsafe, held=h, scope=scope)
        finally:
            if scope is not None and scope.stored:
                stop.known = None

    def lend(self, deadline: float) -> contextlib.AbstractContextManager[Held]:
        """A thread for a call while the program runs, breakpoints in (the engine's ``lender``:
        stops/calls.py ``lent``)."""
        return lent(self, deadline, self._stopped_meanwhile)

    def _stopped_meanwhile(self, trap: Trapped) -> Stop | None:
        """A hit while a call waited for a parked goroutine, tested as :meth:`wait` tests it;
        a stop is this debugger's stop (the call is not made: stops/calls.py)."""
        stop = hits.stopped(self, trap)
        if stop is not None:
            self.stop = stop
        return stop

    # -- ending -----------------------------------------------------------------------

    def release(self, kill: bool) -> Exited | None:
        """Remove every breakpoint and let the process go: killed if ``kill``, else detached
        (a thread stopped on one of our INT3s is rewound first, so it runs the original code)."""
        tracee = self.tracee
        if tracee.exited is not None or not tracee.threads:
            return tracee.exited
        with signals_held():
            if kill:
                tracee.breaks.remove_all()
                return tracee.kill()
            try:
                self.settle()
                tracee.stop_all()
                tracee.breaks.remove_all()
                self.displaced.remove_all()
            except TargetExited:
                return tracee.exited
            self.stop = None
            tracee.detach()
            return None

    def release_others(self, stop: Stop) -> None:
        """Non-stop from here: every breakpoint removed, every thread but the stopped one
        detached and running (no INT3 of ours is left for them to hit)."""
        tracee = self.tracee
        with signals_held():
            settle(self, stop)
        tracee.breaks.remove_all()
        self.breakpoints.clear()
        tracee.stop_all(but=stop.thread)  # no thread is at a slot: displaced steps end before this returns
        self.displaced.remove_all()
        for t in list(tracee.threads.values()):
            if t is not stop.thread:
                try:
                    t.detach()
                except GocallError:
                    pass
        tracee.threads = {stop.thread.tid: stop.thread}
        tracee.forget_pending()  # hits held during calls at this stop: their threads run on, untested
        self.nonstop = True
        if interrupts.signal is not None:
            raise ProcessError("interrupted")
