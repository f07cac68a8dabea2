"""Reading Go maps from outside: the entries of a map header in target memory.

Two implementations, told apart by which runtime structure the binary's DWARF
describes (offsets are read from there too, so field moves between releases
do not matter):

* Swiss tables, Go >= 1.24 (``internal/runtime/maps``: ``Map``, ``table``,
  groups of 8 slots behind one 8-byte control word; a control byte with the
  high bit clear marks a full slot). ``dirLen == 0`` means ``dirPtr`` is a
  single group (a small map); otherwise it points at ``dirLen`` table pointers,
  several of which may be the same table.
* Bucket maps, Go <= 1.23 (``runtime/map.go``: ``hmap``, buckets of 8 with a
  ``tophash`` array, overflow chains, ``oldbuckets`` while growing). tophash
  >= ``minTopHash`` (5) marks a live entry; evacuated old entries carry 2..4.

Keys and elements larger than 128 bytes are stored indirectly (a pointer) in
both (``abi.MapMaxKeyBytes``/``MapMaxElemBytes``).

Building maps in the target (map literals) is left to the runtime's own
functions, the ones compiled code calls (:func:`assign_func`; their signatures are in
runtime/injected.py).
"""

from __future__ import annotations

import struct
from functools import cached_property
from typing import Protocol

from collections.abc import Callable

from ..binary.gotypes import INTEGERS, GoType, Kind
from ..errors import SymbolNotFound

_SLOTS = 8  # abi.MapGroupSlots / bucketCnt
_MAX_INLINE = 128  # abi.MapMaxKeyBytes, abi.MapMaxElemBytes
_MIN_TOP_HASH = 5  # runtime/map.go minTopHash
_SAME_SIZE_GROW = 8  # runtime/map.go hmap.flags: oldbuckets is as large as buckets
_CTRL_EMPTY_BIT = 0x80  # internal/runtime/maps: ctrlEmpty 0x80, ctrlDeleted 0xfe; full slots have h2 < 0x80


class _Reader(Protocol):
    def read(self, addr: int, size: int) -> bytes: ...


class _Layouts(Protocol):
    def struct_layout(self, type_name: str) -> dict[str, int]: ...

    def struct_die(self, type_name: str) -> object | None: ...


# The runtime's map constructor and assignment functions, as compiled code calls them. The
# symbol names are the same in every release gocall supports (1.19-1.27), Swiss or bucket maps;
# their signatures are in runtime/injected.py. mapassign* return the element's slot (an indirect
# element's own object), for the caller to store the element in.
MAKEMAP = "runtime.makemap"
MAKEMAP_SMALL = "runtime.makemap_small"  # when makemap is not linked: any hint works, it grows
MAPASSIGN = "runtime.mapassign"  # any key, passed by address
_POINTER_KEYS = frozenset({Kind.POINTER, Kind.UNSAFE_POINTER, Kind.CHAN})


def assign_func(key: GoType, elem: GoType, linked: Callable[[str], bool]) -> str:
    """The mapassign for a map[key]elem: the one the compiler picks (``mapfast`` in
    cmd/compile/internal/walk/walk.go, for scalar keys), else the generic one, which
    takes any key by address; ``linked`` says whether the binary has a function."""
    fast = None
    if elem.size <= _MAX_INLINE:
        if key.kind in INTEGERS and key.size in (4, 8):
            fast = f"runtime.mapassign_fast{8 * key.size}"
        elif key.kind in _POINTER_KEYS:
            fast = "runtime.mapassign_fast64ptr"
        elif key.kind == Kind.STRING:
            fast = "runtime.mapassign_faststr"
    for name in (fast, MAPASSIGN):
        if name is not None and linked(name):
            return name
    raise SymbolNotFound(f"the binary has no {fast or MAPASSIGN} to build a map[{key.name}]{elem.name}",
                         hint="the linker keeps only the map functions the program uses; assign to such a map "
                              "in the program")


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


def _stored(t: GoType) -> tuple[int, int, bool]:
    """(size, align, indirect) of a key or element as a map stores it."""
    if t.size > _MAX_INLINE:
        return 8, 8, True
    return t.size, t.align or 1, False


