"""gocall: call functions inside live Go processes (Linux/amd64).

    import gocall
    with gocall.attach(pid) as proc:
        proc.call("main.Add", 1, 2)      # 3
        proc.eval("main.Add(1, 2)")      # 3
"""

# Not typing's: importing typing is ~3 ms of a `gocall call` handed to the server, whose client
# loads this package and little else (cli/handoff.py); mypy reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errors import (
        Abandoned,
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
    from .fleet import call_many
    from .session import Evaluation, Process, attach, launch
    from .stop import Breakpoint, Exited, Stop

# Names load on first use: breakpoints and stops (stop.py and the tracee it needs) because
# `gocall call` never needs them, every module imported costing a cold start time
# (bench/cold_attach.py); the session too, so that the `gocall` command can set the
# interpreter up for a short-lived process (gocall.cli.main) before the first heavy import;
# the errors because a `gocall call` handed to the server (cli/handoff.py) raises none in its
# client, whose every import is start-up time (~0.5 ms for errors.py's 30 classes).
_LAZY = {"Breakpoint": "stop", "Exited": "stop", "Stop": "stop",
         "Evaluation": "session", "Process": "session", "attach": "session", "launch": "session",
         "call_many": "fleet",
         **dict.fromkeys(("Abandoned", "ArgumentError", "CallRefused", "ExprError", "GocallError", "GoError",
                          "GoPanic", "Interrupted", "NoGoroutine", "SymbolNotFound", "TargetExited"), "errors")}  # fmt: skip


def __getattr__(name: str) -> "Any":
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Abandoned",
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
    "call_many",
    "launch",
]
