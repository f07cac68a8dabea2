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
  all-stop: the other threads are stopped, then resumed for the duration of each call (a
  callee may need the GC, which needs every P) with our INT3s lifted, and stopped again.
  **Hits of other threads during those calls are missed**: not tested, not counted
  (bench/breakpoint.py measures how many). Delve keeps its breakpoints in during a call, and a
  hit there interrupts the call; it has no calls in conditions at all.
* A reported stop (a true condition, no condition, ``runtime.Breakpoint()``) is all-stop:
  the program does not move while it is looked at. :meth:`Debugger.release_others` makes
  it non-stop from there (``gocall call PID --break``): breakpoints removed, every other
  thread detached and running while expressions are evaluated on the stopped goroutine.

``runtime.Breakpoint()`` stops are reported in the calling user frame, as Delve does:
the thread is single-stepped out of ``runtime.Breakpoint`` first, which also puts it
where the runtime accepts calls.

``Breakpoint.hits`` counts the stops, ``Breakpoint.tests`` every evaluation of the
condition. Inlined calls have no frames of their own: the variables of functions inlined
at the PC are merged into the physical frame's, the innermost inlined scope first.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .binary import lines
from .call.advance import Advanced
from .call.engine import Held
from .errors import ExprError, GocallError, ProcessError, SymbolNotFound, TargetExited
from .expr.eval import Evaluation
from .expr.operand import Operand
from .expr.parse import Expr, parse, parse_statement
from .process import ptrace
from .process.displaced import DisplacedSteps, SteppedIntoExit
from .process.group import ThreadGroup
from .process.threads import Thread
from .process.tracee import Exited, Tracee, Trapped
from .process.waiting import interrupts, signals_held
from .runtime import safepoint
from .runtime.goroutines import thread_g
from .runtime.locals import FrameScope, Scopes, Variable
from .runtime.unwind import Frame, SourceFrame, walk
from .values.model import GoValue

if TYPE_CHECKING:
    from .session import Process

__all__ = ["Breakpoint", "Debugger", "Exited", "Stop"]

log = logging.getLogger("gocall.ptrace")

_BREAKPOINT_FUNCS = ("runtime.Breakpoint", "runtime.breakpoint")
_UNREAD = -1  # Stop._goroutine before it is read (goroutine ids start at 1)
_FRAMES_CACHED = 1024  # innermost frames kept by (PC, SP): a hot breakpoint sees the same few
_STEP_OUT_MAX = 16
_INSN_MAX = 15  # bytes of the longest x86 instruction
_POLL_INTERRUPTS = 0.1  # seconds between looks for a held SIGINT/SIGTERM while hits keep coming


@dataclass
class Breakpoint:
    """A location gocall stops at: one or more code addresses, an optional condition."""

    location: str
    sites: list[lines.Site]
    condition: str | None = None
    hits: int = 0  # stops reported (condition true, or no condition)
    tests: int = 0  # times the condition was evaluated
    tree: Expr | None = field(default=None, repr=False)  # the condition, parsed once

    @property
    def pcs(self) -> list[int]:
        return [s.pc for s in self.sites]

    def __str__(self) -> str:
        s = self.sites[0]
        text = f"{self.location} at {s.function} ({s.file}:{s.line})"
        return text + (f" if {self.condition}" if self.condition else "")


