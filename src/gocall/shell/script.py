"""The shell reading a script (stdin not a terminal): the same commands, line by line, no
prompt. The exit status is 1 when a line failed; the script stops there unless
``--keep-going``. Consecutive calls share one warm thread (``proc.batch()``): a script
types faster than a person, and nobody waits at a prompt meanwhile."""

from __future__ import annotations

from typing import TextIO

from .commands import Commands, ExitShell
from .interrupts import engine_safe_sigint
from .state import ShellState


def script_loop(state: ShellState, commands: Commands, lines: TextIO, keep_going: bool) -> int:
    status = 0
    with state.proc.batch(), engine_safe_sigint():
        for line in lines:
            try:
                ok = commands.run(line)
            except ExitShell:
                break
            if not ok:
                status = 1
                if not keep_going:
                    break
    return status
