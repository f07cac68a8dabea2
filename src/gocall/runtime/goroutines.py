"""Goroutines seen from outside: which ``g`` a thread is running.

On linux/amd64 the runtime keeps the current ``g`` in thread-local storage at
FS_base - 8 in every kind of binary (static, cgo, PIE; go-runtime-facts §4.1).
That ``g`` may be the M's ``g0`` (scheduler, system stack) or ``gsignal``
(signal handler); the user goroutine is then ``g.m.curg``.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Callable
from typing import NamedTuple

from ..errors import GocallError
from ..process.memory import Memory
from .layouts import Layout

_GSCAN = 0x1000  # runtime._Gscan, OR-ed into the status while the GC owns the stack
_MAX_WAIT_REASONS = 256  # waitReason is a uint8


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


# Snapshots are NamedTuples: a frozen dataclass compiles its methods from source at import
# (~0.45 ms each of a cold `gocall call`).
class G(NamedTuple):
    """A snapshot of a runtime.g."""

    addr: int
    goid: int
    status: int  # with _Gscan masked off
    stack_lo: int
    stack_hi: int
    m: int
    sched_pc: int  # g.sched.pc and .sp, read with the rest: where it resumes when not running
    sched_sp: int  # (0 while it runs); read again for an answer of the moment (runtime/sched.py)

    @property
    def status_name(self) -> str:
        try:
            return Status(self.status).name.lower()
        except ValueError:
            return f"status {self.status}"


def read_g(mem: Memory, layout: Layout, addr: int) -> G:
    raw = mem.read(addr, max(layout.g_goid, layout.g_atomicstatus, layout.g_m, layout.g_sched_pc, layout.g_sched_sp) + 8)

    def word(off: int) -> int:
        return int(struct.unpack_from("<Q", raw, off)[0])

    status = int(struct.unpack_from("<I", raw, layout.g_atomicstatus)[0]) & ~_GSCAN
    return G(addr, word(layout.g_goid), status, word(layout.g_stack_lo), word(layout.g_stack_hi), word(layout.g_m),
             word(layout.g_sched_pc), word(layout.g_sched_sp))


class M(NamedTuple):
    """A snapshot of the runtime.m fields a call's checks read (runtime/safepoint.py), from
    m.curg to m.locks: one read, taken with the thread's goroutine."""

    addr: int
    curg: int  # m.curg: the user goroutine running on this M
    p: int  # m.p (0: no P)
    mallocing: int  # m.mallocing
    preemptoff: int  # the length of m.preemptoff's string: non-zero while preemption is off
    locks: int  # m.locks


def read_m(mem: Memory, layout: Layout, addr: int) -> M:
    lo = min(layout.m_curg, layout.m_p, layout.m_mallocing, layout.m_preemptoff, layout.m_locks)
    hi = max(layout.m_curg + 8, layout.m_p + 8, layout.m_mallocing + 4, layout.m_preemptoff + 16, layout.m_locks + 4)
    raw = mem.read(addr + lo, hi - lo)

    def field(offset: int, size: int) -> int:
        return int.from_bytes(raw[offset - lo : offset - lo + size], "little")

    return M(addr, field(layout.m_curg, 8), field(layout.m_p, 8), field(layout.m_mallocing, 4),
             field(layout.m_preemptoff + 8, 8), field(layout.m_locks, 4))  # fmt: skip


class ThreadG(NamedTuple):
    """What a stopped thread is running: the TLS ``g``, the M's user goroutine, and the M."""

    g: G | None  # the g in TLS (None: the thread has no g yet, e.g. a C thread)
    curg: G | None  # g.m.curg
    m: M | None = None  # g.m

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
    m = read_m(mem, layout, g.m)
    curg = g if m.curg == g.addr else (read_g(mem, layout, m.curg) if m.curg else None)
    return ThreadG(g, curg, m)


# ---- Every goroutine: runtime.allgs, read while the program runs (runtime/proc.go).

# gStatusStrings (runtime/traceback.go): the words the traceback header uses.
_STATUS_WORDS = {
    Status.IDLE: "idle",
    Status.RUNNABLE: "runnable",
    Status.RUNNING: "running",
    Status.SYSCALL: "syscall",
    Status.WAITING: "waiting",
    Status.DEAD: "dead",
    Status.COPYSTACK: "copystack",
    Status.PREEMPTED: "preempted",
    Status.LEAKED: "leaked",
    Status.DEADEXTRA: "waiting for cgo callback",
}


class Goroutine(NamedTuple):
    """A runtime.g with what a traceback header and an unwinder need.

    ``state`` is worded as the runtime's own traceback header words it
    (``goroutineheader``): the wait reason for a waiting goroutine
    (``"chan receive"``), else the status (``"running"``, ``"syscall"``).
    """

    g: G
    state: str
    waitreason: int
    locked: bool  # g.lockedm != 0: ", locked to thread" in the header
    sched_pc: int
    sched_sp: int
    syscall_pc: int
    syscall_sp: int
    gopc: int  # the go statement that created it
    startpc: int
    parent_goid: int  # 0 when unknown (Go 1.19 has no g.parentGoid)
    labels: int  # g.labels: runtime/pprof's label set, 0 for none (runtime/labels.py)
    m_id: int | None  # the M it runs on, if any
    tid: int | None  # that M's thread (m.procid)

    @property
    def goid(self) -> int:
        return self.g.goid

    @property
    def status(self) -> int:
        return self.g.status

    @property
    def header(self) -> str:
        """The bracketed part of the runtime's header: ``chan receive, locked to thread``."""
        return self.state + (", locked to thread" if self.locked else "")

    def unwind_start(self, regs: tuple[int, int] | None) -> tuple[int, int, bool]:
        """(pc, sp, trap) to unwind from: ``regs``, the (rip, rsp) of the thread running it on
        its own stack (a trap: the PC is the next instruction, not a return address); else
        where it entered a system call; else ``g.sched``, where it last stopped running (stale
        for a running goroutine)."""
        if regs is not None:
            return regs[0], regs[1], True
        if self.syscall_sp:
            return self.syscall_pc, self.syscall_sp, False
        return self.sched_pc, self.sched_sp, False


