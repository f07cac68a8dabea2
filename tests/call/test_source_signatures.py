"""Issue 16: binaries without DWARF called with no --declare, their signatures read from Go
source (gocall/gosource/): the program's from the paths the binary records or --source, the
standard library's from a GOROOT of the binary's release. On every release of the matrix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness import FIXTURES

import gocall
from gocall.errors import ArgumentError, SymbolNotFound
from gocall.toolchain import known_toolchains
from gocall.values.gofmt import format_value

GEO = "example.com/shipped/geo"

# (expression, its results as gocall prints them): ints, strings, slices, structs by value and
# by pointer, methods of each receiver kind, several results, errors, standard-library functions.
CALLS = [
    ("main.Add(1, 2)", "3"),
    ('main.Join("x", "y")', '"x+y"'),
    ("main.Sum([]int{1, 2, 3})", "6"),
    ("main.Scale(geo.Point{X: 1, Y: 2}, 3)", f"{GEO}.Point{{X:3, Y:6}}"),
    ("main.Move(&geo.Point{X: 1}, 4)", "5"),
    ('main.NewShape("box", "a", "b").Describe(true)', '"box at (1,2) w=1.5 flag=true tags=a+b kind=box"'),
    ('main.NewShape("box").W', "1.5"),
    ("main.Divide(7, 2)", "3, <nil>"),
    ("main.Divide(7, 0)", '0, &errors.errorString{s:"divide 7 by zero"} /* divide 7 by zero */'),
    ('main.Split("a,b,c")', '"a", []string{"b", "c"}, 3'),
    ("main.TheCounter().Incr(0)", None),
    ("main.(*Counter).Incr(&main.Counter{n: 5}, 2)", "7"),  # a method expression: the receiver first
    ("geo.Point{X: -3, Y: 4}.Norm1()", "7"),
    ('geo.Label("hi").Shout()', '"HI!"'),
    ("strconv.Itoa(42)", '"42"'),
    ('strings.ToUpper("abc")', '"ABC"'),
    ('strings.Repeat("ab", 3)', '"ababab"'),
    ("main.Timeout().String()", '"1.5s"'),  # a method of a standard-library type (time.Duration)
]


def _check(proc: gocall.Process) -> None:
    for expr, want in CALLS:
        ev = proc.evaluate(expr)
        assert ev.error is None, f"{expr}: {ev.error}"
        if want is not None:
            assert ", ".join(format_value(r) for r in ev.results) == want, expr


@pytest.fixture
def shipped(build_fixture, start_target):  # type: ignore[no-untyped-def]
    return start_target(build_fixture("shipped", ["-ldflags=-s -w"]))


@pytest.fixture
def trimmed(build_fixture, start_target):  # type: ignore[no-untyped-def]
    return start_target(build_fixture("shipped", ["-trimpath", "-ldflags=-s -w"]))


def test_stripped_binary_needs_no_declarations(shipped) -> None:  # type: ignore[no-untyped-def]
    """The program's source from the paths the binary records; the standard library's from the
    toolchain of the same release (the one that built it is on this machine)."""
    with gocall.attach(shipped.pid) as proc:
        assert proc.binary.dwarf is None
        _check(proc)
        sig = proc.binary.pclntab.func_by_name("strings.ToUpper")
        assert sig is not None
        fn = proc.evaluator.names.function("strings.ToUpper")
        assert fn is not None and fn.sig.origin.startswith("Go source ") and "/src/strings/" in fn.sig.origin
    shipped.assert_healthy()


def test_trimpath_binary_with_source(trimmed) -> None:  # type: ignore[no-untyped-def]
    """-trimpath records module-relative paths: the program's source is found with --source,
    whose go.mod names the binary's main module."""
    with gocall.attach(trimmed.pid) as proc:
        ev = proc.evaluate("main.Add(1, 2)")
        assert ev.error is not None and "--source" in ev.error and "example.com/shipped/main.go" in ev.error
        assert "func main.Add(" in (ev.exception.hint or "") if ev.exception else False
        proc.use_source(source=[str(FIXTURES / "shipped")])
        _check(proc)
    trimmed.assert_healthy()


