"""Signatures the user declares, for binaries that carry none (``-ldflags='-s -w'``).

A stripped Go binary still has its pclntab: every function's name, entry and argument
frame size (``_func.args``), so it can be called, but without DWARF nothing says what the
parameters are. The user says it, in Go's own syntax (a function declaration with the
package-qualified name, ``func`` optional)::

    func main.Add(a, b int) int
    main.Scale(float64, bool) float64
    main.Multi(n int) (int, bool, float64, string)

Parameter types are Go's predeclared types (``int``, ``float64``, ``string``, ``byte``,
``error``, ``any``…), ``uintptr``/``unsafe.Pointer``, and pointers, slices and arrays of
them: what can be laid out per ABIInternal without knowing a named type's fields.
The frame size computed from the declaration is checked against ``_func.args`` before
anything is injected, which catches most wrong declarations.
"""

from __future__ import annotations

import re

from ..binary.gotypes import GoType, Kind, Param, Signature
from ..errors import ExprError

__all__ = ["parse_signature", "parse_type"]

_PTR = 8

# Go's predeclared types (and unsafe.Pointer): kind, size. byte/rune are aliases.
_PREDECLARED: dict[str, tuple[Kind, int]] = {
    "bool": (Kind.BOOL, 1), "int": (Kind.INT, 8), "int8": (Kind.INT8, 1), "int16": (Kind.INT16, 2),
    "int32": (Kind.INT32, 4), "int64": (Kind.INT64, 8), "uint": (Kind.UINT, 8), "uint8": (Kind.UINT8, 1),
    "uint16": (Kind.UINT16, 2), "uint32": (Kind.UINT32, 4), "uint64": (Kind.UINT64, 8),
    "uintptr": (Kind.UINTPTR, 8), "float32": (Kind.FLOAT32, 4), "float64": (Kind.FLOAT64, 8),
    "complex64": (Kind.COMPLEX64, 8), "complex128": (Kind.COMPLEX128, 16), "string": (Kind.STRING, 16),
    "unsafe.Pointer": (Kind.UNSAFE_POINTER, 8),
}  # fmt: skip
_ALIASES = {"byte": "uint8", "rune": "int32"}
_INTERFACES = {"error": "error", "any": "interface {}", "interface{}": "interface {}"}

_NAME = re.compile(r"[A-Za-z_]\w*")


def parse_type(text: str) -> GoType:
    """The GoType of a type expression: ``int``, ``*int64``, ``[]string``, ``[4]byte``, ``error``."""
    t = text.strip()
    if t.startswith("*"):
        elem = parse_type(t[1:])
        return GoType("*" + elem.name, Kind.POINTER, _PTR, _PTR, elem=elem)
    if t.startswith("[]"):
        elem = parse_type(t[2:])
        return GoType("[]" + elem.name, Kind.SLICE, 3 * _PTR, _PTR, elem=elem)
    if m := re.fullmatch(r"\[(\d+)\](.+)", t, re.S):
        elem, n = parse_type(m[2]), int(m[1])
        return GoType(f"[{n}]{elem.name}", Kind.ARRAY, n * elem.size, elem.align or 1, elem=elem, length=n)
    compact = re.sub(r"\s+", "", t)
    if compact in _INTERFACES:
        return GoType(_INTERFACES[compact], Kind.INTERFACE, 2 * _PTR, _PTR)
    name = _ALIASES.get(t, t)
    if name in _PREDECLARED:
        kind, size = _PREDECLARED[name]
        align = size // 2 if kind in (Kind.COMPLEX64, Kind.COMPLEX128) else min(size, _PTR)
        return GoType(name, kind, size, align)
    raise ExprError(
        f"cannot declare a parameter of type {t!r} without DWARF",
        hint="use predeclared types (int, float64, string, error…), uintptr, unsafe.Pointer, "
        "and pointers, slices or arrays of them; pass a named type's pointer as unsafe.Pointer",
    )


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets and braces."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _params(text: str, is_result: bool) -> tuple[Param, ...]:
    """A Go parameter list without its parentheses: all names or no names, as Go requires.

    ``a, b int, s string`` groups names before a type; ``int, int`` has no names.
    """
    items = _split_top(text)
    named = [re.fullmatch(r"([A-Za-z_]\w*)\s+(\S.*)", item, re.S) for item in items]
    if any(m is not None for m in named):
        # Named form: "a, b int" is ["a", "b int"]; a bare name takes the next item's type.
        out: list[Param] = []
        pending: list[str] = []
        for item, m in zip(items, named, strict=True):
            if m is None:
                if not _NAME.fullmatch(item):
                    raise ExprError(f"mixed named and unnamed parameters in ({text})")
                pending.append(item)
                continue
            t = parse_type(m[2])
            out += [Param(n, t, is_result) for n in (*pending, m[1])]
            pending = []
        if pending:
            raise ExprError(f"missing type for {', '.join(pending)} in ({text})")
        return tuple(out)
    return tuple(Param(f"~r{i}" if is_result else f"~p{i}", parse_type(item), is_result)
                 for i, item in enumerate(items))


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    raise ExprError(f"unbalanced parentheses in {text!r}")


def parse_signature(text: str) -> Signature:
    """Parse ``func main.Add(a, b int) int`` (``func`` optional) into a :class:`Signature`.

    The name is the function as the binary spells it: package path, then the name
    (``main.Add``, ``example.com/m/pkg.F``, ``main.(*T).M`` whose receiver is then the
    first declared parameter).
    """
    s = text.strip().removeprefix("func").strip()
    # The name ends at the "(" that opens the parameters: after "main.(*T)." for methods.
    m = re.match(r"(?:[\w./-]*\.\(\*?\w+\)\.\w+|[\w./-]+)\s*\(", s)
    if m is None:
        raise ExprError(f"cannot read a function declaration in {text!r}",
                        hint="write it as Go does, with the package: 'func main.Add(a, b int) int'")
    name = s[: m.end() - 1].strip()
    if "." not in name:
        name = f"main.{name}"
    close = _closing(s, m.end() - 1)
    params = _params(s[m.end() : close], is_result=False)
    rest = s[close + 1 :].strip()
    if rest.startswith("("):
        end = _closing(rest, 0)
        if rest[end + 1 :].strip():
            raise ExprError(f"unexpected {rest[end + 1:].strip()!r} after the results of {text!r}")
        results = _params(rest[1:end], is_result=True)
    else:
        results = (Param("~r0", parse_type(rest), True),) if rest else ()
    return Signature(name, params, results)
