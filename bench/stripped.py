#!/usr/bin/env python3
"""Time to the first result on a binary without DWARF (issue 16), beside the DWARF path.

Usage: python bench/stripped.py [RUNS]    (default 5)

The cmd/go-sized target of cold_attach.py (cmd/go of Go 1.19 with hot.go overlaid,
targets.py) built twice: as cold_attach.py builds it (DWARF) and with ``-ldflags='-s -w'``
(no DWARF, no symbol table: signatures from Go source, gocall/gosource/). For each, RUNS
runs of ``gocall call PID EXPR``, spawn to exit, for an int -> string function, two with a
string argument (the runtime's mallocgc, runtime/injected.py), all of the standard library
(their source from Go 1.19's GOROOT), each with an empty cache (``XDG_CACHE_HOME``
of its own: DWARF indexed, or Go source read and parsed) and a warm one (the run before
filled it). Prints a table of medians (wall and CPU; CPU is what to compare on a loaded
machine), then one JSON line. No timing is asserted anywhere.
"""

from __future__ import annotations

import compileall
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cold_attach import gocall_command, run_with_cache  # noqa: E402
from targets import Stats, cmdgo_binary, load, running  # noqa: E402

import gocall  # noqa: E402

# Standard-library functions: cmd/go's main package is in GOROOT, but hot.go is overlaid from
# bench/fixtures/small and is not where the binary says it is, so main.Add has no source here.
EXPRS = {"strconv.Itoa(42)": '"42"', 'strings.ToUpper("abc")': '"ABC"', 'strings.Repeat("ab", 3)': '"ababab"'}
BUILDS = {"dwarf": (), "stripped": ("-ldflags=-s -w",)}


def measure(runs: int) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for build, flags in BUILDS.items():
        binary = cmdgo_binary(flags)
        with running(binary) as target, tempfile.TemporaryDirectory() as tmp:
            for expr, want in EXPRS.items():
                call = [*gocall_command(), "call", str(target.pid), expr]
                warm = os.path.join(tmp, f"warm-{len(out)}-{abs(hash(expr))}")
                run_with_cache(call, warm)  # fills the warm cache
                empty, cached = [], []
                for i in range(runs):  # interleaved: load changes hit both alike
                    empty.append(run_with_cache(call, os.path.join(tmp, f"empty-{abs(hash(expr))}-{i}")))
                    cached.append(run_with_cache(call, warm))
                bad = [r for r in empty + cached if r.returncode != 0 or r.stdout.strip().splitlines()[0] != want]
                row: dict[str, object] = {"binary_mb": round(binary.stat().st_size / 2**20, 1)}
                if bad:
                    row["note"] = f"failed: {bad[0].stdout.strip()[-300:]}"
                else:
                    for key, rs in (("empty", empty), ("warm", cached)):
                        row[key] = Stats.of([r.seconds for r in rs])
                        row[f"{key}_cpu"] = Stats.of([r.cpu_seconds for r in rs])
                out[f"{build} {expr}"] = row
            assert target.alive
    return out


def main(runs: int = 5) -> None:
    compileall.compile_dir(os.path.dirname(gocall.__file__), quiet=1)  # as pip install leaves it
    before = load()
    results = measure(runs)
    print(f"gocall call PID EXPR, spawn to exit, ms median (wall / CPU), {runs} runs; load {before} -> {load()}")
    print(f"{'':<40} {'empty cache':>17} {'warm cache':>17}")

    def cell(row: dict[str, object], key: str) -> str:
        wall, cpu = row.get(key), row.get(f"{key}_cpu")
        return f"{wall.median:7.0f} / {cpu.median:6.0f}" if isinstance(wall, Stats) and isinstance(cpu, Stats) \
            else f"{'-':>17}"

    for name, row in results.items():
        print(f"{name:<40} {cell(row, 'empty'):>17} {cell(row, 'warm'):>17} {row.get('note', '')}")
    print(json.dumps({name: {k: v.to_json() if isinstance(v, Stats) else v for k, v in row.items()}
                      for name, row in results.items()}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