class MapReader:
    """Entries of maps in one process; the implementation is picked from the binary's DWARF."""

    def __init__(self, mem: _Reader, dwarf: _Layouts | None) -> None:
        self.mem = mem
        self.dwarf = dwarf

    @cached_property
    def _swiss(self) -> tuple[dict[str, int], dict[str, int]] | None:
        if self.dwarf is None or self.dwarf.struct_die("internal/runtime/maps.Map") is None:
            return None
        return self.dwarf.struct_layout("internal/runtime/maps.Map"), self.dwarf.struct_layout(
            "internal/runtime/maps.table"
        )

    @cached_property
    def _hmap(self) -> dict[str, int]:
        if self.dwarf is None or self.dwarf.struct_die("runtime.hmap") is None:
            raise SymbolNotFound("neither internal/runtime/maps.Map nor runtime.hmap is in DWARF",
                                 hint="maps can only be read from binaries with DWARF")
        return self.dwarf.struct_layout("runtime.hmap")

    def entries(self, t: GoType, m: int, limit: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """Up to ``limit`` (key image, elem image) pairs of the map at ``m``, and its length."""
        assert t.key is not None and t.elem is not None
        swiss = self._swiss
        if swiss is not None:
            return self._swiss_entries(t.key, t.elem, m, limit, *swiss)
        return self._bucket_entries(t.key, t.elem, m, limit)

    # -- Swiss tables ----------------------------------------------------------

    def _swiss_entries(self, key: GoType, elem: GoType, m: int, limit: int,
                       mlay: dict[str, int], tlay: dict[str, int]) -> tuple[list[tuple[bytes, bytes]], int]:
        head = self.mem.read(m, mlay["dirLen"] + 8)
        used = struct.unpack_from("<Q", head, mlay["used"])[0]
        dir_ptr = struct.unpack_from("<Q", head, mlay["dirPtr"])[0]
        dir_len = struct.unpack_from("<q", head, mlay["dirLen"])[0]
        ks, ka, kind = _stored(key)
        es, ea, eind = _stored(elem)
        elem_off = _align(ks, ea)
        slot = _align(elem_off + es, max(ka, ea))
        group = 8 + _SLOTS * slot
        out: list[tuple[bytes, bytes]] = []
        groups: list[int] = []
        if dir_len == 0:
            groups = [dir_ptr] if dir_ptr else []
        else:
            seen: set[int] = set()
            for tab in struct.unpack(f"<{dir_len}Q", self.mem.read(dir_ptr, 8 * dir_len)):
                if tab in seen:
                    continue
                seen.add(tab)
                raw = self.mem.read(tab, tlay["groups.lengthMask"] + 8)
                data = struct.unpack_from("<Q", raw, tlay["groups.data"])[0]
                mask = struct.unpack_from("<Q", raw, tlay["groups.lengthMask"])[0]
                groups += [data + i * group for i in range(mask + 1)]
        for g in groups:
            if len(out) >= limit:
                break
            raw = self.mem.read(g, group)
            for i in range(_SLOTS):
                if raw[i] & _CTRL_EMPTY_BIT or len(out) >= limit:
                    continue
                base = 8 + i * slot
                out.append((self._part(raw, base, key, kind), self._part(raw, base + elem_off, elem, eind)))
        return out, used

    # -- bucket maps -----------------------------------------------------------

    def _bucket_entries(self, key: GoType, elem: GoType, m: int, limit: int) -> tuple[list[tuple[bytes, bytes]], int]:
        lay = self._hmap
        head = self.mem.read(m, lay["oldbuckets"] + 8)
        count = struct.unpack_from("<q", head, lay["count"])[0]
        b = head[lay["B"]]
        buckets = struct.unpack_from("<Q", head, lay["buckets"])[0]
        old = struct.unpack_from("<Q", head, lay["oldbuckets"])[0]
        ks, _, kind = _stored(key)
        es, _, eind = _stored(elem)
        overflow_at = _align(8 + _SLOTS * (ks + es), 8)
        size = overflow_at + 8
        out: list[tuple[bytes, bytes]] = []
        starts = [buckets + i * size for i in range(1 << b)] if buckets else []
        if old:
            same_size = head[lay["flags"]] & _SAME_SIZE_GROW
            starts += [old + i * size for i in range(1 << (b if same_size else max(b - 1, 0)))]
        for start in starts:
            bucket = start
            while bucket and len(out) < limit:
                raw = self.mem.read(bucket, size)
                for i in range(_SLOTS):
                    if raw[i] >= _MIN_TOP_HASH and len(out) < limit:
                        k = self._part(raw, 8 + i * ks, key, kind)
                        e = self._part(raw, 8 + _SLOTS * ks + i * es, elem, eind)
                        out.append((k, e))
                bucket = struct.unpack_from("<Q", raw, overflow_at)[0]
            if len(out) >= limit:
                break
        return out, count

    def _part(self, raw: bytes, off: int, t: GoType, indirect: bool) -> bytes:
        if indirect:
            return self.mem.read(struct.unpack_from("<Q", raw, off)[0], t.size)
        return raw[off : off + t.size]
