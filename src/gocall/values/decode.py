"""Go values from bytes: the memory image of a value, or the registers holding it.

A register-assigned result is first put back into its memory image (each
:class:`~gocall.call.abi.RegPiece` is copied to its offset), so that one
decoder serves registers, stack slots and target memory alike.

Loading is bounded (:class:`Limits`): at most ``max_elems`` elements of an
array, slice or map, ``max_string`` bytes of a string and ``max_depth``
pointers followed; what was left out is counted in ``GoValue.missing`` and
flagged by ``GoValue.truncated``, so a huge map or a cyclic list cannot hang
the tool.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple, Protocol

from ..binary.gotypes import GoType, Kind
from ..call.abi import Slot
from ..errors import GocallError
from ..process.regs import xmm_get
from .model import GoPointer, GoRef, GoStruct, GoValue

MAX_STRING = 1 << 20  # longest string read from the target; longer ones are cut and marked


# A NamedTuple: a frozen dataclass compiles its methods from source at import (~0.4 ms of a cold
# `gocall call`).
class Limits(NamedTuple):
    max_elems: int = 1000
    max_string: int = MAX_STRING
    max_depth: int = 8


class Reader(Protocol):
    def read(self, addr: int, size: int) -> bytes: ...


class Types(Protocol):
    """What only the target's runtime data can say about a value (runtime/types.py)."""

    def dynamic_type(self, rtype: int) -> GoType:
        """The GoType of the runtime type descriptor at ``rtype`` (an interface's dynamic type)."""
        ...

    def itab_type(self, itab: int) -> int:
        """The ``*_type`` an itab pairs with its interface."""
        ...

    def func_name(self, pc: int) -> str | None: ...

    def map_entries(self, t: GoType, m: int, limit: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """Up to ``limit`` (key image, elem image) pairs of map ``m`` and its length."""
        ...


_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}
_REFS = (Kind.CHAN, Kind.FUNC)


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


def is_error(t: GoType) -> bool:
    return t.kind == Kind.INTERFACE and t.name == "error"


