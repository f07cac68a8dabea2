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

from dataclasses import dataclass, field
from functools import cached_property

from ..binary.funcdata import FuncData
from ..binary.pclntab import FuncFlag_SPWRITE, FuncFlag_TOPFRAME, Func, Pclntab
from ..errors import ProcessError
from ..process.memory import Memory
from .goroutines import Goroutine

__all__ = ["Frame", "FuncIDs", "SourceFrame", "Unwinder", "is_shown", "shown_frames"]

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


class Unwinder:
    """Walks goroutine stacks of one process."""

    def __init__(self, mem: Memory, tab: Pclntab, funcdata: FuncData) -> None:
        self.mem = mem
        self.tab = tab
        self.funcdata = funcdata
        self.ids = FuncIDs(tab)

    def frames(self, g: Goroutine, regs: tuple[int, int] | None = None) -> list[Frame]:
        """The physical frames of ``g``, innermost first.

        ``regs`` is ``(rip, rsp)`` of the thread running ``g`` on its own stack; without
        them a running goroutine is unwound from ``g.sched``, which is stale.
        """
        if regs is not None:
            pc, sp, trap, syscall = regs[0], regs[1], True, False
        elif g.syscall_sp:
            pc, sp, trap, syscall = g.syscall_pc, g.syscall_sp, False, True
        else:
            pc, sp, trap, syscall = g.sched_pc, g.sched_sp, False, False
        frames: list[Frame] = []
        while pc and len(frames) < _MAX_FRAMES:
            f = self.tab.func_for_pc(pc)
            if f is None or f.pcsp == 0:
                break
            callee = frames[-1].func.funcID if frames else None
            frame, lr = self._resolve(f, pc, sp, trap, innermost=not frames, syscall=syscall, callee=callee)
            frames.append(frame)
            if lr == 0:
                break
            trap = f.funcID in self.ids.injected
            pc, sp = lr, frame.fp
        return frames

    def _resolve(self, f: Func, pc: int, sp: int, trap: bool, innermost: bool, syscall: bool,
                 callee: int | None) -> tuple[Frame, int]:
        frame = self.frame_at(f, pc, sp, trap, callee)
        flag = f.flag & ~FuncFlag_SPWRITE if syscall and innermost else f.flag
        lr = 0
        if not flag & FuncFlag_TOPFRAME and not (flag & FuncFlag_SPWRITE and not innermost):
            try:
                lr = self.mem.u64(frame.fp - 8)
            except ProcessError:
                lr = 0
        return frame, lr

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
        sympc = pc if trap or pc == f.entry else pc - 1
        calls = []
        inline = self.funcdata.inline_frames(f, sympc)
        for depth, (name, func_id, upc) in enumerate(inline):
            file, line = f.file_line(upc)
            calls.append(SourceFrame(name, file, line, func_id, inlined=depth < len(inline) - 1))
        return Frame(f, pc, sp, fp, varp, fp, continpc, trap, tuple(calls))

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
    shown = []
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
