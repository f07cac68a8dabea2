"""A breakpoint: a location, the code addresses it stands for, an optional condition.

Locations are written as Delve writes them (``pkg.Func``, ``file.go:LINE``, ``*0xADDR``);
:func:`resolve` turns one into sites from the binary's line table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..binary import lines
from ..errors import ExprError, SymbolNotFound
from ..expr.parse import Expr

if TYPE_CHECKING:
    from .host import Process


@dataclass
class Breakpoint:
    """A location gocall stops at: one or more code addresses, an optional condition."""

    location: str
    sites: list[lines.Site]
    condition: str | None = None
    hits: int = 0  # stops reported (condition true, or no condition)
    tests: int = 0  # times the condition was evaluated
    skipped: int = 0  # hits by a call gocall made at a stop (stops/calls.py): run through untested
    missed: int = 0  # hits held during a call that took too long (stops/calls.py): let go untested
    tree: Expr | None = field(default=None, repr=False)  # the condition, parsed once

    @property
    def pcs(self) -> list[int]:
        return [s.pc for s in self.sites]

    def __str__(self) -> str:
        s = self.sites[0]
        where = f"{s.function} ({s.file}:{s.line})"
        text = where if self.location == s.function else f"{self.location} at {where}"  # not "main.f at main.f"
        return text + (f" if {self.condition}" if self.condition else "")


def resolve(proc: Process, location: str) -> list[lines.Site]:
    """The code addresses of ``pkg.Func``, ``file.go:LINE`` or ``*0xADDR`` in ``proc``'s binary."""
    binary = proc.binary
    if location.startswith("*"):
        try:
            return [lines.address_site(binary, int(location[1:], 0))]
        except ValueError:
            raise ExprError(f"bad address {location!r}", hint="write *0x49edd2") from None
    file, colon, line = location.rpartition(":")
    if colon and line.isdigit():
        return lines.line_sites(binary, file, int(line))
    tab = binary.pclntab
    names = proc.evaluator.names
    for name in (location, names.qualify(location), f"main.{location}"):
        f = tab.func_by_name(name)
        if f is not None:
            return lines.function_sites(binary, f)
    raise SymbolNotFound(f"no function {location} in the binary",
                         hint="write pkg.Func (main.handle, main.(*T).M), file.go:LINE or *0xADDR; "
                              "functions inlined everywhere have no code of their own (//go:noinline)")
