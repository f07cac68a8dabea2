"""Slice expressions ``x[low:high]`` and ``x[low:high:max]`` (spec: Slice expressions).

Nothing is copied or allocated: the result shares the operand's memory, as in Go. A
string gives a string, a slice a slice, an addressable array (or a pointer to one) a
slice of its elements; an array that is not addressable (a call's result) is refused
as the compiler refuses it. Out-of-range bounds are reported in the runtime's words
(``panicSlice*`` in runtime/panic.go). As the compiler does (``ssa.go`` ``slice``),
the data pointer is not advanced when the result is empty, so it never points past
the end of the object.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..binary.gotypes import GoType, Kind
from ..errors import ExprError
from .operand import Operand, describe


def slice_operand(x: Operand, bounds: tuple[int | None, int | None, int | None], text: str,
                  deref: Callable[[Operand], Operand], slice_type: Callable[[GoType], GoType],
                  string: GoType) -> Operand:
    """``x[low:high:max]`` for the evaluated operand ``x`` and integer bounds (None: omitted).
    ``deref`` loads ``*p``; ``slice_type`` gives ``[]T`` for an element type; ``string`` is
    the type of a sliced untyped string constant (a string value, no longer a constant)."""
    low, high, max_ = bounds
    t = x.type
    if t is not None and t.kind == Kind.POINTER and t.elem is not None and t.elem.kind == Kind.ARRAY:
        x = deref(x)
        t = x.type
    if t is None and isinstance(x.const, str) or t is not None and t.kind == Kind.STRING and x.image is None:
        if max_ is not None:
            raise ExprError(f"invalid operation: 3-index slice of string ({text})")
        data = str(x.const).encode("utf-8", "surrogateescape")
        lo, hi, _ = _check(low, high, None, len(data), len(data), "length")
        return Operand(t or string, data[lo:hi].decode("utf-8", "surrogateescape"), text=text)
    if t is None or x.image is None:
        raise ExprError(f"cannot slice {describe(x)}")
    if t.kind == Kind.STRING:
        if max_ is not None:
            raise ExprError(f"invalid operation: 3-index slice of string ({text})")
        ptr, n = struct.unpack_from("<Qq", x.image)
        lo, hi, _ = _check(low, high, None, n, n, "length")
        return Operand(t, image=struct.pack("<Qq", ptr + lo if hi > lo else ptr, hi - lo), text=text)
    if t.kind == Kind.SLICE and t.elem is not None:
        ptr, n, cap = struct.unpack_from("<QqQ", x.image)
        result, elem = t, t.elem
        lo, hi, mx = _check(low, high, max_, n, cap, "capacity")
    elif t.kind == Kind.ARRAY and t.elem is not None:
        if x.addr is None:
            raise ExprError(f"invalid operation: {text} (slice of unaddressable value)")
        ptr, n, cap = x.addr, t.length, t.length
        result, elem = slice_type(t.elem), t.elem
        lo, hi, mx = _check(low, high, max_, n, cap, "length")
    else:
        raise ExprError(f"cannot slice {describe(x)}")
    data = ptr + lo * elem.size if mx > lo else ptr
    return Operand(result, image=struct.pack("<Qqq", data, hi - lo, mx - lo), text=text)


def _check(low: int | None, high: int | None, max_: int | None, length: int, cap: int,
           limit_name: str) -> tuple[int, int, int]:
    """The bounds with their defaults, checked as the runtime checks them (max, then high, then low)."""
    for b in (low, high, max_):
        if b is not None and b < 0:
            raise ExprError(f"invalid argument: index {b} must not be negative")
    lo = 0 if low is None else low
    hi = length if high is None else high
    mx = cap if max_ is None else max_
    if max_ is not None:
        if mx > cap:
            raise ExprError(f"slice bounds out of range [::{mx}] with {limit_name} {cap}")
        if hi > mx:
            raise ExprError(f"slice bounds out of range [:{hi}:{mx}]")
    elif hi > cap:
        raise ExprError(f"slice bounds out of range [:{hi}] with {limit_name} {cap}")
    if lo > hi:
        raise ExprError(f"slice bounds out of range [{lo}:{hi}]")
    return lo, hi, mx
