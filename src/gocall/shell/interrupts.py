"""Ctrl-C while a shell line runs (the terminal sends SIGINT).

The engine blocks SIGINT in the thread that traces (process/waiting.py) and acts on it at
its next safe point. But the shell has other threads (prompt_toolkit's history loader, its
executor), and a process-directed SIGINT may be taken by one of them: Python would then
raise KeyboardInterrupt in the main thread in the middle of the engine's work (a thread
half-stepped over a breakpoint: the program crashes). So while a line runs, SIGINT raises
KeyboardInterrupt only outside the engine; inside, it is noted where the engine looks, as
``gocall call``'s own handlers do (a second one during a call leaves the callee to a
guardian, as there).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from ..process.signals import sigint_raises_outside_calls


def engine_safe_sigint() -> AbstractContextManager[None]:
    return sigint_raises_outside_calls()
