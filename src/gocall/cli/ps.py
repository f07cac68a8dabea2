"""``gocall ps``: every Go process this user may see, and what gocall can do with each."""

from __future__ import annotations

import click

from ..processes import go_processes
from .console import Console


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line, one per process.")
def ps(as_json: bool) -> None:
    """List every Go process this user may see: PID (and its PID inside its own
    namespace when that differs), parent, user, Go version, module, executable,
    container (from the cgroup path) and what gocall can do with it: calls,
    declared signatures only (no DWARF), no debugCallV2, or not permitted (and why).
    Nothing is attached: build info is read through /proc/PID/exe, without DWARF.

    \b
    gocall ps
    gocall ps --json | jq 'select(.capability == "calls") | .pid'
    """
    console = Console()
    listing = go_processes()
    if as_json:
        for p in listing.processes:
            console.json(p.to_json())
        return
    rows = [("PID", "PPID", "USER", "GO", "MODULE", "CONTAINER", "GOCALL", "EXE")]
    for p in listing.processes:
        pid = str(p.pid) if len(p.nspid) == 1 else f"{p.pid}({p.nspid[-1]})"
        what = p.capability if not p.why or p.capability != "not permitted" else f"{p.capability}: {p.why}"
        rows.append((pid, str(p.ppid), p.user, p.go_version, p.module or "-", p.container or "-", what, p.exe))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 2)]
    for r in rows:
        # The last two columns are long and free-form: the capability before the path.
        console.message("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-2] + "  " + r[-1])
    if listing.unreadable:
        console.note(f"{listing.unreadable} processes whose executable this user may not read are not listed "
                     "(run as root to see them)")
