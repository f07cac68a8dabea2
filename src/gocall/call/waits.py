"""What the engine is waiting for, told to an observer while it waits (a front end's live
status line, cli/status.py). The engine never prints.

An observer is told :meth:`Observer.waiting` when a wait begins and :meth:`Observer.done`
when it ends; waits nest (a condition's call inside a wait for a hit). In between, the
engine updates the wait's fields as it learns more, and the observer reads them when it
likes, from any thread: each field is one attribute, replaced whole.

Nothing here costs anything when nobody listens: the engine makes a wait only when an
observer is set, and only once the quick path has failed (a goroutine not at a safe point
at the first look), except :class:`Callee`, one object per call.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ..process.waiting import interrupts
from ..runtime.goroutines import G, Status
from ..runtime.sched import ResumePoint


class Observer(Protocol):
    def waiting(self, wait: Wait) -> None:
        """``wait`` began (inside the waits already begun and not done)."""

    def done(self, wait: Wait) -> None:
        """``wait`` ended, however (found, returned, timed out, interrupted, failed)."""


class Wait:
    """A wait in progress, since ``since`` (time.monotonic())."""

    # Plain classes with __slots__: a dataclass compiles its methods at import, cold-start time.
    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.monotonic()

    @property
    def interrupted(self) -> bool:
        """Ctrl-C (SIGINT/SIGTERM) was collected during the wait and will be acted on at the
        next safe step (process/waiting.py)."""
        return interrupts.signal is not None


class AnyGoroutine(Wait):
    """No goroutine runs Go user code at a safe point: waiting (until ``deadline``) for one
    to get there. ``seen``, once goroutines were looked at: how many user goroutines, how
    many of them running, and the others counted by wait reason (``("IO wait", 8)``), most
    first."""

    __slots__ = ("deadline", "seen")

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.seen: tuple[int, int, list[tuple[str, int]]] | None = None


class OneGoroutine(Wait):
    """``--goroutine N``: waiting (until ``deadline``) for goroutine ``goid`` to be where a call
    may be injected. ``state``: what it does now, as the engine last saw it (``"IO wait in
    net.(*pollDesc).wait called from main.serve (main.go:42)"``, ``"running"``)."""

    __slots__ = ("deadline", "goid", "state")

    def __init__(self, goid: int, deadline: float) -> None:
        super().__init__()
        self.goid = goid
        self.deadline = deadline
        self.state = ""


class Counted(Protocol):
    """What a wait for a hit reads of a breakpoint (stops/breakpoint.py)."""

    condition: str | None
    hits: int
    tests: int
    missed: int


class Hit(Wait):
    """Waiting for a breakpoint to be hit (until ``deadline``, or for ever when None); the
    breakpoints' counters go up while it waits."""

    __slots__ = ("breakpoints", "deadline")

    def __init__(self, breakpoints: Sequence[Counted], deadline: float | None) -> None:
        super().__init__()
        self.breakpoints = breakpoints
        self.deadline = deadline

    @property
    def hits(self) -> int:
        """Times a breakpoint was reached by the program: conditions tested (a true one
        included), untested ones let go, and stops of unconditional ones."""
        return sum((b.tests if b.condition else b.hits) + b.missed for b in self.breakpoints)

    @property
    def tests(self) -> int:
        return sum(b.tests for b in self.breakpoints)


class Callee(Wait):
    """A called function runs (on goroutine ``goroutine``'s thread): a started call must be
    seen through, so Ctrl-C only takes effect once it returns (call/protocol.py)."""

    __slots__ = ("function", "goroutine")

    def __init__(self, function: str, goroutine: int | None) -> None:
        super().__init__()
        self.function = function
        self.goroutine = goroutine


def blocked(parked: Iterable[tuple[G, ResumePoint | None]], running: int,
            reason: Callable[[G], str]) -> tuple[int, int, list[tuple[str, int]]]:  # fmt: skip
    """:attr:`AnyGoroutine.seen` from the goroutines that are not running and where each
    next returns to user code (None: a system goroutine, never; not counted)."""
    reasons = Counter(reason(g) for g, point in parked if point is not None)
    return sum(reasons.values()) + running, running, reasons.most_common()


def state(g: G, point: ResumePoint | None, reason: str) -> str:
    """:attr:`OneGoroutine.state` of a goroutine that is not running."""
    if g.status == Status.RUNNING:
        return "running"
    if point is None:
        return f"{reason}, a system goroutine (it never returns to user code)"
    where = f"{point.function} ({os.path.basename(point.file)}:{point.line})"
    return f"{reason} in {point.callee} called from {where}" if point.callee else f"{reason} at {where}"
