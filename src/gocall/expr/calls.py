"""Call expressions ``f(args)``: what the callee is (a package function, a bound
method, a func value, or a type, making it a conversion; ``len`` and ``cap``),
how the arguments become the images the injection passes (spec: Calls, Passing
arguments to ... parameters), and the injected call itself (call/engine.py).

A module of its own because a call is where an expression reaches the target:
arguments are escape-checked together (expr/escape.py), a variadic tail is packed
into a new slice, and a call whose images depend on the binary and the text alone
is remembered as a plan (``Evaluator.call_plans``) so the same text is not worked
out again.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError, ExprError, SymbolNotFound
from ..values.pointers import pointer_words
from .convert import arg, conversion, image, typed
from .literals import composite
from .operand import Fn, Operand, assignable, describe
from .parse import Call, Composite, Const, Expr, Name, TypeExpr, Unary

if TYPE_CHECKING:
    from .build import Builder

_NOT_LINKED = ("the linker drops functions the program never calls, and small ones may be inlined away: check "
               "the spelling, or mark them //go:noinline and use them")


def call(b: Builder, e: Call) -> Operand:
    """The results of ``e``: one operand, or one holding several (``results``)."""
    plan = b.ev.call_plans.get(e)
    # At a stop, a local variable may shadow the function's package (plans are of package functions).
    if plan is not None and (b.s.scope is None or isinstance(e.func, Name) and not b.is_local(e.func.qualified)):
        return _results(e, plan[0], b.s.call(*plan, consumes=True))
    if isinstance(e.func, Name) and e.func.qualified in ("len", "cap"):
        return _len(b, e)
    local = isinstance(e.func, Name) and b.is_local(e.func.qualified)
    if isinstance(e.func, (TypeExpr, Unary)) or (isinstance(e.func, Name) and not local and
                                                  _is_type(b, e.func.qualified)):
        t = b.type_of(e.func)
        if len(e.args) != 1:
            raise ExprError(f"wrong argument count in conversion to {t.name}")
        return conversion(b, b.eval(e.args[0], t), t, e.text)
    if isinstance(e.func, Name) and not local:
        q = b.names.qualify(e.func.qualified)
        if b.names.function(q) is None and b.names.variable(q) is None and "." not in e.func.qualified[
                e.func.qualified.find(".") + 1 :] and b.names.is_package(q.rsplit(".", 1)[0].rsplit("/", 1)[-1]):
            raise SymbolNotFound(f"function {q} is not in the binary", hint=_NOT_LINKED)
    callee = b.eval(e.func)
    fn = callee.fn if callee.fn is not None else _func_value(b, callee)
    params = fn.sig.params[len(fn.bound) :]
    args = list(e.args)
    variadic = bool(params) and params[-1].type.kind == Kind.SLICE and not e.spread
    if variadic and _packs(b, params, args):
        last = params[-1].type
        head, tail = args[: len(params) - 1], args[len(params) - 1 :]
        args = [*head, Composite(None, tuple((None, a) for a in tail), "...")]
        packed = args[-1]
        assert isinstance(packed, Composite)
        ops: list[Operand | None] = [*([None] * len(head)), composite(b, last, packed)]
    else:
        ops = [None] * len(args)
    b.ev.frame(fn)  # a signature DWARF left parameters out of is refused as such, before counting arguments
    if len(args) != len(params):
        want = ", ".join(p.type.name for p in params)
        which = "not enough" if len(args) < len(params) else "too many"
        raise ArgumentError(f"{which} arguments in call to {fn.name} (want ({want}), have {len(args)})")
    images = [image(b, r) for r in fn.bound]
    checks: list[tuple[GoType, bytes, str, str]] = []  # receivers pass (expr/escape.py)
    # The string literals passed as strings: allocated together, one call for all (call/alloc.py).
    b.s.heap.expect([a.value.encode("utf-8", "surrogateescape") for p, a, op in zip(params, args, ops, strict=True)
                     if op is None and isinstance(a, Const) and isinstance(a.value, str)
                     and p.type.kind == Kind.STRING])  # fmt: skip
    try:
        for n, (p, a, op) in enumerate(zip(params, args, ops, strict=True)):
            img = op.image if op is not None and op.image is not None else arg(b, a, p.type, f"argument to {fn.name}")
            assert img is not None
            checks.append((p.type, img, a.text, f"argument {n + 1} in call to {fn.name}"))
            images.append(img)
    finally:
        b.s.heap.expect([])
    b.escape_check(checks)
    if (not local and isinstance(e.func, Name) and not fn.bound and not fn.closure and ops == [None] * len(ops)
            and all(_constant(b, a, t, img) for a, (t, img, _, _) in zip(args, checks, strict=True))):  # fmt: skip
        # A package function with constant arguments: everything above depends on the binary and
        # the text alone, so the same call is not worked out again (call_plans).
        b.ev.remember_plan(e, fn, images)
    return _results(e, fn, b.s.call(fn, images, consumes=True))


def _constant(b: Builder, a: Expr, t: GoType, img: bytes) -> bool:
    """Whether argument ``a``'s image ``img`` depends on the binary and the text alone: a constant
    with no pointer in it, or a string literal passed as a string whose bytes the executable's
    ``.rodata`` holds (its image points there, read-only for the process's life: call/alloc.py),
    never one allocated in the target for this evaluation."""
    if not isinstance(a, Const):
        return False
    if isinstance(a.value, str):
        data = a.value.encode("utf-8", "surrogateescape")
        return t.kind == Kind.STRING and (not data or b.ev.static_bytes(data) is not None)
    return next(pointer_words(t, img), None) is None


def call_bound(b: Builder, m: Operand) -> Operand:
    """Call the bound method ``m`` (receiver only, one result): ``err.Error()``."""
    assert m.fn is not None
    results = b.s.call(m.fn, [image(b, r) for r in m.fn.bound], consumes=True)
    return Operand(m.fn.sig.results[0].type, image=results[0], text=m.text)


def _results(e: Call, fn: Fn, results: list[bytes]) -> Operand:
    outs = tuple(Operand(r.type, image=img, text=e.text) for r, img in zip(fn.sig.results, results, strict=True))
    return outs[0] if len(outs) == 1 else Operand(None, text=e.text, results=outs)


def _packs(b: Builder, params: Any, args: list[Expr]) -> bool:
    """Whether a call to a function whose last parameter is a slice packs its trailing
    arguments (DWARF does not mark variadic functions; Go's ``xs...`` is explicit)."""
    if len(args) != len(params):
        return True
    last = b.eval(args[-1], params[-1].type)
    return last.fn is not None or last.type is None and last.const is not None or (
        last.type is not None and not assignable(last.type, params[-1].type))


def _func_value(b: Builder, f: Operand) -> Fn:
    if f.type is None or f.type.kind != Kind.FUNC or f.image is None:
        raise ExprError(f"invalid operation: cannot call non-function {describe(f)}")
    funcval = struct.unpack("<Q", f.image)[0]
    if funcval == 0:
        raise ExprError(f"invalid memory address or nil pointer dereference: {f.text} is a nil func")
    return b.names.function_at(b.mem.u64(funcval))._replace(closure=funcval)


def _is_type(b: Builder, name: str) -> bool:
    q = b.names.qualify(name)
    return b.names.function(q) is None and b.names.variable(q) is None and b.names.type(name) is not None


def _len(b: Builder, e: Call) -> Operand:
    """The built-ins ``len(x)`` and ``cap(x)``, read from the value's header."""
    int_t = b.names.type("int")
    assert int_t is not None
    if len(e.args) != 1:
        raise ExprError(f"wrong number of arguments to {e.func.text}")
    x = b.eval(e.args[0])
    name = e.func.qualified  # type: ignore[union-attr]
    if x.type is None and isinstance(x.const, str) and name == "len":
        return typed(int_t, len(x.const.encode("utf-8", "surrogateescape")), e.text)
    t = x.type
    if t is None or x.image is None and not (t.kind == Kind.STRING and x.const is not None):
        raise ExprError(f"invalid argument: {describe(x)} for built-in {name}")
    if t.kind == Kind.STRING:
        n = len(x.const.encode()) if x.image is None else struct.unpack_from("<q", x.image, 8)[0]
    elif t.kind == Kind.ARRAY:
        n = t.length
    elif t.kind == Kind.SLICE:
        assert x.image is not None
        n = struct.unpack_from("<q", x.image, 8 if name == "len" else 16)[0]
    elif t.kind in (Kind.MAP, Kind.CHAN) and x.image is not None:
        p = struct.unpack_from("<Q", x.image)[0]
        n = 0 if p == 0 else b.mem.u64(p + (8 if name == "cap" else 0))
    else:
        raise ExprError(f"invalid argument: {describe(x)} for built-in {name}")
    return typed(int_t, n, e.text)
