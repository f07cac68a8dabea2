"""runtime/layouts.py's table, row by row, against the DWARF of a binary built by that release.

The table exists so that stripped binaries work; this is where each row earns its place:
every offset must equal what the linker wrote into DWARF for the same release.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.errors import UnsupportedGo
from gocall.runtime import layouts
from gocall.toolchain import GoToolchain


def test_table_row_matches_dwarf(toolchain: GoToolchain, gobin: Path) -> None:
    if toolchain.release not in layouts.known_releases():
        pytest.skip(f"{toolchain.version} has no row in the layouts table; it is read from DWARF")
    with GoBinary.open(gobin) as binary:
        assert binary.dwarf is not None
        measured = layouts.from_dwarf(binary.dwarf)._asdict()
        # parentGoid appeared in Go 1.21: the table says -1 before, DWARF has nothing to say.
        tabled = {k: v for k, v in layouts.for_go(binary.go_version_tuple)._asdict().items() if v != -1}
    assert tabled == {k: measured[k] for k in tabled}


def test_release_without_row_and_without_dwarf_is_refused() -> None:
    with pytest.raises(UnsupportedGo, match=r"go1\.20 .*no DWARF"):
        layouts.for_go((1, 20, 14), None)
