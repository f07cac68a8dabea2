"""What the shell knows between lines: the process, whether it runs or is stopped (and
where), the goroutine and frame chosen, the breakpoints by number. The prompt says it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..session import Process
    from ..stop import Breakpoint, Stop


class ShellState:
    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.goroutine: int | None = None  # `goroutine N`: calls while running go there
        self.frame = 0  # `frame N`/`up`/`down`, at a stop
        self.exited: str | None = None  # "exited with status 3", once the program is gone
        self.numbers: dict[int, Breakpoint] = {}  # breakpoint number -> breakpoint
        self._next = 1

    @property
    def stop(self) -> Stop | None:
        return self.proc.stopped

    @property
    def needs_waiting(self) -> bool:
        """Whether the program may stop on its own (breakpoints in, or a launched program's
        runtime.Breakpoint() and exit), so the shell must watch it while the person types."""
        return self.exited is None and self.stop is None and self.proc.traced

    def number(self, bp: Breakpoint) -> int:
        for n, b in self.numbers.items():
            if b is bp:
                return n
        n, self._next = self._next, self._next + 1
        self.numbers[n] = bp
        return n

    def forget(self, n: int) -> None:
        del self.numbers[n]

    def prompt(self) -> str:
        """``gocall 1234 running> `` or ``gocall 1234 main.handle:42 g7> ``."""
        pid = self.proc.pid
        if self.exited is not None:
            return f"gocall {pid} exited> "
        stop = self.stop
        if stop is None:
            g = f" g{self.goroutine}" if self.goroutine is not None else ""
            return f"gocall {pid} running{g}> "
        sf = stop.source
        where = f"{sf.function}:{sf.line}" if sf is not None else f"{stop.regs.rip:#x}"
        frame = f" frame {self.frame}" if self.frame else ""
        return f"gocall {pid} {where} g{stop.goroutine}{frame}> "


def state_dir() -> str:
    """Where the shell keeps its history: ``$XDG_STATE_HOME/gocall`` (``~/.local/state/gocall``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "gocall")
