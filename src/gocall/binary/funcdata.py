"""FUNCDATA blobs: stack maps, stack objects and inline trees, decoded from the file.

A ``_func``'s FUNCDATA slots are offsets from ``moduledata.gofunc`` (facts sheet 3.5,
3.6); the blobs sit in ``.rodata`` up to Go 1.25 and inside ``.gopclntab`` from 1.26,
and in either case are plain bytes of the executable, so nothing here needs the process.

* ``runtime.stackmap`` (runtime/symtab.go): ``n int32, nbit int32`` then ``n`` bitmaps of
  ``ceil(nbit/8)`` bytes, one bit per pointer-sized word, LSB first. FUNCDATA_ArgsPointerMaps
  covers the argument area from ``argp``; FUNCDATA_LocalsPointerMaps the ``nbit`` words
  just below ``varp``. PCDATA_StackMapIndex at the frame's PC picks the bitmap.
* ``runtime.stackObjectRecord`` (runtime/stack.go): ``off int32`` (>= 0 from argp, < 0 from
  varp), ``size int32``, ``ptrdata int32`` (``ptrBytes`` from 1.24; negative = GC program
  before 1.24), ``gcdataoff uint32``, after a ``uintptr`` count.
* ``runtime.inlinedCall`` (runtime/symtab.go, symtabinl.go): 20 bytes in the Go 1.18/1.19
  pclntab format, 16 bytes from 1.20 (facts sheet 3.6), indexed by PCDATA_InlTreeIndex.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from gocall.binary.pclntab import (
    FUNCDATA_ArgsPointerMaps,
    FUNCDATA_InlTree,
    FUNCDATA_LocalsPointerMaps,
    FUNCDATA_StackObjects,
    PCDATA_InlTreeIndex,
    Func,
    Pclntab,
)

__all__ = ["FuncData", "InlinedCall", "StackMap", "StackObjectRecord"]


class _Image(Protocol):
    """What is needed of :class:`~gocall.binary.elffile.GoBinary`: bytes at an address."""

    def read(self, address: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class StackMap:
    """A ``runtime.stackmap``: ``n`` bitmaps of ``nbit`` words each."""

    n: int
    nbit: int
    bitmaps: tuple[bytes, ...]

    def pointer_words(self, index: int) -> list[int]:
        """Indices of the words bitmap ``index`` marks as live pointers."""
        bits = self.bitmaps[index]
        return [i for i in range(self.nbit) if bits[i // 8] >> (i % 8) & 1]


@dataclass(frozen=True)
class StackObjectRecord:
    """A stack-allocated variable whose address is taken (the GC scans it only if reachable)."""

    off: int  # >= 0: from argp; < 0: from varp
    size: int
    ptrdata: int  # bytes of it that may hold pointers; < 0 = GC program (before Go 1.24)
    gcdataoff: int  # its pointer mask, from moduledata.rodata


@dataclass(frozen=True)
class InlinedCall:
    """One ``runtime.inlinedCall``: a call the compiler inlined into the function.

    ``parentPc`` is an offset from the outer function's entry: a PC whose InlTreeIndex
    is the caller's frame (parent), used to walk up to the physical function.
    """

    funcID: int
    name: str
    parentPc: int


_STACKMAP_HEADER = struct.Struct("<ii")
_STACK_OBJECT = struct.Struct("<iiiI")
# Go 1.18/1.19: parent i16, funcID u8, pad u8, file i32, line i32, func_ (nameoff) i32, parentPc i32.
_INLINED_CALL_118 = struct.Struct("<hBBiiii")
# Go 1.20+: funcID u8, pad [3]u8, nameOff i32, parentPc i32, startLine i32.
_INLINED_CALL_120 = struct.Struct("<B3xiii")
_MAGIC_118 = 0xFFFFFFF0


class FuncData:
    """FUNCDATA of one binary, given the address of its ``moduledata.gofunc``."""

    def __init__(self, image: _Image, pclntab: Pclntab, gofunc: int) -> None:
        self.image = image
        self.pclntab = pclntab
        self.gofunc = gofunc
        self._inlined_call = _INLINED_CALL_118 if pclntab.header.magic == _MAGIC_118 else _INLINED_CALL_120
        self._stackmaps: dict[int, StackMap] = {}

    def _address(self, f: Func, index: int) -> int | None:
        off = f.funcdata(index)
        return None if off is None else self.gofunc + off

    def stackmap(self, f: Func, index: int) -> StackMap | None:
        """FUNCDATA ``index`` (Args/LocalsPointerMaps) of ``f`` as a :class:`StackMap`, or None."""
        addr = self._address(f, index)
        if addr is None:
            return None
        cached = self._stackmaps.get(addr)
        if cached is None:
            n, nbit = _STACKMAP_HEADER.unpack(self.image.read(addr, 8))
            width = (nbit + 7) // 8
            raw = self.image.read(addr + 8, n * width) if n > 0 else b""
            cached = StackMap(n, nbit, tuple(raw[i * width : (i + 1) * width] for i in range(max(n, 0))))
            self._stackmaps[addr] = cached
        return cached

    def args_map(self, f: Func) -> StackMap | None:
        return self.stackmap(f, FUNCDATA_ArgsPointerMaps)

    def locals_map(self, f: Func) -> StackMap | None:
        return self.stackmap(f, FUNCDATA_LocalsPointerMaps)

    def stack_objects(self, f: Func) -> list[StackObjectRecord]:
        """FUNCDATA_StackObjects of ``f`` (empty when it has none)."""
        addr = self._address(f, FUNCDATA_StackObjects)
        if addr is None:
            return []
        (n,) = struct.unpack("<Q", self.image.read(addr, 8))
        raw = self.image.read(addr + 8, n * _STACK_OBJECT.size)
        return [StackObjectRecord(*rec) for rec in _STACK_OBJECT.iter_unpack(raw)]

    def inlined_call(self, f: Func, index: int) -> InlinedCall:
        """Entry ``index`` of ``f``'s inline tree (FUNCDATA_InlTree)."""
        addr = self._address(f, FUNCDATA_InlTree)
        if addr is None:
            raise IndexError(f"{f.name} has no inline tree")
        raw = self.image.read(addr + index * self._inlined_call.size, self._inlined_call.size)
        if self._inlined_call is _INLINED_CALL_118:
            _, func_id, _, _, _, name_off, parent_pc = self._inlined_call.unpack(raw)
        else:
            func_id, name_off, parent_pc, _ = self._inlined_call.unpack(raw)
        return InlinedCall(func_id, self._funcname(name_off), parent_pc)

    def inline_frames(self, f: Func, pc: int) -> list[tuple[str, int, int]]:
        """The logical frames at ``pc`` of ``f``, innermost first, as (name, funcID, pc).

        runtime.newInlineUnwinder: the InlTreeIndex at ``pc`` names the innermost inlined
        call (-1: ``f`` itself); each entry's parentPc is a PC of its caller. The file and
        line of each frame are those of its pc in ``f``'s tables.
        """
        frames = []
        index = f.pcdata(PCDATA_InlTreeIndex, pc) if f.funcdata(FUNCDATA_InlTree) is not None else -1
        while index >= 0:
            call = self.inlined_call(f, index)
            frames.append((call.name, call.funcID, pc))
            pc = f.entry + call.parentPc
            index = f.pcdata(PCDATA_InlTreeIndex, pc)
        frames.append((f.name, f.funcID, pc))
        return frames

    @cached_property
    def _funcnametab(self) -> int:
        return self.pclntab.header.funcnameOffset

    def _funcname(self, name_off: int) -> str:
        data = self.pclntab.data
        start = self._funcnametab + name_off
        return data[start : data.index(b"\0", start)].decode("utf-8", "replace")
