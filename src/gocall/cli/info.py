"""``gocall info BINARY|PID``: what a Go binary is and what gocall can do with it.

Reads only the file (a PID means ``/proc/PID/exe``); the process is not touched.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..binary import GoBinary
from ..binary.sizes import metadata_sizes
from ..binary.support import assess
from ..errors import GocallError
from .console import Console


def _path(target: str) -> str:
    if target.isdigit() and not os.path.exists(target):
        return f"/proc/{target}/exe"
    return target


def signatures(binary: GoBinary, goroot: str | None = None, sources: tuple[str, ...] = ()) -> str:
    """Where call signatures will come from: DWARF, Go source (gosource/), or declarations only."""
    if binary.dwarf is not None:
        return "DWARF"
    from ..gosource.source import GoSource

    return GoSource(binary, goroot, sources).describe()


def describe(binary: GoBinary, goroot: str | None = None, sources: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything ``gocall info`` prints, as JSON-ready data."""
    support = assess(binary)
    info = binary.buildinfo
    return {
        "path": binary.path,
        "go_version": binary.go_version,
        "module": info.main.path if info is not None and info.main is not None else None,
        "main_package": info.path if info is not None else None,
        "build_settings": dict(info.settings) if info is not None else {},
        "functions": len(binary.pclntab),
        "source_files": binary.pclntab.header.nfiles,
        "pclntab_format": f"{binary.pclntab.header.magic:#x} ({binary.pclntab.layout.versions})",
        "features": {
            "calls": support.refusal is None, "refusal": support.refusal, "dwarf": support.dwarf,
            "symtab": support.symtab, "debug_pinner": support.debug_pinner, "pie": support.pie,
            "cgo": support.cgo, "race": support.race,
        },
        "summary": support.features,
        "signatures": signatures(binary, goroot, sources),
        "sizes": metadata_sizes(binary).to_json(),
    }


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _print(console: Console, d: dict[str, Any]) -> None:
    sizes = d["sizes"]
    lines = [
        f"{d['path']}: {d['go_version']}, module {d['module'] or '?'} ({d['main_package'] or '?'})",
        f"functions {d['functions']:,}, source files {d['source_files']:,}, pclntab {d['pclntab_format']}",
        "gocall: " + "; ".join(d["summary"]),
        f"signatures: {d['signatures']}",
    ]
    if d["features"]["refusal"]:
        lines.append(f"  cannot call: {d['features']['refusal']}")
    settings = d["build_settings"]
    if settings:
        # vcs.* and DefaultGODEBUG are long and rarely what one looks for here; --json has them.
        lines.append("build: " + " ".join(f"{k}={v}" for k, v in settings.items()
                                          if not k.startswith("vcs") and k != "DefaultGODEBUG"))
    total = sum(sizes["pclntab"].values())
    lines.append(f"file {_kib(sizes['file'])}; .gopclntab {_kib(total)} ({100 * total / sizes['file']:.0f}%):")
    lines += [f"  {name:<24}{_kib(n):>14}" for name, n in sizes["pclntab"].items()]
    lines.append("  pc-value tables by kind:")
    lines += [f"    {name:<22}{_kib(n):>14}" for name, n in sizes["pctab"].items()]
    lines.append("funcdata by kind (stack maps, stack objects, inline trees…):")
    lines += [f"  {name:<28}{_kib(n):>10}" for name, n in sizes["funcdata"].items()]
    if sizes["dwarf"]:
        in_file = sum(s["file"] for s in sizes["dwarf"].values())
        raw = sum(s["uncompressed"] for s in sizes["dwarf"].values())
        lines.append(f"DWARF {_kib(in_file)} in the file, {_kib(raw)} uncompressed:")
        lines += [f"  {name:<24}{_kib(s['file']):>14}{_kib(s['uncompressed']):>14}"
                  for name, s in sizes["dwarf"].items()]
    else:
        lines.append("DWARF: none (built with -ldflags=-w or -s)")
    for line in lines:
        console.message(line)


@click.command()
@click.argument("target", metavar="BINARY|PID")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--goroot", metavar="DIR", default=None, help="Without DWARF: the GOROOT to read the standard "
              "library's signatures from.")
@click.option("--source", "sources", metavar="DIR", multiple=True, help="Without DWARF: the program's module root.")
def info(target: str, as_json: bool, goroot: str | None = None, sources: tuple[str, ...] = ()) -> None:
    """Describe a Go binary (or the executable of process PID): Go version, module and
    build settings, number of functions, what gocall can do with it (calls, DWARF or
    declared signatures, debugPinnerV1, PIE, cgo, race), where call signatures come
    from (DWARF, Go source: GOROOT and module roots, or declarations only) and how big its runtime
    metadata is (pclntab, pc-value tables and funcdata by kind, DWARF).

    \b
    gocall info ./server
    gocall info 12345 --json
    """
    console = Console()
    try:
        with GoBinary.open(_path(target)) as binary:
            d = describe(binary, goroot, sources)
    except GocallError as e:
        console.error(str(e))
        sys.exit(1)
    except OSError as e:
        if target.isdigit() and not os.path.exists(target):  # a PID: gone, or not ours to read
            from ..process.permissions import attach_error

            console.error(str(attach_error(int(target), e.errno or 0)))
        else:
            console.error(str(e))
        sys.exit(1)
    if as_json:
        console.json(d)
    else:
        _print(console, d)
