"""gocall: call functions inside live Go processes (Linux/amd64).

    import gocall
    with gocall.attach(pid) as proc:
        proc.call("main.Add", 1, 2)      # 3
        proc.eval("main.Add(1, 2)")      # 3
"""

from .errors import (
    ArgumentError,
    CallRefused,
    ExprError,
    GocallError,
    GoError,
    GoPanic,
    Interrupted,
    NoGoroutine,
    SymbolNotFound,
    TargetExited,
)
from .session import Evaluation, Process, attach, launch
from .stop import Breakpoint, Exited, Stop

__all__ = [
    "ArgumentError",
    "Breakpoint",
    "CallRefused",
    "Evaluation",
    "Exited",
    "ExprError",
    "GoError",
    "GoPanic",
    "GocallError",
    "Interrupted",
    "NoGoroutine",
    "Process",
    "Stop",
    "SymbolNotFound",
    "TargetExited",
    "attach",
    "launch",
]
