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
from .session import Evaluation, Process, attach

__all__ = [
    "ArgumentError",
    "CallRefused",
    "Evaluation",
    "ExprError",
    "GoError",
    "GoPanic",
    "GocallError",
    "Interrupted",
    "NoGoroutine",
    "Process",
    "SymbolNotFound",
    "TargetExited",
    "attach",
]
