"""How many bytes each kind of runtime metadata takes in a Go binary (for ``gocall info``).

* ``.gopclntab`` splits at the offsets its ``pcHeader`` gives (pclntab.py): function names,
  compilation-unit file table, file names, pc-value tables, functab + ``_func`` records.
* The pc-value tables are split by kind (pcsp, pcfile, pcln, each PCDATA index). The linker
  writes each table once (identical tables are shared) and back to back
  (``cmd/link/internal/ld/pcln.go``, ``writePCToFunc``… ``generatePCs``), so a table's
  size is the distance to the next table's offset; a shared table counts for the first
  kind that names it, in the order above.
* FUNCDATA blobs (stack maps, stack objects, inline trees, arg info…) are sized the same
  way from their offsets relative to ``moduledata.gofunc``; the last blob's size is unknown
  and not counted.
* DWARF sections: size in the file and, for ``SHF_COMPRESSED`` ones, the uncompressed size
  from their ``Elf64_Chdr`` (``ch_size``), without decompressing.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field

from gocall.binary.elffile import GoBinary
from gocall.binary.pclntab import Func

__all__ = ["MetadataSizes", "metadata_sizes"]

PCDATA_NAMES = ("UnsafePoint", "StackMapIndex", "InlTreeIndex", "ArgLiveIndex", "PanicBounds")
FUNCDATA_NAMES = ("ArgsPointerMaps", "LocalsPointerMaps", "StackObjects", "InlTree", "OpenCodedDeferInfo",
                  "ArgInfo", "ArgLiveInfo", "WrapInfo")
_SHF_COMPRESSED = 0x800
_ELF64_CHDR = struct.Struct("<IIQQ")  # ch_type, ch_reserved, ch_size, ch_addralign


@dataclass
class MetadataSizes:
    """Bytes per kind; ``pclntab`` parts sum to the section, the rest are breakdowns."""

    file: int
    pclntab: dict[str, int] = field(default_factory=dict)
    pctab: dict[str, int] = field(default_factory=dict)  # pc-value tables by kind
    funcdata: dict[str, int] = field(default_factory=dict)  # FUNCDATA blobs by kind
    dwarf: dict[str, tuple[int, int]] = field(default_factory=dict)  # section -> (in file, uncompressed)

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "pclntab": self.pclntab, "pctab": self.pctab, "funcdata": self.funcdata,
                "dwarf": {k: {"file": f, "uncompressed": u} for k, (f, u) in self.dwarf.items()}}


def _gaps(owners: dict[int, str], end: int | None) -> Counter[str]:
    """Size of each region starting at an offset in ``owners`` (up to the next one), by owner."""
    sizes: Counter[str] = Counter()
    offsets = sorted(owners)
    for here, nxt in zip(offsets, [*offsets[1:], end]):
        if nxt is not None:
            sizes[owners[here]] += nxt - here
    return sizes


def _table_kinds(f: Func) -> list[tuple[str, int]]:
    tables = [("pcsp", f.pcsp), ("pcfile", f.pcfile), ("pcln", f.pcln)]
    tables += [(f"PCDATA_{PCDATA_NAMES[i] if i < len(PCDATA_NAMES) else i}", f.pcdata_offset(i))
               for i in range(f.npcdata)]
    return tables


def metadata_sizes(binary: GoBinary) -> MetadataSizes:
    """Measure ``binary``'s runtime metadata (reads every ``_func``)."""
    sizes = MetadataSizes(file=os.path.getsize(binary.path))
    tab = binary.pclntab
    h = tab.header
    bounds = [("pcHeader", 0), ("funcnametab", h.funcnameOffset), ("cutab", h.cuOffset),
              ("filetab", h.filetabOffset), ("pctab", h.pctabOffset), ("functab+_func", h.pclnOffset)]  # from 1.26 the last part also holds findfunctab and gofunc
    ends = [b[1] for b in bounds[1:]] + [len(tab.data)]
    sizes.pclntab = {name: end - start for (name, start), end in zip(bounds, ends)}
    pc_owners: dict[int, str] = {}
    fd_owners: dict[int, str] = {}
    for f in tab:
        for kind, off in _table_kinds(f):
            if off:
                pc_owners.setdefault(off, kind)
        for i in range(f.nfuncdata):
            blob = f.funcdata(i)
            if blob is not None:
                fd_owners.setdefault(blob, f"FUNCDATA_{FUNCDATA_NAMES[i] if i < len(FUNCDATA_NAMES) else i}")
    sizes.pctab = dict(_gaps(pc_owners, h.pclnOffset - h.pctabOffset).most_common())
    sizes.funcdata = dict(_gaps(fd_owners, None).most_common())
    for section in binary.sections:
        if not section.name.startswith((".debug_", ".zdebug_")):
            continue
        in_file = int(section["sh_size"])
        raw = in_file
        if section["sh_flags"] & _SHF_COMPRESSED:
            off = section["sh_offset"]
            raw = _ELF64_CHDR.unpack(binary.read_file(off, _ELF64_CHDR.size))[2]
        sizes.dwarf[section.name] = (in_file, raw)
    return sizes
