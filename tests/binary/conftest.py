"""Real Go binaries for the binary-layer tests, built on demand and cached.

Like Delve's ``pkg/proc/test/support.go``: each fixture under ``fixtures/`` is built once per
(toolchain, source, flags) by :meth:`gocall.toolchain.GoToolchain.build_cached` (the one
build cache, ``~/.cache/gocall/builds``) and reused by later runs. Every test taking
``toolchain`` runs once per Go release of the version matrix (the root conftest's
``go_toolchain``; ``GOCALL_TEST_GO`` narrows it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gocall.toolchain import GoToolchain

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def toolchain(go_toolchain: GoToolchain) -> GoToolchain:
    """The matrix's toolchain, under the name these tests read best with."""
    return go_toolchain


def build(toolchain: GoToolchain, fixture: str, *flags: str, env: dict[str, str] | None = None) -> Path:
    """Build ``fixtures/<fixture>`` with ``go build FLAGS``, cached by source, Go version, flags and env."""
    return toolchain.build_cached(FIXTURES / fixture, flags, env=env)


@pytest.fixture(scope="session")
def build_binary(toolchain: GoToolchain) -> Callable[..., Path]:
    """``build_binary(fixture, *flags, env=None)``: :func:`build` with the matrix's toolchain."""
    return lambda fixture, *flags, env=None: build(toolchain, fixture, *flags, env=env)


@pytest.fixture(scope="session")
def gobin(toolchain: GoToolchain) -> Path:
    """The ``gobin`` fixture program, built normally (with symbols and DWARF)."""
    return build(toolchain, "gobin")


@pytest.fixture(scope="session")
def gobin_stripped(toolchain: GoToolchain) -> Path:
    """The ``gobin`` fixture built with ``-ldflags=-s -w``: no symbol table, no DWARF."""
    return build(toolchain, "gobin", "-ldflags=-s -w")


@pytest.fixture(scope="session")
def gobin_nodwarf(toolchain: GoToolchain) -> Path:
    """The ``gobin`` fixture built with ``-ldflags=-w``: symbols but no DWARF."""
    return build(toolchain, "gobin", "-ldflags=-w")


def go_tool_nm(toolchain: GoToolchain, binary: Path) -> list[tuple[int, int, str, str]]:
    """``go tool nm -size``: (address, size, type letter, name) per defined symbol."""
    rows = []
    for line in toolchain.run("tool", "nm", "-size", binary).splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4:  # undefined symbols have no address
            continue
        addr, size, kind, name = parts
        rows.append((int(addr, 16), int(size), kind, name))
    return rows


@pytest.fixture(scope="session")
def nm(toolchain: GoToolchain, gobin: Path) -> list[tuple[int, int, str, str]]:
    """``go tool nm -size`` of gobin."""
    return go_tool_nm(toolchain, gobin)
