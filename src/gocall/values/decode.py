"""Go values from bytes: the memory image of a value, or the registers holding it.

A register-assigned result is first put back into its memory image (each
:class:`~gocall.call.abi.RegPiece` is copied to its offset), so that one
decoder serves registers, stack slots and target memory alike.
"""

from __future__ import annotations

import struct
from typing import Protocol

from ..binary.gotypes import GoType, Kind
from ..call.abi import Slot
from ..errors import GocallError
from ..process.regs import xmm_get
from .model import GoValue

MAX_STRING = 1 << 20  # longest string read from the target; longer ones are cut and marked


class Reader(Protocol):
    def read(self, addr: int, size: int) -> bytes: ...


_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


def image_from_slot(slot: Slot, int_regs: tuple[int, ...], fpregs: bytes, frame: bytes) -> bytes:
    """The memory image of a result, wherever the ABI put it."""
    t = slot.param.type
    if slot.pieces is None:
        assert slot.stack_offset is not None
        return frame[slot.stack_offset : slot.stack_offset + t.size]
    image = bytearray(t.size)
    for p in slot.pieces:
        raw = xmm_get(fpregs, p.reg) if p.is_float else struct.pack("<Q", int_regs[p.reg])
        image[p.offset : p.offset + p.size] = raw[: p.size]
    return bytes(image)


def decode(t: GoType, image: bytes, mem: Reader) -> GoValue:
    """Decode a value of type ``t`` from its memory image (pointers followed through ``mem``)."""
    k = t.kind
    if t.is_integer:
        fmt = _INT_FORMATS[t.size]
        return GoValue(t, struct.unpack_from("<" + (fmt if t.is_signed else fmt.upper()), image)[0])
    if k == Kind.BOOL:
        return GoValue(t, image[0] != 0)
    if k == Kind.FLOAT32:
        return GoValue(t, struct.unpack_from("<f", image)[0])
    if k == Kind.FLOAT64:
        return GoValue(t, struct.unpack_from("<d", image)[0])
    if k == Kind.COMPLEX64:
        re, im = struct.unpack_from("<ff", image)
        return GoValue(t, complex(re, im))
    if k == Kind.COMPLEX128:
        re, im = struct.unpack_from("<dd", image)
        return GoValue(t, complex(re, im))
    if k == Kind.STRING:
        ptr, n = struct.unpack_from("<Qq", image)
        data = mem.read(ptr, min(n, MAX_STRING)) if n > 0 else b""
        return GoValue(t, data.decode("utf-8", "surrogateescape"))
    if k in (Kind.POINTER, Kind.UNSAFE_POINTER, Kind.UINTPTR, Kind.CHAN, Kind.MAP, Kind.FUNC):
        addr = struct.unpack_from("<Q", image)[0]
        return GoValue(t, None if addr == 0 else addr)
    raise GocallError(f"decoding values of type {t.name} ({k.name.lower()}) is not supported yet")
