"""How an evaluation reads as text: one module that ``gocall call``, ``gocall run`` and the
shell share, so a result looks the same in each."""

from __future__ import annotations

from ..expr.eval import Evaluation
from ..values.gofmt import format_value


def evaluation_text(ev: Evaluation, many: bool = False) -> tuple[str, str]:
    """``(text, kind)``: kind ``error`` (text is ``expr: message``), ``panic`` or ``value``;
    ``many`` prefixes values and panics with ``expr = ``."""
    prefix = f"{ev.expr} = " if many else ""
    if ev.error is not None:
        return f"{ev.expr}: {ev.error}", "error"
    if ev.panic is not None:
        return f"{prefix}panic: {format_value(ev.panic)} [recovered]", "panic"
    return prefix + ", ".join(format_value(r) for r in ev.results), "value"
