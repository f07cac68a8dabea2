"""``gocall goroutines PID``: every goroutine, as the runtime itself would list it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ..errors import GocallError
from ..guard import pending
from ..runtime.goroutines import Goroutine
from ..runtime.gselect import NEEDS_ARGUMENT, Group, parse_filter, parse_group
from ..runtime.listing import GoroutineInfo, Location
from ..runtime.view import RuntimeView
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


def _where(loc: Location | None) -> dict[str, Any] | None:
    return None if loc is None else {"function": loc.function, "file": loc.file, "line": loc.line, "pc": loc.pc}


def info_json(i: GoroutineInfo, held: Sequence[pending.Pending] = ()) -> dict[str, Any]:
    """One goroutine as ``gocall goroutines --json`` prints it (every field of :class:`GoroutineInfo`,
    and the call a guardian holds for it, from ``held``)."""
    g = i.goroutine
    call = next((p for p in held if p.goroutine == g.goid), None)
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
        "user": _where(i.user),
        "current": _where(i.current),
        "go": _where(i.go),
        "start": _where(i.start),
        "labels": i.labels,
        "created_by": None if i.created_by is None else {
            "function": i.created_by.function, "file": i.created_by.file, "line": i.created_by.line,
            "goroutine": g.parent_goid or None},
        "pending": None if call is None else {"thread": call.tid, "function": call.function,
                                              "guardian": call.guardian, "since": call.since},
    }


def group_json(group: Group) -> dict[str, Any]:
    return {"group": group.key, "count": group.count, "goids": [i.goid for i in group.goroutines]}


def listing_lines(infos: Sequence[GoroutineInfo], columns: Sequence[str]) -> list[str]:
    """The table of ``gocall goroutines``: GOID, STATE, THREAD, the user location, then ``columns``
    (``current``, ``go``, ``start``, ``labels``), header first."""
    rows = []
    for i in infos:
        g = i.goroutine
        extra = {"current": _short(i.current), "go": _short(i.go), "start": _short(i.start),
                 "labels": " ".join(f"{k}={v}" for k, v in i.labels.items())}
        rows.append((str(g.goid), g.header, str(g.tid) if g.tid else "-", _short(i.user),
                     *(extra[c] for c in columns)))
    return table(rows, ("GOID", "STATE", "THREAD", "LOCATION", *(c.upper() for c in columns)))


def group_lines(groups: Sequence[Group], by: str, members: int) -> list[str]:
    """The table of ``gocall goroutines --group``: COUNT, the key, up to ``members`` goroutine ids."""
    rows = []
    for grp in groups:
        ids = " ".join(str(i.goid) for i in grp.goroutines[:members])
        more = grp.count - min(members, grp.count)
        rows.append((str(grp.count), grp.key, ids + (f" (+{more})" if more else "")))
    return table(rows, ("COUNT", by.upper(), "GOROUTINES"))


def _short(loc: Location | None) -> str:
    return "?" if loc is None else str(loc)


class _DelveSyntax(click.Command):
    """Takes Delve's two-word filters as they are typed: ``--with userloc main.worker``,
    ``--group label k``, by joining the kind and its argument into one option value; and
    Delve's single-dash spelling (``-group userloc``, as the shell's goroutines takes it),
    which click would otherwise read as the short flags -g -r -o..."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        joined: list[str] = []
        it = iter(args)
        for arg in it:
            if arg in ("-with", "-without", "-group", "-system"):
                arg = "-" + arg
            joined.append(arg)
            if arg in ("--with", "--without", "--group"):
                kind = next(it, None)
                if kind is None:
                    break
                takes = NEEDS_ARGUMENT if arg != "--group" else ("label",)
                if kind in takes:
                    value = next(it, None)
                    kind = kind if value is None else f"{kind} {value}"
                joined.append(kind)
        return super().parse_args(ctx, joined)


@click.command(cls=_DelveSyntax)
@click.argument("pid", type=int)
@click.option("--with", "with_", multiple=True, metavar="FILTER",
              help="Keep goroutines matching FILTER: userloc|curloc|goloc|startloc SUBSTR, label K[=V], "
                   "running, user. Repeatable (all must match).")
