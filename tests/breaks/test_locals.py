"""What a new user meets first at a stop (issues 13 and 17), against tests/fixtures/locals on
every Go release, in -N -l and optimized builds:

* locals the compiler moved to the heap (DWARF's ``&a``) read, called, assigned, in every frame,
  an inner one shadowing an outer one;
* interface methods whose itab slot the linker stubbed (runtime.unreachableMethod) called on
  the dynamic type, refused only when the method is gone for good;
* blank receivers (``func (_ X) CallMe()``), which Go 1.19's DWARF leaves out;
* at an optimized stop, locals that are gone say so, and one bad ``--eval`` loses no other.

The fixture stops three times at runtime.Breakpoint(): in main, in inspect (called by main),
in folded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import gocall

DEBUG = ("-gcflags=all=-N -l",)
BUILDS = [pytest.param(DEBUG, id="N-l"), pytest.param((), id="optimized")]


class Err(tuple[str, ...]):
    """An expected error: its message contains one of these."""


GONE = Err(("optimized away", "not available"))  # how a local an optimized build dropped is answered


def _check(stop: gocall.Stop, table: list[tuple[str, Any]], frame: int = 0) -> list[str]:
    """The rows of ``table`` (expression, value or :class:`Err`, or a list of those that may
    each be the answer) that fail."""
    failures = []
    for expr, want in table:
        ev = stop.evaluate(expr, frame)
        ok = any(ev.error is not None and any(w in ev.error for w in alt) if isinstance(alt, Err) else
                 ev.error is None and ev.python_value == alt for alt in (want if isinstance(want, list) else [want]))
        if not ok:
            failures.append(f"frame {frame}: {expr}: {ev.error or ev.python_value!r} != {want!r}")
    return failures


def _stops(binary: str) -> Any:
    """Launch the fixture; yields (process, stop) at each of its three stops."""
    with gocall.launch([binary]) as proc:
        for _ in range(3):
            stop = proc.wait(30)
            assert isinstance(stop, gocall.Stop), stop
            yield proc, stop
            proc.cont()
        end = proc.wait(30)
        assert isinstance(end, gocall.Exited) and end.code == 0, end


@pytest.mark.parametrize("flags", BUILDS)
def test_escaped_locals(build_fixture, flags) -> None:
    """``a`` escapes through the method value a.PRcvr, ``ref`` through fmt.Fprintf(&ref, ...): DWARF
    names them &a and &ref (pointers to their heap copies). They used to be "not in the binary".
    An optimized build may keep a local nowhere at a given PC (Go 1.21-1.26 keep main's ``a``
    nowhere at the first stop): then it must say so."""
    binary = str(build_fixture("locals", flags))

    def kept(want: Any) -> Any:
        return want if flags else [want, GONE]

    failures: list[str] = []
    for n, (_, stop) in enumerate(_stops(binary)):
        if n == 0:  # main
            failures += _check(stop, [("a", kept({"X": 3})), ("a.X", kept(3)), ("a.VRcvr(1)", kept("1 + 3 = 4")),
                                      ("a.PRcvr(1)", kept("1 - 3 = -2")), ("ref.String()", kept("hello 7"))])
            if stop.evaluate("a").error is None:  # assignments write the heap copy
                assert stop.eval("a.X = 9") == 9 and stop.eval("a.PRcvr(1)") == "1 - 9 = -8"
                assert stop.eval("a = astruct{X: 3}") == {"X": 3} and stop.eval("a.X") == 3
                assert stop.locals()["a"].value == {"X": 3}
        elif n == 1:  # inspect: its own escaped a (shadowing the outer one) and b; main's one frame out
            failures += _check(stop, [("a.X", kept(20)), ("a.VRcvr(2)", kept("2 + 20 = 22")), ("b.X", kept(1))])
            failures += _check(stop, [("a.X", kept(3)), ("a.VRcvr(1)", kept("1 + 3 = 4")),
                                      ("ref.String()", kept("hello 7"))], frame=1)
    assert not failures, "\n".join(failures)


# Through interfaces whose itab slot holds runtime.unreachableMethod: the program never calls
# VRcvr or PRcvr through an interface, but calls them directly, so the concrete methods are there.
STUBBED_N_L = [
    ("vableA.VRcvr(5)", "5 + 3 = 8"),  # value receiver, value in the interface
    ("vablePA.VRcvr(5)", "5 + 6 = 11"),  # value receiver, pointer in the interface
    ("pablePA.PRcvr(5)", "5 - 6 = -1"),  # pointer receiver
    ("vableO.VRcvr(5)", "5 + 4 = 9"),  # promoted from the embedded astruct
    ("pableO.PRcvr(5)", "5 - 5 = 0"),  # promoted pointer method, through *outer
    ("vableL.VRcvr(5)", Err(("the linker removed this method (main.lonely.VRcvr)",))),  # gone for good
]
STUBBED = [  # package variables and call results: kept by optimized builds too
    ("getVable(6).VRcvr(5)", "5 + 6 = 11"), ("getPable(7).PRcvr(5)", "5 - 7 = -2"),
    ("GVableO.VRcvr(1)", "1 + 8 = 9"), ("GPableO.PRcvr(1)", "1 - 9 = -8"),
    ("GVableL.VRcvr(1)", Err(("the linker removed this method (main.lonely.VRcvr)",))),
]


@pytest.mark.parametrize("flags", BUILDS)
def test_stubbed_interface_methods(build_fixture, flags) -> None:
    binary = str(build_fixture("locals", flags))
    for _, stop in _stops(binary):
        failures = _check(stop, (STUBBED_N_L if flags else []) + STUBBED)
        assert not failures, "\n".join(failures)
        break


@pytest.mark.parametrize("flags", BUILDS)
def test_blank_receivers(build_fixture, flags) -> None:
    """Issue 17: ``func (_ X) CallMe()`` and ``func (_ X2) CallMe(i int) int``. Go 1.19's DWARF lists
    no blank receiver ("argument frame computed as 0 bytes but the binary says 8", "too many
    arguments"), nor do 1.20 and 1.21; it is restored from the method's name, checked against
    the argument frame. Other blank and unnamed parameters (no type in DWARF) come from the
    program's source."""
    binary = str(build_fixture("locals", flags))
    table: list[tuple[str, Any]] = [("GX.CallMe()", None), ("GX2.CallMe(5)", 25), ("main.X2(3).CallMe(4)", 16),
                                    ("GY.Unnamed(1, \"a\")", 1), ("GY.PtrBlank(1, 2)", 4),
                                    ("GY.PtrUnnamed(\"b\", 3)", 6), ("Blank(1, \"c\", 2)", 3)]
    if flags:
        table += [("x.CallMe()", None), ("x2.CallMe(5)", 25), ("x2.CallMe(x2.CallMe(2))", 16),
                  ("y.Unnamed(2, \"b\")", 1), ("y.PtrBlank(0, 5)", 10)]
    for _, stop in _stops(binary):
        failures = _check(stop, table)
        assert not failures, "\n".join(failures)
        break


def test_blank_parameters_without_source(build_fixture, go_toolchain) -> None:
    """Built with -trimpath, the program's source is not found: on Go 1.19-1.21 a blank receiver is
    still restored from the method's name, other parameters DWARF left out are refused as such."""
    binary = str(build_fixture("locals", ("-trimpath",)))
    gone = go_toolchain.release < (1, 22)
    missing = Err(("leaves out blank (_) or unnamed parameters",))
    table: list[tuple[str, Any]] = [("GX.CallMe()", None), ("GX2.CallMe(5)", 25),
                                    ("GY.PtrBlank(1, 2)", missing if gone else 4),
                                    ("Blank(1, \"c\", 2)", missing if gone else 3)]
    for _, stop in _stops(binary):
        failures = _check(stop, table)
        assert not failures, "\n".join(failures)
        break


def test_optimized_stop_says_what_is_gone(build_fixture) -> None:
    """Issue 13.5, at an optimized build's stops through ``gocall run``: no traceback (there was a
    pyelftools DWARFError from a linker DIE named like the local), a local the compiler removed
    says "optimized away", and a failing --eval loses none of the others."""
    binary = str(build_fixture("locals"))
    exprs = ["x", "s.Show(5)", "nosuch", "a.X", "GX2.CallMe(5)"]
    run = subprocess.run([sys.executable, "-m", "gocall.cli.main", "run", "--count", "3",
                          *(a for e in exprs for a in ("--eval", e)), "--", binary],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    lines = [line.removeprefix("gocall:").strip() for line in run.stderr.splitlines() if line.startswith("gocall:")]
    for expr in exprs:  # evaluated at each of the three stops
        assert sum(line.startswith((f"{expr}:", f"{expr} =")) for line in lines) == 3, (expr, run.stderr)
    assert lines.count("GX2.CallMe(5) = 25") == 3, run.stderr  # after the failures before it
    gone = [line for line in lines if line.startswith(("x:", "s.Show(5):"))]
    assert gone and all("optimized away" in line for line in gone), run.stderr


def test_interface_located_in_one_register(build_fixture) -> None:
    """tests/fixtures/oneregister, optimized: where the compiler's DWARF locates a whole
    interface in one register (Go 1.27: RAX, which holds only its data word), reading RAX as the
    interface decoded a "pointer" 0x28 and failed with an I/O error; it must read right or say
    the value is partly optimized away, never decode garbage."""
    binary = build_fixture("oneregister")
    source = Path(__file__).parent.parent / "fixtures" / "oneregister" / "main.go"
    line = next(n for n, text in enumerate(source.read_text().splitlines(), 1) if "// stop here" in text)
    with gocall.launch([str(binary)]) as proc:
        try:
            proc.break_at(f"main.go:{line}")
        except gocall.SymbolNotFound:  # Go < 1.25 gives the line no code of its own: the one before
            proc.break_at(f"main.go:{line - 1}")
        stop = proc.wait(30)
        assert isinstance(stop, gocall.Stop), stop
        i = stop.eval("i")
        failures = _check(stop, [("iface.String()", [str(i) + "ns", GONE]),
                                 ("total", 2 * i), ("*p", 2 * i)])
        assert not failures, "\n".join(failures)
