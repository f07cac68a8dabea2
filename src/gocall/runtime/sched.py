"""Where a goroutine will next run Go user code, seen from outside.

A goroutine that is in the runtime (allocating, in a write barrier, growing
its stack, parked in a channel operation) comes back to user code when the
runtime function returns: at the return address of the innermost frame that
belongs to user code. That address is found by walking the goroutine's frames
as the runtime's unwinder does (:func:`gocall.runtime.unwind.walk`): from the
thread's registers when it runs on the goroutine's stack, from ``g.sched`` when
the goroutine is parked or its thread is on the system stack (systemstack, mcall
and morestack save it there; runtime/asm_amd64.s).

"User code" means what ``debugCallCheck`` accepts: a Go function outside the
``runtime.`` package names, not assembly. Functions compiled as part of the
runtime under another name (``time.Sleep``, ``sync.runtime_Semacquire``) have no
safe points at all (cmd/compile liveness: ``IsUnsafe``), so the walk goes past
them to their caller.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..binary.pclntab import FuncFlag_ASM, Func, Pclntab, UnsafePointSafe
from ..errors import BadAddress
from ..process.memory import Memory
from .goroutines import G, Status, read_g
from .layouts import Layout

if TYPE_CHECKING:
    from .unwind import Step

# User code is never this deep below the runtime's frames; a walk that finds none by then gives up.
MAX_FRAMES = 64
_MAX_MS = 10_000  # runtime.allm's length is bounded by debug.SetMaxThreads (10,000 by default)

# The wait reasons (runtime.waitReasonStrings, the same words in every Go release gocall supports)
# of a goroutine nobody can ever ready: ``select {}`` (runtime.block, waitReasonSelectNoCases) and
# an operation on a nil channel (waitReasonChanReceiveNilChan, waitReasonChanSendNilChan). Its
# resume point is never reached: a catch need not arm it (call/engine.py).
PARKED_FOR_EVER = frozenset({"select (no cases)", "chan receive (nil chan)", "chan send (nil chan)"})


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


def resume_point(
    mem: Memory, tab: Pclntab, pc: int, sp: int, stack: tuple[int, int], leave_innermost: bool = False
) -> ResumePoint | None:
    """The first place up the stack where the goroutine returns into user code; None if it never will
    (a system goroutine, or a stack that cannot be walked).

    ``leave_innermost``: the innermost frame is user code without a safe point ahead
    (a //go:nosplit function has none at all): look for the return from it instead."""
    # Loaded here: a call whose thread is already at a safe point walks no stack, and unwind
    # (with binary/funcdata) is ~1.5 ms of a cold `gocall call`'s imports.
    from .unwind import func_ids, walk

    prev: Step | None = None
    # The innermost PC is where the thread (or g.sched) is, looked up as is; outer ones are
    # return addresses, looked up at the call (pc - 1) unless the callee interrupted them.
    for fr in itertools.islice(walk(mem, tab, func_ids(tab), pc, sp, trap=True, stack=stack), MAX_FRAMES):
        if is_user_code(fr.func) and not (leave_innermost and prev is None):
            if prev is None:
                return _point(fr, True, None)
            # A call site is a safe point unless the callee is an assembly helper inside an
            # unsafe stretch (write barrier, morestack in the prologue): a few single steps
            # from the return address reach a safe point. Go callees called from an unsafe
            # PC mean a function without safe points: resume in its caller instead.
            if fr.func.unsafe_point(_lookup(fr)) == UnsafePointSafe or prev.func.flag & FuncFlag_ASM:
                return _point(fr, False, prev.func.name)
        prev = fr
    return None


def _lookup(fr: Step) -> int:
    """The PC to look ``fr``'s tables up with."""
    return fr.pc if fr.trap else fr.pc - 1


def _point(fr: Step, innermost: bool, callee: str | None) -> ResumePoint:
    file, line = fr.func.file_line(_lookup(fr))
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


def sysmon_procid(mem: Memory, layout: Layout, allm: int, sysmon: int) -> int | None:
    """``m.procid`` of the M started to run ``runtime.sysmon`` (entry ``sysmon``), or None before
    it is: its thread never runs a goroutine (no P, no g but g0), so a catch of parked goroutines
    need not arm it, nor wake it twice to let it go (call/engine.py). ``runtime.allm`` (address
    ``allm``) is read without its lock: Ms are only prepended, and a look that fails says None."""
    try:
        m = mem.u64(allm)
        for _ in range(_MAX_MS):
            if m == 0:
                return None
            fn = mem.u64(m + layout.m_mstartfn)  # a func value: the address of its funcval, PC first
            if fn and mem.u64(fn) == sysmon:
                return mem.u64(m + layout.m_procid) or None
            m = mem.u64(m + layout.m_alllink)
    except BadAddress:
        pass
    return None


def parked_resume_point(mem: Memory, layout: Layout, tab: Pclntab, g: G) -> ResumePoint | None:
    """Where a goroutine that is not running will next run user code."""
    pc, sp = sched(mem, layout, g)
    return resume_point(mem, tab, pc, sp, (g.stack_lo, g.stack_hi))