@dataclass
class Stop:
    """A goroutine stopped at a breakpoint or at ``runtime.Breakpoint()``; everything else stopped
    too (until :meth:`Debugger.release_others`)."""

    debugger: Debugger = field(repr=False)
    thread: Thread = field(repr=False)
    regs: Any = field(repr=False)  # user_regs_struct of the stopped thread
    breakpoint: Breakpoint | None  # None: the program's own runtime.Breakpoint()
    condition_error: str | None = None  # the condition could not be evaluated (the stop is reported)
    _frames: list[Frame] | None = field(default=None, repr=False)
    _goroutine: int | None = field(default=_UNREAD, repr=False)

    @property
    def goroutine(self) -> int | None:
        """The stopped goroutine's id (None: the thread runs no goroutine), read on first use."""
        if self._goroutine == _UNREAD:
            tg = thread_g(self.debugger.proc.mem, self.debugger.proc.layout, self.regs.fs_base)
            self._goroutine = tg.curg.goid if tg.curg is not None else None
        return self._goroutine

    @property
    def frames(self) -> list[Frame]:
        """The goroutine's physical frames, innermost first (unwound on first use: a hit whose
        condition is false needs only the innermost one)."""
        if self._frames is None:
            self._frames = self.debugger.unwind(self) if self.goroutine is not None else []
        return self._frames

    @property
    def source(self) -> SourceFrame | None:
        """The innermost source frame, runtime.Breakpoint (inlined since Go 1.2x) left out."""
        calls = self.frames[0].calls if self.frames else ()
        return next((c for c in calls if c.function not in _BREAKPOINT_FUNCS), calls[-1] if calls else None)

    @property
    def function(self) -> str:
        return self.source.function if self.source is not None else "?"

    @property
    def location(self) -> str:
        """``main.handle (main.go:68)``."""
        sf = self.source
        return f"{self.regs.rip:#x}" if sf is None else f"{sf.function} ({sf.file}:{sf.line})"

    @property
    def where(self) -> str:
        """``goroutine 7 at main.handle (main.go:68)``, and why the condition could not be evaluated."""
        text = f"goroutine {self.goroutine} at {self.location}"
        return text + (f" ({self.condition_error})" if self.condition_error else "")

    def to_json(self, evaluations: list[Evaluation]) -> dict[str, Any]:
        """The stop and what was evaluated there, as ``gocall run``/``gocall call --break`` print it with --json."""
        return {"goroutine": self.goroutine, "location": self.location,
                "breakpoint": self.breakpoint.location if self.breakpoint else None,
                "condition_error": self.condition_error,
                "evaluations": [ev.to_json() for ev in evaluations]}  # fmt: skip

    def evaluate(self, expr: str, frame: int = 0, unsafe: bool = False) -> Evaluation:
        """Evaluate ``expr`` (or ``x = expr``) in frame ``frame`` (0: innermost): its parameters and
        locals, then package members. Errors in the expression are in the Evaluation."""
        return self.debugger.evaluate_at(self, expr, frame, unsafe)

    def eval(self, expr: str, frame: int = 0, unsafe: bool = False) -> Any:
        """Like :meth:`evaluate`, returning Python values (raising on errors and panics)."""
        return self.evaluate(expr, frame, unsafe).python_value

    def locals(self, frame: int = 0) -> dict[str, GoValue | str]:
        """Every parameter and local visible in frame ``frame``: its value, or why it is not available."""
        scope = self.debugger.frame_scope(self, frame)
        out: dict[str, GoValue | str] = {}
        decoder = self.debugger.proc.evaluator.decoder()
        for var in scope.variables:
            if var.name in out:
                continue  # shadowed by an inner one
            try:
                image, _ = scope.read(var)
                out[var.name] = decoder.decode(var.type, image)
            except GocallError as e:
                out[var.name] = str(e)
        return out


class _CallNeeded(Exception):
    """The condition calls a function: it is evaluated again with every thread stopped."""


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


class _FrameVariables:
    """The evaluator's view (expr.operand.Scope) of one stopped frame."""

    def __init__(self, scope: FrameScope, thread: Thread) -> None:
        self.scope = scope
        self.thread = thread

    def lookup(self, name: str) -> Operand | None:
        var = self.scope.find(name)
        if var is None:
            return None
        image, addr = self.scope.read(var)
        return Operand(var.type, image=image, addr=addr, text=name)

    def store(self, target: Operand, image: bytes) -> bool:
        var: Variable | None = self.scope.find(target.text)
        slots = self.scope.register_slots(var) if var is not None else None
        if not slots:
            return False
        from .binary.dwarfloc import DWARF_REGS

        regs = ptrace.getregs(self.thread.tid)
        for reg, off, size in slots:
            old = struct.pack("<Q", getattr(regs, DWARF_REGS[reg]) & (1 << 64) - 1)
            setattr(regs, DWARF_REGS[reg], struct.unpack("<Q", image[off : off + size] + old[size:])[0])
        ptrace.setregs(self.thread.tid, regs)
        self.scope.regs = regs
        return True


