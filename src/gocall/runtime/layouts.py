"""Per-Go-release offsets of the runtime structures gocall reads from outside.

One table, one row per release (``runtime/runtime2.go``: ``type g``, ``type m``),
measured from the DWARF of real binaries (shared/research/go-runtime-facts.md
§4.2-4.4) so that stripped binaries work too. A release missing from the table
is read from the binary's own DWARF when it has some; otherwise it is refused.
tests/runtime/test_layouts.py checks every row against DWARF.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

from ..errors import UnsupportedGo


@dataclass(frozen=True)
class Layout:
    g_stack_lo: int  # g.stack.lo
    g_stack_hi: int  # g.stack.hi
    g_m: int  # g.m (*m)
    g_atomicstatus: int  # g.atomicstatus (uint32)
    g_goid: int  # g.goid
    m_g0: int  # m.g0
    m_procid: int  # m.procid (the thread's TID)
    m_gsignal: int  # m.gsignal
    m_curg: int  # m.curg (the user goroutine running on this M)
    md_types: int  # moduledata.types: base of the nameOff/typeOff of type descriptors


# (major, minor) -> offsets. Go 1.20 has not been measured (no toolchain here).
_LAYOUTS: dict[tuple[int, int], Layout] = {
    (1, 19): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x118),
    (1, 21): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x128),
    (1, 22): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x48, 0x50, 0xC0, 0x128),
    (1, 23): Layout(0x0, 0x8, 0x30, 0x98, 0xA0, 0x0, 0x48, 0x50, 0xC0, 0x128),
    (1, 24): Layout(0x0, 0x8, 0x30, 0x98, 0xA0, 0x0, 0x48, 0x50, 0xC0, 0x128),
    (1, 25): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128),
    (1, 26): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128),
    (1, 27): Layout(0x0, 0x8, 0x30, 0x90, 0x98, 0x0, 0x40, 0x48, 0xB8, 0x128),
}

# Layout field -> (runtime struct, field path) in DWARF, for releases not in the table.
_DWARF_NAMES = {
    "g_stack_lo": ("runtime.g", "stack.lo"),
    "g_stack_hi": ("runtime.g", "stack.hi"),
    "g_m": ("runtime.g", "m"),
    "g_atomicstatus": ("runtime.g", "atomicstatus"),
    "g_goid": ("runtime.g", "goid"),
    "m_g0": ("runtime.m", "g0"),
    "m_procid": ("runtime.m", "procid"),
    "m_gsignal": ("runtime.m", "gsignal"),
    "m_curg": ("runtime.m", "curg"),
    "md_types": ("runtime.moduledata", "types"),
}


class _StructLayouts(Protocol):
    def struct_layout(self, type_name: str) -> dict[str, int]: ...


def known_releases() -> list[tuple[int, int]]:
    return sorted(_LAYOUTS)


def for_go(version: tuple[int, ...], dwarf: _StructLayouts | None = None) -> Layout:
    """The layout for a Go release, from the table or else from the binary's DWARF."""
    key = (version[0], version[1])
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    if dwarf is not None:
        return from_dwarf(dwarf)
    raise UnsupportedGo(
        f"go{key[0]}.{key[1]} runtime layouts are unknown and the binary has no DWARF",
        hint=f"known releases: {', '.join(f'go{a}.{b}' for a, b in known_releases())}",
    )


def from_dwarf(dwarf: _StructLayouts) -> Layout:
    """Read every offset from DWARF (``stack.lo`` = offset of g.stack + offset of stack.lo)."""
    cache: dict[str, dict[str, int]] = {}

    def offset(struct: str, path: str) -> int:
        total = 0
        for part in path.split("."):
            layout = cache.setdefault(struct, dwarf.struct_layout(struct))
            total += layout[part]
            struct = {"stack": "runtime.stack"}.get(part, struct)
        return total

    values = {f.name: offset(*_DWARF_NAMES[f.name]) for f in fields(Layout)}
    return Layout(**values)
