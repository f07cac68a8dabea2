"""Where a goroutine will next run Go user code, seen from outside.

A goroutine that is in the runtime (allocating, in a write barrier, growing
its stack, parked in a channel operation) comes back to user code when the
runtime function returns: at the return address of the innermost frame that
belongs to user code. That address is found by walking the goroutine's frames
with the pcsp tables (facts sheet §4.6, runtime/traceback.go): from the thread's
registers when it runs on the goroutine's stack, from ``g.sched`` when the
goroutine is parked or its thread is on the system stack (systemstack, mcall
and morestack save it there; runtime/asm_amd64.s).

"User code" means what ``debugCallCheck`` accepts: a Go function outside the
``runtime.`` package names, not assembly. Functions compiled as part of the
runtime under another name (``time.Sleep``, ``sync.runtime_Semacquire``) have no
safe points at all (cmd/compile liveness: ``IsUnsafe``), so the walk goes past
them to their caller.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ..binary.pclntab import FuncFlag_ASM, FuncFlag_TOPFRAME, Func, Pclntab, UnsafePointSafe
from ..process.memory import Memory
from .goroutines import G, Status, read_g
from .layouts import Layout

MAX_FRAMES = 64
# Frames whose "return address" is the exact interrupted instruction, not a call's
# successor (runtime.isInjectedCall): look that PC up as is, not minus one.
_INJECTED = {"runtime.asyncPreempt", "runtime.sigpanic", "runtime.debugCallV2"}


@dataclass(frozen=True)
class Frame:
    pc: int  # where the function is, or will resume (a return address for outer frames)
    sp: int  # the SP value inside the frame
    func: Func
    depth: int  # 0 for the innermost frame
    lookup_pc: int  # the PC to look tables up with (pc - 1 after a call)


@dataclass(frozen=True)
class ResumePoint:
    """Where a goroutine will next run user code."""

    pc: int
    function: str
    innermost: bool  # it is there already: single-step, no breakpoint needed
    callee: str | None  # the function it is inside of (what it is blocked in, for messages)
    file: str
    line: int


def is_user_code(f: Func) -> bool:
    """What debugCallCheck calls user code: not runtime.*, not assembly."""
    return not f.name.startswith("runtime.") and not f.flag & FuncFlag_ASM


def frames(mem: Memory, tab: Pclntab, pc: int, sp: int, stack: tuple[int, int]) -> Iterator[Frame]:
    """The goroutine's frames from (pc, sp) outwards, stopping where the stack ends or makes no sense."""
    lookup = pc
    for depth in range(MAX_FRAMES):
        f = tab.func_for_pc(lookup)
        if f is None or not stack[0] <= sp <= stack[1]:
            return
        yield Frame(pc, sp, f, depth, lookup)
        if f.flag & FuncFlag_TOPFRAME:
            return
        delta = f.spdelta(lookup)
        if delta < 0:
            return
        fp = sp + delta + 8
        if fp > stack[1]:
            return
        pc, sp = mem.u64(fp - 8), fp
        lookup = pc if f.name in _INJECTED else pc - 1


def resume_point(
    mem: Memory, tab: Pclntab, pc: int, sp: int, stack: tuple[int, int], leave_innermost: bool = False
) -> ResumePoint | None:
    """The first place up the stack where the goroutine returns into user code; None if it never will
    (a system goroutine, or a stack that cannot be walked).

    ``leave_innermost``: the innermost frame is user code without a safe point ahead
    (a //go:nosplit function has none at all): look for the return from it instead."""
    prev: Frame | None = None
    for fr in frames(mem, tab, pc, sp, stack):
        if is_user_code(fr.func) and not (leave_innermost and prev is None):
            if prev is None:
                return _point(fr, True, None)
            # A call site is a safe point unless the callee is an assembly helper inside an
            # unsafe stretch (write barrier, morestack in the prologue): a few single steps
            # from the return address reach a safe point. Go callees called from an unsafe
            # PC mean a function without safe points: resume in its caller instead.
            if fr.func.unsafe_point(fr.lookup_pc) == UnsafePointSafe or prev.func.flag & FuncFlag_ASM:
                return _point(fr, False, prev.func.name)
        prev = fr
    return None


def _point(fr: Frame, innermost: bool, callee: str | None) -> ResumePoint:
    file, line = fr.func.file_line(fr.lookup_pc)
    return ResumePoint(fr.pc, fr.func.name, innermost, callee, file, line)


def sched(mem: Memory, layout: Layout, g: G) -> tuple[int, int]:
    """``g.sched.pc`` and ``g.sched.sp``: where a goroutine that is not running resumes."""
    return mem.u64(g.addr + layout.g_sched_pc), mem.u64(g.addr + layout.g_sched_sp)


def all_goroutines(mem: Memory, layout: Layout, allgs: int) -> list[G]:
    """Every goroutine that exists (``runtime.allgs``, a ``[]*g``), dead ones left out.

    Read without the runtime's lock: a goroutine created meanwhile may be missed,
    none is ever freed (g structs are reused, never unmapped).
    """
    ptr, n = struct.unpack("<QQ", mem.read(allgs, 16))
    if n == 0:
        return []
    gs = (read_g(mem, layout, a) for a in struct.unpack(f"<{n}Q", mem.read(ptr, 8 * n)))
    return [g for g in gs if g.status not in (Status.DEAD, Status.IDLE)]


def parked_resume_point(mem: Memory, layout: Layout, tab: Pclntab, g: G) -> ResumePoint | None:
    """Where a goroutine that is not running will next run user code."""
    pc, sp = sched(mem, layout, g)
    return resume_point(mem, tab, pc, sp, (g.stack_lo, g.stack_hi))
