"""Issue 3: Go expressions evaluated in a live process (tests/fixtures/values), checked as
Go syntax, JSON and Python values; bad expressions fail with Go's wording and leave the
target as it was (no thread stopped, heap intact)."""

from __future__ import annotations

import json

import pytest

import gocall
from gocall.values.gofmt import format_value

# (expression, Go syntax of each result joined by "; ")
CASES = [
    ("main.Double(21)", "42"),
    ("main.VInt", "42"),
    ("main.VInt8", "-7"),
    ("main.VUint16", "65000"),
    ("main.VUptr", "0xdead"),
    ("main.VF32", "1.5"),
    ("main.VF64", "2.25"),
    ("main.VC64", "(1-2i)"),
    ("main.VC128", "(0.5+4i)"),
    ("main.VBool", "true"),
    ("main.VStr", '"hello, 世界"'),
    ("main.VBytes", "[]uint8{97, 98, 99}"),
    ("main.VInts", "[]int{1, 2, 3}"),
    ("main.VEmpty", "[]int(nil)"),
    ("main.VArr", "[3]int{7, 8, 9}"),
    ("main.VPt", "main.Point{X:1, Y:2}"),
    ("main.VPtr", "&main.Point{X:3, Y:4}"),
    ("main.VNilPtr", "(*main.Point)(nil)"),
    ("main.VRect", 'main.Rect{Min:main.Point{X:0, Y:0}, Max:main.Point{X:2, Y:3}, Name:"r"}'),
    ("main.VMix", 'main.Mixed{A:-1, F:0.5, S:"m", B:true}'),
    ("main.VMap", 'map[string]int{"a":1, "b":2, "c":3}'),
    ("main.VMapIP", "map[int]main.Point{1:main.Point{X:1, Y:1}, 2:main.Point{X:2, Y:4}}"),
    ("main.VNilMap", "map[string]int(nil)"),
    ("main.VNilChan", "(chan int)(nil)"),
    ("main.VNilFn", "(func(int) int)(nil)"),
    ("main.VAny", "12"),
    ("main.VAnyS", '"boxed"'),
    ("main.VAnyPt", "main.Point{X:5, Y:6}"),
    ("main.VNilAny", "<nil>"),
    ("main.VShape", "main.Circle{R:2}"),
    ("main.VShapeP", "&main.Square{S:3}"),
    ("main.VNilErr", "<nil>"),
    ("main.VErr", "&main.myErr{code:7} /* code 7 */"),
    ("main.VDerived", 'main.Derived{Base:main.Base{ID:9}, Name:"d"}'),
    ("main.VTemp", "100"),
    ("main.VStrs", '[]string{"x", "yy", "zzz"}'),
    ("main.VAnySl", '[]interface {}{1, "two", 3, interface {}(nil)}'),
    ("main.VBigMap[5]", "25"),
    ("main.VBigMap[999]", "998001"),
    ("main.VMap[\"b\"]", "2"),
    ("main.VMap[\"zz\"]", "0"),
    ("main.VInts[2]", "3"),
    ("main.VArr[0]", "7"),
    ("main.VStr[0]", "104"),
    ("main.VPt.X", "1"),
    ("main.VPtr.Y", "4"),
    ("(*main.VPtr).X", "3"),
    ("*main.VPtr", "main.Point{X:3, Y:4}"),
    ("main.VRect.Max.Y", "3"),
    ("main.VList.Next.Next.V", "3"),
    ("main.VDerived.ID", "9"),
    ("len(main.VInts)", "3"),
    ("cap(main.VInts)", "3"),
    ("len(main.VStr)", "13"),
    ("len(main.VMap)", "3"),
    ("len(main.VArr)", "3"),
    ("len(\"abc\")", "3"),
    ("main.VShape.(main.Circle).R", "2"),
    # calls: constants, strings, structs, arrays
    ("main.Echo(\"hi\")", '"hi"'),
    ("main.Echo(\"\")", '""'),
    ("main.Len(\"héllo\")", "6"),
    ("main.Concat(\"a\", \"b\")", '"ab"'),
    ("main.Upper(\"abc\")", '"ABC"'),
    ("main.Echo(\"a\" + \"b\")", '"ab"'),
    ("main.Echo(main.Echo(\"a\") + \"b\")", '"ab"'),
    ("main.Concat(main.Echo(\"a\"), \"b\") + \"c\"", '"abc"'),
    ("main.IdInt(-5)", "-5"),
    ("main.IdI64(1 << 62)", "4611686018427387904"),
    ("main.IdF64(0.1)", "0.1"),
    ("main.IdF32(0.1)", "0.1"),
    ("main.IdC128(1 + 2i)", "(1+2i)"),
    ("main.IdPt(main.Point{1, 2})", "main.Point{X:1, Y:2}"),
    ("main.IdPt(main.Point{Y: 5})", "main.Point{X:0, Y:5}"),
    ("main.IdMix(main.Mixed{A: 1, F: 2.5, S: \"s\", B: true})", 'main.Mixed{A:1, F:2.5, S:"s", B:true}'),
    ("main.IdBig(main.Big{[4]int{1, 2, 3, 4}, \"t\"})", 'main.Big{Vals:[4]int{1, 2, 3, 4}, Tag:"t"}'),
    ("main.IdRect(main.VRect)", 'main.Rect{Min:main.Point{X:0, Y:0}, Max:main.Point{X:2, Y:3}, Name:"r"}'),
    ("main.IdArr([3]int{4, 5, 6})", "[3]int{4, 5, 6}"),
    ("main.IdSlice([]int{1, 2})", "[]int{1, 2}"),
    ("main.IdSlice(nil)", "[]int(nil)"),
    ("main.SumSlice([]int{1, 2, 3, 4})", "10"),
    ("main.IdMap(main.VMap)", 'map[string]int{"a":1, "b":2, "c":3}'),
    ("main.CountKeys(main.MkMap(20))", "20"),
    ("main.Lookup(main.VMap, \"c\")", "3"),
    ("main.IdAny(7)", "7"),
    ("main.IdAny(\"s\")", '"s"'),
    ("main.IdAny(main.Point{1, 2})", "main.Point{X:1, Y:2}"),
    ("main.IdAny(nil)", "<nil>"),
    ("main.Describe(2.5)", '"float64 2.5"'),
    ("main.Describe(main.VPt)", '"main.Point (1,2)"'),
    ("main.PtSum(&main.Point{3, 4})", "7"),
    ("main.PtSum(main.VPtr)", "7"),
    ("main.RectArea(&main.Rect{Max: main.Point{4, 5}})", "20"),
    ("main.MkPtr(1, 2)", "&main.Point{X:1, Y:2}"),
    ("main.MkSlice(3)", "[]int{0, 10, 20}"),
    ("main.MkSlice(3)[1]", "10"),
    ("main.MkRect(1, 2, 3, 4).Max", "main.Point{X:3, Y:4}"),
    ("main.MkPt(1, 2).Sum()", "3"),
    ("main.MkPtr(2, 3).Scale(2)", "main.Point{X:4, Y:6}"),
    ("main.Pair()", '7; "seven"'),
    ("main.NoResult()", ""),
    ("main.Div(7, 2)", "3; <nil>"),
    ("main.Chars(\"abc\")", '[]string{"a", "b", "c"}'),
    ("main.Many(1, 2, 3, 4, 5, 6, 7, 8, 9.5, 10.5, true, \"s\")", '"1 2 3 4 5 6 7 8 9.5 10.5 trues"'),
    ("main.Wide(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, \"w\")", '"66w"'),
    # methods, promotion, interfaces, func values
    ("main.VPt.Sum()", "3"),
    ("main.VPt.Add(main.Point{10, 20})", "main.Point{X:11, Y:22}"),
    ("main.VPt.String()", '"(1,2)"'),
    ("main.VPtr.Sum()", "7"),
    ("main.Point.Sum(main.VPt)", "3"),  # method expressions: the receiver is the first argument
    ("main.(*Point).Scale(main.MkPtr(1, 2), 3)", "main.Point{X:3, Y:6}"),
    ("(*main.Point).Scale(main.MkPtr(2, 2), 2)", "main.Point{X:4, Y:4}"),
    ("main.VDerived.Describe()", '"base 9"'),
    ("main.VTemp.F()", "212"),
    ("main.Celsius(0).F()", "32"),
    ("main.VShape.Area()", "12"),
    ("main.VShape.(main.Circle).Area()", "12"),
    ("main.VShapeP.Area()", "9"),
    ("main.VErr.Error()", '"code 7"'),
    ("main.Area(main.Circle{1})", "3"),
    ("main.Area(&main.Square{2})", "4"),
    ("main.VFn(4)", "8"),
    ("main.VMeth()", "3"),
    ("main.Apply(main.VFn, 5)", "10"),
    # variadic
    ("main.Total()", "0"),
    ("main.Total(1, 2, 3)", "6"),
    ("main.Total(main.VInts...)", "6"),
    ("main.Join(\"-\", \"a\", \"b\")", '"a-b"'),
    ("main.Join(\"-\", main.VStrs...)", '"x-yy-zzz"'),
    ("filepath.Join(\"a\", \"b\", \"c\")", '"a/b/c"'),
    ("fmt.Sprint(1, \"a\")", '"1a"'),
    ("strings.Repeat(\"ab\", 3)", '"ababab"'),
    # arithmetic, comparisons, conversions
    ("main.Double(2) + 1", "5"),
    ("main.Double(2) * main.Double(3)", "24"),
    ("main.IdInt(7) / 2", "3"),
    ("main.IdInt(-7) % 3", "-1"),
    ("main.Double(2) == 4", "true"),
    ("main.Echo(\"a\") < \"b\"", "true"),
    ("-main.VInt8", "7"),
    ("int8(100) + int8(100)", "-56"),
    ("main.Celsius(37.5)", "37.5"),
    ("float32(0.1)", "0.1"),
    ("uint8(255)", "255"),
    ("main.VTemp + 1", "101"),
    ("1 << 10", "1024"),
]


