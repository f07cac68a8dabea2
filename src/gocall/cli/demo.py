"""``gocall demo``: the bundled example, built, started, called into, stopped."""

from __future__ import annotations

import subprocess
import time
from importlib import resources
from pathlib import Path

from ..errors import GocallError
from ..session import attach
from ..toolchain import find_go
from ..values.gofmt import format_value
from .console import Console

CALLS = (
    "main.Add(40, 2)",
    "main.Scale(19.99, true)",
    "main.OrderCount()",
    "main.Revenue()",
    "main.Describe(7)",
    "main.OrderCount()",
)


def run_demo(console: Console, keep: bool = False) -> None:
    go = find_go()
    src = Path(str(resources.files("gocall") / "demo"))
    console.note(f"building the demo shop with {go.version} ...")
    binary = go.build_cached(src)
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ready"):
            raise GocallError(f"the demo did not start (it printed {line!r})")
        console.message(f"started {binary.name} as pid {proc.pid}; it serves orders on a goroutine")
        with attach(proc.pid) as target:
            for expr in CALLS:
                t0 = time.perf_counter()
                ev = target.evaluate(expr)
                ms = (time.perf_counter() - t0) * 1e3
                if ev.error:
                    console.error(f"{expr}: {ev.error}")
                    continue
                value = ", ".join(format_value(r) for r in ev.results)
                console.message(
                    f"  {expr} = {value}    [goroutine {ev.goroutine}, stopped in {ev.location}, {ms:.2f} ms]"
                )
        alive = proc.poll() is None
        console.message(f"the shop is {'still running' if alive else 'NOT running'} after the calls")
        if keep:
            console.message(f"left running: try  gocall call {proc.pid} 'main.Revenue()'  then  kill {proc.pid}")
            return
    finally:
        if not keep and proc.poll() is None:
            proc.terminate()
            proc.wait(5)
    console.message("stopped the shop")
