"""``gocall stack PID [GOID]``: a goroutine's frames, as a Go traceback prints them."""

from __future__ import annotations

from typing import Any

import click

from ..errors import GocallError
from ..runtime.unwind import Frame
from ..session import attach
from .goroutines import console, fail


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
    try:
        with attach(pid) as proc:
            gs = [proc.runtime.goroutine(goid)] if goid is not None else proc.runtime.goroutines()
            stacks = [(g, proc.runtime.frames(g)) for g in gs]
    except GocallError as e:
        fail(e)
    if as_json:
        console.json([{"goid": g.goid, "state": g.header, "frames": frames_json(f)} for g, f in stacks])
        return
    for g, frames in stacks:
        console.message(f"goroutine {g.goid} [{g.header}]:", style="bold")
        for fr in frames:
            for sf in fr.calls:
                user = not sf.function.startswith("runtime.")
                console.message(f"{sf.function}({'...' if sf.inlined else ''})", style="cyan" if user else None)
                where = f"\t{sf.file}:{sf.line}"
                if not sf.inlined:
                    where += f" +{fr.offset:#x} fp={fr.fp:#x} sp={fr.sp:#x} pc={fr.pc:#x}"
                console.message(where, style="dim")
        console.message("")
