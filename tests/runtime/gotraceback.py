"""Parse the Go runtime's own goroutine dumps (runtime.Stack, SIGQUIT tracebacks): the oracle.

Format (runtime/traceback.go ``goroutineheader``, ``traceback2``, ``printcreatedby1``)::

    goroutine 6 [chan receive]:                 (GOTRACEBACK=system: "goroutine 6 gp=0x… m=nil [chan receive]:")
    main.inner(...)                             an inlined frame: no offset
    \t/path/main.go:43
    main.middle(0x5a19e0?, 0x2828ebd507a0)
    \t/path/main.go:47 +0x27 fp=0x… sp=0x… pc=0x…   (fp/sp/pc only at GOTRACEBACK=system)
    created by main.main in goroutine 1
    \t/path/main.go:158 +0xe5
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[(.*)\]:$")
_CALL = re.compile(r"(.+)\((.*)\)$")
_WHERE = re.compile(r"\t(.+):(\d+)(?: \+(0x[0-9a-f]+))?(?: fp=(0x[0-9a-f]+) sp=(0x[0-9a-f]+) pc=(0x[0-9a-f]+))?$")
_CREATED = re.compile(r"created by (\S+)(?: in goroutine (\d+))?$")


@dataclass
class GoFrame:
    function: str
    file: str
    line: int
    inlined: bool
    offset: int | None = None
    fp: int | None = None
    sp: int | None = None
    pc: int | None = None


@dataclass
class GoGoroutine:
    goid: int
    state: str
    frames: list[GoFrame] = field(default_factory=list)
    created_by: GoFrame | None = None


def parse(text: str) -> dict[int, GoGoroutine]:
    """Every goroutine of a dump, by id."""
    result: dict[int, GoGoroutine] = {}
    lines = text.splitlines()
    current: GoGoroutine | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _HEADER.match(line):
            current = GoGoroutine(int(m[1]), m[2])
            result[current.goid] = current
        elif current is not None and i + 1 < len(lines) and (w := _WHERE.match(lines[i + 1])):
            def num(s: str | None) -> int | None:
                return None if s is None else int(s, 16)

            if c := _CREATED.match(line):
                current.created_by = GoFrame(c[1], w[1], int(w[2]), False, num(w[3]))
            elif c := _CALL.match(line):
                current.frames.append(GoFrame(c[1], w[1], int(w[2]), c[2] == "...", num(w[3]),
                                              num(w[4]), num(w[5]), num(w[6])))
            i += 1
        elif not line.strip():
            current = None
        i += 1
    return result
