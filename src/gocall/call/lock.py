"""Keeping an injected call on the interrupted thread on Go < 1.21.

From Go 1.21 ``debugCallWrap`` calls ``lockOSThread()`` and hands the lock to the
goroutine it creates for the call, so every trap of the call (R12 = 0, 1, 2, 16)
arrives on the thread gocall interrupted. Go 1.19's only hands a lock over when
the interrupted goroutine already held one; otherwise the call's goroutine may move
to another thread and trap there, and an untraced thread that executes INT3 kills
the process (go-runtime-facts §1.7). Tracing every thread for every call to guard
against that cost ~40 ptrace requests and 5 DETACHes per call.

So gocall makes the interrupted goroutine hold a lock before it enters debugCallV2
(the thread stopped, nothing else touching its ``m`` or its ``g``): ``m.lockedInt++``,
``m.lockedExt = 0``, ``m.lockedg = g``, ``g.lockedm = m``, what lockOSThread does.
debugCallWrap then transfers it to the call's goroutine (its "If the current G is
locked" branch), and the scheduler runs that goroutine on this thread only
(``schedule``/``stoplockedm`` in runtime/proc.go) from its first instruction.

Not later, at R12=0 (as gocall did until session 8): between ``execute(newg)`` and
R12=0 the new goroutine runs debugCallWrap1 and debugCallWrap2, whose prologues yield
to a preemption request (sysmon's, or the GC's to scan its stack: stackguard0), and
the scheduler then resumed it on whichever thread came first; its R12=0 INT3 killed
the target there ("SIGTRAP: trace trap" in debugCall256, ~1 in 5,000 calls of
bench/soak.py on 1.19 under GOGC=1).

The lock holds through the call: debugCallWrap1 releases the call goroutine's lock as
it switches back (on the same thread, nosplit code), and debugCallWrap puts the
transferred lock back on the interrupted goroutine before it returns into
debugCallV2. At R12=16 (or R12=8's refusal, which never reaches debugCallWrap) the
four fields hold gocall's lock; :func:`unlock` writes back what they were.
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
    g: int  # the interrupted goroutine, whose g.lockedm was 0
    # m.lockedg .. m.lockedInt as read before the lock: what unlock writes back, unread (empty: a
    # guardian's copy, guard/watch.py, which has the four fields alone).
    span: bytes = b""


def lock(mem: Memory, layout: Layout, g: int) -> Lock | None:
    """Lock goroutine ``g`` (running on the stopped thread, about to enter debugCallV2) to its
    M; None when it is locked already (debugCallWrap transfers that lock itself)."""
    gm = mem.read(g, max(layout.g_lockedm, layout.g_m) + 8)
    if struct.unpack_from("<Q", gm, layout.g_lockedm)[0]:
        return None
    m = struct.unpack_from("<Q", gm, layout.g_m)[0]
    # m.lockedg .. m.lockedInt in one read (m.createstack lies between them in every release).
    span = mem.read(m + layout.m_lockedg, layout.m_lockedint + 4 - layout.m_lockedg)
    saved = Lock(m, struct.unpack_from("<Q", span)[0],
                 struct.unpack_from("<I", span, layout.m_lockedext - layout.m_lockedg)[0],
                 struct.unpack_from("<I", span, layout.m_lockedint - layout.m_lockedg)[0], g, span)  # fmt: skip
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
    """Undo :func:`lock` at R12=16: the interrupted goroutine holds it again (debugCallWrap
    gave it back), or never passed it on (refused). Whatever the callee did with LockOSThread
    is dropped, as Go 1.21 does. The span :func:`lock` read is written back as it was: the
    m.createstack between the fields is set once, when the M is created."""
    span = saved.span
    if not span:
        read = bytearray(mem.read(saved.m + layout.m_lockedg, layout.m_lockedint + 4 - layout.m_lockedg))
        struct.pack_into("<Q", read, 0, saved.lockedg)
        struct.pack_into("<I", read, layout.m_lockedext - layout.m_lockedg, saved.locked_ext)
        struct.pack_into("<I", read, layout.m_lockedint - layout.m_lockedg, saved.locked_int)
        span = bytes(read)
    mem.write(saved.m + layout.m_lockedg, span)
    mem.write_u64(saved.g + layout.g_lockedm, 0)
