"""Stack maps decoded by gocall against the compiler's own liveness report (-gcflags=-live).

For every call site in the ``runtime_live`` fixture the compiler prints the variables holding
live pointers across the call; each of them is one pointer word there, so at that call's
return address the locals and args bitmaps gocall decodes must mark exactly that many words,
and each *T parameter's spill slot (argp + 8*i: all parameters are register-assigned
pointers) must be marked exactly when the compiler names the parameter. Calls the compiler
says nothing about must have no live pointers at all.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

from harness import FIXTURES

from gocall.binary import GoBinary
from gocall.runtime import layouts
from gocall.runtime.roots import live_words
from gocall.runtime.unwind import Unwinder
from gocall.runtime.view import funcdata_of

PARAMS = {"chain": ["p", "q"], "branches": ["p", "n"], "loop": ["p", "q", "r", "n"], "many": list("abcde")}
_LIVE = re.compile(r"\./main\.go:(\d+):\d+: live at call to (\S+): (.*)$")
_TEXT = re.compile(r"TEXT main\.(\w+)\(SB\)")
_INSN = re.compile(r"\s+main\.go:(\d+)\s+(0x[0-9a-f]+)\s+[0-9a-f]+\s+(.*)$")
_CALL = re.compile(r"CALL (\S+)\(SB\)")


def _go(toolchain, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(toolchain.go), *args], cwd=cwd, env=toolchain.env(), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_stack_maps_match_compiler_liveness(go_toolchain, tmp_path: Path) -> None:
    binary_path = tmp_path / "runtime_live"
    built = _go(go_toolchain, "build", "-gcflags=-live", "-o", str(binary_path), ".", cwd=FIXTURES / "runtime_live")
    live: dict[tuple[int, str], list[set[str]]] = defaultdict(list)
    for line in built.stderr.splitlines():
        if m := _LIVE.match(line):
            live[int(m[1]), m[2]].append(set(m[3].split()))
    dump = _go(go_toolchain, "tool", "objdump", "-s", r"^main\.(chain|branches|loop|many)$", str(binary_path)).stdout

    # (function, line, callee) -> return addresses of those CALLs
    calls: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    func, pending = "", None
    for line in dump.splitlines():
        if m := _TEXT.match(line):
            func, pending = m[1], None
            continue
        if not (m := _INSN.match(line)):
            continue
        if pending is not None:
            calls[pending].append(int(m[2], 16))  # the next instruction: the return address
            pending = None
        if (c := _CALL.search(m[3])) and "morestack" not in c[1]:
            pending = (func, int(m[1]), c[1].rsplit(".", 1)[-1])

    with GoBinary.open(binary_path) as binary:
        layout = layouts.for_go(binary.go_version_tuple)
        funcdata = funcdata_of(binary, layout)
        unwinder = Unwinder(None, binary.pclntab, funcdata)  # type: ignore[arg-type]  # frame_at reads no memory
        checked = silent = 0
        for (name, line, callee), returns in calls.items():
            reported = live.get((line, callee), [])
            if len(returns) != 1 or len(reported) > 1:
                continue  # several calls to one callee on one line: cannot pair them up
            f = binary.pclntab.func_by_name(f"main.{name}")
            assert f is not None
            frame = unwinder.frame_at(f, returns[0], sp=0x10000)
            locals_, args, _ = live_words(frame, funcdata)
            names = reported[0] if reported else set()
            where = f"main.{name} line {line} call to {callee}: compiler says {sorted(names)}"
            assert len(locals_) + len(args) == len(names), f"{where}, gocall {len(locals_)} locals + {args}"
            for i, param in enumerate(PARAMS[name]):
                if param != "n":
                    assert (frame.argp + 8 * i in args) == (param in names), f"{where}: param {param}"
            checked += 1
            silent += not reported
    assert checked >= 25
    assert silent >= 1  # a call with nothing live: the last use1 in chain/many has no -live line
