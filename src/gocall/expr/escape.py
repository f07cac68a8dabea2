"""The escape check: no pointer into the calling goroutine's stack is passed to a
function that may keep it.

The compiler only leaves an object on a goroutine stack when it has proved that
no pointer to it outlives the frame, and only for the calls the program makes.
An injected call is not one of them: a callee may store the pointer in the heap
or return it, and after the frame returns (or the stack moves when it grows,
which adjusts only the pointers the runtime knows of) it dangles. debugCallV2
cannot check this (runtime/debugcall.go), so the debugger must. As Delve does
(``fncall.go`` ``funcCallCopyOneArg``), every pointer word of every argument is
checked, not only top-level pointers, and so is every value gocall stores into an
object it allocates (``&T{...}``, slice and map literals, boxed interface values):
the heap keeps it. ``unsafe`` (``--unsafe``) turns the check off.

Unlike Delve, two things pass: a method's receiver (``req.Tag()`` on a local
``req := &Request{...}`` is what one calls at a stop, and the method is one the
program calls on such values) and a string's bytes (a kept string that dangles
reads wrong bytes but cannot corrupt the heap: the GC ignores pointers into
stack spans, ``findObject``'s ``mSpanManual`` case in runtime/mbitmap.go).
"""

from __future__ import annotations

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError
from ..runtime.goroutines import G
from ..values.pointers import pointer_words

__all__ = ["Escape", "check_escape"]


class Escape(ArgumentError):
    """A pointer into a goroutine stack would be passed where it may escape."""


def check_escape(t: GoType, image: bytes, text: str, role: str, g: G) -> None:
    """Raise :class:`Escape` if the value ``image`` (type ``t``, written ``text``) used as
    ``role`` (``argument 2 in call to main.F``) points into ``g``'s stack."""
    for path, word, kind in pointer_words(t, image):
        if kind != Kind.STRING and g.stack_lo <= word < g.stack_hi:
            where = f"{text}{path}" if path else text
            raise Escape(f"cannot use {text} as {role}: {where} points into goroutine {g.goid}'s stack "
                         f"({word:#x}) and may escape",
                         hint="pass it anyway with --unsafe (unsafe=True in Python) if it will not be kept")
