"""Keeping an injected call on the interrupted thread on Go < 1.21.

From Go 1.21 ``debugCallWrap`` calls ``lockOSThread()`` and hands the lock to the
goroutine it creates for the call, so every trap of the call (R12 = 0, 1, 2, 16)
arrives on the thread gocall interrupted. Go 1.19's only hands a lock over when
the interrupted goroutine already held one; otherwise a callee that blocks may
resume on another thread and trap there, and an untraced thread that executes
INT3 kills the process (go-runtime-facts §1.7). Tracing every thread for every
call to guard against that cost ~40 ptrace requests and 5 DETACHes per call.

Instead gocall does what 1.21's debugCallWrap does, at the R12=0 trap (the new
goroutine running on the stopped thread, nothing else touching its ``m`` or its
``g``): ``m.lockedInt++``, ``m.lockedExt = 0``, ``m.lockedg = g``,
``g.lockedm = m``; the scheduler then runs that goroutine on this thread only
(``schedule``/``stoplockedm`` in runtime/proc.go). The lock must hold until the
runtime has switched back to the interrupted goroutine: after R12=1 the call's
goroutine still runs Go code (debugCallWrap2's return, debugCallWrap1) where it
can be preempted, and unlocked it could then resume the interrupted goroutine on
another thread, whose R12=16 trap would kill the process. debugCallWrap1 clears
``g.lockedm`` and ``m.lockedg`` itself in that switch (the code that releases a
transferred lock), so at R12=16 (the interrupted goroutine, same thread) only the
M's counts are left to put back, as 1.21's ``unlockOSThread`` does. The call's
goroutine, on the run queue by then, is not touched again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..process.memory import Memory
from ..runtime.layouts import Layout


@dataclass(frozen=True)
class Lock:
    """The state :func:`lock` changed, to put back."""

    m: int
    lockedg: int
    locked_ext: int
    locked_int: int


def lock(mem: Memory, layout: Layout, g: int) -> Lock | None:
    """Lock goroutine ``g`` (running on the stopped thread) to its M; None when the runtime
    already did (the interrupted goroutine was locked, debugCallWrap transferred it)."""
    gm = mem.read(g, max(layout.g_lockedm, layout.g_m) + 8)
    if struct.unpack_from("<Q", gm, layout.g_lockedm)[0]:
        return None
    m = struct.unpack_from("<Q", gm, layout.g_m)[0]
    # m.lockedg .. m.lockedInt in one read (m.createstack lies between them in every release).
    span = mem.read(m + layout.m_lockedg, layout.m_lockedint + 4 - layout.m_lockedg)
    saved = Lock(m, struct.unpack_from("<Q", span)[0],
                 struct.unpack_from("<I", span, layout.m_lockedext - layout.m_lockedg)[0],
                 struct.unpack_from("<I", span, layout.m_lockedint - layout.m_lockedg)[0])  # fmt: skip
    # Written back in one write, as read: m.createstack is set once, when the M is created, and
    # nothing else writes this M's fields while its thread is stopped by us.
    locked = bytearray(span)
    struct.pack_into("<Q", locked, 0, g)
    struct.pack_into("<I", locked, layout.m_lockedext - layout.m_lockedg, 0)
    struct.pack_into("<I", locked, layout.m_lockedint - layout.m_lockedg, saved.locked_int + 1)
    mem.write(m + layout.m_lockedg, bytes(locked))
    mem.write_u64(g + layout.g_lockedm, m)
    return saved


def unlock(mem: Memory, layout: Layout, saved: Lock) -> None:
    """Undo :func:`lock` at R12=16, on the M only (debugCallWrap1 unlocked the goroutine);
    whatever the callee did with LockOSThread is dropped, as Go 1.21 does. m.lockedg is
    written only if it was set before: debugCallWrap1 zeroed it (``gp.m.lockedg = 0``, as
    our lock had set ``gp.lockedm``), and an M running an unlocked goroutine has none."""
    at = min(layout.m_lockedext, layout.m_lockedint)  # adjacent uint32s in every release: one write
    counts = bytearray(8)
    struct.pack_into("<I", counts, layout.m_lockedext - at, saved.locked_ext)
    struct.pack_into("<I", counts, layout.m_lockedint - at, saved.locked_int)
    mem.write(saved.m + at, bytes(counts))
    if saved.lockedg:
        mem.write_u64(saved.m + layout.m_lockedg, saved.lockedg)
