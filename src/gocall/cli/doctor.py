"""``gocall doctor PID``: every check a call into PID depends on, each with its fix."""

from __future__ import annotations

import sys

import click

from ..doctor import examine
from .console import Console


@click.command()
@click.argument("pid", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def doctor(pid: int, as_json: bool) -> None:
    """Check everything a call into process PID depends on, without touching it: the
    process and its namespaces (PID as seen here and inside, mount namespace), its
    executable (read through /proc/PID/exe even when its path is not here or was
    deleted), its Go release and module, runtime.debugCallV2, DWARF or declared
    signatures, debugPinnerV1, and every condition of ptrace (seccomp, CAP_SYS_PTRACE,
    user, Yama's ptrace_scope, another tracer). Each failed check says how to fix it.

    \b
    gocall doctor 12345
    gocall doctor 12345 --json

    Exit status 0 when every check passed, 1 when one failed.
    """
    console = Console()
    report = examine(pid)
    if as_json:
        console.json(report.to_json())
    else:
        for c in report.checks:
            mark = {True: "ok  ", False: "FAIL", None: "    "}[c.ok]
            console.message(f"{mark}  {c.name:<16}{c.detail}", style={True: None, False: "red", None: "dim"}[c.ok])
            if c.ok is False and c.fix:
                console.message(f"      {'':<16}fix: {c.fix}", style="yellow")
        failed = [c.name for c in report.checks if c.ok is False]
        console.message(f"gocall can call into process {pid}" if not failed else
                        f"gocall cannot call into process {pid}: {', '.join(failed)} failed")
    sys.exit(0 if report.ok else 1)
