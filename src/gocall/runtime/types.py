"""Runtime type descriptors (``internal/abi/type.go``: ``abi.Type``) read from memory.

Needed where only the runtime knows a value's type: the dynamic type of an
``interface{}`` such as a panic value. The ``abi.Type`` header and the name
encoding (``abi.Name``: flag byte, uvarint length, bytes) are the same in Go
1.19-1.27; names are ``nameOff``s relative to ``moduledata.types``.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ..binary.gotypes import GoType, Kind
from ..process.memory import Memory

_TYPE_HEADER = 48  # through abi.Type.PtrToThis
_KIND = 23  # abi.Type.Kind_
_TFLAG = 20  # abi.Type.TFlag
_STR = 40  # abi.Type.Str (NameOff)
_KIND_MASK = 0x1F
_TFLAG_EXTRA_STAR = 1 << 1  # the name has a spurious leading '*'


# A NamedTuple: a frozen dataclass compiles its methods from source at import (~0.4 ms of a cold
# `gocall call`).
class RuntimeType(NamedTuple):
    addr: int
    name: str
    kind: Kind
    size: int


def read_type(mem: Memory, types_base: int, addr: int) -> RuntimeType:
    raw = mem.read(addr, _TYPE_HEADER)
    size = struct.unpack_from("<Q", raw, 0)[0]
    kind = Kind(raw[_KIND] & _KIND_MASK)
    name_off = struct.unpack_from("<i", raw, _STR)[0]
    name = _read_name(mem, types_base + name_off)
    if raw[_TFLAG] & _TFLAG_EXTRA_STAR and name.startswith("*"):
        name = name[1:]
    return RuntimeType(addr, name, kind, size)


def _read_name(mem: Memory, addr: int) -> str:
    head = mem.read(addr, 11)
    n, shift, i = 0, 0, 1
    while True:
        b = head[i]
        n |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            break
        shift += 7
    return mem.read(addr + i, n).decode("utf-8", "replace")


# abi.ITab (runtime.itab before 1.22): Inter *InterfaceType, Type *Type, Hash uint32, Fun [N]uintptr.
ITAB_INTER = 0
ITAB_TYPE = 8
ITAB_FUN = 24
# abi.InterfaceType: Type (48 bytes), PkgPath Name, Methods []Imethod{Name NameOff, Typ TypeOff}.
_IFACE_METHODS = 56
# abi.PtrType.Elem, abi.SliceType.Elem, abi.ArrayType.Elem / .Len: right after the Type header.
_ELEM = 48
_ARRAY_LEN = 64

_BASIC = {
    Kind.BOOL: 1, Kind.INT: 8, Kind.INT8: 1, Kind.INT16: 2, Kind.INT32: 4, Kind.INT64: 8, Kind.UINT: 8,
    Kind.UINT8: 1, Kind.UINT16: 2, Kind.UINT32: 4, Kind.UINT64: 8, Kind.UINTPTR: 8, Kind.FLOAT32: 4,
    Kind.FLOAT64: 8, Kind.COMPLEX64: 4, Kind.COMPLEX128: 8, Kind.STRING: 8, Kind.UNSAFE_POINTER: 8,
}  # kind -> alignment


class RuntimeTypes:
    """Dynamic types of interface values, itab dispatch and function names, read from the
    live process; GoTypes come from DWARF by the runtime's type name where it has them."""

    def __init__(self, mem: Memory, types_base: int, dwarf: Any, pclntab: Any, maps: Any) -> None:
        self.mem = mem
        self.types_base = types_base
        self.dwarf = dwarf
        self.pclntab = pclntab
        self.maps = maps
        self._cache: dict[int, GoType] = {}

    def rtype_addr(self, dwarf_value: int) -> int:
        """The address of a type descriptor named by DW_AT_go_runtime_type: an offset from
        ``moduledata.types`` in the binaries measured (1.27), an address if it is beyond that base."""
        return dwarf_value if dwarf_value >= self.types_base else self.types_base + dwarf_value

    def read(self, addr: int) -> RuntimeType:
        return read_type(self.mem, self.types_base, addr)

    def dynamic_type(self, rtype: int) -> GoType:
        t = self._cache.get(rtype)
        if t is None:
            t = self._cache[rtype] = self._convert(rtype)
        return t

    def _convert(self, rtype: int) -> GoType:
        rt = self.read(rtype)
        if self.dwarf is not None:
            t: GoType | None = self.dwarf.type_named(rt.name)
            if t is not None and t.kind == rt.kind:
                return t
        if rt.kind in _BASIC:
            return GoType(rt.name, rt.kind, rt.size, _BASIC[rt.kind])
        if rt.kind in (Kind.POINTER, Kind.SLICE, Kind.ARRAY):
            elem = self.dynamic_type(self.mem.u64(rtype + _ELEM))
            length = self.mem.u64(rtype + _ARRAY_LEN) if rt.kind == Kind.ARRAY else 0
            return GoType(rt.name, rt.kind, rt.size, 8 if rt.kind != Kind.ARRAY else elem.align, elem=elem,
                          length=length)
        # Opaque: a value of this type shows as its address.
        return GoType(rt.name, Kind.UNSAFE_POINTER if rt.size == 8 else Kind.INVALID, rt.size, 8)

    def itab_type(self, itab: int) -> int:
        return self.mem.u64(itab + ITAB_TYPE)

    def itab_method(self, itab: int, method: str) -> int | None:
        """Entry PC of ``method`` in an itab: interface methods are sorted by name and
        ``Fun[i]`` implements method ``i``."""
        inter = self.mem.u64(itab + ITAB_INTER)
        ptr, n = struct.unpack("<Qq", self.mem.read(inter + _IFACE_METHODS, 16))
        for i in range(n):
            name_off = struct.unpack("<i", self.mem.read(ptr + 8 * i, 4))[0]
            if _read_name(self.mem, self.types_base + name_off) == method:
                return self.mem.u64(itab + ITAB_FUN + 8 * i)
        return None

    def func_name(self, pc: int) -> str | None:
        f = self.pclntab.func_for_pc(pc)
        return f.name if f is not None else None

    def map_entries(self, t: GoType, m: int, limit: int) -> tuple[list[tuple[bytes, bytes]], int]:
        return self.maps.entries(t, m, limit)  # type: ignore[no-any-return]
