"""Go's binary operators on constants (exact, as the compiler folds them) and on
typed values (integers wrap to their size, as at run time).

The spec's rules (``Arithmetic operators``, ``Comparison operators``,
``Constant expressions``): ``/`` on two untyped integer constants is integer
division truncated toward zero; shifts need integer operands; comparisons give
untyped bool; ``+`` concatenates strings.
"""

from __future__ import annotations

import operator
from typing import Any

from ..errors import ExprError

_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_NUMERIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_INTEGER = {"%": None, "&": operator.and_, "|": operator.or_, "^": operator.xor, "&^": lambda a, b: a & ~b,
            "<<": operator.lshift, ">>": operator.rshift}


def _kind(v: Any) -> int:
    """Order of untyped constant kinds: bool/str apart, int < float < complex."""
    if isinstance(v, bool):
        return -1
    if isinstance(v, str):
        return -2
    return 0 if isinstance(v, int) else 1 if isinstance(v, float) else 2


def binary_const(op: str, x: Any, y: Any, xt: str = "x", yt: str = "y") -> Any:
    """``x op y`` for untyped constants."""
    kx, ky = _kind(x), _kind(y)
    if op in ("&&", "||"):
        if kx != -1 or ky != -1:
            raise ExprError(f"invalid operation: operator {op} not defined on {xt}")
        return (x and y) if op == "&&" else (x or y)
    if op in ("<<", ">>"):
        if kx != 0 or ky != 0 or y < 0:
            raise ExprError(f"invalid shift: {xt} {op} {yt}")
        return x << y if op == "<<" else x >> y
    mixed = (kx < 0 or ky < 0) and kx != ky
    if mixed:
        raise ExprError(f"invalid operation: {xt} {op} {yt} (mismatched types)")
    if op in _COMPARE:
        return _COMPARE[op](x, y)
    return apply(op, x, y, integer=kx == 0 and ky == 0, text=f"{xt} {op} {yt}")


def apply(op: str, x: Any, y: Any, integer: bool, text: str) -> Any:
    """Arithmetic on Python numbers/strings with Go's meaning of each operator."""
    if isinstance(x, str) or isinstance(y, str):
        if op != "+" or not (isinstance(x, str) and isinstance(y, str)):
            raise ExprError(f"invalid operation: operator {op} not defined on {text}")
        return x + y
    if isinstance(x, bool) or isinstance(y, bool):
        raise ExprError(f"invalid operation: operator {op} not defined on {text}")
    if op in _NUMERIC:
        return _NUMERIC[op](x, y)
    if op == "/":
        if y == 0:
            raise ExprError(f"invalid operation: division by zero ({text})")
        if integer:
            q = abs(x) // abs(y)
            return q if (x >= 0) == (y >= 0) else -q
        return x / y
    if op in _INTEGER:
        if not integer:
            raise ExprError(f"invalid operation: operator {op} not defined on {text} (not an integer)")
        if op == "%":
            if y == 0:
                raise ExprError(f"invalid operation: division by zero ({text})")
            return x - y * apply("/", x, y, True, text)
        return _INTEGER[op](x, y)  # type: ignore[misc]
    raise ExprError(f"operator {op} is not supported ({text})")


def wrap(v: int, size: int, signed: bool) -> int:
    """An integer result cut to its type's width, as the machine does."""
    bits = 8 * size
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def compare(op: str, x: Any, y: Any) -> bool:
    return bool(_COMPARE[op](x, y))


def is_comparison(op: str) -> bool:
    return op in _COMPARE
