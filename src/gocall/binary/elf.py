"""The ELF64 file header and section headers, read with :mod:`struct`.

Layouts from ``/usr/include/elf.h`` (``Elf64_Ehdr``, ``Elf64_Shdr``, ``Elf64_Chdr``).
pyelftools reads these too, but importing it costs ~30 ms of a cold start (its bundled
``construct`` imports ``pdb``) and parsing a section header through it ~50 µs; a cold
``gocall call`` needs no more of the ELF file than this module reads, and pyelftools is
loaded only when DWARF must be parsed (:mod:`gocall.binary.dwarf`).
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any, NamedTuple

from gocall.errors import BinaryError, NotGoBinary

__all__ = ["ET_DYN", "ElfHeader", "SHF_COMPRESSED", "SHT_NOBITS", "Section", "read_elf"]

# e_ident[EI_CLASS], e_ident[EI_DATA]; e_type, e_machine.
_ELFCLASS64, _ELFDATA2LSB = 2, 1
ET_DYN = 3
_EM_X86_64 = 62
SHT_NOBITS = 8
SHF_COMPRESSED = 0x800
_ELFCOMPRESS_ZLIB = 1
_SHN_XINDEX = 0xFFFF

# Elf64_Ehdr after e_ident[16]: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
# e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
# Elf64_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize.
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SHDR_FIELDS = ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size", "sh_link", "sh_info",
                "sh_addralign", "sh_entsize")
# Elf64_Chdr: ch_type, ch_reserved, ch_size, ch_addralign (before a compressed section's data).
_CHDR = struct.Struct("<IIQQ")


# A NamedTuple, not a dataclass: a frozen dataclass costs ~0.5 ms of every cold start to create
# (its methods are compiled from source at import), a NamedTuple ~0.1 ms.
class ElfHeader(NamedTuple):
    e_type: int
    e_machine: int
    e_entry: int


class Section:
    """One section: its header fields by name (``section["sh_addr"]``, as pyelftools spells
    them) and its contents, decompressed if ``SHF_COMPRESSED``.

    Contents are read with ``pread`` from ``fd``, not copied out of the mapping: a copy from
    the mapping leaves the file's pages resident too, twice the section in the peak RSS
    (``bench/load.py`` holds gocall to 2× the binary's size)."""

    def __init__(self, name: str, header: dict[str, int], image: Any, fd: int) -> None:
        self.name = name
        self.header = header
        self._image = image  # the mapped file, for headers
        self._fd = fd

    def __getitem__(self, field: str) -> int:
        return self.header[field]

    @property
    def compressed(self) -> bool:
        return bool(self.header["sh_flags"] & SHF_COMPRESSED)

    @property
    def data_size(self) -> int:
        """Size of the contents once decompressed (``ch_size``)."""
        if not self.compressed:
            return self.header["sh_size"]
        return int(_CHDR.unpack_from(self._image, self.header["sh_offset"])[2])

    def data(self) -> bytes:
        off, size = self.header["sh_offset"], self.header["sh_size"]
        if self.header["sh_type"] == SHT_NOBITS:
            return bytes(size)
        if not self.compressed:
            return os.pread(self._fd, size, off)
        ch_type, _, ch_size, _ = _CHDR.unpack(os.pread(self._fd, _CHDR.size, off))
        if ch_type != _ELFCOMPRESS_ZLIB:
            raise BinaryError(f"section {self.name} is compressed with ELF compression type {ch_type}",
                              hint="gocall reads zlib-compressed DWARF (what the Go linker writes)")
        # One output buffer of the final size (bufsize): joining inflated chunks would hold
        # the output twice.
        data = zlib.decompress(os.pread(self._fd, size - _CHDR.size, off + _CHDR.size), bufsize=ch_size)
        if len(data) != ch_size:
            raise BinaryError(f"section {self.name} decompresses to {len(data)} bytes, not {ch_size}")
        return data


def read_elf(image: Any, fd: int, path: str) -> tuple[ElfHeader, list[Section]]:
    """The file header and the sections, in header order, of the ELF64 little-endian file
    open as ``fd`` and mapped as ``image``."""
    if len(image) < 16 + _EHDR.size:
        raise NotGoBinary(f"{path} is not a valid ELF file (truncated header)")
    if image[4] != _ELFCLASS64 or image[5] != _ELFDATA2LSB:
        raise BinaryError(f"{path} is not a 64-bit little-endian ELF file",
                          hint="gocall supports linux/amd64 Go binaries only")
    (e_type, e_machine, _, e_entry, _, e_shoff, _, _, _, _, e_shentsize, e_shnum,
     e_shstrndx) = _EHDR.unpack_from(image, 16)
    if e_machine != _EM_X86_64:
        raise BinaryError(f"{path} is an ELF file for machine {e_machine}, not x86-64",
                          hint="gocall supports linux/amd64 Go binaries only")
    if e_shoff == 0:
        return ElfHeader(e_type, e_machine, e_entry), []
    first = dict(zip(_SHDR_FIELDS, _SHDR.unpack_from(image, e_shoff)))
    # elf(5): with 0xff00 sections or more, e_shnum is 0 and section 0's sh_size holds the count,
    # and e_shstrndx is SHN_XINDEX with the index in section 0's sh_link.
    count = e_shnum or first["sh_size"]
    strndx = first["sh_link"] if e_shstrndx == _SHN_XINDEX else e_shstrndx
    if e_shoff + count * e_shentsize > len(image):
        raise NotGoBinary(f"{path}: section headers past the end of the file")
    headers = [dict(zip(_SHDR_FIELDS, _SHDR.unpack_from(image, e_shoff + i * e_shentsize))) for i in range(count)]
    names = headers[strndx]
    start, end = names["sh_offset"], names["sh_offset"] + names["sh_size"]
    sections = []
    for header in headers:
        pos = start + header["sh_name"]
        name = bytes(image[pos : image.find(b"\0", pos, end)]).decode("utf-8", "replace")
        sections.append(Section(name, header, image, fd))
    return ElfHeader(e_type, e_machine, e_entry), sections
