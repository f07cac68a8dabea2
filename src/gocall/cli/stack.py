"""``gocall stack PID [GOID]``: a goroutine's frames, as a Go traceback prints them."""

from __future__ import annotations

from typing import Any

import click

from ..runtime.unwind import Frame
from ..runtime.view import RuntimeView
from .goroutines import console, per_goroutine


def frames_json(frames: list[Frame]) -> list[dict[str, Any]]:
    return [{"function": sf.function, "file": sf.file, "line": sf.line, "inlined": sf.inlined,
             "pc": fr.pc, "sp": fr.sp, "fp": fr.fp, "offset": fr.offset}
            for fr in frames for sf in fr.calls]


@click.command()
@click.argument("pid", type=int)
@click.argument("goid", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def stack(pid: int, goid: int | None, as_json: bool) -> None:
    """Print the stack of goroutine GOID of process PID (every goroutine without GOID).

    Frames are those of a GOTRACEBACK=system traceback: runtime frames included,
    inlined calls as ``f(...)``, each physical frame with +offset fp= sp= pc=.

    \b
    JSON: [{"goid", "state", "frames": [{"function", "file", "line", "inlined",
                                         "pc", "sp", "fp", "offset"}, ...]}, ...]
    """
    per_goroutine(pid, goid, as_json, RuntimeView.frames, frames_json, _show)


def _show(frames: list[Frame]) -> None:
    for fr in frames:
        for sf in fr.calls:
            user = not sf.function.startswith("runtime.")
            console.message(f"{sf.function}({'...' if sf.inlined else ''})", style="cyan" if user else None)
            where = f"\t{sf.file}:{sf.line}"
            if not sf.inlined:
                where += f" +{fr.offset:#x} fp={fr.fp:#x} sp={fr.sp:#x} pc={fr.pc:#x}"
            console.message(where, style="dim")
