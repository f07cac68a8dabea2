"""Go values to bytes: the memory image of an argument of a given type.

Arguments arrive as Go *untyped constants* (Python ``int``, ``float``,
``complex``, ``bool``, ``None`` for nil) and are converted the way the Go
compiler converts a constant to a parameter type; what Go would reject is
rejected with the compiler's wording, before anything is written to the
target. String constants need memory in the target: expr/ allocates them.
"""

from __future__ import annotations

import math
import struct

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError

_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


def constant_kind(v: object) -> str:
    """How Go would name this constant's kind: ``untyped int`` etc."""
    if isinstance(v, bool):
        return "untyped bool"
    if isinstance(v, int):
        return "untyped int"
    if isinstance(v, float):
        return "untyped float"
    if isinstance(v, complex):
        return "untyped complex"
    if isinstance(v, str):
        return "untyped string"
    return type(v).__name__


def go_literal(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        from .gofmt import quote

        return quote(v)
    if v is None:
        return "nil"
    if isinstance(v, complex):
        return f"({v.real:g} + {v.imag:g}i)"
    return repr(v)


def encode(t: GoType, v: object, context: str) -> bytes:
    """The memory image of constant ``v`` converted to ``t``; ``context`` names the
    place for error messages (``argument to main.Add``)."""

    def refuse(why: str = "") -> ArgumentError:
        tail = f" ({why})" if why else ""
        return ArgumentError(
            f"cannot use {go_literal(v)} ({constant_kind(v)} constant) as {t.name} value in {context}{tail}"
        )

    k = t.kind
    if t.is_integer:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise refuse()
        if isinstance(v, float):
            if not v.is_integer():
                raise refuse("truncated")
            v = int(v)
        bits = 8 * t.size
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.is_signed else (0, (1 << bits) - 1)
        if not lo <= v <= hi:
            raise refuse("overflows")
        fmt = _INT_FORMATS[t.size]
        return struct.pack("<" + (fmt if t.is_signed else fmt.upper()), v)
    if k == Kind.BOOL:
        if not isinstance(v, bool):
            raise refuse()
        return b"\x01" if v else b"\x00"
    if k in (Kind.FLOAT32, Kind.FLOAT64):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise refuse()
        f = float(v)
        limit = 3.4028234663852886e38 if k == Kind.FLOAT32 else 1.7976931348623157e308
        if math.isinf(f) or abs(f) > limit:
            raise refuse("overflows")
        return struct.pack("<f" if k == Kind.FLOAT32 else "<d", f)
    if k in (Kind.COMPLEX64, Kind.COMPLEX128):
        if isinstance(v, bool) or not isinstance(v, (int, float, complex)):
            raise refuse()
        c = complex(v)
        fmt = "<ff" if k == Kind.COMPLEX64 else "<dd"
        return struct.pack(fmt, c.real, c.imag)
    if v is None and k in NILABLE:
        return bytes(t.size)
    if v is None:
        raise ArgumentError(f"cannot use nil as {t.name} value in {context}")
    raise refuse()


# Kinds whose zero value is nil (the spec's "predeclared identifier nil").
NILABLE = frozenset({Kind.POINTER, Kind.UNSAFE_POINTER, Kind.SLICE, Kind.MAP, Kind.CHAN, Kind.FUNC, Kind.INTERFACE})


def default_type_name(v: object) -> str:
    """The type an untyped constant takes where no type is asked for (``any`` arguments)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    return "string"
