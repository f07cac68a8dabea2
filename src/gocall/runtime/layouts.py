"""Per-Go-release offsets of the runtime structures gocall reads from outside.

One table, one row per release (``runtime/runtime2.go``: ``type g``, ``type m``),
measured from the DWARF of real binaries (shared/research/go-runtime-facts.md
§4.2-4.4) so that stripped binaries work too. A release missing from the table
is read from the binary's own DWARF when it has some; otherwise it is refused.
tests/runtime/test_layouts.py checks every row against DWARF.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from ..errors import UnsupportedGo


# A NamedTuple, not a frozen dataclass: the dataclass compiled its ~30-field methods from source
# at every import (~1.3 ms of a cold `gocall call`). Rows name every field after the first ten.
class Layout(NamedTuple):
    g_stack_lo: int  # g.stack.lo
    g_stack_hi: int  # g.stack.hi
    g_m: int  # g.m (*m)
    g_atomicstatus: int  # g.atomicstatus (uint32)
    g_goid: int  # g.goid
    m_g0: int  # m.g0
    m_procid: int  # m.procid (the thread's TID)
    m_gsignal: int  # m.gsignal
    m_curg: int  # m.curg (the user goroutine running on this M)
    md_types: int  # moduledata.types: base of the nameOff/typeOff of type descriptors
    # Goroutine listing, unwinding and GC roots (runtime/unwind.py, roots.py, heap.py);
    # measured from DWARF of the tests/fixtures/runtime builds of every release.
    g_syscallsp: int  # g.syscallsp: where a goroutine in a system call is unwound from
    g_syscallpc: int  # g.syscallpc
    g_waitreason: int  # g.waitreason (uint8, index into runtime.waitReasonStrings)
    g_lockedm: int  # g.lockedm ("locked to thread")
    g_gopc: int  # g.gopc: the go statement that created it
    g_startpc: int  # g.startpc
    g_parentgoid: int  # g.parentGoid; -1 before Go 1.21 (no such field)
    m_id: int  # m.id
    md_gofunc: int  # moduledata.gofunc: base of FUNCDATA offsets
    mheap_arenas: int  # mheap.arenas ([1 << arenaL1Bits]*[1 << arenaL2Bits]*heapArena)
    heaparena_spans: int  # heapArena.spans ([pagesPerArena]*mspan)
    mspan_limit: int  # mspan.limit (end of the span's objects)
    mspan_state: int  # mspan.state (mSpanStateBox, one byte)
    mspan_elemsize: int  # mspan.elemsize
    # lockOSThread's state (runtime/proc.go): gocall locks an injected call's goroutine to its
    # thread itself on releases whose debugCallWrap does not (call/lock.py).
    m_lockedg: int  # m.lockedg (guintptr)
    m_lockedext: int  # m.lockedExt (uint32; lockedInt follows it)
    m_lockedint: int  # m.lockedInt (uint32)
    g_labels: int  # g.labels: runtime/pprof's label set (runtime/labels.py reads it)
    # The same in every measured release unless a row says otherwise.
    # g.sched.sp/pc (gobuf at g+0x38: sp, pc first): the same in 1.19-1.27 (facts §4.2).
    g_sched_sp: int = 0x38
    g_sched_pc: int = 0x40
    mspan_startaddr: int = 0x18  # mspan.startAddr
    # The P a call at a stop runs on (stops/calls.py gives its callee a fresh time slice).
    m_p: int = 0xD0  # m.p (puintptr); 0xC8 in 1.25
    p_schedtick: int = 0x10  # p.schedtick (uint32)
    # Whether the runtime itself could preempt the thread (canPreemptM, runtime/preempt.go):
    # runtime/safepoint.py refuses a call where it could not. 8 less each in 1.25.
    m_mallocing: int = 0xF0  # m.mallocing (int32)
    m_preemptoff: int = 0xF8  # m.preemptoff (string: a reason while preemption is off)
    m_locks: int = 0x108  # m.locks (int32)
    p_status: int = 0x4  # p.status (uint32: _Prunning 1, _Pgcstop 3 in a stop-the-world)
    # The Ms (runtime.allm, linked through m.alllink) and what each was started to run: sysmon's
    # thread never runs a goroutine, and a catch of parked goroutines leaves it alone (runtime/sched.py).
    m_alllink: int = 0x160  # m.alllink (*m); 0x150 in 1.19-1.21, 0x148 in 1.22-1.23, 0x158 in 1.25
    m_mstartfn: int = 0xB8  # m.mstartfn (func()); 0xB0 from 1.25


# (major, minor) -> offsets. Go 1.20 has not been measured (no toolchain here).
_LAYOUTS: dict[tuple[int, int], Layout] = {
    (1, 19): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x118,
                    g_syscallsp=0x70, g_syscallpc=0x78, g_waitreason=0xB0, g_lockedm=0xE8, g_gopc=0x128, g_startpc=0x138,
                    g_parentgoid=-1, m_id=0xE8, md_gofunc=0x130, mheap_arenas=0x10190, heaparena_spans=0x200000,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x160, m_lockedext=0x268, m_lockedint=0x26C, g_labels=0x168,
                    m_alllink=0x150),
    (1, 21): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x128,
                    g_syscallsp=0x70, g_syscallpc=0x78, g_waitreason=0xB0, g_lockedm=0xD0, g_gopc=0x118, g_startpc=0x128,
                    g_parentgoid=0x110, m_id=0xE8, md_gofunc=0x140, mheap_arenas=0x10198, heaparena_spans=0x104000,
                    mspan_limit=0x78, mspan_state=0x6B, mspan_elemsize=0x70,
                    m_lockedg=0x160, m_lockedext=0x268, m_lockedint=0x26C, g_labels=0x158,
                    m_alllink=0x150),
    (1, 22): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x128,
                    g_syscallsp=0x70, g_syscallpc=0x78, g_waitreason=0xB0, g_lockedm=0xD0, g_gopc=0x118, g_startpc=0x128,
                    g_parentgoid=0x110, m_id=0xE8, md_gofunc=0x140, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x158, m_lockedext=0x260, m_lockedint=0x264, g_labels=0x158,
                    m_alllink=0x148),
    (1, 23): Layout(0x0, 0x8, 0x30, 0x98, 0xA0, 0x0, 0x48, 0x50, 0xC0, 0x128,
                    g_syscallsp=0x70, g_syscallpc=0x78, g_waitreason=0xB8, g_lockedm=0xD8, g_gopc=0x120, g_startpc=0x130,
                    g_parentgoid=0x118, m_id=0xE8, md_gofunc=0x140, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x158, m_lockedext=0x260, m_lockedint=0x264, g_labels=0x160,
                    m_alllink=0x148),
    (1, 24): Layout(0x0, 0x8, 0x30, 0x98, 0xA0, 0x0, 0x48, 0x50, 0xC0, 0x128,
                    g_syscallsp=0x70, g_syscallpc=0x78, g_waitreason=0xB8, g_lockedm=0xD8, g_gopc=0x120, g_startpc=0x130,
                    g_parentgoid=0x118, m_id=0xE8, md_gofunc=0x140, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x170, m_lockedext=0x278, m_lockedint=0x27C, g_labels=0x160),
    (1, 25): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128,
                    g_syscallsp=0x68, g_syscallpc=0x70, g_waitreason=0xB0, g_lockedm=0xD0, g_gopc=0x118, g_startpc=0x128,
                    g_parentgoid=0x110, m_id=0xE0, md_gofunc=0x140, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x168, m_lockedext=0x270, m_lockedint=0x274, g_labels=0x158, m_p=0xC8,
                    m_mallocing=0xE8, m_preemptoff=0xF0, m_locks=0x100,
                    m_alllink=0x158, m_mstartfn=0xB0),
    (1, 26): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128,
                    g_syscallsp=0x68, g_syscallpc=0x70, g_waitreason=0xB0, g_lockedm=0xD0, g_gopc=0x120, g_startpc=0x130,
                    g_parentgoid=0x118, m_id=0xE8, md_gofunc=0x140, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x180, m_lockedext=0x288, m_lockedint=0x28C, g_labels=0x160,
                    m_mstartfn=0xB0),
    (1, 27): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128,
                    g_syscallsp=0x68, g_syscallpc=0x70, g_waitreason=0xB0, g_lockedm=0xD0, g_gopc=0x120, g_startpc=0x130,
                    g_parentgoid=0x118, m_id=0xE8, md_gofunc=0x158, mheap_arenas=0x101D8, heaparena_spans=0x0,
                    mspan_limit=0x70, mspan_state=0x63, mspan_elemsize=0x68,
                    m_lockedg=0x180, m_lockedext=0x288, m_lockedint=0x28C, g_labels=0x160,
                    m_mstartfn=0xB0),
}

# Layout field -> (runtime struct, field path) in DWARF, for releases not in the table.
_DWARF_NAMES = {
    "g_stack_lo": ("runtime.g", "stack.lo"),
    "g_stack_hi": ("runtime.g", "stack.hi"),
    "g_m": ("runtime.g", "m"),
    "g_atomicstatus": ("runtime.g", "atomicstatus"),
    "g_goid": ("runtime.g", "goid"),
    "m_g0": ("runtime.m", "g0"),
    "m_procid": ("runtime.m", "procid"),
    "m_gsignal": ("runtime.m", "gsignal"),
    "m_curg": ("runtime.m", "curg"),
    "md_types": ("runtime.moduledata", "types"),
    "g_sched_sp": ("runtime.g", "sched.sp"),
    "g_sched_pc": ("runtime.g", "sched.pc"),
    "g_syscallsp": ("runtime.g", "syscallsp"),
    "g_syscallpc": ("runtime.g", "syscallpc"),
    "g_waitreason": ("runtime.g", "waitreason"),
    "g_lockedm": ("runtime.g", "lockedm"),
    "g_gopc": ("runtime.g", "gopc"),
    "g_startpc": ("runtime.g", "startpc"),
    "g_parentgoid": ("runtime.g", "parentGoid"),
    "m_id": ("runtime.m", "id"),
    "md_gofunc": ("runtime.moduledata", "gofunc"),
    "mheap_arenas": ("runtime.mheap", "arenas"),
    "heaparena_spans": ("runtime.heapArena", "spans"),
    "mspan_limit": ("runtime.mspan", "limit"),
    "mspan_state": ("runtime.mspan", "state"),
    "mspan_elemsize": ("runtime.mspan", "elemsize"),
    "mspan_startaddr": ("runtime.mspan", "startAddr"),
    "m_lockedg": ("runtime.m", "lockedg"),
    "m_lockedext": ("runtime.m", "lockedExt"),
    "m_lockedint": ("runtime.m", "lockedInt"),
    "g_labels": ("runtime.g", "labels"),
    "m_p": ("runtime.m", "p"),
    "p_schedtick": ("runtime.p", "schedtick"),
    "m_mallocing": ("runtime.m", "mallocing"),
    "m_preemptoff": ("runtime.m", "preemptoff"),
    "m_locks": ("runtime.m", "locks"),
    "p_status": ("runtime.p", "status"),
    "m_alllink": ("runtime.m", "alllink"),
    "m_mstartfn": ("runtime.m", "mstartfn"),
}


# From this release on debugCallWrap locks the injected call's goroutine to the interrupted
# thread (lockOSThread); before it the callee could migrate when it blocks and trap on any thread
# (go-runtime-facts §1.7), so gocall takes that lock itself there (call/lock.py).
WRAP_LOCKS_THREAD_SINCE = (1, 21)

# runtime.procyield's loop (``again: PAUSE; SUBL $1, AX; JNZ again``, asm_amd64.s) is where a
# thread waits for a guardian (guard/watch.py); Go 1.26 renamed the assembly part procyieldAsm.
PROCYIELD_ASM_SINCE = (1, 26)


def procyield_name(version: tuple[int, ...]) -> str:
    """The function holding the PAUSE loop of runtime.procyield in this release."""
    return "runtime.procyieldAsm" if version[:2] >= PROCYIELD_ASM_SINCE else "runtime.procyield"


# What g.labels points at: runtime/pprof's labelMap (runtime/pprof/label.go), which runtime/pprof.Do
# installs with SetGoroutineLabels. Up to Go 1.23 a map[string]string; from 1.24 a struct whose
# first field is a sorted []label{key, value string} (1.26 moved label to internal/runtime/pprof/label
# unchanged).
LABEL_LIST_SINCE = (1, 24)

# runtime.hmap of the bucket maps (runtime/map.go, Go <= 1.23; the same in every such release),
# so that labels are read without DWARF; tests/runtime/test_listing.py checks it against DWARF.
HMAP_FIELDS = {"count": 0, "flags": 8, "B": 9, "buckets": 16, "oldbuckets": 24}


def labels_are_list(version: tuple[int, ...]) -> bool:
    """Whether this release's labelMap is a list of labels (else a map[string]string)."""
    return version[:2] >= LABEL_LIST_SINCE


