"""A stop and what can be read at it: the stopped goroutine's frames and their variables.

Reading is lazy because most stops are hits whose condition is false: they need the
innermost frame only (cached by PC and SP, a hot breakpoint sees the same few), never the
goroutine's id or the rest of its stack. Inlined calls have no frames of their own: the
variables of functions inlined at the PC are merged into the physical frame's, the
innermost inlined scope first.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import ExprError, GocallError
from ..expr.eval import Evaluation
from ..expr.operand import Operand
from ..process import ptrace
from ..process.threads import Thread
from ..runtime.goroutines import thread_g
from ..runtime.locals import FrameScope, Scopes, Variable
from ..runtime.safepoint import Verdict
from ..runtime.unwind import Frame, SourceFrame, walk
from ..values.model import GoValue
from .breakpoint import Breakpoint

if TYPE_CHECKING:
    from ..process.displaced import DisplacedSteps
    from ..process.tracee import Tracee
    from .host import Process

BREAKPOINT_FUNCS = ("runtime.Breakpoint", "runtime.breakpoint")
_UNREAD = -1  # Stop._goroutine before it is read (goroutine ids start at 1)
_FXSAVE_SIZE = 512  # the legacy area at the start of an XSAVE image (user_fpregs_struct's layout)
_FRAMES_CACHED = 1024  # innermost frames kept by (PC, SP): a hot breakpoint sees the same few


class Debugger(Protocol):
    """What a stop and stops/ need of the debugger that made it (:class:`gocall.stop.Debugger`
    provides it; a protocol so that imports only point down)."""

    @property
    def proc(self) -> Process: ...
    @property
    def tracee(self) -> Tracee: ...
    @property
    def nonstop(self) -> bool: ...
    @property
    def stop(self) -> Stop | None: ...
    @property
    def displaced(self) -> DisplacedSteps: ...
    @property
    def frames(self) -> Frames: ...
    others_resumed: int
    def by_pc(self, pc: int) -> Breakpoint | None: ...
    def evaluate_at(self, stop: Stop, expr: str, frame: int, unsafe: bool) -> Evaluation: ...


class Known(NamedTuple):
    """The stopped thread as the last evaluation at its stop left it: every call restores the
    registers and XSAVE image exactly, so the next evaluation reads neither again, nor checks
    the place again (the goroutine has not moved; the runtime's own debugCallCheck still runs)."""

    tid: int
    regs: Any  # user_regs_struct
    xstate: bytes
    verdict: Verdict


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
    # Set after an evaluation (stops/calls.py held), dropped by whatever changes the thread's registers.
    known: Known | None = field(default=None, repr=False)
    # The debugCallV2 run the last evaluation left open (stops/calls.py Kept), ended by settle().
    kept: Any = field(default=None, repr=False)

    def known_regs(self) -> Any:
        """The stopped thread's registers if the last evaluation left them known, else None."""
        known = self.known
        return known.regs if known is not None and known.tid == self.thread.tid else None

    def note_goroutine(self, goid: int | None) -> None:
        """The stopped goroutine's id, known from elsewhere (stops/calls.py: while an evaluation's
        run is kept open, the thread's g is the call's goroutine, not the stopped one)."""
        if self._goroutine == _UNREAD:
            self._goroutine = goid

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
            self._frames = self.debugger.frames.unwind(self) if self.goroutine is not None else []
        return self._frames

    @property
    def source(self) -> SourceFrame | None:
        """The innermost source frame, runtime.Breakpoint (inlined since Go 1.2x) left out."""
        calls = self.frames[0].calls if self.frames else ()
        return next((c for c in calls if c.function not in BREAKPOINT_FUNCS), calls[-1] if calls else None)

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

    def variables(self, frame: int = 0) -> list[Variable]:
        """The parameters and locals visible in frame ``frame`` (names and types), none of them read."""
        return self.debugger.frames.scope(self, frame).variables

    def locals(self, frame: int = 0) -> dict[str, GoValue | str]:
        """Every parameter and local visible in frame ``frame``: its value, or why it is not available."""
        scope = self.debugger.frames.scope(self, frame)
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


class FrameVariables:
    """The evaluator's view (expr.operand.Scope) of one stopped frame."""

    def __init__(self, scope: FrameScope, thread: Thread) -> None:
        self.scope = scope
        self.thread = thread
        self.function = scope.frame.function
        self.stored = False  # a register was written: the stop's Known registers are stale

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
        from ..binary.dwarfloc import DWARF_REGS

        regs = ptrace.getregs(self.thread.tid)
        for reg, off, size in slots:
            old = struct.pack("<Q", getattr(regs, DWARF_REGS[reg]) & (1 << 64) - 1)
            setattr(regs, DWARF_REGS[reg], struct.unpack("<Q", image[off : off + size] + old[size:])[0])
        ptrace.setregs(self.thread.tid, regs)
        self.scope.regs = regs
        self.stored = True
        return True


class Frames:
    """The frames and variables of goroutines stopped in one process (caches shared by every stop)."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self._scopes: Scopes | None = None
        self._innermost: dict[tuple[int, int], Frame] = {}  # innermost frames by (PC, SP)

    @property
    def scopes(self) -> Scopes:
        if self._scopes is None:
            self._scopes = Scopes(self.proc.binary)
        return self._scopes

    def unwind(self, stop: Stop) -> list[Frame]:
        """``stop``'s goroutine's frames, from the stopped thread's registers."""
        unwinder = self.proc.runtime.unwinder
        frames: list[Frame] = []
        for step in walk(self.proc.mem, unwinder.tab, unwinder.ids, stop.regs.rip, stop.regs.rsp, True):
            frames.append(unwinder.frame_at(step.func, step.pc, step.sp, step.trap,
                                            frames[-1].func.funcID if frames else None))
        return frames

    def innermost(self, stop: Stop) -> Frame:
        if stop._frames is not None:
            return stop._frames[0]
        pc, sp = stop.regs.rip, stop.regs.rsp
        frame = self._innermost.get((pc, sp))
        if frame is None:
            f = self.proc.binary.pclntab.func_for_pc(pc)
            if f is None:
                raise ExprError(f"no Go function at {pc:#x}")
            if len(self._innermost) >= _FRAMES_CACHED:
                self._innermost.clear()
            frame = self._innermost[pc, sp] = self.proc.runtime.unwinder.frame_at(f, pc, sp, True)
        return frame

    def scope(self, stop: Stop, frame: int, regs: Any = None) -> FrameScope:
        """The variables of ``stop``'s frame ``frame``; ``regs``: the thread's registers, if known."""
        if frame == 0:
            f = self.innermost(stop)
        elif 0 <= frame < len(stop.frames):
            f = stop.frames[frame]
        else:
            raise ExprError(f"there is no frame {frame}: goroutine {stop.goroutine} has {len(stop.frames)}",
                            hint="frame 0 is the innermost; see stop.frames")
        if frame != 0:
            return FrameScope(self.scopes, self.proc.mem, f, None, None)
        tid, known = stop.thread.tid, stop.known
        if known is not None and known.tid == tid:
            # The thread as the last evaluation restored it, or will (an open run, stops/calls.py held):
            # the XSAVE image begins with the FXSAVE area PTRACE_GETFPREGS returns.
            return FrameScope(self.scopes, self.proc.mem, f, regs if regs is not None else known.regs,
                              lambda: known.xstate[:_FXSAVE_SIZE])
        return FrameScope(self.scopes, self.proc.mem, f, regs if regs is not None else ptrace.getregs(tid),
                          lambda: bytes(ptrace.getfpregs(tid)))
