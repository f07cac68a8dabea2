"""How the GC scans a goroutine's stack: precise frames and conservative ones.

Mirrors ``scanframeworker`` in ``runtime/mgcmark.go`` and ``stkframe.getStackMap`` in
``runtime/stkframe.go`` (facts sheet 3.6, 4.7), the same in 1.19-1.27:

* a **precise** frame is scanned with the compiler's stack maps at its continuation PC:
  the locals bitmap covers the ``nbit`` words below ``varp``, the args bitmap the words
  from ``argp``; PCDATA_StackMapIndex at ``continpc - 1`` picks the bitmap (-1, the
  prologue, reads as 0). Its stack objects (address-taken variables) are listed too.
* a **conservative** frame is one of ``asyncPreempt`` or ``debugCallV2``, or the frame
  each of them interrupted: there are no maps for it, so every word of ``[sp, varp)``
  and of the argument area that points into the heap (heap.py) or into the goroutine's
  own stack counts as a pointer. That is how an injected call's frames survive a GC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ..binary.funcdata import FuncData, StackObjectRecord
from ..binary.pclntab import ArgsSizeUnknown, PCDATA_StackMapIndex
from ..errors import ProcessError
from ..process.memory import Memory
from .goroutines import Goroutine
from .heap import Heap, HeapObject
from .unwind import Frame, FuncIDs

__all__ = ["FrameRoots", "Slot", "StackObject", "scan_frames"]

PRECISE = "precise"
CONSERVATIVE = "conservative"


@dataclass(frozen=True)
class Slot:
    """One stack word the GC treats as a pointer (precise) or that looks like one (conservative)."""

    addr: int
    value: int
    area: str  # "locals" or "args"
    offset: int  # from the frame's CFA (= fp, DWARF's DW_OP_call_frame_cfa)
    heap: HeapObject | None = None  # the heap object it points into
    to_stack: bool = False  # points into the goroutine's own stack


@dataclass(frozen=True)
class StackObject:
    """An address-taken stack variable: scanned only if something points at it."""

    addr: int
    size: int
    ptrdata: int


@dataclass(frozen=True)
class FrameRoots:
    frame: Frame
    mode: str  # PRECISE or CONSERVATIVE
    why: str  # for conservative frames: which injected frame makes it so
    slots: tuple[Slot, ...]
    objects: tuple[StackObject, ...] = field(default=())
    stackmap_index: int | None = None  # which bitmap a precise frame used


def scan_frames(frames: list[Frame], g: Goroutine, mem: Memory, funcdata: FuncData, heap: Heap,
                ids: FuncIDs) -> list[FrameRoots]:
    """The roots of each frame, innermost first, as scanframeworker walks them."""
    conservative_caller = ""
    out = []
    for frame in frames:
        fid = frame.func.funcID
        injected = fid in (ids.asyncPreempt, ids.debugCallV2)
        if conservative_caller or injected:
            why = f"interrupted by {conservative_caller}" if conservative_caller else "injected frame, no stack maps"
            out.append(_conservative(frame, g, mem, heap, why))
            conservative_caller = frame.function if injected else ""
        else:
            out.append(_precise(frame, g, mem, funcdata, heap))
    return out


def _words(mem: Memory, addr: int, n: int) -> tuple[int, ...]:
    if n <= 0:
        return ()
    try:
        return struct.unpack(f"<{n}Q", mem.read(addr, 8 * n))
    except ProcessError:
        return (0,) * n


def _slot(frame: Frame, g: Goroutine, heap: Heap, addr: int, value: int, area: str) -> Slot:
    on_stack = g.g.stack_lo <= value < g.g.stack_hi
    return Slot(addr, value, area, addr - frame.fp, heap=None if on_stack else heap.object_of(value),
                to_stack=on_stack)


def _arg_bytes(frame: Frame) -> int:
    return 0 if frame.func.args == ArgsSizeUnknown else max(frame.func.args, 0)


def _conservative(frame: Frame, g: Goroutine, mem: Memory, heap: Heap, why: str) -> FrameRoots:
    slots = []
    for area, start, size in (("locals", frame.sp, frame.varp - frame.sp), ("args", frame.argp, _arg_bytes(frame))):
        for i, value in enumerate(_words(mem, start, size // 8)):
            slot = _slot(frame, g, heap, start + 8 * i, value, area)
            if slot.heap is not None or slot.to_stack:
                slots.append(slot)
    return FrameRoots(frame, CONSERVATIVE, why, tuple(slots))


def stackmap_index(frame: Frame) -> int:
    """getStackMap's choice of bitmap: PCDATA_StackMapIndex just before continpc, -1 → 0."""
    f = frame.func
    index = -1
    if frame.continpc != f.entry:
        index = f.pcdata(PCDATA_StackMapIndex, frame.continpc - 1)
    return max(index, 0)


def live_words(frame: Frame, funcdata: FuncData) -> tuple[list[int], list[int], int]:
    """Addresses of the live pointer words of a precise frame: (locals, args, bitmap index)."""
    if frame.continpc == 0:
        return [], [], -1  # a dead frame (under sigpanic, no defers): nothing is live
    index = stackmap_index(frame)
    locals_, args = [], []
    if frame.varp - frame.sp > 0:
        stkmap = funcdata.locals_map(frame.func)
        if stkmap is not None and stkmap.nbit > 0 and index < stkmap.n:
            base = frame.varp - 8 * stkmap.nbit
            locals_ = [base + 8 * i for i in stkmap.pointer_words(index)]
    if _arg_bytes(frame) // 8 > 0:
        argmap = funcdata.args_map(frame.func)
        if argmap is not None and argmap.nbit > 0 and index < argmap.n:
            args = [frame.argp + 8 * i for i in argmap.pointer_words(index)]
    return locals_, args, index


def _precise(frame: Frame, g: Goroutine, mem: Memory, funcdata: FuncData, heap: Heap) -> FrameRoots:
    locals_, args, index = live_words(frame, funcdata)
    slots = []
    for area, addrs in (("locals", locals_), ("args", args)):
        for addr in addrs:
            slots.append(_slot(frame, g, heap, addr, _words(mem, addr, 1)[0], area))
    objects = tuple(_object(frame, rec) for rec in funcdata.stack_objects(frame.func)) if frame.continpc else ()
    return FrameRoots(frame, PRECISE, "", tuple(slots), objects, index if index >= 0 else None)


def _object(frame: Frame, rec: StackObjectRecord) -> StackObject:
    base = frame.argp if rec.off >= 0 else frame.varp
    return StackObject(base + rec.off, rec.size, rec.ptrdata)