class Decoder:
    """Decodes memory images of any Go type, following pointers through ``mem``."""

    def __init__(self, mem: Reader, types: Types | None = None, limits: Limits = Limits()) -> None:
        self.mem = mem
        self.types = types
        self.limits = limits

    def decode(self, t: GoType, image: bytes, depth: int = 0) -> GoValue:
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
            return GoValue(t, complex(*struct.unpack_from("<ff", image)))
        if k == Kind.COMPLEX128:
            return GoValue(t, complex(*struct.unpack_from("<dd", image)))
        if k == Kind.STRING:
            return self._string(t, image)
        if k == Kind.UNSAFE_POINTER:
            addr = _word(image)
            return GoValue(t, None if addr == 0 else addr, address=addr)
        if k == Kind.POINTER:
            return self._pointer(t, _word(image), depth)
        if k in _REFS:
            return self._ref(t, _word(image))
        if k == Kind.STRUCT:
            return self._struct(t, image, depth)
        if k == Kind.ARRAY:
            assert t.elem is not None
            return self._elements(t, t.elem, image, t.length, depth)
        if k == Kind.SLICE:
            return self._slice(t, image, depth)
        if k == Kind.MAP:
            return self._map(t, _word(image), depth)
        if k == Kind.INTERFACE:
            return self._interface(t, image, depth)
        raise GocallError(f"decoding values of type {t.name} ({k.name.lower()}) is not supported")

    def load(self, t: GoType, addr: int, depth: int = 0) -> GoValue:
        """Decode the value of type ``t`` stored at ``addr`` in the target."""
        return self.decode(t, self.mem.read(addr, t.size) if t.size else b"", depth)

    # -- kinds -----------------------------------------------------------------

    def _string(self, t: GoType, image: bytes) -> GoValue:
        ptr, n = struct.unpack_from("<Qq", image)
        cut = max(0, n - self.limits.max_string)
        data = self.mem.read(ptr, n - cut) if n > 0 else b""
        return GoValue(t, data.decode("utf-8", "surrogateescape"), missing=cut, address=ptr, truncated=cut > 0)

    def _pointer(self, t: GoType, addr: int, depth: int) -> GoValue:
        if addr == 0:
            return GoValue(t, None, address=0)
        elem = t.elem
        if elem is None or elem.size == 0 or depth >= self.limits.max_depth:
            return GoValue(t, GoPointer(addr, t.name), address=addr, truncated=depth >= self.limits.max_depth)
        try:
            target = self.load(elem, addr, depth + 1)
        except (GocallError, OSError):
            return GoValue(t, GoPointer(addr, t.name), address=addr)
        return GoValue(t, GoPointer(addr, t.name, target.value), (target,), address=addr, truncated=target.truncated)

    def _ref(self, t: GoType, addr: int) -> GoValue:
        if addr == 0:
            return GoValue(t, None, address=0)
        detail = ""
        if t.kind == Kind.FUNC and self.types is not None:
            # A func value points at a funcval whose first word is the code's entry PC.
            detail = self.types.func_name(_word(self.mem.read(addr, 8))) or ""
        elif t.kind == Kind.CHAN:
            qcount, dataqsiz = struct.unpack("<QQ", self.mem.read(addr, 16))  # runtime.hchan
            detail = f"len {qcount}, cap {dataqsiz}"
        return GoValue(t, GoRef(addr, t.name, detail), address=addr, text=detail or None)

    def _struct(self, t: GoType, image: bytes, depth: int) -> GoValue:
        parts = tuple(self.decode(f.type, image[f.offset : f.offset + f.type.size], depth) for f in t.fields)
        names = tuple(f.name for f in t.fields)
        value = GoStruct(t.name, {n: p.value for n, p in zip(names, parts, strict=True)})
        return GoValue(t, value, parts, names, truncated=any(p.truncated for p in parts))

    def _elements(self, t: GoType, elem: GoType, image: bytes, n: int, depth: int, **extra: Any) -> GoValue:
        shown = min(n, self.limits.max_elems)
        parts = tuple(self.decode(elem, image[i * elem.size : (i + 1) * elem.size], depth) for i in range(shown))
        return GoValue(t, [p.value for p in parts], parts, missing=n - shown,
                       truncated=n > shown or any(p.truncated for p in parts), **extra)

    def _slice(self, t: GoType, image: bytes, depth: int) -> GoValue:
        ptr, n, _cap = struct.unpack_from("<QqQ", image)
        if ptr == 0:
            return GoValue(t, None, address=0)
        assert t.elem is not None
        shown = min(n, self.limits.max_elems)
        data = self.mem.read(ptr, shown * t.elem.size) if shown and t.elem.size else bytes(shown * t.elem.size)
        v = self._elements(t, t.elem, data, shown, depth, address=ptr)
        return GoValue(t, v.value, v.parts, missing=n - shown, address=ptr, truncated=v.truncated or n > shown)

    def _map(self, t: GoType, addr: int, depth: int) -> GoValue:
        if addr == 0:
            return GoValue(t, None, address=0)
        assert t.key is not None and t.elem is not None and self.types is not None
        entries, length = self.types.map_entries(t, addr, self.limits.max_elems)
        parts: list[GoValue] = []
        value: dict[Any, Any] = {}
        for kimg, eimg in entries:
            k, e = self.decode(t.key, kimg, depth), self.decode(t.elem, eimg, depth)
            parts += (k, e)
            value[_hashable(k.value)] = e.value
        missing = max(0, length - len(entries))
        return GoValue(t, value, tuple(parts), missing=missing, address=addr,
                       truncated=missing > 0 or any(p.truncated for p in parts))

    def _interface(self, t: GoType, image: bytes, depth: int) -> GoValue:
        word, data = struct.unpack_from("<QQ", image)
        if word == 0:
            return GoValue(t, None, address=0)
        if self.types is None:
            return GoValue(t, GoPointer(data, t.name), address=data)
        empty = not t.fields or t.fields[0].name == "_type"  # runtime.eface vs runtime.iface
        rtype = word if empty else self.types.itab_type(word)
        dyn = self.types.dynamic_type(rtype)
        inner = self._boxed(dyn, data, depth)
        return GoValue(t, inner.value, (inner,), address=data, truncated=inner.truncated)

    def _boxed(self, dyn: GoType, data: int, depth: int) -> GoValue:
        """An interface's data word holds pointer-shaped values itself, others by pointer."""
        if _pointer_shaped(dyn):
            return self.decode(dyn, struct.pack("<Q", data), depth)
        return self.load(dyn, data, depth + 1)


def _pointer_shaped(t: GoType) -> bool:
    """Stored directly in an interface's data word (reflect: ifaceIndir false)."""
    k = t.kind
    if k in (Kind.POINTER, Kind.UNSAFE_POINTER, Kind.CHAN, Kind.MAP, Kind.FUNC):
        return True
    if k == Kind.STRUCT and len(t.fields) == 1:
        return _pointer_shaped(t.fields[0].type)
    if k == Kind.ARRAY and t.length == 1 and t.elem is not None:
        return _pointer_shaped(t.elem)
    return False


def pointer_shaped(t: GoType) -> bool:
    return _pointer_shaped(t)


def _word(image: bytes) -> int:
    return int(struct.unpack_from("<Q", image)[0])


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted(v.items()))
    return v


def decode(t: GoType, image: bytes, mem: Reader) -> GoValue:
    """Decode without runtime type information (scalars, strings, structs of them)."""
    return Decoder(mem).decode(t, image)