def test_source_of_another_version_is_refused(trimmed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A declaration that disagrees with the binary's frame size is refused before anything is
    injected, with both sizes and the file it came from."""
    src = tmp_path / "shipped"
    shutil.copytree(FIXTURES / "shipped", src)
    main = src / "main.go"
    main.write_text(main.read_text().replace("func Add(a, b int) int { return a + b }",
                                             "func Add(a, b, c int) int { return a + b + c }"))
    with gocall.attach(trimmed.pid) as proc:
        proc.use_source(source=[str(src)])
        with pytest.raises(ArgumentError, match=r"main.Add from Go source .*/shipped/main.go:\d+ gives a 24-byte "
                           r"argument frame, the binary's is 16 bytes") as e:
            proc.eval("main.Add(1, 2, 3)")
        assert "--source" in (e.value.hint or "")
    trimmed.assert_healthy()


def test_goroot_of_another_release_is_refused(build_fixture, go_toolchain, start_target) -> None:  # type: ignore[no-untyped-def]
    """--goroot of another release: time.sendTime gained a parameter in Go 1.23 (the timer
    rewrite); the standard library of the wrong release is refused with both frame sizes."""
    others = [t for t in known_toolchains() if (t.release >= (1, 23)) != (go_toolchain.release >= (1, 23))]
    if not others:
        pytest.skip("needs toolchains on both sides of Go 1.23")
    target = start_target(build_fixture("shipped", ["-ldflags=-s -w"]))
    with gocall.attach(target.pid) as proc:
        proc.use_source(goroot=str(others[0].goroot))
        args = "nil, 0" if go_toolchain.release >= (1, 23) else "nil, 0, 0"
        with pytest.raises(ArgumentError, match=r"time.sendTime from Go source .*/src/time/sleep.go:\d+ gives a "
                           r"\d+-byte argument frame, the binary's is \d+ bytes") as e:
            proc.eval(f"time.sendTime({args})")
        assert "--goroot" in (e.value.hint or "")
    target.assert_healthy()


def test_names_not_in_the_binary_are_said_so(shipped) -> None:  # type: ignore[no-untyped-def]
    """runtime.NumCPU is not linked into the fixture: said so, never a made-up main.runtime."""
    with gocall.attach(shipped.pid) as proc:
        with pytest.raises(SymbolNotFound, match=r"runtime.NumCPU is not in the binary") as e:
            proc.eval("runtime.NumCPU()")
        assert "main.runtime" not in str(e.value) and "never calls" in str(e.value)
        with pytest.raises(SymbolNotFound, match=r"no package sha256 is linked into the binary"):
            proc.eval("sha256.Sum256(nil)")
    shipped.assert_healthy()


def test_variable_of_a_binary_without_symbols_or_source(trimmed) -> None:  # type: ignore[no-untyped-def]
    """-trimpath -s -w, no --source: a package variable cannot be told from a typo; said why."""
    with gocall.attach(trimmed.pid) as proc:
        with pytest.raises(SymbolNotFound, match=r"neither DWARF nor a symbol table") as e:
            proc.eval("main.counter.Incr(0)")
        assert "undefined: main.counter" in str(e.value) and "--source" in str(e.value)
    trimmed.assert_healthy()


def test_package_variables_from_the_symbol_table(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    """-w keeps the symbol table: a package variable's address is there, its type in the source.
    -s drops it: said so."""
    kept = start_target(build_fixture("shipped", ["-ldflags=-w"]))
    with gocall.attach(kept.pid) as proc:
        assert proc.binary.dwarf is None and proc.binary.has_symtab
        assert format_value(proc.evaluate("main.Origin").results[0]) == f"{GEO}.Point{{X:7, Y:-7}}"
        assert proc.eval("main.Origin.Norm1()") == 14
        assert proc.eval("main.bad") == 0 and proc.eval("main.checks > 0") is True
    kept.assert_healthy()
    stripped = start_target(build_fixture("shipped", ["-ldflags=-s -w"]))
    with gocall.attach(stripped.pid) as proc, pytest.raises(SymbolNotFound, match="no symbol table"):
        proc.eval("main.Origin")
    stripped.assert_healthy()


def test_info_says_where_signatures_come_from(build_fixture) -> None:  # type: ignore[no-untyped-def]
    """gocall info: GOROOT of the release and the program's directory; -trimpath: what is missing."""
    from gocall.binary import GoBinary
    from gocall.cli.info import describe

    with GoBinary.open(build_fixture("shipped", ["-ldflags=-s -w"])) as binary:
        said = describe(binary)["signatures"]
        assert said.startswith(f"Go source: GOROOT {binary.go_version} (") and said.endswith("/fixtures/shipped")
    with GoBinary.open(build_fixture("shipped", ["-trimpath", "-ldflags=-s -w"])) as binary:
        assert describe(binary)["signatures"].endswith("(no source of package main)")
        assert describe(binary, sources=(str(FIXTURES / "shipped"),))["signatures"].endswith("/fixtures/shipped")
    with GoBinary.open(build_fixture("shipped")) as binary:
        assert describe(binary)["signatures"] == "DWARF"


VALUES_WITHOUT_DWARF = [  # tests/fixtures/values built -w: package variables typed from their declarations
    ("main.VPt.X", "1"),                      # var VPt = Point{1, 2}: a composite literal's type
    ("main.VPtr.Sum()", "7"),                 # &Point{3, 4}
    ("main.VRect.Max.Y", "3"),
    ("main.VInts[2]", "3"),
    ('main.VStr', '"hello, 世界"'),             # an untyped constant's default type
    ("main.VTemp + 1", "101"),                # var VTemp Celsius = 100
    ("main.VShape.Area()", "12"),             # a named interface: dispatched through its itab
    ("main.VErr.Error()", '"code 7"'),
    ("main.VList.Next.Next.V", "3"),          # a recursive type
    ('main.Wide(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "w")', '"66w"'),  # "a, b, ..., k int": names, not types
]


def test_values_without_dwarf(build_fixture, start_target) -> None:  # type: ignore[no-untyped-def]
    target = start_target(build_fixture("values", ["-ldflags=-w"]))
    with gocall.attach(target.pid) as proc:
        assert proc.binary.dwarf is None
        for expr, want in VALUES_WITHOUT_DWARF:
            ev = proc.evaluate(expr)
            assert ev.error is None, f"{expr}: {ev.error}"
            assert ", ".join(format_value(r) for r in ev.results) == want, expr
    target.assert_healthy()


def test_cli_source_at_a_breakpoint(trimmed) -> None:  # type: ignore[no-untyped-def]
    """gocall call --break takes --source (and --goroot, --declare) as plain calls do."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "gocall.cli.main", "call", str(trimmed.pid), "--break", "main.Join", "--timeout", "30"]
    r = subprocess.run([*cmd, "--source", str(FIXTURES / "shipped"), "main.Add(1, 2)"], capture_output=True,
                       text=True, timeout=90)
    assert (r.returncode, r.stdout) == (0, "3\n"), r.stderr
    r = subprocess.run([*cmd, "main.Add(1, 2)"], capture_output=True, text=True, timeout=90)
    assert r.returncode == 1 and "--source" in r.stderr
    trimmed.assert_healthy()
