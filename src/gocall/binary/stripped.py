"""The runtime variables gocall needs, found in a binary without a symbol table (``-s``).

``-ldflags=-s`` drops ``.symtab`` but keeps ``.gopclntab`` (facts sheet 3.8), so functions
are still known by name; package variables are not. Two of them are needed to call
into a process, and both can be recovered from what remains:

* ``runtime.firstmoduledata``: its first word, ``pcHeader``, is the address of
  ``.gopclntab`` (facts sheet 3.8). It lives in ``.noptrdata`` up to Go 1.25 and is the
  whole of ``.go.module`` from 1.26; the first 8-aligned word there equal to that address
  is it (the linker writes no other pointer to the header in those sections).
* ``runtime.waitReasonStrings`` (``[N]string``, for goroutine listings): entry 1 is
  ``"GC assist marking"`` in every release from 1.19 (runtime2.go), so the array starts 16
  bytes before the only string header in ``.data`` that points at those bytes.
* ``runtime.allgs`` (``[]*g``, the goroutine list): ``runtime.allgadd`` appends to it, so
  its code addresses the slice header's three words ``allgs``, ``allgs+8``, ``allgs+16``
  RIP-relatively. The lowest address among its RIP-relative operands that is accompanied
  by the next two words is the header. Instructions are matched by their encoding
  (REX.W ``MOV``/``LEA``/store with a ``[RIP+disp32]`` ModRM, Intel SDM vol. 2 §2.2.1.6),
  which is how the Go assembler emits every global access on amd64.
* ``runtime.testSigtrap`` (the hook guard/net.py sets): ``runtime.sighandler`` starts with
  ``if sig == _SIGTRAP && testSigtrap != nil``, compiled in every release 1.19-1.27 as
  ``CMPL AX, $5; JNE; MOVQ runtime.testSigtrap(SB), DX``: the first RIP-relative load after a
  compare with 5 in its code is the variable.

tests/binary/test_stripped.py checks both against the symbol table of the same program
for every release of the matrix.
"""

from __future__ import annotations

import re
import struct
from typing import Protocol

from gocall.binary.pclntab import Pclntab

__all__ = ["find_allgs", "find_firstmoduledata", "find_test_sigtrap", "find_wait_reason_strings"]

_MODULEDATA_SECTIONS = (".go.module", ".noptrdata", ".data")
# REX.W (+R) prefixes and the opcodes whose ModRM operand may be [RIP+disp32].
_REX_W = frozenset({0x48, 0x4C})
_OPCODES = frozenset({0x89, 0x8B, 0x8D})  # MOV r/m,r; MOV r,r/m; LEA


# CMP r32, imm8 5 (83 /7 ib, a register operand), then JNE rel8 or rel32.
_CMP_SIGTRAP = re.compile(rb"\x83[\xf8-\xff]\x05(?:\x75.|\x0f\x85....)", re.DOTALL)


class _Sections(Protocol):
    """Section contents as in the file (pointers as linked) at runtime addresses: the
    pointers searched for are taken back to linked values with ``bias`` (binary/pie.py)."""

    bias: int

    def section_data(self, name: str) -> bytes | None: ...

    def section_address(self, name: str) -> int | None: ...


def find_firstmoduledata(binary: _Sections, pclntab_address: int) -> int | None:
    """Address of ``runtime.firstmoduledata``: the word that holds ``pclntab_address``."""
    needle = struct.pack("<Q", pclntab_address - binary.bias)
    for name in _MODULEDATA_SECTIONS:
        data, base = binary.section_data(name), binary.section_address(name)
        if data is None or base is None:
            continue
        pos = data.find(needle)
        while pos >= 0 and pos % 8:
            pos = data.find(needle, pos + 1)
        if pos >= 0:
            return base + pos
    return None


def find_wait_reason_strings(binary: _Sections) -> int | None:
    """Address of ``runtime.waitReasonStrings``: 16 bytes before the string header of its
    entry 1, ``"GC assist marking"`` (the array holds pointers, so it is in ``.data``)."""
    rodata, rodata_base = binary.section_data(".rodata"), binary.section_address(".rodata")
    data, data_base = binary.section_data(".data"), binary.section_address(".data")
    if rodata is None or rodata_base is None or data is None or data_base is None:
        return None
    text = b"GC assist marking"
    at = rodata.find(text)
    while at >= 0:
        header = struct.pack("<QQ", rodata_base - binary.bias + at, len(text))
        pos = data.find(header)
        while pos >= 0 and pos % 8:
            pos = data.find(header, pos + 1)
        if pos >= 16:
            return data_base + pos - 16
        at = rodata.find(text, at + 1)
    return None


def rip_relative_targets(code: bytes, address: int) -> list[int]:
    """Addresses of every ``[RIP+disp32]`` operand of REX.W MOV/LEA in ``code`` (at ``address``)."""
    targets = []
    for i in range(len(code) - 6):
        if code[i] in _REX_W and code[i + 1] in _OPCODES and code[i + 2] & 0xC7 == 0x05:
            (disp,) = struct.unpack_from("<i", code, i + 3)
            targets.append(address + i + 7 + disp)
    return targets


class _Code(Protocol):
    def read(self, address: int, size: int) -> bytes: ...


def find_allgs(image: _Code, pclntab: Pclntab) -> int | None:
    """Address of the ``runtime.allgs`` slice header, from the code of ``runtime.allgadd``."""
    f = pclntab.func_by_name("runtime.allgadd")
    if f is None:
        return None
    targets = set(rip_relative_targets(image.read(f.entry, f.end - f.entry), f.entry))
    headers = sorted(t for t in targets if t % 8 == 0 and t + 8 in targets and t + 16 in targets)
    return headers[0] if headers else None


def find_test_sigtrap(image: _Code, pclntab: Pclntab) -> int | None:
    """Address of ``runtime.testSigtrap``, from the code of ``runtime.sighandler``."""
    f = pclntab.func_by_name("runtime.sighandler")
    if f is None:
        return None
    code = image.read(f.entry, f.end - f.entry)
    for cmp in _CMP_SIGTRAP.finditer(code):
        after = code[cmp.end() : cmp.end() + 7]
        targets = rip_relative_targets(after, f.entry + cmp.end())
        if targets and after[1] == 0x8B:  # a load (MOV r, [RIP+disp32]) right after the branch
            return targets[0]
    return None
