"""May a call be injected at this stop? The debugger-side copy of debugCallCheck.

``runtime.debugCallCheck`` (runtime/debugcall.go) refuses calls on the system
stack, from unknown or runtime functions and at unsafe points. Checking the
same conditions from outside first saves a refused injection (two extra
round trips), and adds checks the runtime cannot make for us: the thread is
not inside a system call, the goroutine has room for debugCallV2's frame,
the PC is not in assembly (no unsafe-point tables there), and the runtime
itself could preempt the thread (:func:`_unpreemptible`).

That last check is missing from debugCallCheck, which looks at the PC's function alone: the
runtime calls into other packages' code where it must not be preempted. gcStart stops the
world, then calls sync.poolCleanup (runtime.clearpools); a call injected there runs while the
world is stopped, on a P in _Pgcstop, and the first time the callee blocks (a mutex, a GC of its
own) the scheduler throws "releasep: invalid p state" (seen in bench/soak.py, 4 of ~60,000 calls
on 1.19 and 1.27). The runtime's own test for interrupting a goroutine anywhere is canPreemptM
(runtime/preempt.go, asynchronous preemption): no runtime locks held (m.locks), not allocating
(m.mallocing), preemption not turned off (m.preemptoff), and its P running.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

from ..binary.pclntab import FuncFlag_ASM, Pclntab, UnsafePointSafe
from ..process.memory import Memory
from ..process.regs import user_regs_struct
from .goroutines import G, M, Status, thread_g
from .layouts import Layout

# "at least 256 bytes free": the debugCallV2 comment in runtime/asm_amd64.s.
MIN_FREE_STACK = 256
_NO_SYSCALL = 0xFFFFFFFFFFFFFFFF  # orig_rax is -1 unless the thread stopped inside a system call


# A NamedTuple: a frozen dataclass compiles its methods from source at import (~0.4 ms of a cold
# `gocall call`).
class Verdict(NamedTuple):
    """``reason`` is None when a call may be injected; ``g`` is the goroutine found."""

    reason: str | None
    g: G | None = None
    function: str | None = None
    # Refused for the thread's state (_unpreemptible), which debugCallCheck does not look at: an
    # injection there would be accepted, so a caller that injects without asking (a stop) must refuse.
    unpreemptible: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None


def check(regs: user_regs_struct, mem: Memory, layout: Layout, pclntab: Pclntab) -> Verdict:
    if regs.orig_rax != _NO_SYSCALL:
        return Verdict("thread is in a system call")
    tg = thread_g(mem, layout, regs.fs_base)
    if tg.g is None:
        return Verdict("thread has no goroutine (not a Go thread yet)")
    if not tg.on_user_stack or tg.curg is None:
        return Verdict("executing on Go runtime stack", tg.g)
    g = tg.curg
    if g.status != Status.RUNNING:
        return Verdict(f"goroutine {g.goid} is {g.status_name}, not running", g)
    if not g.stack_lo < regs.rsp <= g.stack_hi:
        return Verdict("executing on Go runtime stack", g)
    if regs.rsp - g.stack_lo < MIN_FREE_STACK + 8:
        return Verdict(f"goroutine {g.goid} has less than {MIN_FREE_STACK} bytes of free stack", g)
    by_pc = _BY_PC.get(pclntab)
    if by_pc is None:
        by_pc = _BY_PC[pclntab] = {}
    found = by_pc.get(regs.rip)
    if found is None:
        found = by_pc[regs.rip] = _at_pc(pclntab, regs.rip)
    if found[0] is None and tg.m is not None and (why := _unpreemptible(mem, layout, tg.m)) is not None:
        return Verdict(f"goroutine {g.goid} is in {found[1]} {why}, where the runtime itself would not interrupt it",
                       g, found[1], unpreemptible=True)  # fmt: skip
    return Verdict(found[0], g, found[1])


_P_RUNNING = 1  # runtime._Prunning


def _unpreemptible(mem: Memory, layout: Layout, m: M) -> str | None:
    """Why the runtime could not preempt the thread of ``m`` now (canPreemptM), or None. The M's
    fields come with the thread's goroutine (goroutines.read_m); one read more, of its P's status."""
    if m.locks:
        return "holding runtime locks"
    if m.mallocing:
        return "inside the allocator"
    if m.preemptoff:  # the string's length: a reason is set
        return "with preemption turned off"
    if m.p == 0:
        return "without a P"
    if mem.u32(m.p + layout.p_status) != _P_RUNNING:
        return "while the world is stopped"
    return None


# The verdict's part that depends on the PC alone is a fact of the binary: cached per binary,
# since a busy goroutine is found at the same few PCs call after call.
_BY_PC: weakref.WeakKeyDictionary[Pclntab, dict[int, tuple[str | None, str | None]]] = weakref.WeakKeyDictionary()


def _at_pc(pclntab: Pclntab, rip: int) -> tuple[str | None, str | None]:
    """(why a call may not be injected at ``rip``, or None; its function's name)."""
    f = pclntab.func_for_pc(rip)
    if f is None:
        return "call from unknown function", None
    if f.name.startswith("runtime."):
        return "call from within the Go runtime", f.name
    if f.flag & FuncFlag_ASM:
        return f"in assembly function {f.name}", f.name
    pc = rip if rip == f.entry else rip - 1  # as debugCallCheck looks it up
    if f.unsafe_point(pc) != UnsafePointSafe:
        return "call not at safe point", f.name
    return None, f.name
