"""``gocall attach PID``: the interactive shell on a running process (gocall/shell/)."""

from __future__ import annotations

import sys

import click

from ..errors import GocallError
from ..session import attach as attach_process
from .console import Console

_SHELL_OPTIONS = [
    click.option("--json", "as_json", is_flag=True, help="Read commands from stdin, print one JSON object per line."),
    click.option("--keep-going", is_flag=True, help="In a script, go on past a line that failed (exit status 1)."),
    click.option("--vi/--emacs", "vi", default=None, help="Line editing keys [default: ~/.inputrc, else emacs]."),
]


def shell_options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_SHELL_OPTIONS):
        f = option(f)
    return f


@click.command()
@click.argument("pid", type=int)
@shell_options
def attach(pid: int, as_json: bool, keep_going: bool, vi: bool | None) -> None:
    """Open the gocall shell on process PID: Go expressions (no call prefix), goroutines,
    breakpoints, stops, with completion from the binary. The program keeps running between
    commands; `exit` (or Ctrl-D) removes every breakpoint and detaches.

    \b
    gocall attach 12345
    gocall attach 12345 < session.txt           a script: the same commands, one a line
    gocall attach 12345 --json <<< 'main.Add(1, 2)'
    """
    from ..shell import run

    console = Console()
    try:
        with attach_process(pid, guard=True) as proc:
            status = run(proc, as_json=as_json, keep_going=keep_going, vi=vi)
    except GocallError as e:
        console.error(str(e))
        sys.exit(1)
    sys.exit(status)
