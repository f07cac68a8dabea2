"""The Go runtime's function table: ``pcHeader``, ``functab``, ``_func`` and pc-value tables.

Mirrors ``runtime/symtab.go`` (``pcHeader``, ``_func``, ``funcInfo``, ``pcvalue``,
``funcline1``, ``funcfile``) and ``runtime/runtime2.go`` (``_func``); the linker side is
``cmd/link/internal/ld/pcln.go``. The constants are named as the runtime names them
(``internal/abi/symtab.go`` from Go 1.21).

Layout of ``.gopclntab`` (all offsets relative to the header)::

    pcHeader (72 bytes) | funcnametab | cutab | filetab | pctab | pclntable
                                                                   = functab ++ _func records

Everything here is decoded with :mod:`struct` and bytes operations, never through
pyelftools, because a ``cmd/go``-sized table has 16,000 functions and must load in tens
of milliseconds (research/perf-floors.md, "Binary loading").
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from gocall.binary.varint import uvarint
from gocall.errors import BinaryError, UnsupportedGo

__all__ = [
    "ArgsSizeUnknown",
    "FUNCDATA_ArgInfo",
    "FUNCDATA_ArgLiveInfo",
    "FUNCDATA_ArgsPointerMaps",
    "FUNCDATA_InlTree",
    "FUNCDATA_LocalsPointerMaps",
    "FUNCDATA_OpenCodedDeferInfo",
    "FUNCDATA_StackObjects",
    "FUNCDATA_WrapInfo",
    "FuncFlag_ASM",
    "FuncFlag_SPWRITE",
    "FuncFlag_TOPFRAME",
    "Func",
    "PCDATA_ArgLiveIndex",
    "PCDATA_InlTreeIndex",
    "PCDATA_PanicBounds",
    "PCDATA_StackMapIndex",
    "PCDATA_UnsafePoint",
    "Pclntab",
    "PcHeader",
    "UnsafePointRestart1",
    "UnsafePointRestart2",
    "UnsafePointRestartAtEntry",
    "UnsafePointSafe",
    "UnsafePointUnsafe",
    "pcvalue",
]

# internal/abi/symtab.go: PCDATA table indices (same numbers 1.19-1.27; PanicBounds is 1.26+).
PCDATA_UnsafePoint = 0
PCDATA_StackMapIndex = 1
PCDATA_InlTreeIndex = 2
PCDATA_ArgLiveIndex = 3
PCDATA_PanicBounds = 4

# FUNCDATA indices (same numbers 1.19-1.27).
FUNCDATA_ArgsPointerMaps = 0
FUNCDATA_LocalsPointerMaps = 1
FUNCDATA_StackObjects = 2
FUNCDATA_InlTree = 3
FUNCDATA_OpenCodedDeferInfo = 4
FUNCDATA_ArgInfo = 5
FUNCDATA_ArgLiveInfo = 6
FUNCDATA_WrapInfo = 7

# Values of the PCDATA_UnsafePoint table. debugCallCheck accepts only UnsafePointSafe.
UnsafePointSafe = -1
UnsafePointUnsafe = -2
UnsafePointRestart1 = -3
UnsafePointRestart2 = -4
UnsafePointRestartAtEntry = -5

# abi.FuncFlag bits (unchanged 1.19-1.27).
FuncFlag_TOPFRAME = 1 << 0
FuncFlag_SPWRITE = 1 << 1
FuncFlag_ASM = 1 << 2

# _func.args when the compiler does not know the argument size (assembly without a Go prototype).
ArgsSizeUnknown = -0x80000000

_NO_FUNCDATA = 0xFFFFFFFF  # funcdata slot with no data
_NO_FILE = 0xFFFFFFFF  # cutab slot with no file
_NAMES_KEPT = 4096  # functions kept by name (Pclntab.func_by_name): expressions name a handful, completion more


# _FuncLayout and PcHeader are NamedTuples, not dataclasses: a frozen dataclass costs ~0.5 ms of
# every cold start to create (its methods are compiled from source at import), a NamedTuple ~0.1 ms.
class _FuncLayout(NamedTuple):
    """What changes in ``.gopclntab`` between formats, keyed by ``pcHeader.magic``."""

    versions: str
    func_struct: struct.Struct  # the fixed part of _func, little-endian, in field order
    func_fields: tuple[str, ...]  # names of func_struct's fields ("_" = padding)


_FUNC_FIELDS_118 = ("entryOff", "nameOff", "args", "deferreturn", "pcsp", "pcfile", "pcln",
                    "npcdata", "cuOffset", "funcID", "flag", "_", "nfuncdata")
_FUNC_FIELDS_120 = ("entryOff", "nameOff", "args", "deferreturn", "pcsp", "pcfile", "pcln",
                    "npcdata", "cuOffset", "startLine", "funcID", "flag", "_", "nfuncdata")

# The one table of per-format facts (facts sheet 3.1, 3.3; runtime/symtab.go `_func`).
LAYOUTS: dict[int, _FuncLayout] = {
    # Go 1.18-1.19: entries become offsets from textStart; 40-byte _func.
    0xFFFFFFF0: _FuncLayout("go1.18-go1.19", struct.Struct("<IiiIIIIIIBBBB"), _FUNC_FIELDS_118),
    # Go 1.20+: _func gains startLine; 44 bytes. Still current in 1.27 (abi.Go120PCLnTabMagic).
    0xFFFFFFF1: _FuncLayout("go1.20+", struct.Struct("<IiiIIIIIIiBBBB"), _FUNC_FIELDS_120),
}
_OLD_MAGICS = {0xFFFFFFFB: "go1.2-go1.15", 0xFFFFFFFA: "go1.16-go1.17"}

_PC_HEADER = struct.Struct("<IBBBB8Q")


class PcHeader(NamedTuple):
    """``runtime.pcHeader``: the 72-byte header at the start of ``.gopclntab``."""

    magic: int
    minLC: int  # pc quantum: 1 on amd64
    ptrSize: int
    nfunc: int
    nfiles: int
    textStart: int  # 0 from Go 1.26 ("kept for Delve"); use GoBinary.text_start
    funcnameOffset: int
    cuOffset: int
    filetabOffset: int
    pctabOffset: int
    pclnOffset: int

    @classmethod
    def parse(cls, data: bytes) -> PcHeader:
        if len(data) < _PC_HEADER.size:
            raise BinaryError(f".gopclntab is only {len(data)} bytes, too short for a pcHeader")
        magic, pad1, pad2, min_lc, ptr_size, *rest = _PC_HEADER.unpack_from(data, 0)
        if magic in _OLD_MAGICS:
            raise UnsupportedGo(f"pclntab format of {_OLD_MAGICS[magic]} (magic {magic:#x})",
                                hint="gocall supports binaries built by Go 1.18 or later")
        if magic not in LAYOUTS or pad1 or pad2 or ptr_size != 8:
            raise BinaryError(f"not a Go pclntab: magic {magic:#x}, pad {pad1},{pad2}, ptrSize {ptr_size}")
        return cls(magic, min_lc, ptr_size, *rest)


def pcvalue(pctab: bytes, off: int, entry: int, targetpc: int, quantum: int = 1) -> int:
    """Value of the pc-value table at ``pctab[off:]`` for ``targetpc`` (runtime.pcvalue).

    The table is (zig-zag value delta, pc delta) varint pairs; the value starts at -1 and
    each pair says it holds from the previous pc up to (not including) the new one. A zero
    value delta after the first pair ends the table. Returns -1 when ``off`` is 0 (no
    table) or ``targetpc`` is past the end, which the runtime also reads as "no value"
    (it would throw only in strict mode).
    """
    if off == 0:
        return -1
    pc, val, pos, first = entry, -1, off, True
    while True:
        uvdelta, pos = uvarint(pctab, pos)
        if uvdelta == 0 and not first:
            return -1
        first = False
        val += -(uvdelta >> 1) - 1 if uvdelta & 1 else uvdelta >> 1
        pcdelta, pos = uvarint(pctab, pos)
        pc += pcdelta * quantum
        if targetpc < pc:
            return val


@dataclass(frozen=True, slots=True)
class Func:
    """One ``_func`` record (runtime/runtime2.go) with its absolute entry and end PCs.

    Field names are the runtime's. ``pcsp``/``pcfile``/``pcln`` are offsets into pctab;
    ``startLine`` is 0 for the Go 1.18/1.19 format, which lacks it.
    """

    name: str
    entry: int
    end: int  # entry of the next function (the functab sentinel for the last one)
    args: int  # argument frame size, what debugCallV2 wants as frame size; ArgsSizeUnknown for some asm
    deferreturn: int
    pcsp: int
    pcfile: int
    pcln: int
    npcdata: int
    cuOffset: int
    startLine: int
    funcID: int
    flag: int
    nfuncdata: int
    _tab: Pclntab = field(repr=False, compare=False)
    _off: int = field(repr=False, compare=False)  # offset of the _func in .gopclntab

    def __contains__(self, pc: int) -> bool:
        return self.entry <= pc < self.end

    def pcvalue(self, table_offset: int, pc: int) -> int:
        """Look up ``pc`` in the pc-value table at ``table_offset`` of pctab."""
        return self._tab.pcvalue(table_offset, self.entry, pc)

    def pcdata_offset(self, index: int) -> int:
        """Offset in pctab of PCDATA table ``index``; 0 when the function has none."""
        if not 0 <= index < self.npcdata:
            return 0
        return self._tab.u32(self._off + self._tab.layout.func_struct.size + 4 * index)

    def pcdata(self, index: int, pc: int) -> int:
        """PCDATA ``index`` at ``pc`` (runtime.pcdatavalue); -1 when the table is missing."""
        return self.pcvalue(self.pcdata_offset(index), pc)

    def unsafe_point(self, pc: int) -> int:
        """PCDATA_UnsafePoint at ``pc``: :data:`UnsafePointSafe` (-1) is the only safe value.

        debugCallCheck asks this about the interrupted PC minus one (unless it is the entry).
        """
        return self.pcdata(PCDATA_UnsafePoint, pc)

    def funcdata(self, index: int) -> int | None:
        """Offset of FUNCDATA ``index`` from ``moduledata.gofunc``, or None if absent."""
        if not 0 <= index < self.nfuncdata:
            return None
        tab = self._tab
        off = self._off + tab.layout.func_struct.size + 4 * (self.npcdata + index)
        value = tab.u32(off)
        return None if value == _NO_FUNCDATA else value

    def spdelta(self, pc: int) -> int:
        """Bytes the function has pushed onto the stack at ``pc`` (runtime.funcspdelta)."""
        return self.pcvalue(self.pcsp, pc)

    def file_line(self, pc: int) -> tuple[str, int]:
        """Source file and line of ``pc`` (runtime.funcline1), ``("?", 0)`` if unknown.

        Like ``go tool addr2line`` this reads the outermost function's tables; it does not
        expand inlined calls.
        """
        fileno = self.pcvalue(self.pcfile, pc)
        line = self.pcvalue(self.pcln, pc)
        if fileno < 0 or line < 0:
            return "?", 0
        return self._tab.file_name(self.cuOffset, fileno), line


class Pclntab:
    """The function table of one binary, decoded lazily from the bytes of ``.gopclntab``.

    ``text_start`` is the address entry offsets are relative to: pass
    :attr:`GoBinary.text_start`, because ``pcHeader.textStart`` is 0 from Go 1.26.
    """

    def __init__(self, data: bytes, text_start: int, found: dict[str, int | None] | None = None,
                 learned: Callable[[], None] | None = None) -> None:
        self.data = bytes(data)
        self.header = PcHeader.parse(self.data)
        self.layout = LAYOUTS[self.header.magic]
        self.text_start = text_start
        h = self.header
        self._pctab = h.pctabOffset
        self._pcln = h.pclnOffset
        # Names looked up without the name index (name -> functab index), and what to tell when
        # one is added: GoBinary keeps them on disk with the DWARF answers (binary/cache.py).
        self._found: dict[str, int | None] = {} if found is None else found
        self._learned = learned
        # Answers by PC, kept: listing thousands of goroutines asks about the same few hundred
        # PCs again and again (runtime/listing.py), and each answer costs a varint decode.
        self._funcs_by_pc: dict[int, Func | None] = {}
        # Answers by name, kept: an expression asks about its callee's name several times (is it a
        # function, a type; its signature), each a _func record decoded otherwise.
        self._funcs_by_name: dict[str, Func | None] = {}
        self._values: dict[tuple[int, int, int], int] = {}

    def __len__(self) -> int:
        return self.header.nfunc

    def u32(self, off: int) -> int:
        """Read a little-endian uint32 at ``off`` in the table."""
        return int.from_bytes(self.data[off : off + 4], "little")

    @cached_property
    def _functab(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(entryoffs, funcoffs) of all ``nfunc + 1`` functab pairs, sentinel included."""
        n = self.header.nfunc + 1
        flat = struct.unpack_from(f"<{2 * n}I", self.data, self._pcln)
        return flat[0::2], flat[1::2]

    @cached_property
    def _names(self) -> dict[str, int]:
        """Function name to functab index; for duplicate names (ABI wrappers) the first wins."""
        data, funcoffs = self.data, self._functab[1]
        base, pcln = self.header.funcnameOffset, self._pcln
        find, unpack = data.find, struct.Struct("<i").unpack_from
        index: dict[str, int] = {}
        for i in range(self.header.nfunc):
            start = base + unpack(data, pcln + funcoffs[i] + 4)[0]
            index.setdefault(data[start : find(b"\0", start)].decode("utf-8", "replace"), i)
        return index

    def names(self) -> Iterable[str]:
        """Every function name, once (completion lists them; building the index decodes all)."""
        return self._names.keys()

    def func_by_name(self, name: str) -> Func | None:
        """The function named ``name`` as pclntab spells it (no ``.abi0`` suffix)."""
        try:
            return self._funcs_by_name[name]
        except KeyError:
            pass
        if len(self._funcs_by_name) >= _NAMES_KEPT:
            self._funcs_by_name.clear()
        found = self._funcs_by_name[name] = self._func_by_name(name)
        return found

    def _func_by_name(self, name: str) -> Func | None:
        if "_names" in self.__dict__:
            i = self._names.get(name)
        elif name in self._found:
            i = self._found[name]
        else:
            i = self._found[name] = self._find_name(name)
            if self._learned is not None:
                self._learned()
        return None if i is None else self.func_at(i)

    def _find_name(self, name: str) -> int | None:
        """Functab index of the first function named ``name``, without decoding every name.

        Building :attr:`_names` decodes all of them (15-25 ms for ``cmd/go``); a call
        needs a handful. A name's offset in funcnametab is the ``nameOff`` of the
        ``_func`` records of that name; the same name may be written again, for another
        function of that name or for an inlined call (``cmd/link/internal/ld/pcln.go``),
        so every occurrence is tried.
        """
        data, h = self.data, self.header
        start, end = h.funcnameOffset, h.cuOffset
        needle = name.encode() + b"\0"
        by_offset = self._name_offsets
        found = []
        pos = data.find(needle, start, end)
        while pos >= 0:
            if pos == start or data[pos - 1] == 0:  # not the tail of a longer name
                i = by_offset.get(pos - start)
                if i is not None:
                    found.append(i)
            pos = data.find(needle, pos + 1, end)
        return min(found, default=None)

    @cached_property
    def _name_offsets(self) -> dict[int, int]:
        """``nameOff`` → functab index of the first function with it (~4 ms for ``cmd/go``)."""
        n, data, pcln = self.header.nfunc, self.data, self._pcln
        unpack = struct.Struct("<i").unpack_from
        offsets = [unpack(data, pcln + off + 4)[0] for off in self._functab[1][:n]]
        return dict(zip(reversed(offsets), range(n - 1, -1, -1)))  # the first index wins

    def func_for_pc(self, pc: int) -> Func | None:
        """The function whose ``[entry, end)`` contains ``pc`` (binary search of functab)."""
        try:
            return self._funcs_by_pc[pc]
        except KeyError:
            pass
        entryoffs = self._functab[0]
        off = pc - self.text_start
        found = None
        if 0 <= off < entryoffs[-1]:
            found = self.func_at(bisect.bisect_right(entryoffs, off, 0, self.header.nfunc) - 1)
        self._funcs_by_pc[pc] = found
        return found

    def func_at(self, i: int) -> Func:
        """The ``i``-th function in functab order (ascending entry)."""
        entryoffs, funcoffs = self._functab
        off = self._pcln + funcoffs[i]
        raw = dict(zip(self.layout.func_fields, self.layout.func_struct.unpack_from(self.data, off)))
        name_start = self.header.funcnameOffset + raw["nameOff"]
        name = self.data[name_start : self.data.index(b"\0", name_start)].decode("utf-8", "replace")
        return Func(
            name=name,
            entry=self.text_start + raw["entryOff"],
            end=self.text_start + entryoffs[i + 1],
            args=raw["args"],
            deferreturn=raw["deferreturn"],
            pcsp=raw["pcsp"],
            pcfile=raw["pcfile"],
            pcln=raw["pcln"],
            npcdata=raw["npcdata"],
            cuOffset=raw["cuOffset"],
            startLine=raw.get("startLine", 0),
            funcID=raw["funcID"],
            flag=raw["flag"],
            nfuncdata=raw["nfuncdata"],
            _tab=self,
            _off=off,
        )

    def __iter__(self) -> Iterator[Func]:
        return (self.func_at(i) for i in range(self.header.nfunc))

    def pcvalue(self, table_offset: int, entry: int, pc: int) -> int:
        """:func:`pcvalue` on this binary's pctab; ``table_offset`` is relative to pctab."""
        if table_offset == 0:
            return -1
        key = (table_offset, entry, pc)
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = pcvalue(self.data, self._pctab + table_offset, entry, pc, self.header.minLC)
        return value

    def file_name(self, cu_offset: int, fileno: int) -> str:
        """Path of file ``fileno`` of the compilation unit at ``cu_offset`` (cutab → filetab)."""
        h = self.header
        fileoff = self.u32(h.cuOffset + 4 * (cu_offset + fileno))
        if fileoff == _NO_FILE:
            return "?"
        start = h.filetabOffset + fileoff
        return self.data[start : self.data.index(b"\0", start)].decode("utf-8", "replace")
