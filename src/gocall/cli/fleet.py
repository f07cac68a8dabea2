"""``gocall call --pid P --pid Q EXPR...`` / ``--exe NAME``: the front end of gocall/fleet.py."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from ..fleet import Fleet, Outcome, exe_path, processes_named
from ..process.namespaces import nspids
from .console import Console


def targets(pids: Sequence[int], exes: Sequence[str]) -> list[int]:
    """The PIDs given, then every process whose executable's base name is one of ``exes``."""
    return list(dict.fromkeys([*pids, *(pid for name in exes for pid in processes_named(name))]))


def fleet_options(declared: Sequence[str], goroot: str | None, sources: Sequence[str], goroutine: int | None,
                  no_advance: bool, stop_the_world: bool, unsafe: bool) -> list[str]:
    """The options of ``gocall call`` each process's own ``gocall call`` is given."""
    out = [arg for sig in declared for arg in ("--declare", sig)]
    out += [arg for src in sources for arg in ("--source", src)]
    out += ["--goroot", goroot] if goroot else []
    out += ["--goroutine", str(goroutine)] if goroutine is not None else []
    return out + [flag for flag, on in (("--no-advance", no_advance), ("--stop-the-world", stop_the_world),
                                        ("--unsafe", unsafe)) if on]


def call_fleet(console: Console, pids: Sequence[int], exes: Sequence[str], exprs: Sequence[str], parallel: int,
               timeout: float, options: Sequence[str], as_json: bool, dry_run: bool) -> int:
    """Run the fleet, print one JSON line or one text block per process; the exit status:
    0 every process answered, 1 one failed (or none matched), 130 interrupted."""
    chosen = targets(pids, exes)
    if not exprs and not dry_run:
        console.error("no EXPR to evaluate")
        return 2
    if not chosen:
        console.error(f"no process is running {' or '.join(exes)}" if exes else "no process given")
        return 1
    if dry_run:
        for pid in chosen:
            fleet_json = {"pid": pid, "nspid": nspids(pid), "exe": exe_path(pid)}
            if as_json:
                console.json(fleet_json)
            else:
                console.message(f"{pid}  {fleet_json['exe'] or '(gone, or not readable)'}")
        return 0
    fleet = Fleet(chosen, exprs, parallel, timeout, options, as_json)
    failed = 0

    def on_sigint(signum: int, frame: object) -> None:
        # Ctrl-C: no new process; the running ones unwind (their targets restored) and report.
        if not fleet.interrupted:
            console.note("interrupted: waiting for the running calls to restore their targets")
        fleet.interrupt()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for outcome in fleet.run():
            failed += not outcome.ok
            _print(console, outcome, as_json)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 130 if fleet.interrupted else 1 if failed else 0


def _print(console: Console, outcome: Outcome, as_json: bool) -> None:
    if as_json:
        console.json(outcome.to_json())
        return
    name = outcome.exe.rsplit("/", 1)[-1] or "?"
    ns = f", {outcome.nspid[-1]} in its PID namespace" if len(outcome.nspid) > 1 else ""
    console.message(f"== process {outcome.pid} ({name}{ns}) ==", style="bold")
    for line in outcome.output.rstrip("\n").splitlines():
        if line.startswith("gocall: "):  # stderr's lines, kept in the block they belong to
            console.message(line, style="red")
        else:
            console.message(line)
