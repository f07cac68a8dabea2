"""Calls into the kinds of build production fleets run: -race and real cgo, on every
release of the matrix (PIE: test_pie.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import FIXTURES

import gocall

_CGO = '''package main

/*
static int twice(int x) { return 2 * x; }
*/
import "C"

// Twice makes this a real cgo program: runtime/cgo is linked, threads start through libc.
func Twice(x int) int { return int(C.twice(C.int(x))) }

var _ = Twice
'''


def test_race_build(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("calls", ["-race"], env={"CGO_ENABLED": "1"}))
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
        assert proc.eval("main.Greet(7)") == "hello #7"
    target.assert_healthy()


def test_cgo_build(build_fixture, start_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "calls-cgo"  # the calls fixture plus a file importing "C"; cached by content
    shutil.copytree(FIXTURES / "calls", src)
    (src / "cgo.go").write_text(_CGO)
    target = start_target(build_fixture(src, env={"CGO_ENABLED": "1"}))
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.Add(1, 2)") == 3
    target.assert_healthy()
