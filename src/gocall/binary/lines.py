"""Where to put a breakpoint: ``pkg.Func``, ``file.go:LINE`` or ``*0xADDR`` to code addresses.

* A function stops after its prologue, as Delve does: at the first instruction after
  the stack check and the frame setup, found in the function's pcsp table (the first
  PC where the SP delta reaches its value for the body), so the frame is complete and
  the unwinder and DWARF's CFA-relative locations hold; parameters are still in their
  ABI registers there. A frameless leaf function (no prologue) stops at its entry.
* A line stops at the first ``is_stmt`` address of that line in each function that has
  code for it (DWARF line table; inlined copies included), which is where the compiler
  says the statement begins.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SymbolNotFound
from .elffile import GoBinary
from .pclntab import Func

_PROLOGUE_MAX = 48  # bytes: stack check + PUSHQ BP + MOVQ SP, BP + SUBQ $n, SP fit well within


@dataclass(frozen=True)
class Site:
    """One code address a location resolved to."""

    pc: int
    function: str
    file: str
    line: int


def after_prologue(f: Func) -> int:
    """The first PC of ``f``'s body (see the module docstring)."""
    end = min(f.end, f.entry + _PROLOGUE_MAX)
    deltas = [(pc, f.spdelta(pc)) for pc in range(f.entry, end)]
    body = max(d for _, d in deltas)
    if body <= 0:
        return f.entry
    return next(pc for pc, d in deltas if d == body)


def function_sites(binary: GoBinary, f: Func) -> list[Site]:
    pc = after_prologue(f)
    file, line = f.file_line(pc)
    return [Site(pc, f.name, file, line)]


def line_sites(binary: GoBinary, file: str, line: int) -> list[Site]:
    """Every function's first statement address on ``file:line`` (``file`` matches a path's tail)."""
    dwarf = binary.dwarf
    if dwarf is None:
        raise SymbolNotFound(f"{file}:{line}: the binary has no DWARF line table",
                             hint="build without -ldflags=-w, or break on a function (pkg.Func) or *0xADDR")
    tab = binary.pclntab
    wanted = "/" + file.lstrip("/")
    packages: set[str] = set()
    for f in tab:
        path = f.file_line(f.entry)[0]
        if ("/" + path).endswith(wanted):
            from .dwarf import package_of

            pkg = package_of(f.name)
            if pkg is not None:
                packages.add(pkg)
    found: dict[str, Site] = {}
    lines_with_code: set[int] = set()
    matched_file = ""
    for pkg in sorted(packages):
        for cu in dwarf.package_units(pkg):
            program = dwarf.info.line_program_for_CU(cu)
            if program is None:
                continue
            files = program["file_entry"]
            base = 0 if program.header["version"] >= 5 else 1
            names = {}
            for i, fe in enumerate(files):
                name = fe.name.decode("utf-8", "replace")
                if fe.dir_index and program["include_directory"]:
                    dirs = program["include_directory"]
                    d = dirs[fe.dir_index - base] if 0 <= fe.dir_index - base < len(dirs) else b""
                    name = d.decode("utf-8", "replace") + "/" + name
                names[i + base] = name
            for entry in program.get_entries():
                s = entry.state
                if s is None or s.end_sequence or not s.is_stmt:
                    continue
                path = names.get(s.file, "")
                if not ("/" + path).endswith(wanted):
                    continue
                matched_file = path
                lines_with_code.add(s.line)
                if s.line != line:
                    continue
                address = s.address + binary.bias  # DWARF's addresses are as linked (a PIE's are moved)
                func = tab.func_for_pc(address)
                if func is None:
                    continue
                if func.name not in found or address < found[func.name].pc:
                    found[func.name] = Site(address, func.name, path, line)
    if not found:
        if not matched_file:
            raise SymbolNotFound(f"no file {file} in the binary",
                                 hint="give a path the binary's files end with, e.g. main.go:42")
        near = sorted(lines_with_code, key=lambda n: (abs(n - line), n))[:3]
        raise SymbolNotFound(f"no code at {file}:{line}",
                             hint="lines with code nearby: " + ", ".join(f"{file}:{n}" for n in sorted(near)))
    return sorted(found.values(), key=lambda s: s.pc)


def address_site(binary: GoBinary, pc: int) -> Site:
    f = binary.pclntab.func_for_pc(pc)
    if f is None:
        raise SymbolNotFound(f"*{pc:#x} is not in any function of the binary")
    file, line = f.file_line(pc)
    return Site(pc, f.name, file, line)