@pytest.fixture(scope="module")
def proc(values_target):  # type: ignore[no-untyped-def]
    with gocall.attach(values_target.pid) as p:
        yield p


@pytest.mark.parametrize(("expr", "go"), CASES, ids=[c[0][:50] for c in CASES])
def test_expression(proc, expr, go):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is None, ev.error
    assert ev.panic is None, format_value(ev.panic)
    assert "; ".join(format_value(r) for r in ev.results) == go
    json.dumps(ev.to_json())  # every result renders as JSON


def test_target_healthy_after_the_table(proc, values_target):  # type: ignore[no-untyped-def]
    for expr, _ in CASES[::7]:
        proc.evaluate(expr)
    values_target.assert_healthy()


# (expression, Python value)
PYTHON = [
    ("main.VPt", {"X": 1, "Y": 2}),
    ("main.VInts", [1, 2, 3]),
    ("main.VMap", {"a": 1, "b": 2, "c": 3}),
    ("main.VNilPtr", None),
    ("main.VNilAny", None),
    ("main.VC128", 0.5 + 4j),
    ("main.Pair()", (7, "seven")),
    ("main.NoResult()", None),
    ("main.VAnyS", "boxed"),
    ("main.VArr", [7, 8, 9]),
]


@pytest.mark.parametrize(("expr", "value"), PYTHON, ids=[p[0] for p in PYTHON])
def test_python_values(proc, expr, value):  # type: ignore[no-untyped-def]
    assert proc.eval(expr) == value


