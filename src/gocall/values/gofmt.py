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
    """Go syntax for a value, as ``%#v`` prints it (integers in decimal but uintptr in hex;
    a top-level pointer to a composite as ``&T{...}``); elements left out by the load
    limits show as ``...+N more``, an error's ``Error()`` text as a trailing comment."""
    text = _format(v, top=True)
    return f"{text} /* {v.text} */" if v.text is not None and v.type.kind == Kind.INTERFACE else text


def _format(v: GoValue, top: bool = False) -> str:
    k = v.type.kind
    x = v.value
    name = v.type.name
    if k == Kind.BOOL:
        return "true" if x else "false"
    if k in (Kind.FLOAT32, Kind.FLOAT64):
        return format_float(x, 32 if k == Kind.FLOAT32 else 64)
    if k in (Kind.COMPLEX64, Kind.COMPLEX128):
        bits = 32 if k == Kind.COMPLEX64 else 64
        im = format_float(x.imag, bits)
        return f"({format_float(x.real, bits)}{'' if im[0] in '+-' else '+'}{im}i)"
    if k == Kind.STRING:
        return quote(x) + (f"+...{v.missing} more bytes" if v.missing else "")
    if k == Kind.UINTPTR:
        return f"{x:#x}"
    if k == Kind.STRUCT:
        inner = ", ".join(f"{n}:{_format(p)}" for n, p in zip(v.names, v.parts, strict=True))
        return f"{name}{{{inner}}}"
    if k in (Kind.ARRAY, Kind.SLICE):
        if x is None:
            return f"{name}(nil)"
        return f"{name}{{{_join([_format(p) for p in v.parts], v.missing)}}}"
    if k == Kind.MAP:
        if x is None:
            return f"{name}(nil)"
        pairs = sorted(zip(v.parts[::2], v.parts[1::2]), key=lambda kv: _sort_key(kv[0]))
        return f"{name}{{{_join([f'{_format(a)}:{_format(b)}' for a, b in pairs], v.missing)}}}"
    if k == Kind.INTERFACE:
        if not v.parts:
            return "<nil>" if top else f"{name}(nil)"
        return _format(v.parts[0], top)
    if k == Kind.POINTER:
        if x is None:
            return f"({name})(nil)"
        if top and v.parts and v.parts[0].type.kind in (Kind.STRUCT, Kind.ARRAY, Kind.SLICE, Kind.MAP):
            return "&" + _format(v.parts[0])
        return f"({name})({v.address:#x})"
    if k in (Kind.UNSAFE_POINTER, Kind.CHAN, Kind.MAP, Kind.FUNC):
        if x is None:
            return f"({name})(nil)"
        tail = f" /* {v.text} */" if v.text else ""
        return f"({name})({v.address:#x}){tail}"
    return str(x)


def _join(items: list[str], missing: int) -> str:
    if missing:
        items = [*items, f"...+{missing} more"]
    return ", ".join(items)


def _sort_key(v: GoValue) -> tuple[int, Any]:
    """fmt prints map keys sorted (internal/fmtsort): numbers, strings, bools in order."""
    x = v.value
    if isinstance(x, (int, float, str, bool)):
        return (0, x)
    return (1, repr(x))


def json_value(v: GoValue) -> Any:
    """The JSON rendering: numbers as numbers (NaN/Inf as Go strings), strings as text,
    structs as objects, arrays/slices as lists, maps as objects (string-like keys) or lists
    of ``{"key", "value"}``, pointers as ``{"address", "elem"}``, interfaces as
    ``{"type", "value"}`` of the dynamic value, nil as null."""
    k = v.type.kind
    x = v.value
    if x is None:
        return None
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return format_float(x)
    if isinstance(x, complex):
        return {"real": x.real, "imag": x.imag}
    if k == Kind.STRUCT:
        return {n: json_value(p) for n, p in zip(v.names, v.parts, strict=True)}
    if k in (Kind.ARRAY, Kind.SLICE):
        return [json_value(p) for p in v.parts]
    if k == Kind.MAP:
        pairs = list(zip(v.parts[::2], v.parts[1::2]))
        if all(p[0].type.kind == Kind.STRING or p[0].type.is_integer for p in pairs):
            return {str(a.value): json_value(b) for a, b in pairs}
        return [{"key": json_value(a), "value": json_value(b)} for a, b in pairs]
    if k == Kind.INTERFACE:
        inner = v.parts[0]
        out = {"type": inner.type.name, "value": json_value(inner)}
        if v.text is not None:
            out["error"] = v.text
        return out
    if k == Kind.POINTER:
        return {"address": f"{v.address:#x}", "elem": json_value(v.parts[0]) if v.parts else None}
    if k in (Kind.UNSAFE_POINTER, Kind.CHAN, Kind.FUNC):
        out = {"address": f"{v.address:#x}"}
        if v.text:
            out["detail"] = v.text
        return out
    return x
