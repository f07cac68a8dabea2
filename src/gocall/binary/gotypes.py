"""Go types as gocall sees them, whatever they were read from (DWARF now; runtime
type descriptors later for stripped binaries).

``Kind`` numbers are the runtime's own (``internal/abi/type.go``, ``abi.Kind``),
which is also what the Go linker writes in DWARF's ``DW_AT_go_kind``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class Kind(enum.IntEnum):
    INVALID = 0
    BOOL = 1
    INT = 2
    INT8 = 3
    INT16 = 4
    INT32 = 5
    INT64 = 6
    UINT = 7
    UINT8 = 8
    UINT16 = 9
    UINT32 = 10
    UINT64 = 11
    UINTPTR = 12
    FLOAT32 = 13
    FLOAT64 = 14
    COMPLEX64 = 15
    COMPLEX128 = 16
    ARRAY = 17
    CHAN = 18
    FUNC = 19
    INTERFACE = 20
    MAP = 21
    POINTER = 22
    SLICE = 23
    STRING = 24
    STRUCT = 25
    UNSAFE_POINTER = 26


SIGNED_INTS = frozenset({Kind.INT, Kind.INT8, Kind.INT16, Kind.INT32, Kind.INT64})
UNSIGNED_INTS = frozenset({Kind.UINT, Kind.UINT8, Kind.UINT16, Kind.UINT32, Kind.UINT64, Kind.UINTPTR})
INTEGERS = SIGNED_INTS | UNSIGNED_INTS
FLOATS = frozenset({Kind.FLOAT32, Kind.FLOAT64})


# Field, Param and Signature are NamedTuples: a frozen dataclass compiles its methods from source
# at import (~0.45 ms each of a cold `gocall call`). GoType stays a dataclass (its graph is cyclic).
class Field(NamedTuple):
    name: str
    type: GoType
    offset: int
    embedded: bool = False


@dataclass(frozen=True, eq=False, repr=False)
class GoType:
    """One Go type. ``name`` is as Go prints it (``int``, ``main.Point``, ``*main.Point``).

    Go types can be recursive (``type Node struct{ next *Node }``; ``runtime.g`` and
    ``runtime.m`` point at each other), so a GoType graph may contain cycles. Equality is
    therefore structural but cycle-aware, the hash looks only at the type's own scalars, and
    ``repr`` names the types it refers to instead of expanding them.
    """

    name: str
    kind: Kind
    size: int
    align: int = 0
    elem: GoType | None = None  # pointer, slice, array, chan, map value
    key: GoType | None = None  # map key
    length: int = 0  # array length
    fields: tuple[Field, ...] = field(default=())  # struct fields in memory order

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GoType):
            return NotImplemented
        return _same(self, other, set())

    def __hash__(self) -> int:
        return hash((self.name, self.kind, self.size, self.length))

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"kind={self.kind.name}", f"size={self.size}"]
        if self.align:
            parts.append(f"align={self.align}")
        if self.elem is not None:
            parts.append(f"elem={self.elem.name!r}")
        if self.key is not None:
            parts.append(f"key={self.key.name!r}")
        if self.length:
            parts.append(f"length={self.length}")
        if self.fields:
            parts.append("fields=[" + ", ".join(f"{f.name}@{f.offset}: {f.type.name}" for f in self.fields) + "]")
        return f"GoType({', '.join(parts)})"

    @property
    def is_integer(self) -> bool:
        return self.kind in INTEGERS

    @property
    def is_signed(self) -> bool:
        return self.kind in SIGNED_INTS

    @property
    def is_float(self) -> bool:
        return self.kind in FLOATS


def _same(a: GoType, b: GoType, assumed: set[tuple[int, int]]) -> bool:
    """Structural equality of two type graphs; pairs met again are assumed equal (bisimulation)."""
    if a is b or (id(a), id(b)) in assumed:
        return True
    assumed.add((id(a), id(b)))
    if (a.name, a.kind, a.size, a.align, a.length) != (b.name, b.kind, b.size, b.align, b.length):
        return False
    for x, y in ((a.elem, b.elem), (a.key, b.key)):
        if (x is None) != (y is None) or (x is not None and y is not None and not _same(x, y, assumed)):
            return False
    if len(a.fields) != len(b.fields):
        return False
    return all(
        (f.name, f.offset, f.embedded) == (g.name, g.offset, g.embedded) and _same(f.type, g.type, assumed)
        for f, g in zip(a.fields, b.fields)
    )


class Param(NamedTuple):
    """A formal parameter or result of a function, in declaration order."""

    name: str  # "" or "~r0"-style names for unnamed results, as the compiler writes them
    type: GoType
    is_result: bool


class Signature(NamedTuple):
    """A function's parameters and results in declaration order, and where they were learnt."""

    name: str
    params: tuple[Param, ...]
    results: tuple[Param, ...]
    # "" for DWARF; else said in errors when the binary's frame size disagrees (expr/eval.py):
    # DECLARED, INJECTED, or "Go source <file>" (gosource/).
    origin: str = ""


DECLARED = "declared"  # by the user (--declare, Process.declare)
INJECTED = "injected"  # gocall's table of the runtime functions it calls (runtime/injected.py)