def wrap_locks_thread(version: tuple[int, ...]) -> bool:
    """Whether debugCallWrap of this release keeps the call on the interrupted thread."""
    return version[:2] >= WRAP_LOCKS_THREAD_SINCE


class _StructLayouts(Protocol):
    def struct_layout(self, type_name: str) -> dict[str, int]: ...


def known_releases() -> list[tuple[int, int]]:
    return sorted(_LAYOUTS)


def for_go(version: tuple[int, ...], dwarf: _StructLayouts | None = None) -> Layout:
    """The layout for a Go release, from the table or else from the binary's DWARF."""
    key = (version[0], version[1])
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    if dwarf is not None:
        return from_dwarf(dwarf)
    raise UnsupportedGo(
        f"go{key[0]}.{key[1]} runtime layouts are unknown and the binary has no DWARF",
        hint=f"known releases: {', '.join(f'go{a}.{b}' for a, b in known_releases())}",
    )


# Fields some supported releases lack; the table (and from_dwarf) say -1 for them there.
_ABSENT_BEFORE = {"parentGoid": (1, 21)}


def from_dwarf(dwarf: _StructLayouts) -> Layout:
    """Read every offset from DWARF (``stack.lo`` = offset of g.stack + offset of stack.lo)."""
    cache: dict[str, dict[str, int]] = {}

    def offset(struct: str, path: str) -> int:
        total = 0
        for part in path.split("."):
            if struct not in cache:
                cache[struct] = dwarf.struct_layout(struct)
            if part not in cache[struct] and path in _ABSENT_BEFORE:
                return -1  # a field younger than this release (the table's -1)
            total += cache[struct][part]
            struct = {"stack": "runtime.stack", "sched": "runtime.gobuf"}.get(part, struct)
        return total

    values = {f: offset(*_DWARF_NAMES[f]) for f in Layout._fields}
    return Layout(**values)
