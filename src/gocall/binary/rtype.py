"""Runtime type descriptors (``abi.Type``) found by name in the file, for binaries without DWARF.

DWARF links each type to its descriptor (``DW_AT_go_runtime_type``); without DWARF the
descriptor is found the way the runtime would print its name. Mirrors
``internal/abi/type.go`` (``Type``, ``Name``) — the same layout in 1.19-1.27:

    Type: Size_ uintptr | PtrBytes uintptr | Hash u32 | TFlag u8 | Align_ u8 | FieldAlign_ u8
          | Kind_ u8 (+0x17) | Equal func (+0x18) | GCData *byte (+0x20) | Str NameOff (+0x28)
          | PtrToThis TypeOff (+0x2c)

``Str`` is an offset from ``moduledata.types`` to a ``Name``: one flags byte, a uvarint
length, the bytes. Names of unnamed-package types are stored with a leading ``*`` and
``TFlagExtraStar`` set, so ``unsafe.Pointer`` is stored as ``*unsafe.Pointer``.
"""

from __future__ import annotations

import struct

__all__ = ["find_rtype"]

_KIND_MASK = (1 << 5) - 1
_TFLAG_EXTRA_STAR = 1 << 1
_TYPE_KIND = 0x17
_TYPE_TFLAG = 0x14
_TYPE_STR = 0x28


def _encoded_names(name: str) -> list[tuple[bytes, bool]]:
    """The bytes a Name record for ``name`` may hold after its flags byte (short names only),
    each with whether the descriptor then has TFlagExtraStar (``*T`` shares ``T``'s record)."""
    out = []
    for text, starred in (("*" + name, True), (name, False)):
        raw = text.encode()
        if len(raw) < 0x80:  # one-byte uvarint length: every type name gocall looks up
            out.append((bytes([len(raw)]) + raw, starred))
    return out


def find_rtype(types: bytes, name: str, kind: int) -> int | None:
    """Offset in ``types`` (the bytes from ``moduledata.types``) of the ``abi.Type`` named
    ``name`` with kind ``kind``, or None.

    Name records are searched first (few hits), then the 8-aligned descriptors whose ``Str``
    points at one of them; the kind and the TFlagExtraStar bit must agree.
    """
    candidates: dict[int, bool] = {}  # Name offset -> stored with the extra star
    for encoded, starred in _encoded_names(name):
        pos = types.find(encoded, 1)
        while pos > 0:
            candidates.setdefault(pos - 1, starred)
            pos = types.find(encoded, pos + 1)
    if not candidates:
        return None
    # Each Str field is a u32 we can search for directly, rather than parsing every descriptor.
    for name_off, starred in candidates.items():
        needle = struct.pack("<I", name_off)
        pos = types.find(needle)
        while pos >= 0:
            start = pos - _TYPE_STR
            if start >= 0 and start % 8 == 0:
                tflag, kind_byte = types[start + _TYPE_TFLAG], types[start + _TYPE_KIND]
                if kind_byte & _KIND_MASK == kind and bool(tflag & _TFLAG_EXTRA_STAR) == starred:
                    return start
            pos = types.find(needle, pos + 1)
    return None
