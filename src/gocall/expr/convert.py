"""From an operand to a value of a given type: Go's assignability (arguments,
assignments, literal elements, map keys), explicit conversions ``T(x)``, untyped
constants taking a type, and boxing into interfaces (spec: Assignability,
Conversions, Constants).

A module of its own because every place that hands a value to the target goes
through the same rules, and they are the compiler's, with its wording when a value
does not fit: a constant is encoded lossless or refused, a string constant becomes
a string in the target's heap (call/alloc.py) only when it is needed there, and a
value put in an interface gets its type (or itab, by the runtime's own getitab)
and, unless it is pointer-shaped, a heap copy.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError, ExprError
from ..values import arith
from ..values.decode import pointer_shaped
from ..values.encode import NILABLE, default_type_name, encode
from .operand import Operand, assignable, describe
from .parse import Expr

if TYPE_CHECKING:
    from .build import Builder

# unsafe.Pointer converts to and from every pointer type and uintptr (spec: Package unsafe).
_UNSAFE_CONVERTIBLE = frozenset({Kind.UNSAFE_POINTER, Kind.POINTER, Kind.UINTPTR})


def typed(t: GoType, v: Any, text: str) -> Operand:
    """A value computed here, as an operand of type ``t`` (integers wrap, as in Go)."""
    if t.kind == Kind.STRING:
        return Operand(t, v, text=text)
    if t.is_integer:
        v = arith.wrap(int(v), t.size, t.is_signed)
    return Operand(t, image=encode(t, v, text), text=text)


def conversion(b: Builder, x: Operand, t: GoType, text: str) -> Operand:
    """``T(x)``: the conversions the spec allows between the kinds gocall handles."""
    if x.type is None:
        if t.kind == Kind.STRING and isinstance(x.const, str):
            return Operand(t, x.const, text=text)
        return Operand(t, image=encode(t, x.const, f"conversion to {t.name}"), text=text)
    kinds = {x.type.kind, t.kind}
    if Kind.UNSAFE_POINTER in kinds and kinds <= _UNSAFE_CONVERTIBLE and x.image is not None:
        return Operand(t, image=x.image[:8], text=text)  # the spec's Package unsafe conversions
    v = b.value(x).value
    if (t.is_integer or t.is_float) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return typed(t, int(v) if t.is_integer else v, text)
    if assignable(x.type, t) or x.type.kind == t.kind and x.type.size == t.size and x.image is not None:
        return Operand(t, x.const, image=x.image, addr=x.addr, text=text)
    if t.kind == Kind.STRING and x.type.kind == Kind.SLICE and isinstance(v, list):
        return Operand(t, bytes(v).decode("utf-8", "surrogateescape"), text=text)
    raise ExprError(f"cannot convert {describe(x)} to type {t.name}")


def arg(b: Builder, e: Expr, t: GoType, context: str) -> bytes:
    """The image of expression ``e`` as a value of type ``t`` (``t`` types its untyped constants)."""
    return convert(b, b.eval(e, t), t, context)


def convert(b: Builder, x: Operand, t: GoType, context: str) -> bytes:
    """The image of operand ``x`` as a value of type ``t`` (Go's assignability)."""
    if x.results is not None:
        raise ExprError(f"multiple-value {x.text} (value of type ({', '.join(r.type.name for r in x.results if r.type)})) "
                        f"in single-value context")
    if x.fn is not None:
        if t.kind == Kind.FUNC and not x.fn.bound:
            sym = b.ev.binary.symbol(x.fn.name + "·f")  # the linker's static funcval for a top-level func
            if sym is not None:
                return struct.pack("<Q", sym)
        raise ArgumentError(f"cannot use {x.text} (value of type func) as {t.name} value in {context}")
    if t.kind == Kind.INTERFACE and (x.type is None or x.type.kind != Kind.INTERFACE):
        return _box(b, x, t, context)
    if x.type is None:
        if t.kind == Kind.STRING and isinstance(x.const, str):
            return b.s.heap.string(x.const.encode("utf-8", "surrogateescape"))
        if x.const is None and t.kind not in NILABLE:
            raise ArgumentError(f"cannot use nil as {t.name} value in {context}")
        return encode(t, x.const, context)
    if not assignable(x.type, t) and not (t.kind == Kind.INTERFACE and x.type.kind == Kind.INTERFACE):
        raise ArgumentError(f"cannot use {describe(x)} as {t.name} value in {context}")
    return image(b, x)


def image(b: Builder, x: Operand) -> bytes:
    """A typed operand's image; a string computed here is allocated in the target first."""
    if x.image is not None:
        return x.image
    assert x.type is not None and x.type.kind == Kind.STRING
    return b.s.heap.string(str(x.const).encode("utf-8", "surrogateescape"))


def _box(b: Builder, x: Operand, t: GoType, context: str) -> bytes:
    """An interface value holding ``x``: (type or itab word, data word)."""
    if x.type is None:
        if x.const is None:
            return bytes(16)
        dyn = b.names.type(default_type_name(x.const))
        assert dyn is not None
        x = Operand(dyn, image=convert(b, x, dyn, context), text=x.text)
    assert x.type is not None
    rtype = b.rtype(x.type)
    img = image(b, x)
    data = struct.unpack("<Q", img)[0] if pointer_shaped(x.type) else (
        b.alloc(x.type, img, x.text) if x.type.size else 0)
    word = rtype
    if t.fields and t.fields[0].name == "tab":
        word = b.s.runtime_call("runtime.getitab", (b.rtype(t), rtype, 0))
    return struct.pack("<QQ", word, data)
