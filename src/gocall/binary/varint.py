"""Unsigned LEB128, the varint of Go's pc-value tables (runtime.readvarint), its build
info strings (encoding/binary.Uvarint) and DWARF's ULEB128: one decoder for the three."""

from __future__ import annotations


def uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode one unsigned varint at ``pos``; return (value, next pos). IndexError if truncated."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