@click.option("--without", multiple=True, metavar="FILTER", help="Drop goroutines matching FILTER (same syntax).")
@click.option("--group", "group_by", metavar="KIND", help="Group by userloc|curloc|goloc|startloc|running|user "
              "or label K, with counts, largest first.")
@click.option("--members", default=5, show_default=True, help="Goroutine ids shown per group.")
@click.option("-r", "--current", "cols", flag_value="current", multiple=True,
              help="Also show the current location (runtime frames included).")
@click.option("-g", "--go", "cols", flag_value="go", multiple=True, help="Also show the go statement's location.")
@click.option("-s", "--start", "cols", flag_value="start", multiple=True, help="Also show the start function.")
@click.option("-l", "--labels", "cols", flag_value="labels", multiple=True, help="Also show pprof labels.")
@click.option("-t", "--stack", "depth", type=int, is_flag=False, flag_value=10, default=0, metavar="[DEPTH]",
              help="Also show each goroutine's stack, DEPTH frames (10 if not given), runtime frames included.")
@click.option("--system", is_flag=True, help="Also list the runtime's own goroutines (GC workers, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (for scripts).")
def goroutines(pid: int, with_: tuple[str, ...], without: tuple[str, ...], group_by: str | None, members: int,
               cols: tuple[str, ...], depth: int, system: bool, as_json: bool) -> None:
    """List the goroutines of process PID: id, state, thread, where each is.

    LOCATION is the user location: the innermost frame of the program's own code, not the
    runtime, the standard library or cgo wrappers (a worker asleep in time.Sleep shows
    main.worker), like Delve's goroutines -u. The state is worded as Go's own tracebacks
    word it (chan receive, running, syscall...). Filters and grouping follow Delve:

    \b
      gocall goroutines PID --with userloc main.worker --without label role=db
      gocall goroutines PID --group userloc
      gocall goroutines PID --group label tenant --with running

    Read while the program runs; a running goroutine's thread is paused for microseconds
    to read its registers.

    \b
    JSON: [{"goid", "status", "state", "m", "thread", "system",
            "location" (what runtime.Stack shows first), "user", "current", "go", "start":
              {"function", "file", "line", "pc"} | null,
            "labels": {K: V}, "created_by": {"function", "file", "line", "goroutine"} | null,
            "stack": [{"function", "file", "line"}, ...] (with -t),
            "pending": {"thread", "function", "guardian", "since"} | null (a call left to a
              guardian, running on this goroutine: see gocall doctor)}, ...]
    with --group: [{"group", "count", "goids"}, ...]
    """
    try:
        filters = [parse_filter(f) for f in with_] + [parse_filter(f, negate=True) for f in without]
        if not system and not any(f.kind == "user" for f in filters):
            filters.append(parse_filter("user"))
        if group_by is not None:
            parse_group(group_by)  # a bad --group is refused before attaching
        held = pending.calls(pid)  # calls left to guardians (guard/pending.py)
        with attach(pid) as proc:
            chosen = proc.runtime.listing(filters, group_by)
            stacks = {i.goid: [sf for fr in proc.runtime.frames(i.goroutine) for sf in fr.calls][:depth]
                      for i in chosen.goroutines} if depth > 0 and group_by is None else {}
    except GocallError as e:
        fail(e)
    if chosen.groups is not None:
        if as_json:
            console.json([group_json(grp) for grp in chosen.groups])
            return
        lines = group_lines(chosen.groups, group_by or "", members)
        console.message(lines[0], style="bold")
        for line in lines[1:]:
            console.message(line)
        return
    if as_json:
        console.json([info_json(i, held) | ({"stack": [{"function": sf.function, "file": sf.file, "line": sf.line}
                                                 for sf in stacks[i.goid]]} if depth > 0 else {})
                      for i in chosen.goroutines])
        return
    lines = listing_lines(chosen.goroutines, list(dict.fromkeys(cols)))
    console.message(lines[0], style="bold")
    for line, i in zip(lines[1:], chosen.goroutines):
        console.message(line, style="green" if i.goroutine.state == "running" else None)
        for n, sf in enumerate(stacks.get(i.goid, ())):
            console.message(f"    {n}  {sf.function} {sf.file}:{sf.line}", style="dim")
    for p in held:  # their threads are not gocall's to call on until the guardian lets go
        console.message(f"pending: {p.text}", style="yellow")
