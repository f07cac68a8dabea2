"""Ctrl-C while a shell line runs (the terminal sends SIGINT).

The engine blocks SIGINT in the thread that traces (process/waiting.py) and acts on it at
its next safe point. But the shell has other threads (prompt_toolkit's history loader, its
executor), and a process-directed SIGINT may be taken by one of them: Python would then
raise KeyboardInterrupt in the main thread in the middle of the engine's work (a thread
half-stepped over a breakpoint: the program crashes). So while a line runs, SIGINT raises
KeyboardInterrupt only outside the engine; inside, it is recorded where the engine looks.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from ..process import waiting


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if waiting._depth:  # the engine is at work with SIGINT held: it unwinds at its next safe point
        waiting.interrupts.signal = signum
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def engine_safe_sigint() -> Iterator[None]:
    old = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