def test_python_struct_attribute_access_and_pointer(proc):  # type: ignore[no-untyped-def]
    r = proc.eval("main.VRect")
    assert r.Max.Y == 3 and r.Name == "r" and r.go_type == "main.Rect"
    p = proc.eval("main.VPtr")
    assert p.elem.X == 3 and p.address != 0


def test_json(proc):  # type: ignore[no-untyped-def]
    ev = proc.evaluate("main.VRect")
    assert ev.to_json()["results"][0] == {
        "type": "main.Rect",
        "value": {"Min": {"X": 0, "Y": 0}, "Max": {"X": 2, "Y": 3}, "Name": "r"},
    }
    assert proc.evaluate("main.VAnyPt").to_json()["results"][0]["value"] == {
        "type": "main.Point", "value": {"X": 5, "Y": 6}}
    assert proc.evaluate("main.VMapIP").to_json()["results"][0]["value"] == {"1": {"X": 1, "Y": 1},
                                                                              "2": {"X": 2, "Y": 4}}


def test_error_result_raises_go_error(proc):  # type: ignore[no-untyped-def]
    with pytest.raises(gocall.GoError) as info:
        proc.eval("main.Div(1, 0)")
    assert info.value.text == "division by zero"
    assert info.value.results[0] == 0
    assert proc.eval("main.Div(6, 3)") == (2, None)


