"""``gocall roots PID [GOID]``: how the garbage collector would scan a goroutine's stack."""

from __future__ import annotations

from typing import Any

import click

from ..runtime.roots import CONSERVATIVE, FrameRoots
from ..runtime.view import RuntimeView
from .goroutines import console, per_goroutine, table


def roots_json(roots: list[FrameRoots]) -> list[dict[str, Any]]:
    return [{
        "function": r.frame.function, "pc": r.frame.pc, "sp": r.frame.sp, "mode": r.mode, "why": r.why or None,
        "stackmap_index": r.stackmap_index,
        "slots": [{"addr": s.addr, "value": s.value, "area": s.area, "offset": s.offset, "to_stack": s.to_stack,
                   "heap": None if s.heap is None else {"base": s.heap.base, "size": s.heap.size}}
                  for s in r.slots],
        "stack_objects": [{"addr": o.addr, "size": o.size, "ptrdata": o.ptrdata} for o in r.objects],
    } for r in roots]


@click.command()
@click.argument("pid", type=int)
@click.argument("goid", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def roots(pid: int, goid: int | None, as_json: bool) -> None:
    """Show, frame by frame, the pointers the GC finds on goroutine GOID's stack
    (every goroutine without GOID).

    Precise frames list the live pointer slots of the compiler's stack maps at the
    frame's PC; conservative frames (asyncPreempt, debugCallV2 and the frame each
    interrupted, which have no usable maps) list every word pointing into the heap
    or the stack. Offsets are from the frame's CFA (its caller's SP).

    \b
    JSON: [{"goid", "state", "frames": [{"function", "pc", "sp", "mode", "why",
            "stackmap_index", "slots": [{"addr", "value", "area", "offset", "to_stack",
            "heap": {"base", "size"} | null}], "stack_objects": [{"addr", "size", "ptrdata"}]}]}]
    """
    per_goroutine(pid, goid, as_json, RuntimeView.roots, roots_json, _show)


def _show(roots: list[FrameRoots]) -> None:
    for text, style in roots_lines(roots):
        console.message(text, style=style)


def roots_lines(roots: list[FrameRoots]) -> list[tuple[str, str | None]]:
    """One goroutine's frames as ``gocall roots`` prints them (and the shell's ``roots``): each
    line with its style."""
    lines: list[tuple[str, str | None]] = []
    for r in roots:
        style = "yellow" if r.mode == CONSERVATIVE else None
        lines.append((f"  {r.frame.function} pc={r.frame.pc:#x} sp={r.frame.sp:#x}: {r.mode}"
                      + (f" ({r.why})" if r.why else ""), style))
        rows = []
        for s in r.slots:
            target = "stack" if s.to_stack else (f"heap {s.heap.base:#x}+{s.value - s.heap.base} "
                                                 f"(size {s.heap.size})" if s.heap else "not heap")
            rows.append((s.area, f"{s.offset:+d}", f"{s.addr:#x}", f"{s.value:#x}", target))
        if rows:
            lines += [("      " + line, None) for line in table(rows, ("AREA", "CFA", "ADDR", "VALUE", "POINTS TO"))]
        lines += [(f"      stack object {o.addr:#x} size {o.size} ptrdata {o.ptrdata}", "dim") for o in r.objects]
    return lines
