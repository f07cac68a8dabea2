"""Go syntax for decoded values, as ``fmt``'s ``%#v``/``%v`` print them, and JSON."""

from __future__ import annotations

import math
import struct
from typing import Any

from ..binary.gotypes import Kind
from .model import GoValue

_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def quote(s: str) -> str:
    """strconv.Quote: invalid UTF-8 bytes (carried as surrogate escapes) print as \\xHH."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0xDC80 <= c <= 0xDCFF:
            out.append(f"\\x{c - 0xDC00:02x}")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif c < 0x80:
            out.append(f"\\x{c:02x}")
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


def _shortest32(f: float) -> str:
    for prec in range(1, 10):
        s = f"{f:.{prec}g}"
        if struct.unpack("<f", struct.pack("<f", float(s)))[0] == f:
            return s
    return repr(f)


def format_float(f: float, bits: int = 64) -> str:
    """strconv.FormatFloat(f, 'g', -1, bits) as %v uses it: exponent form when the
    decimal exponent is < -4 or >= 21."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    text = _shortest32(f) if bits == 32 else repr(f)
    mantissa, _, exp_text = text.partition("e")
    digits = mantissa.lstrip("-").replace(".", "")
    point = mantissa.lstrip("-").find(".")
    point = len(mantissa.lstrip("-")) if point < 0 else point
    exp = point + (int(exp_text) if exp_text else 0)  # digits are 0.d1d2... x 10^exp
    stripped = digits.lstrip("0")
    exp -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if digits == "0":
        return sign + "0"
    x = exp - 1  # exponent in d.ddd form
    if x < -4 or x >= 21:
        frac = digits[1:]
        return f"{sign}{digits[0]}{'.' + frac if frac else ''}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if exp <= 0:
        return f"{sign}0.{'0' * -exp}{digits}"
    if exp >= len(digits):
        return sign + digits + "0" * (exp - len(digits))
    return f"{sign}{digits[:exp]}.{digits[exp:]}"


def format_value(v: GoValue) -> str:
    """Go syntax for a value, as ``%#v`` prints it for the kinds decoded so far."""
    k = v.type.kind
    x = v.value
    if k == Kind.BOOL:
        return "true" if x else "false"
    if k in (Kind.FLOAT32, Kind.FLOAT64):
        return format_float(x, 32 if k == Kind.FLOAT32 else 64)
    if k in (Kind.COMPLEX64, Kind.COMPLEX128):
        bits = 32 if k == Kind.COMPLEX64 else 64
        im = format_float(x.imag, bits)
        return f"({format_float(x.real, bits)}{'' if im[0] in '+-' else '+'}{im}i)"
    if k == Kind.STRING:
        return quote(x)
    if k in (Kind.POINTER, Kind.UNSAFE_POINTER, Kind.CHAN, Kind.MAP, Kind.FUNC):
        return "nil" if x is None else f"({v.type.name})({x:#x})"
    return str(x)


def json_value(v: GoValue) -> Any:
    """The JSON rendering: numbers as numbers (NaN/Inf as Go strings), strings as text."""
    x = v.value
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return format_float(x)
    if isinstance(x, complex):
        return {"real": x.real, "imag": x.imag}
    return x
