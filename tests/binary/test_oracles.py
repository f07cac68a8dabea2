"""pclntab against the Go toolchain's own tools, on the small fixture for every release and
on ``cmd/go`` built from the toolchain's own source (10,800 functions in 1.19, 16,200 in
1.27) for the oldest and newest releases, so that the oracle is not ours:

* ``go tool nm -size``: every function, its entry and its size;
* ``go tool addr2line``: function name, file and line of thousands of PCs;
* ``go tool objdump``: function, file and line of every instruction of whole packages.

cmd/go takes a minute per release to build cold; it is cached like every fixture.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.toolchain import GoToolchain

_OBJDUMP_TEXT = re.compile(r"TEXT (.+)\(SB\)(?: \S+)?$")  # generic names contain spaces
_OBJDUMP_INSN = re.compile(r"\s+(\S+):(-?\d+)\s+0x([0-9a-f]+)\s")


def _cmd_go(toolchain: GoToolchain) -> Path:
    if not _is_extreme(toolchain):
        pytest.skip("cmd/go is cross-checked on the oldest and newest releases of the matrix only")
    src = toolchain.goroot / "src" / "cmd" / "go"
    if not src.is_dir():
        pytest.skip(f"{toolchain.version} ships no source for cmd/go (Debian: apt-get install golang-1.19-src)")
    return toolchain.build_cached(src)


def _is_extreme(toolchain: GoToolchain) -> bool:
    from gocall.toolchain import known_toolchains

    releases = sorted(t.release for t in known_toolchains())
    return toolchain.release in (releases[0], releases[-1])


@pytest.fixture(scope="module", params=["gobin", "cmd/go"])
def subject(request: pytest.FixtureRequest, toolchain: GoToolchain, gobin: Path) -> tuple[Path, str, int]:
    """(binary, objdump -s regexp, at least this many functions) of the program to cross-check."""
    if request.param == "gobin":
        return gobin, r"^(main|strings|encoding/json)\.", 1000
    return _cmd_go(toolchain), r"^cmd/go/internal/(work|load)\.", 10000


def _elide_brackets(name: str) -> str:
    """Go 1.19's pclntab writes type arguments and array lengths as ``[...]``:
    ``sync/atomic.(*Pointer[...]).Load``, ``type..eq.[...]internal/cpu.option``."""
    out, depth = [], 0
    for c in name:
        if c == "[":
            if depth == 0:
                out.append("[...]")
            depth += 1
        elif c == "]":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def _symbol_spelling(name: str) -> str:
    """ELF symbol names spell some pclntab names differently: an .abi0 suffix on assembly,
    a plain dot for a middle dot (1.23), [...] for array lengths in 1.19's type..eq names."""
    return name.replace("\u00b7", ".")


def test_every_function_against_nm(toolchain: GoToolchain, subject: tuple[Path, str, int]) -> None:
    path, _, at_least = subject
    nm: dict[int, dict[str, int]] = {}
    for line in toolchain.run("tool", "nm", "-size", path).splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in "Tt":
            names = nm.setdefault(int(parts[0], 16), {})
            names[parts[3]] = names[_elide_brackets(parts[3])] = int(parts[1])
    with GoBinary.open(path) as binary:
        funcs = list(binary.pclntab)
        assert len(funcs) > at_least
        for f in funcs:
            names = nm.get(f.entry, {})
            spelt = next((n for n in (f.name, f.name + ".abi0", _symbol_spelling(f.name),
                                      _symbol_spelling(f.name) + ".abi0") if n in names), None)
            assert spelt is not None, (f.name, hex(f.entry), names)
            assert names[spelt] <= f.end - f.entry
        # And the other way: every sized text symbol starts a pclntab function.
        for addr, names in nm.items():
            if any(size for size in names.values()):
                f = binary.pclntab.func_for_pc(addr)
                assert f is not None and f.entry == addr, names


def test_pcs_against_addr2line(toolchain: GoToolchain, subject: tuple[Path, str, int]) -> None:
    path, _, _ = subject
    with GoBinary.open(path) as binary:
        funcs = list(binary.pclntab)
        rng = random.Random(5)
        pcs = [rng.randrange(f.entry, f.end) for f in rng.sample(funcs, min(3000, len(funcs)))]
        out = toolchain.run("tool", "addr2line", path, stdin="".join(f"{pc:#x}\n" for pc in pcs)).splitlines()
        assert len(out) == 2 * len(pcs)
        for pc, name, file_line in zip(pcs, out[0::2], out[1::2]):
            f = binary.pclntab.func_for_pc(pc)
            assert f is not None
            file, _, line = file_line.rpartition(":")
            if (file, line) == ("", "-1"):  # debug/gosym's "unknown"
                file, line = "?", "0"
            if re.fullmatch(r"go:[a-z]+", f.name):
                # Linker-made markers (go:textfipsstart): no file; debug/gosym reads their empty
                # line table differently from the runtime, whose answer ("?", 0) we give.
                assert (f.name, f.file_line(pc)[0]) == (name, "?")
                continue
            assert (f.name, f.file_line(pc)) == (name, (file, int(line))), hex(pc)


def test_every_instruction_against_objdump(toolchain: GoToolchain, subject: tuple[Path, str, int]) -> None:
    """objdump prints each instruction's position from pcfile/pcln: for inlined code that is
    the inlined callee's file and line, which file_line must give too."""
    path, pattern, _ = subject
    dump = toolchain.run("tool", "objdump", "-s", pattern, path)
    checked = 0
    with GoBinary.open(path) as binary:
        name, func = "", None
        for line in dump.splitlines():
            if m := _OBJDUMP_TEXT.match(line):
                name, func = m[1], None  # by address, below: a name can be used by two functions
                continue
            m = _OBJDUMP_INSN.match(line)
            if m is None:
                continue
            pc = int(m[3], 16)
            if func is None:
                func = binary.pclntab.func_for_pc(pc)
                assert func is not None and func.entry == pc and name in (func.name, _symbol_spelling(func.name))
            assert pc in func, (func.name, hex(pc))
            file, got = func.file_line(pc)
            assert (os.path.basename(file), got) == (m[1], int(m[2])), (func.name, hex(pc))
            checked += 1
    assert checked > 1000
