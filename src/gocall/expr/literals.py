"""Composite literals: ``T{...}`` for structs, arrays, slices and maps, and ``&T{...}``
(spec: Composite literals).

A module of its own because a literal is the one expression form that makes a new
value instead of reading one: its elements follow the spec's keying rules (field
names or positions, array indices, map keys checked for duplicates before anything
is allocated), and whatever the value needs in the target is created there with
its real type. A slice's backing array and ``&T{...}``'s object come from the
target's heap (``Builder.alloc``); a map is made and filled by the runtime's own
makemap and mapassign, so its keys are hashed as the program hashes them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..binary.gotypes import GoType, Kind
from ..errors import ExprError
from ..runtime import maps
from .convert import arg, convert
from .names import array_of, pointer_to
from .operand import Operand
from .parse import Composite, Expr, Name

if TYPE_CHECKING:
    from .build import Builder


def composite(b: Builder, t: GoType, e: Composite) -> Operand:
    """The value of the literal ``e`` of type ``t`` (``e.type`` already resolved, or elided)."""
    if t.kind == Kind.STRUCT:
        image = bytearray(t.size)
        for i, (key, val) in enumerate(e.elems):
            name = key.qualified if isinstance(key, Name) else None
            if key is not None and name is None:
                raise ExprError(f"invalid field name {key} in struct literal")
            fields = [f for f in t.fields if f.name == name] if name else list(t.fields[i : i + 1])
            if not fields:
                raise ExprError(f"unknown field {name} in struct literal of type {t.name}" if name else
                                f"too many values in struct literal of type {t.name}")
            f = fields[0]
            image[f.offset : f.offset + f.type.size] = arg(b, val, f.type, f"struct literal of type {t.name}")
        return Operand(t, image=bytes(image), text=e.text)
    if t.kind in (Kind.ARRAY, Kind.SLICE) and t.elem is not None:
        elem, images, pos = t.elem, {}, 0
        for key, val in e.elems:
            pos = b.integer(b.eval(key)) if key is not None else pos
            images[pos] = arg(b, val, elem, f"{'array' if t.kind == Kind.ARRAY else 'slice'} literal")
            pos += 1
        n = t.length if t.kind == Kind.ARRAY else max(images, default=-1) + 1
        if t.kind == Kind.ARRAY and images and max(images) >= n:
            raise ExprError(f"index {max(images)} out of bounds [0:{n}] in {e.text}")
        data = bytearray(n * elem.size)
        for i, img in images.items():
            data[i * elem.size : (i + 1) * elem.size] = img
        if t.kind == Kind.ARRAY:
            return Operand(t, image=bytes(data), text=e.text)
        ptr = b.alloc(array_of(elem, n), bytes(data), e.text) if n else 0
        return Operand(t, image=struct.pack("<QQQ", ptr, n, n), text=e.text)
    if t.kind == Kind.MAP:
        return _map_literal(b, t, e)
    raise ExprError(f"{t.name} literals are not supported yet ({e.text})")


def _map_literal(b: Builder, t: GoType, e: Composite) -> Operand:
    """``map[K]V{k: v, ...}``: made and filled in the target by the runtime's own
    makemap and mapassign (runtime/maps.py), so keys are hashed as the program hashes
    them; each element is stored in the slot mapassign returns."""
    assert t.key is not None and t.elem is not None
    keys: list[tuple[Operand, Expr]] = []
    constants: set[Any] = set()
    for key, val in e.elems:  # Go's compile-time checks first: nothing is allocated yet
        if key is None:
            raise ExprError(f"missing key in map literal {e.text}")
        k = b.eval(key, t.key)
        if k.untyped and k.const is not None:
            if k.const in constants:
                raise ExprError(f"duplicate key {k.text} in map literal")
            constants.add(k.const)
        keys.append((k, val))
    entries = [(convert(b, k, t.key, "map literal"), arg(b, val, t.elem, "map literal"), k.text)
               for k, val in keys]
    linked = b.ev.binary.pclntab.func_by_name
    mt = b.rtype(t)
    if linked(maps.MAKEMAP) is not None:
        m = b.s.runtime_call(maps.MAKEMAP, (mt, len(entries), 0))
    else:
        m = b.s.runtime_call(maps.MAKEMAP_SMALL, ())
    b.s.heap.keep(m)
    assign = maps.assign_func(t.key, t.elem, lambda name: linked(name) is not None)
    for kimg, eimg, text in entries:
        b.stored(t.key, kimg, text)
        b.stored(t.elem, eimg, text)
        key_arg: int | bytes = b.alloc(t.key, kimg, text) if assign == maps.MAPASSIGN else kimg
        slot = b.s.runtime_call(assign, (mt, m, key_arg))
        if t.elem.size:
            b.mem.write(slot, eimg)
    return Operand(t, image=struct.pack("<Q", m), text=e.text)


def new_object(b: Builder, lit: Operand, text: str) -> Operand:
    """``&T{...}``: a new object of T's size and type in the target, holding the literal."""
    assert lit.type is not None and lit.image is not None
    t = lit.type
    addr = b.alloc(t, lit.image, text)
    return Operand(pointer_to(t), image=struct.pack("<Q", addr), text=text)
