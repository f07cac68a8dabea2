"""Where a value's pointers are: the words of a memory image that the GC would
treat as pointers, found from the type alone (no memory is read).

Used by the escape check (expr/escape.py) and by allocation (an object without
pointers needs no type descriptor: ``mallocgc(size, nil, true)`` gives a noscan
object, which is what the runtime does for such types). The pointer words of
each kind follow ``reflect``'s ``PtrBytes``: a pointer, unsafe.Pointer, map,
chan or func is one word; a string's or slice's data pointer is its first
word; an interface's data word is its second (the first is a type or itab,
never on a stack); structs and arrays have their fields' and elements'.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..binary.gotypes import GoType, Kind

__all__ = ["has_pointers", "pointer_words"]

_ONE_WORD = frozenset({Kind.POINTER, Kind.UNSAFE_POINTER, Kind.MAP, Kind.CHAN, Kind.FUNC, Kind.STRING,
                       Kind.SLICE})


def has_pointers(t: GoType, _seen: frozenset[int] = frozenset()) -> bool:
    """Whether values of ``t`` hold any pointer the GC must see."""
    if t.kind in _ONE_WORD or t.kind == Kind.INTERFACE:
        return True
    if id(t) in _seen:  # a recursive type reaches itself only through a pointer, handled above
        return False
    seen = _seen | {id(t)}
    if t.kind == Kind.ARRAY:
        return t.length > 0 and t.elem is not None and has_pointers(t.elem, seen)
    if t.kind == Kind.STRUCT:
        return any(has_pointers(f.type, seen) for f in t.fields)
    return False


def pointer_words(t: GoType, image: bytes, path: str = "") -> Iterator[tuple[str, int, Kind]]:
    """Each non-nil pointer word of the value ``image`` of type ``t``: where it is (``""``
    for the value itself, ``".Ref"``, ``"[3]"``, ``".(data)"`` inside it), the word, and
    the kind of value it belongs to."""
    k = t.kind
    if k in _ONE_WORD:
        word = struct.unpack_from("<Q", image)[0]
        if word:
            yield path, word, k
    elif k == Kind.INTERFACE:
        word = struct.unpack_from("<Q", image, 8)[0]
        if word:
            yield path + ".(data)", word, k
    elif k == Kind.STRUCT:
        for f in t.fields:
            if has_pointers(f.type):
                yield from pointer_words(f.type, image[f.offset : f.offset + f.type.size], f"{path}.{f.name}")
    elif k == Kind.ARRAY and t.elem is not None and has_pointers(t.elem):
        size = t.elem.size
        for i in range(t.length):
            yield from pointer_words(t.elem, image[i * size : (i + 1) * size], f"{path}[{i}]")
