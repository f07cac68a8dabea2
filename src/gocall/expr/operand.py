"""Operands: what an expression's parts evaluate to before they become arguments.

An operand is an untyped constant (``type`` None), a typed value (its memory
image, and its address when it lives in the target and is addressable, as a
package variable or ``*p`` is), or a function to call (:class:`Fn`). Typed
strings computed by gocall itself (``"a" + f()``) carry their text in
``const`` until they are needed in the target, where they are allocated.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from ..binary.gotypes import GoType, Kind, Signature


# Fn and Operand are NamedTuples: a frozen dataclass compiles its methods from source at import
# (~0.5 ms each of a cold `gocall call`).
class Fn(NamedTuple):
    """Something callable: its entry PC, signature (receiver first), and what is bound already."""

    name: str
    entry: int
    sig: Signature
    bound: tuple[Operand, ...] = ()  # a method's receiver, already converted
    closure: int = 0  # RDX: the funcval of a closure or method value


class Operand(NamedTuple):
    type: GoType | None
    const: Any = None
    image: bytes | None = None
    addr: int | None = None
    text: str = ""
    fn: Fn | None = None
    results: tuple[Operand, ...] | None = None  # a call with several results

    @property
    def untyped(self) -> bool:
        return self.type is None and self.fn is None


class Scope(Protocol):
    """Names an expression sees before package members: a stopped frame's parameters and
    locals (stop.py). Operands it returns carry an address only when the value really is
    in target memory."""

    function: str  # the frame's function, named when a name is not found

    def lookup(self, name: str) -> Operand | None:
        """The variable ``name`` (no dots), or None if the scope has no such name."""

    def store(self, target: Operand, image: bytes) -> bool:
        """Write ``image`` to a variable that has no address (a register); False if ``target``
        is not such a variable."""


def same_type(a: GoType, b: GoType) -> bool:
    return a is b or (a.name == b.name and a.kind == b.kind and a.size == b.size)


def assignable(src: GoType, dst: GoType) -> bool:
    """Go's assignability for the cases gocall meets: identical types, or identical
    underlying types when at least one of them is not a named (defined) type."""
    if same_type(src, dst):
        return True
    if src.kind != dst.kind or src.size != dst.size:
        return False
    named = ("." in src.name.split("[")[0] and not src.name.startswith(("[", "*", "map[", "func", "chan"))), (
        "." in dst.name.split("[")[0] and not dst.name.startswith(("[", "*", "map[", "func", "chan"))
    )
    if named[0] and named[1]:
        return False
    if dst.kind in (Kind.SLICE, Kind.ARRAY, Kind.POINTER, Kind.CHAN) and src.elem and dst.elem:
        return same_type(src.elem, dst.elem)
    if dst.kind == Kind.MAP and src.key and dst.key and src.elem and dst.elem:
        return same_type(src.key, dst.key) and same_type(src.elem, dst.elem)
    if dst.kind == Kind.STRUCT:
        return [(f.name, f.type.name) for f in src.fields] == [(f.name, f.type.name) for f in dst.fields]
    return not (named[0] and named[1])


def describe(o: Operand) -> str:
    """How the Go compiler names an operand in its messages."""
    if o.type is None:
        from ..values.encode import constant_kind

        return f"{o.text} ({constant_kind(o.const) if o.const is not None else 'untyped nil'} constant)"
    return f"{o.text} (value of type {o.type.name})"
