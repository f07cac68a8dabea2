"""Runtime type descriptors (``internal/abi/type.go``: ``abi.Type``) read from memory.

Needed where only the runtime knows a value's type: the dynamic type of an
``interface{}`` such as a panic value. The ``abi.Type`` header and the name
encoding (``abi.Name``: flag byte, uvarint length, bytes) are the same in Go
1.19-1.27; names are ``nameOff``s relative to ``moduledata.types``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..binary.gotypes import Kind
from ..process.memory import Memory

_TYPE_HEADER = 48  # through abi.Type.PtrToThis
_KIND = 23  # abi.Type.Kind_
_TFLAG = 20  # abi.Type.TFlag
_STR = 40  # abi.Type.Str (NameOff)
_KIND_MASK = 0x1F
_TFLAG_EXTRA_STAR = 1 << 1  # the name has a spurious leading '*'


@dataclass(frozen=True)
class RuntimeType:
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
