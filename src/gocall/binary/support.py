"""What gocall can do with a given Go binary, and why not when it cannot.

One place decides, from the file alone, so that ``gocall info`` reports exactly what
``gocall call`` will accept. Checked on real builds in tests/binary/test_support.py:

* **release**: pclntab formats of Go 1.18+ are read (pclntab.py); runtime layouts are
  tabled for 1.19 and 1.21-1.27 and read from DWARF for other 1.18+ releases
  (runtime/layouts.py). Older binaries are refused when their pclntab is opened.
* **PIE** (``-buildmode=pie``, ``ET_DYN``): the image is loaded at a random base; the
  binary layer adds that load bias to every address it hands out (binary/pie.py), so
  calls work as in any other build; supported, reported.
* **cgo** and **-race**: debugCallV2 works the same (the injected call runs on a new
  goroutine on a Go stack); supported, reported.
* **no DWARF** (``-w``): functions still have entries and frame sizes (pclntab); their
  signatures must be declared (expr/signature.py). **No symbol table** (``-s``): the
  runtime variables a call needs are recovered (stripped.py).
"""

from __future__ import annotations

from typing import NamedTuple

from gocall.binary.elf import ET_DYN
from gocall.binary.elffile import GoBinary
from gocall.errors import UnsupportedBinary

__all__ = ["Support", "assess", "check_callable"]

# A NamedTuple: a frozen dataclass compiles its methods from source at import (~0.4 ms of a cold
# `gocall call`).
class Support(NamedTuple):
    """The features of one binary that decide what gocall offers for it."""

    go_version: str
    pie: bool
    cgo: bool
    race: bool
    dwarf: bool
    symtab: bool
    debug_call: bool  # runtime.debugCallV2 is linked in (every Go >= 1.17 amd64 binary)
    debug_pinner: bool  # runtime.debugPinnerV1 (Go >= 1.23): arguments allocated in the target stay put

    @property
    def refusal(self) -> str | None:
        """Why calls cannot be made into this binary, or None if they can."""
        if not self.debug_call:
            return "runtime.debugCallV2 is not in it (built by Go < 1.17, or not for amd64)"
        return None

    @property
    def features(self) -> list[str]:
        """What gocall can do here, as short phrases for ``gocall info``."""
        out = ["calls" if self.refusal is None else "no calls"]
        out.append("signatures from DWARF" if self.dwarf else "signatures from Go source or declarations (no DWARF)")
        out.append("symbols" if self.symtab else "no symbol table (runtime variables recovered)")
        out.append("pinned arguments (debugPinnerV1)" if self.debug_pinner else "no debugPinnerV1 (Go < 1.23)")
        out += [name for name, on in (("position-independent (PIE)", self.pie), ("cgo", self.cgo),
                                      ("race detector", self.race)) if on]
        return out


def assess(binary: GoBinary) -> Support:
    """Read the features of ``binary`` (cheap: ELF header, build info, pclntab names)."""
    settings = binary.buildinfo.settings if binary.buildinfo is not None else {}
    tab = binary.pclntab
    return Support(
        go_version=binary.go_version,
        pie=binary.header.e_type == ET_DYN,
        # Linked only when a package imports "C" (runtime/cgo's gcc_*.c export it), whatever CGO_ENABLED says.
        cgo=tab.func_by_name("_cgo_topofstack") is not None,
        race=settings.get("-race") == "true" or tab.func_by_name("runtime.raceinit") is not None,
        dwarf=binary.dwarf is not None,
        symtab=binary.has_symtab,
        debug_call=tab.func_by_name("runtime.debugCallV2") is not None,
        debug_pinner=tab.func_by_name("runtime.debugPinnerV1") is not None,
    )


def check_callable(binary: GoBinary) -> Support:
    """:func:`assess`, raising :class:`UnsupportedBinary` naming why calls are impossible."""
    support = assess(binary)
    if support.refusal is not None:
        raise UnsupportedBinary(f"cannot call into {binary.path}: {support.refusal}",
                                hint="rebuild it with Go 1.19 or later for linux/amd64")
    return support
