"""``gocall goroutines PID``: every goroutine, as the runtime itself would list it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ..errors import GocallError
from ..runtime.goroutines import Goroutine
from ..runtime.view import GoroutineInfo, RuntimeView
from ..session import attach
from .console import Console

console = Console()
T = TypeVar("T")


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Rows as left-aligned columns under a header (plain text; styled per line by the caller)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def fail(e: GocallError) -> None:
    console.error(str(e))
    sys.exit(1)


def per_goroutine(pid: int, goid: int | None, as_json: bool, read: Callable[[RuntimeView, Goroutine], T],
                  to_json: Callable[[T], Any], show: Callable[[T], None]) -> None:
    """What ``stack`` and ``roots`` share: read goroutine GOID of process PID (every goroutine
    without GOID) with ``read``, all before printing anything (an error exits 1 with its
    message), then print ``[{"goid", "state", "frames": to_json(...)}, ...]`` or, for each
    goroutine, its traceback header, ``show(...)`` and a blank line."""
    try:
        with attach(pid) as proc:
            gs = [proc.runtime.goroutine(goid)] if goid is not None else proc.runtime.goroutines()
            result = [(g, read(proc.runtime, g)) for g in gs]
    except GocallError as e:
        fail(e)
    if as_json:
        console.json([{"goid": g.goid, "state": g.header, "frames": to_json(r)} for g, r in result])
        return
    for g, r in result:
        console.message(f"goroutine {g.goid} [{g.header}]:", style="bold")
        show(r)
        console.message("")


def info_json(i: GoroutineInfo) -> dict[str, Any]:
    g = i.goroutine
    loc = i.location
    return {
        "goid": g.goid,
        "status": g.g.status_name,
        "state": g.header,
        "m": g.m_id,
        "thread": g.tid,
        "system": i.system,
        "location": None if loc is None else {"function": loc.function, "file": loc.file, "line": loc.line,
                                               "pc": i.location_pc},
        "created_by": None if i.created_by is None else {
            "function": i.created_by.function, "file": i.created_by.file, "line": i.created_by.line,
            "goroutine": g.parent_goid or None},
    }


@click.command()
@click.argument("pid", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (for scripts).")
@click.option("--system", is_flag=True, help="Also list the runtime's own goroutines (GC workers, ...).")
def goroutines(pid: int, as_json: bool, system: bool) -> None:
    """List the goroutines of process PID: id, state, thread, where each is.

    The state is worded as Go's own tracebacks word it (``chan receive``,
    ``running``, ``syscall``...); the location is the innermost frame a Go
    traceback shows. Read while the program runs; a running goroutine's
    thread is paused for microseconds to read its registers.

    \b
    JSON: [{"goid", "status", "state", "m", "thread", "system",
            "location": {"function", "file", "line", "pc"} | null,
            "created_by": {"function", "file", "line", "goroutine"} | null}, ...]
    """
    try:
        with attach(pid) as proc:
            infos = [i for i in proc.goroutines() if system or not i.system]
    except GocallError as e:
        fail(e)
    if as_json:
        console.json([info_json(i) for i in infos])
        return
    rows = []
    for i in infos:
        g = i.goroutine
        where = f"{i.location.function} {i.location.file.rsplit('/', 1)[-1]}:{i.location.line}" if i.location else "?"
        thread = str(g.tid) if g.tid else "-"
        rows.append((str(g.goid), g.header, thread, where))
    lines = table(rows, ("GOID", "STATE", "THREAD", "WHERE"))
    console.message(lines[0], style="bold")
    for line, i in zip(lines[1:], infos):
        console.message(line, style="green" if i.goroutine.state == "running" else None)