class Debugger:
    """Breakpoints in one process and the stops they produce (see the module docstring)."""

    def __init__(self, proc: Process, tracee: Tracee) -> None:
        self.proc = proc
        self.tracee = tracee
        self.breakpoints: list[Breakpoint] = []
        self.stop: Stop | None = None  # the current stop, until cont()
        self.nonstop = False  # release_others() was called: only the stopped thread is traced
        self.displaced = DisplacedSteps(proc.mem, proc.binary.pclntab)
        self._scopes: Scopes | None = None
        self._frames: dict[tuple[int, int], Frame] = {}  # innermost frames by (PC, SP)

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
        bp = Breakpoint(location, self._resolve(location.strip()), condition, tree=tree)
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

    def _resolve(self, location: str) -> list[lines.Site]:
        binary = self.proc.binary
        if location.startswith("*"):
            try:
                return [lines.address_site(binary, int(location[1:], 0))]
            except ValueError:
                raise ExprError(f"bad address {location!r}", hint="write *0x49edd2") from None
        file, colon, line = location.rpartition(":")
        if colon and line.isdigit():
            return lines.line_sites(binary, file, int(line))
        tab = binary.pclntab
        names = self.proc.evaluator.names
        for name in (location, names.qualify(location), f"main.{location}"):
            f = tab.func_by_name(name)
            if f is not None:
                return lines.function_sites(binary, f)
        raise SymbolNotFound(f"no function {location} in the binary",
                             hint="write pkg.Func (main.handle, main.(*T).M), file.go:LINE or *0xADDR; "
                                  "functions inlined everywhere have no code of their own (//go:noinline)")

    def _by_pc(self, pc: int) -> Breakpoint | None:
        return next((b for b in self.breakpoints if pc in b.pcs), None)

    # -- running ----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Stop | Exited | None:
        """Run until a breakpoint (whose condition holds) or runtime.Breakpoint() stops a
        goroutine, or the program ends; None on ``timeout`` or Ctrl-C."""
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
                    got = signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, 0)
                    if got is not None:
                        interrupts.signal = got.si_signo
                        return None
                # Hits whose condition is false come back here: the deadline is the whole wait's.
                try:
                    event = self.tracee.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    if event is None or isinstance(event, Exited):
                        return event
                    stop = self._stopped(event)
                except TargetExited:
                    continue  # the program is ending under our hands: its exit status comes next
                if stop is not None:
                    self.stop = stop
                    return stop

    def cont(self) -> None:
        """Resume every thread from the current stop (stepping over its breakpoint)."""
        with signals_held():
            stop, self.stop = self.stop, None
            if stop is not None:
                self._step_over(stop.thread)
            self.tracee.resume_all()

    def _stopped(self, trap: Trapped) -> Stop | None:
        """The stop ``trap`` makes, or None when the program is to run on (a false condition)."""
        regs = trap.regs
        bp = self._by_pc(regs.rip) if trap.ours else None
        if trap.ours and bp is None:  # an address of ours with no breakpoint (cleared): not a stop
            self._resume_from(trap.thread)
            return None
        if bp is not None and bp.condition is not None:
            stop = self._make_stop(trap.thread, regs, bp)
            bp.tests += 1
            verdict, called = self._condition(stop, bp)
            if verdict is False:
                # Registers as trapped, unless a call ran (they are restored, on whichever thread).
                self._resume_from(stop.thread, None if called else stop.regs)
                return None
            if isinstance(verdict, str):
                stop.condition_error = verdict
            self.tracee.stop_all(but=stop.thread)
        else:
            self.tracee.stop_all(but=trap.thread)
            if not trap.ours:
                regs = self._step_out(trap.thread, regs)
            stop = self._make_stop(trap.thread, regs, bp)
        if bp is not None:
            bp.hits += 1
        return stop

    def _condition(self, stop: Stop, bp: Breakpoint) -> tuple[bool | str, bool]:
        """Whether ``bp``'s condition holds at ``stop`` (a string: why it could not be evaluated),
        and whether a function was called to know.

        Tried first with only the hitting thread stopped: a condition on locals and globals
        (``n == -1``, ``req.ID == 7 && Total > 3``) reads memory and registers and is decided
        while the program runs on. One that calls a function runs again all-stop, the call on
        the hitting goroutine with the other threads resumed for its duration (see _held)."""
        assert bp.tree is not None and bp.condition is not None
        called = False
        try:
            scope = _FrameVariables(self.frame_scope(stop, 0, stop.regs), stop.thread)
            try:
                ev = self.proc.evaluator.evaluate(bp.tree, bp.condition, held=_NO_CALLS, scope=scope)  # type: ignore[arg-type]
            except _CallNeeded:
                called = True
                self.tracee.stop_all(but=stop.thread)
                with signals_held(), self._held(stop) as held:
                    ev = self.proc.evaluator.evaluate(bp.tree, bp.condition, held=held, scope=scope)
        except TargetExited:
            raise  # not the condition's fault: the program is ending (Debugger.wait)
        except GocallError as e:
            return str(e), called
        if ev.error is not None or ev.panic is not None:
            return ev.error or "the condition panicked", called
        if len(ev.results) != 1 or not isinstance(ev.results[0].value, bool):
            return f"condition {bp.condition!r} is not a bool", called
        return ev.results[0].value, called

    def _resume_from(self, thread: Thread, regs: Any = None) -> None:
        """Step ``thread`` over the breakpoint it is stopped at and let the program run on:
        displaced (process/displaced.py), the other threads never stopped, when the
        instruction can run elsewhere; else in place, all-stop. ``regs``: its registers, if known."""
        regs = regs if regs is not None else ptrace.getregs(thread.tid)
        rip = regs.rip
        breaks = self.tracee.breaks
        slot = self.displaced.slot(rip, lambda: breaks.original(rip, _INSN_MAX)) if rip in breaks else None
        if slot is not None:
            try:
                thread.deferred.extend(self.displaced.step(thread.tid, slot, regs))
            except SteppedIntoExit as e:
                self.tracee.exit_status(thread.tid, e.status)
                raise
            except ProcessError as e:  # left at the breakpoint, unharmed: step it in place
                log.debug("%s; stepping in place", e)
            else:
                self.tracee.resume_all()
                return
        self.tracee.stop_all(but=thread)
        self._step_over(thread)
        self.tracee.resume_all()

    def _step_over(self, thread: Thread) -> None:
        """Execute the instruction under our INT3 on ``thread`` alone (every other thread is stopped)."""
        if not thread.traced:
            return
        rip = ptrace.getregs(thread.tid).rip
        breaks = self.tracee.breaks
        if rip not in breaks:
            return
        breaks.lift(rip)
        try:
            thread.run_until_trap(step=True)
        finally:
            breaks.lower(rip)

    def _step_out(self, thread: Thread, regs: Any) -> Any:
        """From inside runtime.Breakpoint to the instruction after its call in the caller."""
        tab = self.proc.binary.pclntab
        for _ in range(_STEP_OUT_MAX):
            f = tab.func_for_pc(regs.rip)
            if f is None or f.name not in _BREAKPOINT_FUNCS:
                return regs
            step = thread.run_until_trap(step=True)
            assert step is not None
            regs = step.regs
        return regs

    def _make_stop(self, thread: Thread, regs: Any, bp: Breakpoint | None) -> Stop:
        return Stop(self, thread, regs, bp)

    def unwind(self, stop: Stop) -> list[Frame]:
        """``stop``'s goroutine's frames, from the stopped thread's registers."""
        unwinder = self.proc.runtime.unwinder
        frames: list[Frame] = []
        for step in walk(self.proc.mem, unwinder.tab, unwinder.ids, stop.regs.rip, stop.regs.rsp, True):
            frames.append(unwinder.frame_at(step.func, step.pc, step.sp, step.trap,
                                            frames[-1].func.funcID if frames else None))
        return frames

    def _innermost(self, stop: Stop) -> Frame:
        if stop._frames is not None:
            return stop._frames[0]
        pc, sp = stop.regs.rip, stop.regs.rsp
        frame = self._frames.get((pc, sp))
        if frame is None:
            f = self.proc.binary.pclntab.func_for_pc(pc)
            if f is None:
                raise ExprError(f"no Go function at {pc:#x}")
            if len(self._frames) >= _FRAMES_CACHED:
                self._frames.clear()
            frame = self._frames[pc, sp] = self.proc.runtime.unwinder.frame_at(f, pc, sp, True)
        return frame

    # -- evaluating at a stop -----------------------------------------------------------

    @property
    def scopes(self) -> Scopes:
        if self._scopes is None:
            self._scopes = Scopes(self.proc.binary)
        return self._scopes

    def frame_scope(self, stop: Stop, frame: int, regs: Any = None) -> FrameScope:
        """The variables of ``stop``'s frame ``frame``; ``regs``: the thread's registers, if known."""
        if frame == 0:
            f = self._innermost(stop)
        elif 0 <= frame < len(stop.frames):
            f = stop.frames[frame]
        else:
            raise ExprError(f"there is no frame {frame}: goroutine {stop.goroutine} has {len(stop.frames)}",
                            hint="frame 0 is the innermost; see stop.frames")
        if frame != 0:
            return FrameScope(self.scopes, self.proc.mem, f, None, None)
        tid = stop.thread.tid
        return FrameScope(self.scopes, self.proc.mem, f, regs if regs is not None else ptrace.getregs(tid),
                          lambda: bytes(ptrace.getfpregs(tid)))

    def evaluate_at(self, stop: Stop, expr: str, frame: int, unsafe: bool) -> Evaluation:
        try:
            tree = parse_statement(expr)
            scope = _FrameVariables(self.frame_scope(stop, frame), stop.thread)
        except GocallError as e:
            return Evaluation(expr, error=str(e), exception=e)
        with signals_held(), self._held(stop) as held:
            return self.proc.evaluator.evaluate(tree, expr, unsafe, held=held, scope=scope)

    @contextlib.contextmanager
    def _held(self, stop: Stop) -> Iterator[Held]:
        """The stopped thread as the call engine's held thread.

        All-stop (the default): the other threads are its group, resumed while a call runs
        and stopped again after (the engine's stop-the-world mode), our INT3s lifted
        meanwhile. Non-stop (after :meth:`release_others`): the other threads run untraced
        throughout, as for any gocall call (on Go < 1.21 too: the engine locks the call's
        goroutine to this thread, call/lock.py)."""
        proc, tracee = self.proc, self.tracee
        regs = ptrace.getregs(stop.thread.tid)
        verdict = safepoint.check(regs, proc.mem, proc.layout, proc.binary.pclntab)
        group = ThreadGroup(tracee.pid, exclude=[stop.thread.tid])
        if not self.nonstop:
            group.threads = {tid: t for tid, t in tracee.threads.items() if t is not stop.thread}
        saved, proc.engine.stop_the_world = proc.engine.stop_the_world, not self.nonstop
        try:
            held = Held(proc.engine, stop.thread, Advanced(regs, verdict, 0, 0), group)
        finally:
            proc.engine.stop_the_world = saved
        tracee.breaks.suspend()
        try:
            yield held
        finally:
            tracee.breaks.resume()
            # The thread that holds the goroutine now (the engine keeps a callee on it: call/lock.py);
            # threads the runtime started during the calls were adopted by the group.
            stop.thread = held.thread
            group.threads.pop(stop.thread.tid, None)
            if self.nonstop:
                group.keep = [stop.thread.tid]
                group.detach_all()
                tracee.threads = {stop.thread.tid: stop.thread}
            else:
                tracee.threads = {tid: t for tid, t in group.threads.items() if t.traced}
                tracee.threads[stop.thread.tid] = stop.thread

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
        self.nonstop = True
        if interrupts.signal is not None:
            raise ProcessError("interrupted")
