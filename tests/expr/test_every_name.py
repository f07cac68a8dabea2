"""No name ends in a traceback (issue 13.5): every type, package variable and function a binary
names is looked up as an expression's name would be (expr/names.py: DWARF lookup, then
conversion to a GoType or a signature), and either resolves or raises a GocallError.

``cmd/go`` (built from the toolchain's own source, cached like every fixture; 10,800 functions
in 1.19) on the oldest and newest releases of the matrix, one name in 15 of each kind (every
one would take minutes: a function's signature is ~10 ms of DWARF reading); the small
``locals`` fixture, one name in 7 and the first 3,000 type DIEs, on the others.

A DWARF reading gocall does not know (pyelftools' ``DWARFError: refaddr 0 not in DIE range``
from a generic function's type parameter named like the local being looked up) used to escape
as a traceback.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.binary.dwarf import DW_AT_go_kind
from gocall.errors import GocallError
from gocall.expr.names import Names
from gocall.toolchain import GoToolchain, known_toolchains

_STRIDE = {"cmd/go": 15, "locals": 7}  # ~700 functions of cmd/go 1.19, ~350 of the fixture
_NOT_PACKAGE_VARS = ("type:", "type.", "go:", "go.", "$f64.", "$f32.", "gclocals", "runtime.")


def _subject(toolchain: GoToolchain, build_fixture: Callable[..., Path]) -> tuple[Path, int | None, int]:
    """(binary, how many type DIEs to read (None: all), one name in how many to look up)."""
    releases = sorted(t.release for t in known_toolchains())
    src = toolchain.goroot / "src" / "cmd" / "go"
    if toolchain.release in (releases[0], releases[-1]) and src.is_dir():
        return toolchain.build_cached(src), None, _STRIDE["cmd/go"]
    return build_fixture("locals"), 3000, _STRIDE["locals"]  # the whole type unit is ~5 s even here


def _names(binary: GoBinary, type_dies: int | None, stride: int) -> dict[str, list[str]]:
    """Named types (from DWARF's type unit: pyelftools walks it at ~16 us a DIE), package
    variables (ELF data symbols) and functions (pclntab), one in ``stride`` of each."""
    dwarf = binary.dwarf
    assert dwarf is not None
    unit = dwarf._type_unit
    assert unit is not None
    types = []
    for die in itertools.islice(unit.get_top_DIE().iter_children(), type_dies):
        name = die.attributes.get("DW_AT_name")
        if name is not None and die.attributes.get(DW_AT_go_kind) is not None:
            types.append(name.value.decode("utf-8", "replace"))
    variables = [symbol for symbol in binary.symbols if "." in symbol and not symbol.startswith(_NOT_PACKAGE_VARS)
                 and binary.pclntab.func_by_name(symbol) is None]
    functions = [f.name for f in binary.pclntab]
    return {"type": sorted(types)[::stride], "variable": sorted(variables)[::stride],
            "function": sorted(functions)[::stride]}


@pytest.mark.slow
def test_every_name_resolves_or_says_why(go_toolchain: GoToolchain, build_fixture: Callable[..., Path]) -> None:
    path, type_dies, stride = _subject(go_toolchain, build_fixture)
    binary = GoBinary(path)
    names = Names(binary)
    lookups: dict[str, Callable[[str], object]] = {"type": names.type, "variable": names.variable,
                                                   "function": names.function}
    tried: collections.Counter[str] = collections.Counter()
    resolved: collections.Counter[str] = collections.Counter()
    escaped = []
    for kind, found in _names(binary, type_dies, stride).items():
        for name in found:
            tried[kind] += 1
            try:
                resolved[kind] += lookups[kind](name) is not None
            except GocallError as e:
                assert str(e) and "\n" not in str(e), (kind, name, str(e))
            except Exception as e:  # noqa: BLE001 (what the test is for)
                escaped.append(f"{kind} {name}: {type(e).__name__}: {e}")
    assert not escaped, f"{len(escaped)} of {sum(tried.values())} names raised more than a GocallError:\n" + \
        "\n".join(escaped[:20])
    assert min(tried.values()) >= 10, tried  # the subject was enumerated, not missed
    assert all(resolved[k] >= tried[k] // 2 for k in tried), (tried, resolved)  # most names are found
