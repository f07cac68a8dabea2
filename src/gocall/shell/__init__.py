"""The interactive gocall: one live session on a process (``gocall attach PID``,
``gocall run -i``, :meth:`gocall.Process.shell`).

A front end over :class:`gocall.Process`, like the one-shot commands: it holds that one
engine object and prints through the CLI's formatting (cli/render.py, cli/console.py).
One module per idea: :mod:`.state` (running or stopped, the prompt), :mod:`.commands`
(Delve's words; anything else is a Go expression), :mod:`.completion` (from pclntab and
DWARF, never touching the process), :mod:`.history`, :mod:`.output` (text or one JSON
object per line), :mod:`.repl` (the line editor, hits announced while idle) and
:mod:`.script` (stdin not a terminal).

prompt_toolkit and pygments are imported only here, when a shell starts: ``gocall call``
never loads them (tests/cli/test_cold_start.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..session import Process
    from .output import Output
    from .state import ShellState


def run(proc: Process, as_json: bool = False, keep_going: bool = False, vi: bool | None = None,
        interactive: bool | None = None) -> int:
    """Run a shell on ``proc`` until ``exit``, Ctrl-D or the end of the script; its exit status
    (0, or 1 when a script line failed). ``proc`` stays open: its owner closes it."""
    from .commands import Commands
    from .output import Output
    from .state import ShellState

    state = ShellState(proc)
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    out = Output(as_json, plain=not interactive)
    commands = Commands(state, out)
    try:
        if interactive:
            from .repl import interactive_loop

            return interactive_loop(state, commands, vi)
        from .script import script_loop

        return script_loop(state, commands, sys.stdin, keep_going)
    finally:
        _leave(state, out)


def _leave(state: ShellState, out: Output) -> None:
    """What `exit` promises even to proc.shell()'s caller, who keeps the process open: the
    shell's breakpoints removed and the program running (an attached one let go)."""
    from ..errors import GocallError

    proc = state.proc
    if state.exited is not None:
        return
    try:
        for bp in state.numbers.values():
            if bp in proc.breakpoints:
                proc.clear(bp)
        # A launched program is killed by close() (or detached, which resumes it, with
        # --detach-on-exit): resumed here first, it would run on between the two.
        if proc.stopped is not None and not proc.breakpoints and not proc.launched:
            proc.cont()
    except GocallError as e:
        out.error(f"leaving: {e}")
