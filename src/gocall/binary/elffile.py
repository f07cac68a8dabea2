"""A Go executable on disk: its ELF sections, symbols, build info, pclntab and DWARF.

What Go puts where in the ELF file (facts sheet 3.8-3.10) is decided by
``cmd/link/internal/ld/elf.go`` and ``data.go``; the symbol table format is the ELF64
``Elf64_Sym`` (``/usr/include/elf.h``).

Everything is lazy (:func:`functools.cached_property`): opening a binary reads only the ELF
and section headers, so asking for one function in a 25 MB ``cmd/go`` costs the pclntab
parse alone. The file stays mapped until :meth:`GoBinary.close`.

Every address a GoBinary hands out (symbols, function entries, package variables, sections)
and every one it accepts (a PC, :meth:`GoBinary.read`) is where the process has it: for a
position-independent executable the load bias (:mod:`gocall.binary.pie`) is added or
taken off here, in :meth:`GoBinary.read`, :attr:`GoBinary.text_start`,
:meth:`GoBinary.symbol` and the DWARF index, and nowhere above. A file opened alone
(``gocall info FILE``) has bias 0: its addresses are as linked.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from functools import cached_property
from types import TracebackType

from typing import TYPE_CHECKING

from gocall.binary.buildinfo import BuildInfo, parse_buildinfo
from gocall.binary.cache import IndexCache, build_id
from gocall.binary.dwarf import Dwarf
from gocall.binary.elf import ET_DYN, SHT_NOBITS, ElfHeader, Section, read_elf
from gocall.binary import kept
from gocall.binary.gotypes import DECLARED, Signature
from gocall.binary.pclntab import Pclntab
from gocall.binary.pie import Relocations, load_bias
from gocall.binary.rtype import find_rtype
from gocall.binary.stripped import find_allgs, find_firstmoduledata, find_test_sigtrap
from gocall.errors import BinaryError, NotGoBinary, UnsupportedGo

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

__all__ = ["GoBinary"]

_ELF_MAGIC = b"\x7fELF"
# Elf64_Sym: st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64.
_ELF64_SYM = struct.Struct("<IBBHQQ")
_STT_SECTION, _STT_FILE = 3, 4
_SHT_RELA, _SHF_ALLOC = 4, 0x2
# Internally linked PIEs of Go 1.18-1.25 name it .data.rel.ro.gopclntab (it needed a relocation).
_PCLNTAB_SECTIONS = (".gopclntab", ".data.rel.ro.gopclntab")
# runtime.moduledata.text: the same offset in every version 1.19-1.27 (facts sheet 3.8).
_MODULEDATA_TEXT = 0xB0
# Runtime variables symbol() finds in stripped binaries too.
_RECOVERABLE = frozenset({"runtime.firstmoduledata", "runtime.allgs", "runtime.testSigtrap"})
_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


class GoBinary:
    """A Go ELF executable for linux/amd64, opened read-only and mapped into memory.

    Use as a context manager, or call :meth:`close`::

        with GoBinary.open("hello") as binary:
            binary.pclntab.func_by_name("main.main").entry
    """

    def __init__(self, path: str | os.PathLike[str], bias: int = 0) -> None:
        self.path = os.fspath(path)
        self.bias = bias  # runtime address - linked address (non-zero for a loaded PIE only)
        self._looked_up: dict[str, tuple[int, int] | None] = {}  # _lookup's answers (each a scan of .strtab)
        self._file = open(self.path, "rb")
        try:
            self._map = self._map_file()
            self.header, self._section_list = read_elf(self._map, self._file.fileno(), self.path)
            self._check_go()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], bias: int = 0) -> GoBinary:
        """Open the Go executable at ``path``, its addresses moved by ``bias`` (0: as linked);
        raises :class:`NotGoBinary` for anything else."""
        return cls(path, bias)

    @classmethod
    def of_process(cls, pid: int) -> GoBinary:
        """The executable of process ``pid``, its addresses where that process has them (read
        already when a gocall server kept it: binary/kept.py)."""
        if (found := kept.find(pid)) is not None:
            return found
        binary = cls(f"/proc/{pid}/exe")
        if binary.header.e_type == ET_DYN:
            try:
                binary.bias = load_bias(pid, binary.header.e_entry)
            except BaseException:
                binary.close()
                raise
        return binary

    def _map_file(self) -> mmap.mmap:
        if os.fstat(self._file.fileno()).st_size < len(_ELF_MAGIC) or self._file.read(4) != _ELF_MAGIC:
            raise NotGoBinary(f"{self.path} is not an ELF file", hint="gocall reads Linux executables")
        return mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    @cached_property
    def elf(self) -> ELFFile:
        """pyelftools' view of the file, for what :mod:`gocall.binary.elf` does not read
        (loaded on first use: importing pyelftools is a third of a cold start)."""
        from elftools.elf.elffile import ELFFile

        return ELFFile(self._map)  # type: ignore[arg-type]  # mmap is a binary stream

    def _check_go(self) -> None:
        if self._pclntab_section is None and self._lookup("runtime.pclntab") is None:
            raise NotGoBinary(f"{self.path} is an ELF file but not a Go executable (no .gopclntab)",
                              hint="point gocall at a binary built by the go command")

    def close(self) -> None:
        """Unmap and close the file. Objects already returned (Func, GoType…) stay valid."""
        dwarf = self.__dict__.get("dwarf")
        if dwarf is not None:
            dwarf.save()  # what DWARF answered, for the next start (binary/cache.py)
        if getattr(self, "_map", None) is not None:
            self._map.close()
        self._file.close()

    def __enter__(self) -> GoBinary:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GoBinary({self.path!r})"

    # --- sections and symbols ---

    @cached_property
    def _sections(self) -> dict[str, Section]:
        return {s.name: s for s in self._section_list}

    @property
    def sections(self) -> list[Section]:
        """Every section, in section-header order."""
        return list(self._section_list)

    def section(self, name: str) -> Section | None:
        """The pyelftools section called ``name``, or None."""
        return self._sections.get(name)

    def section_address(self, name: str) -> int | None:
        """Runtime address of section ``name``, or None if absent."""
        section = self._sections.get(name)
        return None if section is None else int(section["sh_addr"]) + self.bias

    def section_data(self, name: str) -> bytes | None:
        """Contents of section ``name`` as in the file (decompressed if ``SHF_COMPRESSED``;
        pointers as linked: see :meth:`read`), or None if absent."""
        section = self._sections.get(name)
        return None if section is None else section.data()

    @cached_property
    def _pclntab_section(self) -> Section | None:
        return next((self._sections[n] for n in _PCLNTAB_SECTIONS if n in self._sections), None)

    @cached_property
    def _symtab(self) -> dict[str, tuple[int, int]]:
        """Name → (value, size) from ``.symtab``, decoded with struct rather than pyelftools.

        pyelftools builds an object per symbol (~24 µs each, 0.5 s for cmd/go); this is ~12×
        faster. First definition wins (Go writes each name once; local ones come first).
        """
        symtab = self._sections.get(".symtab")
        if symtab is None:  # stripped (-s)
            return {}
        strtab = self._section_list[symtab["sh_link"]]
        raw = self._map[symtab["sh_offset"] : symtab["sh_offset"] + symtab["sh_size"]]
        names = self._map[strtab["sh_offset"] : strtab["sh_offset"] + strtab["sh_size"]]
        find = names.find
        table: dict[str, tuple[int, int]] = {}
        for st_name, st_info, _, _, st_value, st_size in _ELF64_SYM.iter_unpack(raw):
            if st_name == 0 or (st_info & 0xF) in (_STT_SECTION, _STT_FILE):
                continue
            name = names[st_name : find(b"\0", st_name)].decode("utf-8", "replace")
            table.setdefault(name, (st_value, st_size))
        return table

    def _lookup(self, name: str) -> tuple[int, int] | None:
        """(value, size) of the first ``.symtab`` symbol called ``name``, or None.

        Without building :attr:`_symtab` (20 ms for ``cmd/go``; a call needs a few
        symbols): the name is searched in ``.strtab``, then its offset as the ``st_name``
        of an ``Elf64_Sym`` (24-byte aligned) in ``.symtab``. Go's linker appends each
        symbol's name to ``.strtab`` as it writes the symbol (``cmd/link/internal/ld/symtab.go``
        ``putelfsym``), so the first occurrence of the name belongs to the first symbol.
        """
        if "_symtab" in self.__dict__:
            return self._symtab.get(name)
        if name not in self._looked_up:
            self._looked_up[name] = self._search(name)
        return self._looked_up[name]

    def _search(self, name: str) -> tuple[int, int] | None:
        symtab = self._sections.get(".symtab")
        if symtab is None:
            return None
        strtab = self._section_list[symtab["sh_link"]]
        mem = self._map
        sym_start, sym_end = symtab["sh_offset"], symtab["sh_offset"] + symtab["sh_size"]
        str_start, str_end = strtab["sh_offset"], strtab["sh_offset"] + strtab["sh_size"]
        # Whole strings first; then inside longer ones, in case an external linker shared
        # the name with the tail of another ("main" in "runtime.main").
        for needle, skip in ((b"\0" + name.encode() + b"\0", 1), (name.encode() + b"\0", 0)):
            pos = mem.find(needle, str_start, str_end)
            while pos >= 0:
                key = (pos + skip - str_start).to_bytes(4, "little")
                hit = mem.find(key, sym_start, sym_end)
                while hit >= 0:
                    if (hit - sym_start) % _ELF64_SYM.size == 0:
                        _, st_info, _, _, st_value, st_size = _ELF64_SYM.unpack_from(mem, hit)
                        if st_info & 0xF not in (_STT_SECTION, _STT_FILE):
                            return st_value, st_size
                    hit = mem.find(key, hit + 1, sym_end)
                pos = mem.find(needle, pos + 1, str_end)
        return None

    @property
    def has_symtab(self) -> bool:
        """Whether the binary has a symbol table (it was not linked with ``-s``)."""
        return ".symtab" in self._sections

    @cached_property
    def symbols(self) -> dict[str, int]:
        """Every named symbol in ``.symtab`` and its address; empty for stripped binaries."""
        return {name: value + self.bias for name, (value, _) in self._symtab.items()}

    def symbol(self, name: str) -> int | None:
        """Address of symbol ``name``; also finds assembly functions under their
        ``.abi0`` symbol name (``runtime.asyncPreempt`` → ``runtime.asyncPreempt.abi0``),
        the spelling pclntab and DWARF use.

        Without a symbol table (``-ldflags=-s``), functions come from pclntab and the
        runtime variables a call needs (``runtime.firstmoduledata``, ``runtime.allgs``)
        are recovered from data and code (:mod:`gocall.binary.stripped`).
        """
        entry = self._lookup(name) or self._lookup(name + ".abi0")
        if entry is not None:
            return entry[0] + self.bias
        if ".symtab" in self._sections:
            return None
        return self._stripped_symbols.get(name) if name in _RECOVERABLE else self._function_entry(name)

    def _function_entry(self, name: str) -> int | None:
        func = self.pclntab.func_by_name(name)
        return None if func is None else func.entry

    @cached_property
    def _stripped_symbols(self) -> dict[str, int | None]:
        pclntab = self._pclntab_section
        md = None if pclntab is None else find_firstmoduledata(self, int(pclntab["sh_addr"]) + self.bias)
        return {"runtime.firstmoduledata": md, "runtime.allgs": find_allgs(self, self.pclntab),
                "runtime.testSigtrap": find_test_sigtrap(self, self.pclntab)}

    def symbol_size(self, name: str) -> int | None:
        """``st_size`` of symbol ``name`` (same ``.abi0`` rule as :meth:`symbol`)."""
        entry = self._lookup(name) or self._lookup(name + ".abi0")
        return None if entry is None else entry[1]

    def read_file(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` in the file itself (headers that are not loaded)."""
        return self._map[offset : offset + size]

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes of the image at runtime ``address`` as the program starts with them
        (zeros in ``.bss``; a PIE's pointers relocated, :mod:`gocall.binary.pie`)."""
        linked = address - self.bias
        data = self._read_linked(linked, size)
        return self._relocations.apply(data, linked, self.bias) if self.bias else data

    def _read_linked(self, address: int, size: int) -> bytes:
        """The file's bytes at linked ``address`` (pointers as linked)."""
        for section in self._sections.values():
            start = section["sh_addr"]
            if start and start <= address and address + size <= start + section["sh_size"]:
                if section["sh_type"] == SHT_NOBITS:
                    return bytes(size)
                off = section["sh_offset"] + address - start
                return self._map[off : off + size]
        raise BinaryError(f"address {address + self.bias:#x}+{size} is not inside one section of {self.path}")

    @cached_property
    def _relocations(self) -> Relocations:
        return Relocations(section.data() for section in self._section_list
                           if section["sh_type"] == _SHT_RELA and section["sh_flags"] & _SHF_ALLOC)

    # --- build info and version ---

    @cached_property
    def buildinfo(self) -> BuildInfo | None:
        """Parsed ``.go.buildinfo``, or None when the section is missing."""
        data = self.section_data(".go.buildinfo")
        return None if data is None else parse_buildinfo(data)

    @cached_property
    def go_version(self) -> str:
        """The Go release that built the binary, as ``go version`` prints it: ``"go1.27.3"``.

        From build info, else the ``runtime.buildVersion`` string variable.
        """
        if self.buildinfo is not None and self.buildinfo.go_version:
            return self.buildinfo.go_version
        header = self.symbol("runtime.buildVersion")
        if header is not None:
            ptr, length = struct.unpack("<QQ", self.read(header, 16))
            return self.read(ptr, length).decode("utf-8", "replace")
        raise UnsupportedGo(f"cannot tell which Go release built {self.path}",
                            hint="no .go.buildinfo section and no runtime.buildVersion symbol")

    @cached_property
    def go_version_tuple(self) -> tuple[int, int, int]:
        """``go_version`` as numbers: ``(1, 27, 3)``; release candidates count as ``.0``."""
        match = _VERSION.match(self.go_version)
        if match is None:
            raise UnsupportedGo(f"{self.path} was built by {self.go_version!r}, not a Go release",
                                hint="build the target with a released Go toolchain")
        major, minor, patch = match.groups()
        return int(major), int(minor), int(patch or 0)

    # --- code ---

    @property
    def text_start(self) -> int:
        """Address pclntab entry offsets are relative to (``moduledata.text``).

        ``runtime.text`` if there is a symbol table; else ``pcHeader.textStart`` (0 from Go
        1.26); else ``firstmoduledata.text`` from ``.go.module`` (1.26+); else the ``.text``
        section, which is wrong for externally linked binaries whose ``.text`` starts with C code.
        All as linked (the file's values), plus the bias: the runtime's ``moduledata.text``.
        """
        return self._linked_text_start + self.bias

    @cached_property
    def _linked_text_start(self) -> int:
        entry = self._lookup("runtime.text")  # not symbol(): its stripped fallback needs pclntab
        if entry is not None:
            return entry[0]
        if self._pclntab_header_text:
            return self._pclntab_header_text
        module = self._sections.get(".go.module")
        if module is not None and module["sh_size"] >= _MODULEDATA_TEXT + 8:
            address = module["sh_addr"] + _MODULEDATA_TEXT
            word = self._read_linked(address, 8)
            if self.header.e_type == ET_DYN:  # in a PIE the word is relocated; the file need not hold it
                word = self._relocations.apply(word, address, 0)
            (text,) = struct.unpack("<Q", word)
            if text:
                return int(text)
        section = self._sections.get(".text")
        if section is None:
            raise NotGoBinary(f"{self.path} has no .text section")
        return int(section["sh_addr"])

    @cached_property
    def _pclntab_data(self) -> bytes:
        section = self._pclntab_section
        if section is not None:
            return section.data()
        start, end = self._lookup("runtime.pclntab"), self._lookup("runtime.epclntab")
        if start is None or end is None:
            raise NotGoBinary(f"{self.path} has no pclntab")
        return self._read_linked(start[0], end[0] - start[0])

    @cached_property
    def _pclntab_header_text(self) -> int:
        # pcHeader.textStart at 0x18; avoids building the Pclntab before its text_start is known.
        return int(struct.unpack_from("<Q", self._pclntab_data, 0x18)[0])

    @cached_property
    def pclntab(self) -> Pclntab:
        """The runtime's function table (names, entries, pc-value tables)."""
        dwarf = self.dwarf  # its on-disk cache keeps the names looked up, for the next start
        if dwarf is None:
            return Pclntab(self._pclntab_data, self.text_start)
        return Pclntab(self._pclntab_data, self.text_start, dwarf.pclntab_names, dwarf.learned)

    def declare(self, signature: Signature) -> None:
        """Use ``signature`` for the function it names, as if DWARF said so (for binaries
        built with ``-w``, which have none; see :mod:`gocall.expr.signature`)."""
        self._declared[signature.name] = signature._replace(origin=DECLARED)

    def function_signature(self, name: str) -> Signature | None:
        """The declared signature of function ``name``, else DWARF's, else None."""
        declared = self._declared.get(name)
        if declared is not None:
            return declared
        if self.dwarf is None:
            return None
        func = self.pclntab.func_by_name(name)
        return self.dwarf.function_signature(name, None if func is None else func.entry - self.bias)

    def runtime_type(self, name: str, kind: int, md_types: int) -> int | None:
        """Offset from ``moduledata.types`` of the type descriptor named ``name`` (of abi.Kind
        ``kind``), found in the file without DWARF (:mod:`gocall.binary.rtype`); ``md_types``
        is the offset of ``moduledata.types`` for this release (runtime/layouts.py)."""
        md = self.symbol("runtime.firstmoduledata")
        if md is None:
            return None
        # As linked: find_rtype reads names and offsets, which no relocation touches.
        (types,) = struct.unpack("<Q", self._read_linked(md - self.bias + md_types, 8))
        section = next((sec for sec in self._sections.values()
                        if sec["sh_addr"] <= types < sec["sh_addr"] + sec["sh_size"]), None)
        if section is None:
            return None
        return find_rtype(self._read_linked(types, section["sh_addr"] + section["sh_size"] - types), name, kind)

    @cached_property
    def _declared(self) -> dict[str, Signature]:
        return {}

    @cached_property
    def dwarf(self) -> Dwarf | None:
        """Lazy DWARF index, or None when the binary has no DWARF (built with ``-w`` or ``-s``)."""
        if ".debug_info" not in self._sections and ".zdebug_info" not in self._sections:
            return None
        notes: dict[str, bytes] = {name: self._sections[name].data() for name in (".note.go.buildid", ".note.gnu.build-id")
                 if name in self._sections}
        key = build_id(notes)
        return Dwarf(lambda: self.elf, self._sections, None if key is None else IndexCache(key), self.bias, self.path)
