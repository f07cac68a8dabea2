"""Never wait in silence: one live line on the terminal saying what gocall waits for and why.

:class:`LiveStatus` observes the engine's waits (call/waits.py: a goroutine to reach Go
code, one goroutine to come back to it, a breakpoint hit, a callee to return) and, once the
innermost one has lasted :data:`DELAY` seconds, shows it with rich's live display on stderr,
updated every :data:`INTERVAL` seconds and erased the moment the wait ends, before anything
else is printed. Results never go through it: stdout and ``--json`` are the same with or
without a terminal. The CLI (``gocall call``) and the interactive shell share it.

The engine only tells a wait's start and end (a list append under a lock the drawing thread
takes ten times a second: no system call unless the two meet); timing and drawing happen on
a thread of this module's, started with every signal blocked: SIGINT, SIGTERM and SIGCHLD
must reach the thread that traces the target, which holds them until the target is safe
(process/waiting.py). Delivered to another thread instead, they would interrupt the main
thread at any bytecode, in the middle of a protocol step.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from ..call import waits

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["DELAY", "INTERVAL", "LiveStatus", "describe"]

DELAY = 0.3  # seconds a wait lasts before it is shown: most calls take well under a millisecond
INTERVAL = 0.1  # seconds between redraws (the counters, the time left, the spinner)
_SPINNER = ("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")  # rich's "dots"


class LiveStatus:
    """An observer of the engine's waits that shows the innermost one that has lasted
    :data:`DELAY` seconds on the rich console ``console()`` returns (a terminal's; asked for,
    and rich imported, only when there is something to show: ~40 ms of a CLI start that
    prints to pipes). Use as a context manager around the waits; set it as ``proc.observer``::

        with console.live_status() as status:   # cli/console.py: None when not on a terminal
            proc.observer = status
    """

    def __init__(self, console: Callable[[], Console]) -> None:
        self._console = console
        self._waits: list[waits.Wait] = []  # begun and not done, outermost first
        self._lock = threading.Lock()  # the list and the display: both threads change them
        self._live: Live | None = None  # the line, while shown
        self._closing = threading.Event()
        self._broken = False  # drawing failed (the terminal went away): no more lines
        self._thread = threading.Thread(target=self._run, name="gocall-status", daemon=True)

    def __enter__(self) -> LiveStatus:
        # A thread starts with its creator's signal mask: block all, start it, unblock.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closing.set()
        self._thread.join()  # gone before the CLI exits (cli/main.py: _exit)
        with self._lock:
            self._waits.clear()
            self._hide()

    # -- the engine's side (call/waits.Observer) ------------------------------------

    def waiting(self, wait: waits.Wait) -> None:
        with self._lock:
            self._waits.append(wait)

    def done(self, wait: waits.Wait) -> None:
        with self._lock:
            if wait in self._waits:  # (not after __exit__)
                self._waits.remove(wait)
            if not self._waits:
                self._hide()  # now, not at the next redraw: what is printed next must not meet it

    # -- the drawing thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.wait(INTERVAL) and not self._broken:
            with self._lock:
                self._draw(time.monotonic())

    def _draw(self, now: float) -> None:
        wait = next((w for w in reversed(self._waits) if now - w.since >= DELAY), None)
        if wait is None:
            self._hide()
            return
        try:
            from rich.live import Live
            from rich.text import Text

            # One line, cut to the terminal's width: a wrapped line would not be erased whole.
            frame = _SPINNER[int(now / 0.08) % len(_SPINNER)]
            line = Text.assemble((frame, "cyan"), " ", describe(wait, now), no_wrap=True, overflow="ellipsis")
            if self._live is None:
                self._live = Live(line, console=self._console(), transient=True, auto_refresh=False,
                                  redirect_stdout=False, redirect_stderr=True)  # fmt: skip
                self._live.start(refresh=True)
            else:
                self._live.update(line, refresh=True)
        except Exception:  # noqa: BLE001 - see _hide
            self._broken = True
            self._hide()

    def _hide(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            # The line is commentary: a terminal gone or failing must not disturb the call it
            # describes (this runs inside the engine's waits), so any failure only ends the line.
            try:
                live.stop()  # transient: the line is erased
            except Exception:  # noqa: BLE001
                self._broken = True


def describe(wait: waits.Wait, now: float) -> str:
    """The status line's text for ``wait`` at time ``now``."""
    if isinstance(wait, waits.Callee):
        return _callee(wait, now)
    if wait.interrupted:
        return "interrupted; giving up (the target is left as it was)"
    # The time first: a line longer than the terminal is cut at its end.
    if isinstance(wait, waits.AnyGoroutine):
        return " — ".join([f"waiting for a goroutine to run Go code ({_left(wait.deadline, now)})", *_goroutines(wait)])
    if isinstance(wait, waits.OneGoroutine):
        return " — ".join([f"waiting for goroutine {wait.goid} to run Go code ({_left(wait.deadline, now)})",
                           *([wait.state] if wait.state else []), "Ctrl-C to give up"])  # fmt: skip
    if isinstance(wait, waits.Hit):
        return _hit(wait, now)
    return "waiting"


def _goroutines(wait: waits.AnyGoroutine) -> list[str]:
    if wait.seen is None:
        return ["Ctrl-C to give up"]
    total, running, blocked = wait.seen
    reasons = ", ".join(f"{n} {reason}" for reason, n in blocked)
    if not running:
        return [f"{_plural(total, 'goroutine')}, all blocked ({reasons})", "give the program work, or Ctrl-C"]
    return [f"{_plural(total, 'goroutine')}: {running} running, none at a safe point"
            + (f", {total - running} blocked ({reasons})" if blocked else ""), "Ctrl-C to give up"]


def _hit(wait: waits.Hit, now: float) -> str:
    where = ", ".join(map(str, wait.breakpoints))
    hits, tests = wait.hits, wait.tests
    counts = "no hit yet" if not hits else _plural(hits, "hit")
    if any(b.condition for b in wait.breakpoints):
        counts += f", {_plural(tests, 'condition test')}"
    elapsed = _seconds(now - wait.since) + (f" of {_seconds(wait.deadline - wait.since)}" if wait.deadline else "")
    return f"waiting for a hit ({elapsed}) — {counts} — {where} — Ctrl-C to stop waiting"


def _callee(wait: waits.Callee, now: float) -> str:
    on = f" on goroutine {wait.goroutine}" if wait.goroutine is not None else ""
    elapsed = _seconds(now - wait.since)
    if wait.interrupted:
        return f"interrupted — {wait.function} still running ({elapsed}); gocall stops once it returns " \
               "(a call cannot be cut short)"
    return f"{wait.function} running for {elapsed}{on} — Ctrl-C: gocall stops once it returns " \
           "(a call cannot be cut short)"


def _left(deadline: float, now: float) -> str:
    return f"{max(0, math.ceil(deadline - now))} s left"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
