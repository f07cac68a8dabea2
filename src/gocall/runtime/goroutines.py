"""Goroutines seen from outside: which ``g`` a thread is running.

On linux/amd64 the runtime keeps the current ``g`` in thread-local storage at
FS_base - 8 in every kind of binary (static, cgo, PIE; go-runtime-facts §4.1).
That ``g`` may be the M's ``g0`` (scheduler, system stack) or ``gsignal``
(signal handler); the user goroutine is then ``g.m.curg``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..process.memory import Memory
from .layouts import Layout

_GSCAN = 0x1000  # runtime._Gscan, OR-ed into the status while the GC owns the stack


class Status(enum.IntEnum):
    """runtime._G* (runtime/runtime2.go)."""

    IDLE = 0
    RUNNABLE = 1
    RUNNING = 2
    SYSCALL = 3
    WAITING = 4
    MORIBUND_UNUSED = 5
    DEAD = 6
    ENQUEUE_UNUSED = 7
    COPYSTACK = 8
    PREEMPTED = 9
    LEAKED = 10
    DEADEXTRA = 11


@dataclass(frozen=True)
class G:
    """A snapshot of a runtime.g."""

    addr: int
    goid: int
    status: int  # with _Gscan masked off
    stack_lo: int
    stack_hi: int
    m: int

    @property
    def status_name(self) -> str:
        try:
            return Status(self.status).name.lower()
        except ValueError:
            return f"status {self.status}"


def read_g(mem: Memory, layout: Layout, addr: int) -> G:
    raw = mem.read(addr, max(layout.g_goid, layout.g_atomicstatus, layout.g_m) + 8)

    def word(off: int) -> int:
        return int(struct.unpack_from("<Q", raw, off)[0])

    status = int(struct.unpack_from("<I", raw, layout.g_atomicstatus)[0]) & ~_GSCAN
    return G(addr, word(layout.g_goid), status, word(layout.g_stack_lo), word(layout.g_stack_hi), word(layout.g_m))


@dataclass(frozen=True)
class ThreadG:
    """What a stopped thread is running: the TLS ``g`` and the M's user goroutine."""

    g: G | None  # the g in TLS (None: the thread has no g yet, e.g. a C thread)
    curg: G | None  # g.m.curg

    @property
    def on_user_stack(self) -> bool:
        """True when the thread runs its user goroutine on that goroutine's own stack."""
        return self.g is not None and self.curg is not None and self.g.addr == self.curg.addr


def thread_g(mem: Memory, layout: Layout, fs_base: int) -> ThreadG:
    if fs_base == 0:
        return ThreadG(None, None)
    gaddr = mem.u64(fs_base - 8)
    if gaddr == 0:
        return ThreadG(None, None)
    g = read_g(mem, layout, gaddr)
    if g.m == 0:
        return ThreadG(g, None)
    curg_addr = mem.u64(g.m + layout.m_curg)
    curg = g if curg_addr == g.addr else (read_g(mem, layout, curg_addr) if curg_addr else None)
    return ThreadG(g, curg)
