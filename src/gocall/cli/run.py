"""``gocall run``: start a program under gocall, stop where asked, evaluate there."""

from __future__ import annotations

import signal
import sys

import click

from ..errors import GocallError
from ..process.signals import exit_status, name
from ..session import launch
from ..stop import Exited
from ..values.gofmt import format_value
from .console import Console


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--break", "breaks", metavar="LOCATION", multiple=True,
              help="Stop at pkg.Func, file.go:LINE or *0xADDR, optionally 'LOCATION if COND'. Repeatable.")
@click.option("--eval", "exprs", metavar="EXPR", multiple=True,
              help="Evaluate at each stop (locals, then package members; 'x = f()' assigns). Repeatable.")
@click.option("--frame", type=int, default=0, show_default=True, help="Evaluate in this frame (0: innermost).")
@click.option("--count", type=int, default=1, show_default=True, help="Stops to report before running on freely.")
@click.option("--kill", is_flag=True, help="Kill the program after the last reported stop.")
@click.option("--unsafe", is_flag=True, help="Allow pointers into the stack (&local) as call arguments.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per stop on stdout.")
@click.option("-i", "--interactive", is_flag=True, help="Open the gocall shell on the program (gocall attach).")
@click.option("--detach-on-exit", is_flag=True, help="With -i: leaving the shell detaches the program, not kill it.")
@click.option("--keep-going", is_flag=True, help="With -i reading a script: go on past a line that failed.")
@click.argument("argv", nargs=-1, required=True)
def run(breaks: tuple[str, ...], exprs: tuple[str, ...], frame: int, count: int, kill: bool, unsafe: bool,
        as_json: bool, argv: tuple[str, ...], interactive: bool = False, detach_on_exit: bool = False,
        keep_going: bool = False) -> None:
    """Run PROGRAM [ARGS...] (after --) under gocall; stop at each --break and at runtime.Breakpoint().

    \b
    gocall run --break main.handle --eval req.ID -- ./server
    gocall run --break 'main.handle if req.ID == 7' --eval 'req.Path' --count 2 -- ./server
    gocall run --break main.go:42 --eval 'x = f()' --kill -- ./prog arg
    gocall run -i --break main.handle -- ./server   the shell, the program running

    The program keeps the terminal's stdin, stdout and stderr; gocall reports on
    stderr (or --json on stdout) and exits with the program's exit status.
    """
    from .main import console

    if interactive:
        sys.exit(_shell(console, breaks, argv, as_json, detach_on_exit, keep_going))
    stops = 0
    try:
        with launch(argv) as proc:
            for b in breaks:
                proc.break_at(b)
            while True:
                event = proc.wait()
                if event is None:
                    signum = proc.interrupted or signal.SIGINT
                    console.error(f"interrupted{'' if signum == signal.SIGINT else ' by ' + name(signum)}; the program "
                                  "was killed")
                    sys.exit(exit_status(signum))
                if isinstance(event, Exited):
                    sys.exit(event.code if event.code >= 0 else 128 - event.code)
                stops += 1
                if stops > count:
                    continue  # the breakpoints are gone; runtime.Breakpoint() calls run on unreported
                evaluations = [event.evaluate(e, frame, unsafe) for e in exprs]
                if as_json:
                    console.json(event.to_json(evaluations))
                else:
                    console.error(f"stop {stops}: {event.where}")
                    for ev in evaluations:
                        if ev.error is not None:
                            console.error(f"  {ev.expr}: {ev.error}")
                        elif ev.panic is not None:
                            console.error(f"  {ev.expr}: panic: {format_value(ev.panic)} [recovered]")
                        else:
                            console.error(f"  {ev.expr} = " + ", ".join(format_value(r) for r in ev.results))
                if stops >= count:
                    if kill:
                        proc.kill()
                        sys.exit(137)
                    for bp in proc.breakpoints:
                        proc.clear(bp)
    except GocallError as e:
        console.error(str(e))
        sys.exit(1)


def _shell(console: Console, breaks: tuple[str, ...], argv: tuple[str, ...], as_json: bool, detach: bool,
           keep_going: bool) -> int:
    from ..shell import run as run_shell

    try:
        with launch(argv) as proc:
            for b in breaks:
                proc.break_at(b)
            status = run_shell(proc, as_json=as_json, keep_going=keep_going)
            if detach:
                proc.launched = False  # close() detaches instead of killing
            return status
    except GocallError as e:
        console.error(str(e))
        return 1