def test_panic_with_error_value(proc):  # type: ignore[no-untyped-def]
    with pytest.raises(gocall.GoPanic) as info:
        proc.eval("main.PanicErr()")
    assert "bad thing" in info.value.text


def test_bounded_loading_reports_truncation(proc):  # type: ignore[no-untyped-def]
    ev = proc.evaluate("main.VBigMap")
    v = ev.results[0]
    assert len(v.value) == 1000 and not v.truncated  # exactly the limit
    ev = proc.evaluate("main.MkSlice(1500)")
    v = ev.results[0]
    assert v.truncated and v.missing == 500 and len(v.value) == 1000
    assert format_value(v).endswith("...+500 more}")
    assert ev.to_json()["results"][0]["truncated"] is True


# (expression, part of the message): refused before any injected call, target untouched.
ERRORS = [
    ("main.Double(1, 2)", "too many arguments in call to main.Double"),
    ("main.Double()", "not enough arguments in call to main.Double"),
    ("main.Double(\"x\")", "cannot use \"x\" (untyped string constant) as int value in argument to main.Double"),
    ("main.Double(1.5)", "(truncated)"),
    ("main.IdF32(1e300)", "(overflows)"),
    ("main.Echo(1)", "cannot use 1 (untyped int constant) as string value"),
    ("main.IdPt(main.VInt)", "cannot use main.VInt (value of type int) as main.Point value"),
    ("main.Nope(1)", "function main.Nope is not in the binary"),
    ("main.Nope", "undefined: main.Nope"),
    ("main.VNilFn(1)", "nil func"),
    ("main.VNilPtr.X", "nil pointer dereference"),
    ("main.VInts[7]", "index out of range [7] with length 3"),
    ("main.VPt.Nope", "main.VPt.Nope undefined (type main.Point has no field or method Nope) (check the spelling; "
                      "the linker leaves out the methods a program never calls)"),
    ("main.VAny.Foo()", "has no field or method Foo"),
    ("main.Point.Scale(main.VPt, 2)", "invalid method expression main.Point.Scale (needs pointer receiver "
                                      "(*main.Point).Scale)"),
    ("main.(*Point).Nope(nil)", "undefined: main.(*Point).Nope (method main.(*Point).Nope is not in the binary)"),
    ("main.Point{1, 2}.Scale(2)", "cannot call pointer method Scale on main.Point"),
    ("main.VShape.(main.Square)", "interface conversion: main.Shape is main.Circle, not main.Square"),
    ("main.IdPt(main.Point{Z: 1})", "unknown field Z in struct literal of type main.Point"),
    ("main.Double(", "not a valid Go expression"),
    ("main.VInt(1)", "cannot call non-function main.VInt"),
    ("main.Double", "is a function; call it"),
    ("main.IdInt(nil)", "cannot use nil as int value"),
    ("main.VStr + 1", "invalid operation"),
    ("main.VShape.Name()", "the linker removed this method"),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_expression_is_refused(proc, values_target, expr, message):  # type: ignore[no-untyped-def]
    ev = proc.evaluate(expr)
    assert ev.error is not None and message in ev.error, ev.error
    assert ev.goroutine is None and ev.calls == 0  # no thread was stopped


def test_target_healthy_after_errors(proc, values_target):  # type: ignore[no-untyped-def]
    values_target.assert_healthy()
