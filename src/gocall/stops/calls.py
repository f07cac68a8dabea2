"""Calls made at a stop, our breakpoints kept in: the stopped thread lent to the call engine.

A condition that calls a function (``main.hot if IsNeg(n)``) and an expression evaluated
at a reported stop both run their calls on the stopped goroutine, through
:class:`~gocall.call.engine.Held`.

All-stop (the default), the other threads are the engine's group (:class:`_Tracked`) and stay
stopped while the expression's calls run, chained in one debugCallV2 run: the call's thread
alone runs the protocol, as a non-stop call's does, with no stop or resume of the others per
step. Only when the callee needs them (its thread sleeps: a lock another thread holds, the
GC's stop-the-world, which needs every P, a channel, a timer; or it has run ``_HOLD_MAX``
seconds) are they resumed, and then stopped again once, when the expression is done. Our
INT3s stay in the text meanwhile, as Delve keeps its breakpoints in during a call, so the
group waits on the :class:`~gocall.process.tracee.Tracee`'s terms, where every SIGTRAP is
classified before anyone takes it for the protocol's:

* another thread's hit is *held*: left stopped on the breakpoint, its stop pending in the
  Tracee, to be tested once the call is over, in the order the hits came (none lost, none
  tested twice). A held thread keeps its P, and the callee may come to need one: the runtime
  deschedules it (sysmon's preemption of a spent time slice, a GC's stop-the-world), and its
  locked thread hands its P off and sleeps until some P schedules it again. Two things keep
  that rare and harmless. When the others are resumed, and before each run of the call while
  they run, the P's ``schedtick`` is bumped, and the thread's SIGURGs are kept back (:func:`_fresh_slice`, Tracee.keep_unpreempted), so the
  callee is not preempted for a slice its caller spent. And when the call's thread sleeps
  anyway with hits held, the held threads are resumed *at* their breakpoints: each either
  hits it again at once (held again), or, with a preemption request pending, is descheduled
  by the runtime before the INT3 runs, its P free and its hit to come when it runs again.
  Only a call stuck for ``_HOLD_MAX`` seconds has the held hits stepped over untested,
  counted in ``Breakpoint.missed``;
* the callee's own thread hitting one of our breakpoints (the condition calls the
  breakpointed function, or something that does) is stepped over and counted in
  ``Breakpoint.skipped``: a condition is not evaluated inside a condition's call, and an
  expression's call is not interrupted by a stop. (Delve interrupts the call and reports a
  stop there, leaving the call pending; it has no calls in conditions.) The trap is never
  taken for the protocol's INT3, nor handed to the program as a SIGTRAP;
* the program's own ``runtime.Breakpoint()`` on another thread is held like a hit.

A call while the program runs with breakpoints in (Delve's ``call`` with breakpoints set,
the shell's ``main.F()`` after ``break``) is lent a thread by :func:`lent`: every thread is
stopped, the call runs as at a stop on the first one that runs a user goroutine at a safe
point, and every thread runs on after it (hits that came meanwhile are tested by the next
wait; the callee's own are stepped over, as above). When none does (a mostly sleeping
program: every goroutine parked in a sleep, the network poller, a channel), the parked
goroutines are caught where they next return into user code, as the call engine catches them
without breakpoints (call/engine.py), but by the Tracee that owns every thread: its hardware
breakpoints and our INT3s are told apart there, so a hit during the wait is a hit (:func:`_catch`).

Non-stop (after :meth:`~gocall.stop.Debugger.release_others`), no breakpoint is left and
the other threads run untraced throughout, as for any gocall call (on Go < 1.21 too: the
engine locks the call's goroutine to this thread, call/lock.py).
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from ..call import waits
from ..call.advance import Advanced
from ..call.engine import Held
from ..errors import CallError, Interrupted, NoGoroutine, ProcessError, TargetExited
from ..process import ptrace
from ..process.group import ThreadGroup
from ..process.memory import Memory
from ..process.threads import Thread, TrapStop, task_state
from ..process.tracee import Caught, Exited, Trapped
from ..process.waiting import interrupts
from ..runtime import safepoint
from ..runtime.layouts import Layout
from ..runtime.safepoint import Verdict
from .frame import Known, Stop
from .stepping import resume_from

if TYPE_CHECKING:
    from .frame import Debugger

_LOOK_AGAIN = 0.001  # seconds the program runs between two looks for a thread to lend (lent)
# Seconds a catch of parked goroutines lasts before running goroutines are looked at again (lent),
# doubling from the first: a busy program's goroutines are found at the next look, a sleeping
# program's catch is not restarted every few milliseconds.
_CATCH_FIRST, _CATCH_MAX = 0.01, 0.5
_HOLD_MAX = 1.0  # seconds a callee may wait for held threads before their hits are let go untested
_LOOK = 0.001  # seconds between looks at whether the callee waits for a held thread


class Kept(NamedTuple):
    """An evaluation's debugCallV2 run left open at the reported stop (:func:`held`), for the
    next evaluation there to start its calls in."""

    held: Held
    group: ThreadGroup


@contextlib.contextmanager
def held(dbg: Debugger, stop: Stop, hops: int = 0) -> Iterator[Held]:
    """The stopped thread as the call engine's held thread (see the module docstring); ``hops``:
    returns into user code it was run to (a parked goroutine caught: :func:`lent`), for its site.

    At the reported stop (``dbg.stop``, all-stop), the expression's debugCallV2 run is not
    finished when it ends but kept (``Stop.kept``), and the next evaluation's calls start in
    it: one trap per call (the callee's return) instead of three, and no register save or
    restore. Nothing runs between two evaluations at a stop, so the interrupted goroutine
    cannot change meanwhile: it is parked in debugCallWrap (waiting, "debug call"), with
    ``asyncSafePoint`` set, which keeps the GC from shrinking (moving) its stack, and
    debugCallV2's frame on it is scanned conservatively; during the calls it is as during
    any injected call. The thread's own registers are the call goroutine's then, so
    whatever else looks at or moves the stop first ends the run (:func:`settle`:
    Debugger.cont, release, release_others, Process.goroutines, stack, roots,
    release_kept, an assignment), and the stop's Known registers, which the run restores
    exactly, stand for the thread's meanwhile (frames/locals read them, not the thread).
    A condition's stop is not the reported one: its run ends with its evaluation."""
    proc, tracee = dbg.proc, dbg.tracee
    kept, stop.kept = stop.kept, None
    group: ThreadGroup
    if kept is not None:
        h, group = kept
        tracee.threads.pop(h.thread.tid, None)  # as _Tracked took it out: the engine's while calls run
        tracee.keep_unpreempted(h.thread)
        verdict = stop.known.verdict if stop.known is not None else None
    else:
        known, stop.known = stop.known, None  # until this evaluation's calls have restored the thread
        if known is not None and known.tid == stop.thread.tid:
            regs, xstate, verdict = known.regs, known.xstate, known.verdict
        else:
            regs, xstate = ptrace.getregs(stop.thread.tid), None
            verdict = safepoint.check(regs, proc.mem, proc.layout, proc.binary.pclntab)
        if verdict.unpreemptible:
            stop.known = known
            raise CallError(f"no call here: {verdict.reason}", hint="continue to a stop where the runtime is not in "
                            "the middle of its own work: a call injected here would run while it cannot be scheduled, "
                            "and could crash the program")  # fmt: skip
        if dbg.nonstop:
            group = ThreadGroup(tracee.pid, exclude=[stop.thread.tid])
        else:
            group = _Tracked(dbg, stop.thread, verdict.g.m if verdict.g is not None else 0)
        saved, proc.engine.stop_the_world = proc.engine.stop_the_world, not dbg.nonstop
        try:
            # Chained: the expression's calls (allocations, pins, the callee) share one debugCallV2 run.
            h = Held(proc.engine, stop.thread, Advanced(regs, verdict, 0, hops), group, chain=True, xstate=xstate)
        finally:
            proc.engine.stop_the_world = saved
        if isinstance(group, _Tracked):
            group.caller = lambda: h.thread
            tracee.keep_unpreempted(stop.thread)
    keep = False
    try:
        yield h
        keep = dbg.stop is stop and not dbg.nonstop and verdict is not None and h.open is not None \
            and h.thread is stop.thread and interrupts.signal is None
    finally:
        try:
            if keep:
                assert h.open is not None and verdict is not None
                # The registers the run restores, exactly: the frame's scope reads them meanwhile.
                stop.known = Known(stop.thread.tid, h.open.regs, h.open.xstate, verdict)
                stop.note_goroutine(verdict.g.goid if verdict.g is not None else None)
                stop.kept = Kept(h, group)
            else:
                _finish(stop, h, verdict)
        finally:
            _give_back(dbg, stop, h, group)


def settle(dbg: Debugger, stop: Stop) -> None:
    """End the run an evaluation left open at ``stop`` (:func:`held`), if any: the thread back
    exactly as it stopped, the other threads stopped."""
    kept, stop.kept = stop.kept, None
    if kept is None:
        return
    h, group = kept
    verdict = stop.known.verdict if stop.known is not None else None
    stop.known = None
    dbg.tracee.threads.pop(h.thread.tid, None)
    dbg.tracee.keep_unpreempted(h.thread)
    try:
        _finish(stop, h, verdict)
    finally:
        _give_back(dbg, stop, h, group)


def _finish(stop: Stop, h: Held, verdict: Verdict | None) -> None:
    h.finish()  # an open run: back where the thread stopped, however the expression ended
    restored = h.restored()
    if restored is not None and verdict is not None and h.thread is stop.thread:
        stop.known = Known(stop.thread.tid, restored[0], restored[1], verdict)


@contextlib.contextmanager
def lent(dbg: Debugger, deadline: float, tested: Callable[[Trapped], Stop | None]) -> Iterator[Held]:
    """A thread for a call while the program runs with our breakpoints in (the module
    docstring): all-stop for the length of the block, on the engine's goroutine if one is
    asked for; then every thread resumed. ``tested``: what a hit during a wait for a parked
    goroutine becomes, as the Debugger's wait tests it: None (a false condition, run on), or
    the program's stop, made the Debugger's."""
    if dbg.nonstop or dbg.stop is not None:
        raise ProcessError("the program is stopped: calls run at the stop",
                           hint="evaluate at the stop (Stop.eval), or continue first")
    tracee, engine = dbg.tracee, dbg.proc.engine
    goid, observer = engine.goroutine, engine.observer
    wait: waits.AnyGoroutine | waits.OneGoroutine | None = None  # told to the observer once a look failed
    catch = _CATCH_FIRST
    hops = 0  # 1: the goroutine was caught returning into user code
    try:
        while True:
            tracee.stop_all()
            stop = _lendable(dbg, goid)
            if stop is not None:
                break
            if observer is not None and wait is None:
                wait = waits.OneGoroutine(goid, deadline) if goid is not None else waits.AnyGoroutine(deadline)
                observer.waiting(wait)
            try:
                caught = _catch(dbg, goid, min(deadline, time.monotonic() + catch), wait, tested)
            except BaseException:
                if tracee.exited is None and dbg.stop is None:  # a stop meanwhile stays stopped
                    tracee.resume_all()
                raise
            if caught is not None:
                stop, hops = caught
                break
            catch = min(2 * catch, _CATCH_MAX)
            tracee.resume_all()
            if interrupts.signal is not None:
                raise Interrupted("interrupted while looking for a goroutine; nothing was changed")
            if time.monotonic() > deadline:
                raise _nothing_found(dbg, goid)
            time.sleep(_LOOK_AGAIN)
    finally:
        if observer is not None and wait is not None:
            observer.done(wait)
    try:
        with held(dbg, stop, hops) as h:
            yield h
    finally:
        if dbg.tracee.exited is None:
            tracee.resume_all()


def _catch(dbg: Debugger, goid: int | None, until: float, wait: waits.AnyGoroutine | waits.OneGoroutine | None,
           tested: Callable[[Trapped], Stop | None]) -> tuple[Stop, int] | None:  # fmt: skip
    """Every thread stopped, none lendable: wait until ``until`` for a parked goroutine (or
    ``goid``) to come back to user code, as the call engine's catch does (call/engine.py), with
    the hardware breakpoints set by the Tracee that owns the threads (``Tracee.catch``).

    Our breakpoints stay in meanwhile: a hit is a hit. Its thread is stopped on the breakpoint,
    rewound; lent for the call if it may be (it hits the breakpoint again when it runs on after
    the call, and the next wait tests and reports it, once). Otherwise (another goroutine than
    ``goid``) it is tested as a wait would (``tested``): a false condition's thread runs on over
    the breakpoint and the wait goes on; a stop is the program's stop (the Debugger's) and the
    call is not made: held until the call was made instead, the thread would keep its P, and
    with Ps held the goroutine waited for could starve. The program's own
    ``runtime.Breakpoint()`` is such a stop too. Every thread is stopped when this returns, the
    stop's or not. The stop comes with the returns into user code its goroutine was run to: 1 if
    it is the one caught."""
    proc, tracee = dbg.proc, dbg.tracee
    pcs = proc.engine.resume_points(goid, wait)
    while pcs and time.monotonic() < until and interrupts.signal is None:
        event = tracee.catch(pcs, until - time.monotonic())
        if event is None:
            break
        if isinstance(event, Exited):
            raise TargetExited(f"process {tracee.pid} {event.text} while a call waited for a goroutine")
        stop = _lendable(dbg, goid) if not isinstance(event, Trapped) or event.ours else None
        if stop is not None:
            return stop, int(isinstance(event, Caught) and stop.thread is event.thread)
        if isinstance(event, Trapped):
            hit = tested(event)
            if hit is None:
                continue  # a false condition: its thread runs on, the catch goes on
            what = f"breakpoint {hit.breakpoint.location}" if hit.breakpoint is not None else "runtime.Breakpoint()"
            which = f"goroutine {goid}" if goid is not None else "a goroutine"
            raise NoGoroutine(f"{what} stopped {hit.where} while the call waited for {which}; the call was not made",
                              hint="the program is stopped there: call at the stop, or continue")
        # A goroutine caught a few steps short of a safe point, or not ``goid``: the next look
        # finds it where it is then.
    return None


def _nothing_found(dbg: Debugger, goid: int | None) -> NoGoroutine:
    """No goroutine (or not ``goid``) reached user code at a safe point before the deadline."""
    engine = dbg.proc.engine
    which = f"goroutine {goid} did not reach" if goid is not None else "no goroutine reached"
    blocked = engine.blocked()
    return NoGoroutine(f"{which} Go user code at a safe point within {engine.timeout:g} s"
                       + ("; " + "; ".join(blocked) if blocked else ""),
                       hint="raise --timeout, or make the program do some work; or call at a stop (wait for a hit)")


def _lendable(dbg: Debugger, goid: int | None) -> Stop | None:
    """A stopped thread running a user goroutine (``goid`` if given) at a safe point, as a
    stop to call at; not one whose stop is pending (it is handed out by the next wait)."""
    proc, tracee = dbg.proc, dbg.tracee
    for t in list(tracee.threads.values()):
        if not t.stopped or tracee.is_pending(t):
            continue
        regs = ptrace.getregs(t.tid)
        verdict = safepoint.check(regs, proc.mem, proc.layout, proc.binary.pclntab)
        if verdict.ok and verdict.g is not None and (goid is None or verdict.g.goid == goid):
            return Stop(dbg, t, regs, None)
    return None


def _give_back(dbg: Debugger, stop: Stop, h: Held, group: ThreadGroup) -> None:
    """After the expression's calls: every thread as the stop had it (all-stop), or the others
    detached (non-stop)."""
    tracee = dbg.tracee
    try:
        if isinstance(group, _Tracked):
            group.settle()
    finally:
        tracee.keep_unpreempted(None)
        # The thread that holds the goroutine now (the engine keeps a callee on it: call/lock.py).
        stop.thread = h.thread
        if dbg.nonstop:
            group.threads.pop(stop.thread.tid, None)
            group.keep = [stop.thread.tid]
            group.detach_all()
            tracee.threads = {stop.thread.tid: stop.thread}
        else:
            tracee.threads[stop.thread.tid] = stop.thread


class _Tracked(ThreadGroup):
    """The engine's group of other threads, made of the Tracee's: the same thread table
    (threads the runtime starts during a call are the Tracee's at once), and every wait
    status handled by the Tracee, so that our breakpoints' traps are told from the protocol's.

    The other threads stay stopped (the stop's all-stop) until the callee needs them: its
    thread sleeps (:func:`_asleep`: a lock, the GC's stop-the-world, a channel, a timer, all
    of which another thread must act on) or the call has run ``_HOLD_MAX`` seconds (a callee
    spinning on what another goroutine would do). Then they are resumed, and run until
    :meth:`settle` stops them again once the expression's calls are over."""

    def __init__(self, dbg: Debugger, thread: Thread, m: int) -> None:
        super().__init__(dbg.tracee.pid, exclude=[thread.tid])
        self.dbg = dbg
        self.tracee = dbg.tracee
        self.m = m  # the runtime's M of the call's thread
        # The engine adds its thread for the waits and takes it out after: resume_all and
        # stop_all (the engine's, between calls) then leave it to the engine.
        self.threads = self.tracee.threads
        self.threads.pop(thread.tid, None)
        self.caller: Callable[[], Thread] = lambda: thread  # the thread the call runs on
        self._ranges = dbg.proc.engine.entry.trap_ranges
        self.running = False  # the other threads were resumed: the callee needed them

    def resume_all(self) -> None:
        """Before each run of the call (the engine resumes its own thread right after): the
        other threads stay as they are."""
        if self.running:
            _fresh_slice(self.dbg.proc.mem, self.dbg.proc.layout, self.m)  # gocall's work took time too

    def stop_all(self) -> None:
        """After each trap of the call: nothing (the other threads are stopped by :meth:`settle`)."""

    def lend(self, thread: Thread) -> None:
        self.threads[thread.tid] = thread  # its ptrace options are every thread's (Tracee.options)

    def took_back(self, thread: Thread) -> None:
        pass  # it keeps the Tracee's options: every thread of a traced process is traced

    def settle(self) -> None:
        """The expression's calls are over: every thread stopped again, if any was resumed."""
        if self.running:
            self.running = False
            self.tracee.stop_all()  # a hit meanwhile is left rewound, to hit again when resumed

    def _resume_others(self) -> None:
        """The callee needs the other threads: let them run (held hits stay held)."""
        self.running = True
        self.dbg.others_resumed += 1
        # sysmon, stopped since the stop, would find the P's slice long spent and preempt the callee.
        _fresh_slice(self.dbg.proc.mem, self.dbg.proc.layout, self.m)
        self.tracee.resume_all()

    def wait_trap(self, timeout: float | None) -> tuple[Thread, TrapStop] | None:
        """The protocol's next trap (on the call's thread, in debugCallV2 and friends); other
        traps are held or stepped over (module docstring). None after ``timeout`` seconds."""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        while True:
            # A protocol trap collected while the Tracee stopped every thread is pending there.
            trap = self.tracee.take(self._protocol)
            if trap is None:
                now = time.monotonic()
                if now - start > _LOOK:
                    waited = now - start
                    if not self.running and (waited > _HOLD_MAX or _asleep(self.pid, self.caller().tid)):
                        self._resume_others()
                    elif self._stuck(waited):
                        self._let_held_go(step=waited > _HOLD_MAX)
                if deadline is not None and now >= deadline:
                    return None
                wait = _LOOK if deadline is None else min(_LOOK, deadline - now)
                # Ctrl-C: the engine's, at its steps. The stopped threads have nothing to report.
                event = self.tracee.next_event(wait, interruptible=False, running_only=True)
                if event is None:
                    continue
                if isinstance(event, Exited):
                    raise TargetExited(f"process {self.pid} {event.text} while a call ran")
                if not self._protocol(event):
                    self._other_trap(event)
                    continue
                trap = event
            return trap.thread, TrapStop(trap.regs)

    def _stuck(self, waited: float) -> bool:
        """Whether the callee may be waiting for a thread we hold: hits are held, and the call's
        thread sleeps (its goroutine descheduled, its P handed off: module docstring) or the
        call has taken ``_HOLD_MAX`` seconds."""
        if not self.tracee.holding():
            return False
        return waited > _HOLD_MAX or _asleep(self.pid, self.caller().tid)

    def _protocol(self, trap: Trapped) -> bool:
        """An INT3 not ours, of debugCallV2 and friends, or any on the call's thread (the engine
        says what is wrong with one elsewhere)."""
        pc = trap.regs.rip - 1
        return not trap.ours and (trap.thread is self.caller() or any(lo <= pc < hi for lo, hi in self._ranges))

    def _other_trap(self, trap: Trapped) -> None:
        bp = self.dbg.by_pc(trap.regs.rip) if trap.ours else None
        if trap.ours and trap.thread is self.caller():
            if bp is not None:
                bp.skipped += 1
            resume_from(self.dbg, trap.thread, trap.regs, alone=not self.running)
        else:
            self.tracee.hold(trap)

    def _let_held_go(self, step: bool) -> None:
        """Resume every held hit's thread, the callee may be waiting for it: at the breakpoint,
        where it hits it again unless the runtime deschedules it first (its pending preemption
        request, SIGURG, is delivered before the INT3 runs: its P is free and its hit comes
        later), or, with ``step``, over it, untested."""
        while (trap := self.tracee.take(lambda t: t.ours)) is not None:
            if not step:
                self.tracee.resume(trap.thread)
                continue
            bp = self.dbg.by_pc(trap.regs.rip)
            if bp is not None:
                bp.missed += 1
            resume_from(self.dbg, trap.thread, trap.regs)


def _asleep(pid: int, tid: int) -> bool:
    """Whether thread ``tid`` sleeps in the kernel (state S: a futex, a timer), not running."""
    return task_state(pid, tid) == b"S"


def _fresh_slice(mem: Memory, layout: Layout, m: int) -> None:
    """Count a scheduler call on M ``m``'s P, as ``execute`` does for a goroutine that starts a
    new time slice.

    debugCallWrap runs the callee with ``execute(newg, inheritTime=true)``: it inherits the
    interrupted goroutine's slice, which in a busy loop is long spent, so sysmon (retake)
    preempts the callee at once. Its goroutine is locked to the thread, so the thread hands
    its P off and sleeps until some P schedules the callee again, and with the other Ps held
    at hits of ours none may (module docstring). A changed
    ``p.schedtick`` makes sysmon start timing the slice afresh; it is changed before each run
    of the call, as gocall's own work between the runs takes time too. The P is the stopped
    thread's: nothing else writes its schedtick meanwhile."""
    if not m:
        return
    p = mem.u64(m + layout.m_p)
    if p:
        tick = p + layout.p_schedtick
        mem.write(tick, struct.pack("<I", (mem.u32(tick) + 1) & 0xFFFFFFFF))