def wait_reasons(read: Callable[[int, int], bytes], array: int, size: int | None) -> list[str]:
    """runtime.waitReasonStrings, a ``[N]string`` of ``size`` bytes at ``array``.

    Read from the binary (the strings are static data) rather than tabled per release:
    the list grows in almost every release. ``size`` None (no symbol table to say it):
    entries up to the first that is not a short printable string; reading a few past the
    end is harmless, since a goroutine's reason is always below N.
    """
    if size is not None:
        return [read(ptr, length).decode("utf-8", "replace") if length else ""
                for ptr, length in struct.iter_unpack("<QQ", read(array, size))]
    reasons: list[str] = []
    while len(reasons) < _MAX_WAIT_REASONS:
        try:
            ptr, length = struct.unpack("<QQ", read(array + 16 * len(reasons), 16))
            text = read(ptr, length).decode("ascii") if length else ""
        except (GocallError, UnicodeDecodeError):
            break
        if (length == 0) != (ptr == 0) or length > 64 or not text.isprintable():
            break
        reasons.append(text)
    return reasons


def allgs_slice(mem: Memory, allgs: int) -> list[int]:
    """Addresses of every g ever created, from the ``runtime.allgs`` slice header, for binaries
    without the symbols :func:`allgs` reads (``-s``). Unlike ``allglen``/``allgptr``, the
    header's words are not published in a safe order: read just as the array grows, the old
    pointer may come with the new length, whose last entry is then not a g (callers skip
    entries that fail to read; a stale word can still show one bogus goroutine)."""
    ptr, n = struct.unpack("<QQ", mem.read(allgs, 16))
    return list(struct.unpack(f"<{n}Q", mem.read(ptr, 8 * n))) if n and ptr else []


def allgs(mem: Memory, allglen: int, allgptr: int) -> list[int]:
    """Addresses of every g ever created (dead ones included), as the runtime's own
    lock-free readers see them: ``allglen`` first, then ``allgptr`` (runtime/proc.go
    ``forEachGRace``); the array only grows, so the prefix read is valid."""
    n = mem.u64(allglen)
    base = mem.u64(allgptr)
    if n == 0 or base == 0:
        return []
    return list(struct.unpack(f"<{n}Q", mem.read(base, 8 * n)))


# The g fields a listing reads: (name, Layout field, struct format).
_G_FIELDS = (("goid", "g_goid", "Q"), ("status", "g_atomicstatus", "I"), ("m", "g_m", "Q"),
             ("stack_lo", "g_stack_lo", "Q"), ("stack_hi", "g_stack_hi", "Q"), ("sched_pc", "g_sched_pc", "Q"),
             ("sched_sp", "g_sched_sp", "Q"), ("syscall_pc", "g_syscallpc", "Q"),
             ("syscall_sp", "g_syscallsp", "Q"), ("waitreason", "g_waitreason", "B"), ("lockedm", "g_lockedm", "Q"),
             ("gopc", "g_gopc", "Q"), ("startpc", "g_startpc", "Q"), ("parent_goid", "g_parentgoid", "Q"),
             ("labels", "g_labels", "Q"))


@functools.cache
def _g_struct(layout: Layout) -> tuple[struct.Struct, tuple[str, ...]]:
    """One struct.Struct that unpacks every field of :data:`_G_FIELDS` a release has (listings
    read thousands of g's: one C call instead of one per field), and the names in its order."""
    fields = sorted((getattr(layout, f), fmt, name) for name, f, fmt in _G_FIELDS if getattr(layout, f) >= 0)
    fmt, pos = "<", 0
    for off, code, _ in fields:
        fmt += (f"{off - pos}x" if off > pos else "") + code
        pos = off + struct.calcsize(code)
    return struct.Struct(fmt), tuple(name for _, _, name in fields)


def read_goroutine(mem: Memory, layout: Layout, addr: int, reasons: list[str]) -> Goroutine:
    """Snapshot the g at ``addr`` (fields read in one go; racy while it runs)."""
    st, names = _g_struct(layout)
    f = dict(zip(names, st.unpack(mem.read(addr, st.size))))
    status = f["status"] & ~_GSCAN
    g = G(addr, f["goid"], status, f["stack_lo"], f["stack_hi"], f["m"], f["sched_pc"], f["sched_sp"])
    waitreason = f["waitreason"]
    state = _STATUS_WORDS.get(status, "???")
    if status in (Status.WAITING, Status.LEAKED) and 0 < waitreason < len(reasons):
        state = reasons[waitreason]
    m_id = tid = None
    if g.m:
        m_id = mem.u64(g.m + layout.m_id)
        tid = mem.u64(g.m + layout.m_procid)
    return Goroutine(
        g=g,
        state=state,
        waitreason=waitreason,
        locked=f["lockedm"] != 0,
        sched_pc=f["sched_pc"],
        sched_sp=f["sched_sp"],
        syscall_pc=f["syscall_pc"],
        syscall_sp=f["syscall_sp"],
        gopc=f["gopc"],
        startpc=f["startpc"],
        parent_goid=f.get("parent_goid", 0),
        labels=f["labels"],
        m_id=m_id,
        tid=tid,
    )
