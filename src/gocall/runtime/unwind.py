"""Unwinding a goroutine's stack from outside, as the runtime's ``unwinder`` does.

Mirrors ``runtime/traceback.go`` (``unwinder.initAt``, ``resolveInternal``, ``next``,
``symPC``, ``showfuncinfo``) and ``runtime/symtabinl.go`` (inlined frames), on amd64
(facts sheet 4.6): ``fp = sp + pcsp(pc) + 8``, the return PC is at ``fp - 8``, ``varp``
is ``fp - 8`` less the saved RBP when the frame is not empty, ``argp = fp``. Unwinding
stops at a TOPFRAME function (goexit, mstart) and at SPWRITE functions other than the
innermost one. The caller of ``sigpanic``, ``asyncPreempt`` or ``debugCallV2`` was
interrupted, not calling: its PC is the interrupted instruction, symbolized as is
(``unwindTrap``) instead of ``pc - 1``.

Where the walk starts (``initAt``): a goroutine in a system call from
``g.syscallpc/sp``, any other stopped one from ``g.sched.pc/sp``, and one running on a
thread from that thread's registers, when the caller supplies them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, Protocol

from ..binary.funcdata import FuncData
from ..binary.pclntab import FuncFlag_SPWRITE, FuncFlag_TOPFRAME, Func, Pclntab
from ..errors import ProcessError
from ..process.memory import Memory
from .goroutines import Goroutine

__all__ = ["Frame", "FuncIDs", "SourceFrame", "Step", "Unwinder", "Words", "func_ids", "is_shown", "shown_frames",
           "walk"]

_MAX_FRAMES = 10_000  # a corrupt stack must not loop forever


@dataclass(frozen=True)
class SourceFrame:
    """One frame as Go prints it: a function, possibly inlined into the physical frame."""

    function: str
    file: str
    line: int
    funcID: int
    inlined: bool


@dataclass(frozen=True)
class Frame:
    """One physical frame (``runtime.stkframe``) and the source frames it holds, innermost first."""

    func: Func = field(repr=False)
    pc: int  # return address, or the interrupted instruction when ``trap``
    sp: int
    fp: int  # caller's SP
    varp: int  # top of the locals
    argp: int  # start of the incoming arguments
    continpc: int  # where it continues (0: it will not; a frame under sigpanic without defers)
    trap: bool  # pc is an interrupted instruction, not a return address
    calls: tuple[SourceFrame, ...]

    @property
    def function(self) -> str:
        return self.func.name

    @property
    def offset(self) -> int:
        """``pc - entry``: the ``+0x27`` of a Go traceback."""
        return self.pc - self.func.entry


class FuncIDs:
    """The funcIDs the unwinder cares about, read from the binary by function name, since
    their numbers move between releases (facts sheet 3.7)."""

    def __init__(self, tab: Pclntab) -> None:
        def fid(name: str) -> int | None:
            f = tab.func_by_name(name)
            return None if f is None else f.funcID

        self.asyncPreempt = fid("runtime.asyncPreempt")
        self.debugCallV2 = fid("runtime.debugCallV2")
        self.sigpanic = fid("runtime.sigpanic")
        self.gopanic = fid("runtime.gopanic")
        self.panicwrap = fid("runtime.panicwrap")
        # debugCallNN are WRAPPER-flagged assembly, so they carry FuncIDWrapper (facts 1.5).
        self.wrapper = fid("debugCall32")
        self.finalizers = {i for i in (fid("runtime.runfinq"), fid("runtime.runFinalizers"),
                                       fid("runtime.runCleanups")) if i is not None}

    @cached_property
    def injected(self) -> frozenset[int]:
        """Functions whose caller was interrupted rather than calling (``injectedCall``)."""
        return frozenset(i for i in (self.sigpanic, self.asyncPreempt, self.debugCallV2) if i is not None)


_func_ids: weakref.WeakKeyDictionary[Pclntab, FuncIDs] = weakref.WeakKeyDictionary()


def func_ids(tab: Pclntab) -> FuncIDs:
    """The :class:`FuncIDs` of ``tab``, looked up once per binary."""
    ids = _func_ids.get(tab)
    if ids is None:
        ids = _func_ids[tab] = FuncIDs(tab)
    return ids


class Words(Protocol):
    """Where a walk reads return addresses: the process (:class:`Memory`) or a copy of a stack."""

    def u64(self, addr: int) -> int: ...


class Step(NamedTuple):
    """One physical frame as :func:`walk` finds it, before any source-level detail."""

    func: Func
    pc: int
    sp: int
    trap: bool  # pc is an interrupted instruction, not a return address


def walk(mem: Words, tab: Pclntab, ids: FuncIDs, pc: int, sp: int, trap: bool,
         stack: tuple[int, int] | None = None) -> Iterator[Step]:
    """The physical frames from ``(pc, sp)`` outwards (``unwinder.next``): ``fp = sp + pcsp(pc)
    + 8``, the caller's PC at ``fp - 8``. Ends after a TOPFRAME function or a SPWRITE one other
    than the innermost (whose SP cannot be trusted), at a PC outside any function or without a
    pcsp table, at an unreadable return address and, given the goroutine's ``stack`` bounds, at
    a frame outside them. ``trap``: ``pc`` is an interrupted instruction (thread registers)."""
    for depth in range(_MAX_FRAMES):
        f = tab.func_for_pc(pc) if pc else None
        if f is None or f.pcsp == 0 or (stack is not None and not stack[0] <= sp <= stack[1]):
            return
        yield Step(f, pc, sp, trap)
        delta = f.spdelta(pc)  # -1: no value for pc, which the runtime reports as a bad frame
        if delta < 0 or f.flag & FuncFlag_TOPFRAME or (f.flag & FuncFlag_SPWRITE and depth > 0):
            return
        fp = sp + delta + 8  # + the return PC the CALL pushed
        if stack is not None and fp > stack[1]:
            return
        try:
            pc = mem.u64(fp - 8)
        except ProcessError:
            return
        sp, trap = fp, f.funcID in ids.injected


class Unwinder:
    """Walks goroutine stacks of one process."""

    def __init__(self, mem: Memory, tab: Pclntab, funcdata: FuncData) -> None:
        self.mem = mem
        self.tab = tab
        self.funcdata = funcdata
        self.ids = func_ids(tab)
        self._calls: dict[tuple[int, bool], tuple[SourceFrame, ...]] = {}

    def frames(self, g: Goroutine, regs: tuple[int, int] | None = None) -> list[Frame]:
        """The physical frames of ``g``, innermost first.

        ``regs`` is ``(rip, rsp)`` of the thread running ``g`` on its own stack; without
        them a running goroutine is unwound from ``g.sched``, which is stale.
        """
        pc, sp, trap = g.unwind_start(regs)
        frames: list[Frame] = []
        for step in walk(self.mem, self.tab, self.ids, pc, sp, trap):
            callee = frames[-1].func.funcID if frames else None
            frames.append(self.frame_at(step.func, step.pc, step.sp, step.trap, callee))
        return frames

    def frame_at(self, f: Func, pc: int, sp: int, trap: bool = False, callee: int | None = None) -> Frame:
        """The frame of ``f`` stopped at ``pc`` with stack pointer ``sp`` (no memory read):
        its geometry, continuation PC and source frames. ``callee`` is the funcID of the
        frame below it, if any."""
        fp = sp + f.spdelta(pc) + 8  # + the return PC the CALL pushed
        varp = fp - 8
        if varp > sp:
            varp -= 8  # the saved RBP
        continpc = pc
        if callee is not None and callee == self.ids.sigpanic:
            continpc = f.entry + f.deferreturn + 1 if f.deferreturn else 0
        return Frame(f, pc, sp, fp, varp, fp, continpc, trap, self.source_frames(f, pc, trap))

    def source_frames(self, f: Func, pc: int, trap: bool) -> tuple[SourceFrame, ...]:
        """The source frames of ``f`` at ``pc``, innermost first (inlined calls expanded);
        kept per PC, as goroutine listings ask about the same PCs thousands of times."""
        key = (pc, trap)
        calls = self._calls.get(key)
        if calls is None:
            sympc = pc if trap or pc == f.entry else pc - 1
            inline = self.funcdata.inline_frames(f, sympc)
            calls = self._calls[key] = tuple(
                SourceFrame(name, *f.file_line(upc), func_id, inlined=depth < len(inline) - 1)
                for depth, (name, func_id, upc) in enumerate(inline))
        return calls

    def created_by(self, g: Goroutine) -> tuple[SourceFrame, int] | None:
        """Where ``g`` was created: the go statement's frame and its ``pc - entry``; None for
        goroutine 1 and for goroutines the runtime started (printcreatedby hides those)."""
        if not g.gopc or g.goid == 1:
            return None
        f = self.tab.func_for_pc(g.gopc)
        if f is None:
            return None
        pc = g.gopc - 1 if g.gopc > f.entry else g.gopc
        file, line = f.file_line(pc)
        creator = SourceFrame(f.name, file, line, f.funcID, False)
        return (creator, g.gopc - f.entry) if is_shown(creator, False, 0, self.ids) else None


def shown_frames(frames: list[Frame], ids: FuncIDs) -> list[tuple[Frame, SourceFrame]]:
    """The source frames ``runtime.Stack`` prints (traceback level 1, ``showfuncinfo``):
    no unexported runtime functions, no wrappers called by anything but a panic."""
    shown: list[tuple[Frame, SourceFrame]] = []
    callee: int | None = None
    for frame in frames:
        for sf in frame.calls:
            if is_shown(sf, first=not shown, callee=callee, ids=ids):
                shown.append((frame, sf))
            callee = sf.funcID
    return shown


def is_shown(sf: SourceFrame, first: bool, callee: int | None, ids: FuncIDs) -> bool:
    """runtime.showfuncinfo at traceback level 1 (GOTRACEBACK unset, runtime.Stack)."""
    if sf.funcID == ids.wrapper and callee not in (ids.gopanic, ids.sigpanic, ids.panicwrap):
        return False
    if sf.funcID in ids.finalizers:
        return True
    name = sf.function
    if name == "runtime.gopanic" and not first:
        return True
    return "." in name and (not name.startswith("runtime.") or _exported_runtime(name))


def _exported_runtime(name: str) -> bool:
    """runtime.isExportedRuntime: ``runtime.Gosched``, ``runtime.(*Func).Name``."""
    name = name.removeprefix("runtime.")
    receiver, _, name = name.rpartition(".")
    if receiver.startswith("(*") and receiver.endswith(")"):
        receiver = receiver[2:-1]
    return name[:1].isupper() and (not receiver or receiver[:1].isupper())
