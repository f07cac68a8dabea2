"""Calls into position-independent executables (``-buildmode=pie``), loaded at a random
base, on every release of the matrix: every address gocall reads from the file is moved
by the load bias (binary/pie.py), so functions, string arguments, package variables,
methods on globals through their runtime types, panics, goroutine lists, breakpoints
and their locals work as in a default build."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness import FIXTURES

import gocall
from gocall import GoPanic
from gocall.binary import GoBinary

PIE = ["-buildmode=pie"]


@pytest.fixture
def pie(build_fixture, start_target):  # type: ignore[no-untyped-def]
    return start_target(build_fixture("calls", PIE))


def test_calls_into_a_pie(pie) -> None:  # type: ignore[no-untyped-def]
    with gocall.attach(pie.pid) as proc:
        bias = proc.binary.bias
        assert bias != 0 and bias % 4096 == 0
        add = proc.binary.pclntab.func_by_name("main.Add")
        assert add is not None and add.entry == proc.binary.symbol("main.Add")
        with GoBinary.open(pie.binary) as linked:  # the file alone: addresses as linked
            assert linked.bias == 0 and linked.symbol("main.Add") == add.entry - bias
        assert proc.eval("main.Add(1, 2)") == 3
        assert proc.eval("main.Greet(7)") == "hello #7"
        assert proc.eval("main.Multi(3)") == (6, False, 3.5, "n=3")
        assert proc.eval("main.CallGC(2000)") == 2000 * 1999 // 2
        first = proc.eval("main.Counter")  # a package variable: DWARF's DW_OP_addr, moved
        assert first > 0
        with pytest.raises(GoPanic) as info:
            proc.eval("main.Boom(3)")
        assert info.value.value == "boom 3"
        assert proc.eval("main.Add(1, 1)") == 2  # the runtime recovered
        assert proc.eval("main.Counter") >= first
        assert len(proc.goroutines()) >= 2  # runtime.allgs and waitReasonStrings, moved
    pie.assert_healthy()


def test_methods_strings_and_interfaces_in_a_pie(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("values", PIE))
    with gocall.attach(target.pid) as proc:
        assert proc.eval("main.VPt.Sum()") == 3  # a method on a global
        assert proc.eval("main.VPtr.Sum()") == 7
        assert proc.eval("main.VShape.Area()") == 12  # through the interface's itab
        assert proc.eval('strings.Repeat("ab", 3)') == "ababab"  # a string literal, allocated in the target
        assert proc.eval("main.VTemp + 1") == 101
    target.assert_healthy()


def test_stripped_pie(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    """No symbol table: firstmoduledata, allgs and waitReasonStrings found in the data and code
    (binary/stripped.py), whose pointers are as linked in the file."""
    target = start_target(build_fixture("calls", [*PIE, "-ldflags=-s -w"]))
    with gocall.attach(target.pid) as proc:
        assert proc.binary.symbols == {} and proc.binary.bias != 0
        proc.declare("func main.Add(a, b int) int")
        assert proc.eval("main.Add(1, 2)") == 3
        assert len(proc.goroutines()) >= 2
    target.assert_healthy()


def test_breakpoint_and_locals_in_a_pie(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("breaks", PIE), ["loop"])
    with gocall.attach(target.pid) as proc:
        bp = proc.break_at("main.handle")
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp and stop.function == "main.handle"
        req_id = stop.eval("req.ID")
        assert 0 <= req_id < 20
        assert stop.eval("req.Path") == f"/loop/{req_id}"
        assert stop.eval("Double(req.ID) + 1") == 2 * req_id + 1
    assert target.proc.poll() is None


def test_launched_pie_stops_on_a_line(build_fixture) -> None:  # type: ignore[no-untyped-def]
    """Launched: the bias is known at the exec stop, before the dynamic loader has run;
    the line's address comes from DWARF's line table, as linked, and is moved."""
    source = (FIXTURES / "breaks" / "main.go").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "// LINE:handle" in text)
    with gocall.launch([str(build_fixture("breaks", PIE)), "loop"]) as proc:
        assert proc.binary.bias != 0
        bp = proc.break_at(f"main.go:{line}")
        handle = proc.binary.pclntab.func_by_name("main.handle")
        assert handle is not None and all(pc in handle for pc in bp.pcs)
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop) and stop.breakpoint is bp and stop.location.endswith(f"main.go:{line})")
        req_id = stop.eval("req.ID")
        assert stop.eval("req.Path") == f"/loop/{req_id}"


def test_info_reports_a_pie_callable(build_fixture) -> None:  # type: ignore[no-untyped-def]
    path = build_fixture("calls", PIE)
    out = subprocess.run([sys.executable, "-m", "gocall.cli.main", "info", "--json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    features = json.loads(out)["features"]
    assert features["pie"] and features["calls"] and features["refusal"] is None
