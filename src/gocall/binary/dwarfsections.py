"""pyelftools' ``DWARFInfo`` over DWARF sections decompressed only when first read.

``ELFFile.get_dwarf_info`` copies and decompresses every debug section up front: 28 ms
for Go 1.19's ``cmd/go``, 65 ms for 1.27's, when a call needs ``.debug_info`` and
``.debug_abbrev`` only (line tables, frames and location lists serve breakpoints and
locals). The Go linker compresses each section with zlib behind an ``Elf64_Chdr``
(``SHF_COMPRESSED``, ``cmd/link/internal/ld/dwarf.go`` ``compressSyms``) whose ``ch_size``
gives the decompressed size without decompressing, so the descriptors can be exact and
their streams lazy. Go executables carry no relocations for these sections.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig

from gocall.binary.elf import Section

__all__ = ["lazy_dwarf_info"]

# DWARFInfo's keyword for each section name (pyelftools 0.3x).
_SECTIONS = {
    ".debug_info": "debug_info_sec", ".debug_aranges": "debug_aranges_sec", ".debug_abbrev": "debug_abbrev_sec",
    ".debug_frame": "debug_frame_sec", ".eh_frame": "eh_frame_sec", ".debug_str": "debug_str_sec",
    ".debug_loc": "debug_loc_sec", ".debug_ranges": "debug_ranges_sec", ".debug_line": "debug_line_sec",
    ".debug_pubtypes": "debug_pubtypes_sec", ".debug_pubnames": "debug_pubnames_sec",
    ".debug_addr": "debug_addr_sec", ".debug_str_offsets": "debug_str_offsets_sec",
    ".debug_line_str": "debug_line_str_sec", ".debug_loclists": "debug_loclists_sec",
    ".debug_rnglists": "debug_rnglists_sec", ".debug_sup": "debug_sup_sec",
    ".gnu_debugaltlink": "gnu_debugaltlink_sec", ".debug_types": "debug_types_sec",
}  # fmt: skip


class _LazyStream:
    """A section's bytes as the seekable stream pyelftools reads, made on first use.

    The first attribute asked for builds the ``BytesIO`` and binds its methods onto
    this object, so later reads cost what a ``BytesIO``'s do.
    """

    def __init__(self, section: Section) -> None:
        self._section = section

    def __getattr__(self, name: str) -> Any:
        stream = io.BytesIO(self._section.data())
        for method in ("read", "seek", "tell", "getvalue", "getbuffer", "write"):
            setattr(self, method, getattr(stream, method))
        return getattr(stream, name)


def lazy_dwarf_info(sections: Mapping[str, Section]) -> DWARFInfo:
    """A DWARFInfo whose sections are read and decompressed on first access."""
    descriptors: dict[str, DebugSectionDescriptor | None] = dict.fromkeys(_SECTIONS.values())
    for name, keyword in _SECTIONS.items():
        section = sections.get(name)
        if section is not None:
            stream: Any = _LazyStream(section)
            descriptors[keyword] = DebugSectionDescriptor(stream, name, int(section["sh_offset"]),
                                                          section.data_size, int(section["sh_addr"]))
    config = DwarfConfig(little_endian=True, default_address_size=8, machine_arch="x64")
    return DWARFInfo(config=config, **descriptors)
