"""From expression tree to operands: names, selectors, indexing, operators,
literals and calls, each following the Go spec's rule for that form.

Memory the target must see (strings, ``&T{...}``, slice backing arrays, boxed
interface values) is allocated in the target with its real size and type
(call/alloc.py); debugger-side addresses never reach the target.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..binary.gotypes import GoType, Kind
from ..errors import ArgumentError, ExprError, SymbolNotFound
from ..runtime import maps
from ..values import arith
from ..values.decode import is_error, pointer_shaped
from ..values.encode import NILABLE, default_type_name, encode
from ..values.model import GoValue
from ..values.pointers import has_pointers, pointer_words
from .escape import check_escape
from .names import array_of, pointer_to, slice_of
from .operand import Fn, Operand, assignable, describe
from .parse import (Binary, Call, Composite, Const, Expr, Index, Name, Selector, SliceExpr, TypeAssert, TypeExpr,
                    Unary)
from .slicing import slice_operand

if TYPE_CHECKING:
    from .eval import Evaluator, Session


_MAP_SCAN = 1 << 16  # entries scanned for m[k]
# unsafe.Pointer converts to and from every pointer type and uintptr (spec: Package unsafe).
_UNSAFE_CONVERTIBLE = frozenset({Kind.UNSAFE_POINTER, Kind.POINTER, Kind.UINTPTR})
_NOT_LINKED = ("check the spelling; unexported or unused functions may be dead-code eliminated or inlined away "
               "(mark them //go:noinline and use them)")


class Builder:
    def __init__(self, ev: Evaluator, session: Session) -> None:
        self.ev = ev
        self.s = session
        self.names = ev.names
        self.mem = ev.mem

    # -- entry points ----------------------------------------------------------

    def eval(self, e: Expr, hint: GoType | None = None) -> Operand:
        match e:
            case Const():
                return Operand(None, e.value, text=e.text)
            case Name():
                return self._name(e.qualified)
            case Selector():
                return self._select(self.eval(e.x), e.field, e.text)
            case Index():
                return self._index(self.eval(e.x), self.eval(e.index), e.text)
            case SliceExpr():
                x = self.eval(e.x)
                lo, hi, mx = (None if b is None else self._int(self.eval(b)) for b in (e.low, e.high, e.max))
                string = self.names.type("string")
                assert string is not None
                return slice_operand(x, (lo, hi, mx), e.text, lambda p: self._deref(p, p.text), self._slice_type,
                                     string)
            case Unary():
                return self._unary(e)
            case Binary():
                return self._binary(e)
            case Call():
                return self._call(e)
            case Composite():
                t = self._type(e.type) if e.type is not None else hint
                if t is None:
                    raise ExprError(f"invalid composite literal {e.text!r}: missing type")
                return self._composite(t, e)
            case TypeAssert():
                return self._assert(self.eval(e.x), self._type(e.type), e.text)
            case TypeExpr():
                raise ExprError(f"{e.text} (type) is not an expression")
        raise ExprError(f"cannot evaluate {e!r}")

    def results(self, op: Operand) -> list[GoValue]:
        ops = list(op.results) if op.results is not None else [op]
        if op.fn is not None:
            raise ExprError(f"{op.text} is a function; call it ({op.text}(...))")
        out = []
        for o in ops:
            v = self._value(o)
            if is_error(v.type) and v.parts:
                v = replace(v, text=self._error_text(o))
            out.append(v)
        return out

    def assign(self, target: Expr, value: Expr) -> Operand:
        """``target = value``: written to the target's memory, or to the register a
        local lives in (through the scope); the new value is the result."""
        dst = self.eval(target)
        if dst.type is None or dst.fn is not None or dst.results is not None:
            raise ExprError(f"cannot assign to {target.text} (neither addressable nor a map index expression)")
        image = self._arg(value, dst.type, "assignment")
        if dst.addr is not None:
            self.mem.write(dst.addr, image)
        elif self.s.scope is None or not self.s.scope.store(dst, image):
            raise ExprError(f"cannot assign to {target.text} (it is not a variable in memory or in a register)")
        return Operand(dst.type, image=image, addr=dst.addr, text=target.text)

    # -- names -------------------------------------------------------------------

    def _name(self, name: str) -> Operand:
        scope = self.s.scope
        if scope is not None:  # a stopped frame's variables shadow package members, as in Go
            head, dot, rest = name.partition(".")
            local = scope.lookup(head)
            if local is not None:
                for part in rest.split(".") if dot else ():
                    local = self._select(local, part, f"{local.text}.{part}")
                return local
        q = self.names.qualify(name)
        fn = self.names.function(q)
        if fn is not None:
            return Operand(None, text=name, fn=fn)
        var = self.names.variable(q)
        if var is not None:
            addr, t = var
            return Operand(t, image=self.mem.read(addr, t.size), addr=addr, text=name)
        head, dot, rest = name.partition(".")
        if dot and not self.names.is_package(head) and head != "main":
            op = self._name(head)
            for part in rest.split("."):
                op = self._select(op, part, f"{op.text}.{part}")
            return op
        if self.names.type(name) is not None:
            raise ExprError(f"{name} (type) is not an expression")
        raise SymbolNotFound(f"undefined: {name} (function or variable {q} is not in the binary)",
                             hint="check the spelling; unused functions and variables may be dead-code "
                                  "eliminated or inlined away (mark functions //go:noinline and use them)")

    def _is_local(self, name: str) -> bool:
        """Whether ``name``'s first part is a variable of the stopped frame (it shadows packages)."""
        if self.s.scope is None:
            return False
        try:
            return self.s.scope.lookup(name.partition(".")[0]) is not None
        except ExprError:
            return True  # a local that is not available here: still a local

    def _type(self, e: Expr) -> GoType:
        text = e.qualified if isinstance(e, Name) else e.text
        if isinstance(e, Unary) and e.op == "*":
            return pointer_to(self._type(e.x))
        t = self.names.type(text)
        if t is None:
            raise SymbolNotFound(f"undefined type: {text} (not in the binary's DWARF)",
                                 hint="types the program never uses are not in the binary")
        return t

    # -- selectors, indexing, dereference ----------------------------------------

    def _select(self, x: Operand, field: str, text: str) -> Operand:
        t = x.type
        if t is None:
            raise ExprError(f"{text}: {x.text} has no field or method {field}")
        if t.kind == Kind.INTERFACE:
            return self._interface_method(x, field, text)
        base = t.elem if t.kind == Kind.POINTER and t.elem is not None else t
        if base.kind == Kind.STRUCT:
            for f in base.fields:
                if f.name == field:
                    s = self._deref(x, text) if t.kind == Kind.POINTER else x
                    assert s.image is not None
                    addr = None if s.addr is None else s.addr + f.offset
                    return Operand(f.type, image=s.image[f.offset : f.offset + f.type.size], addr=addr, text=text)
        found = self.names.method(t, field)
        if found is not None:
            return self._bind(x, *found, text)
        if base.kind == Kind.STRUCT:  # promoted through embedded fields, breadth first
            for f in base.fields:
                if f.embedded:
                    try:
                        return self._select(self._select(x, f.name, f"{x.text}.{f.name}"), field, text)
                    except (ExprError, SymbolNotFound):
                        continue
        raise ExprError(f"{text} undefined (type {t.name} has no field or method {field})")

    def _bind(self, x: Operand, fn: Fn, wants_ptr: bool, text: str) -> Operand:
        assert x.type is not None
        if wants_ptr:
            if x.type.kind == Kind.POINTER:
                recv = x
            elif x.addr is not None:
                recv = Operand(pointer_to(x.type), image=struct.pack("<Q", x.addr), text="&" + x.text)
            else:
                raise ExprError(f"cannot call pointer method {text.rsplit('.', 1)[-1]} on {x.type.name} "
                                f"({x.text} is not addressable)")
        else:
            recv = self._deref(x, x.text) if x.type.kind == Kind.POINTER else x
        return Operand(None, text=text, fn=replace(fn, bound=(recv,)))

    def _interface_method(self, x: Operand, field: str, text: str) -> Operand:
        assert x.image is not None and x.type is not None
        tab, data = struct.unpack("<QQ", x.image)
        if not x.type.fields or x.type.fields[0].name == "_type":
            raise ExprError(f"{text} undefined (type {x.type.name} has no field or method {field})")
        if tab == 0:
            raise ExprError(f"invalid memory address or nil pointer dereference: {x.text} is a nil {x.type.name}")
        pc = self.ev.runtime_types.itab_method(tab, field)
        if pc is None:
            raise ExprError(f"{text} undefined (type {x.type.name} has no method {field})")
        fn = self.names.interface_method(pc)
        recv = Operand(fn.sig.params[0].type, image=struct.pack("<Q", data), text=x.text)
        return Operand(None, text=text, fn=replace(fn, bound=(recv,)))

    def _deref(self, p: Operand, text: str) -> Operand:
        assert p.type is not None and p.image is not None
        if p.type.kind != Kind.POINTER or p.type.elem is None:
            raise ExprError(f"invalid operation: cannot indirect {describe(p)}")
        addr = struct.unpack_from("<Q", p.image)[0]
        if addr == 0:
            raise ExprError(f"invalid memory address or nil pointer dereference: {p.text} is nil")
        t = p.type.elem
        return Operand(t, image=self.mem.read(addr, t.size), addr=addr, text=text)

    def _index(self, x: Operand, i: Operand, text: str) -> Operand:
        t = x.type
        if t is None or x.image is None:
            raise ExprError(f"invalid operation: cannot index {describe(x)}")
        if t.kind == Kind.MAP:
            return self._map_index(x, i, text)
        n = self._int(i)
        if t.kind == Kind.POINTER and t.elem is not None and t.elem.kind == Kind.ARRAY:
            x, t = self._deref(x, x.text), t.elem
        assert x.image is not None
        if t.kind == Kind.ARRAY and t.elem is not None:
            size, length, base, image = t.elem.size, t.length, x.addr, x.image
            elem = t.elem
        elif t.kind in (Kind.SLICE, Kind.STRING):
            ptr, length = struct.unpack_from("<Qq", x.image)
            found = t.elem if t.kind == Kind.SLICE else self.names.type("uint8")
            assert found is not None
            elem = found
            size, base, image = elem.size, ptr, None
        else:
            raise ExprError(f"invalid operation: cannot index {describe(x)}")
        if not 0 <= n < length:
            raise ExprError(f"index out of range [{n}] with length {length}")
        addr = None if base is None else base + n * size
        data = image[n * size : (n + 1) * size] if image is not None else self.mem.read(addr or 0, size)
        return Operand(elem, image=data, addr=addr if t.kind != Kind.STRING else None, text=text)

    def _map_index(self, m: Operand, k: Operand, text: str) -> Operand:
        """``m[k]``: the map is scanned from outside (no hashing); a missing key gives the zero value."""
        assert m.type is not None and m.type.key is not None and m.type.elem is not None and m.image is not None
        want = self._value(Operand(m.type.key, image=self._convert(k, m.type.key, "map index"))).value
        ptr = struct.unpack_from("<Q", m.image)[0]
        if ptr:
            entries, length = self.ev.runtime_types.map_entries(m.type, ptr, _MAP_SCAN)
            dec = self.ev.decoder()
            for kimg, eimg in entries:
                if dec.decode(m.type.key, kimg).value == want:
                    return Operand(m.type.elem, image=eimg, text=text)
            if length > len(entries):
                raise ExprError(f"{text}: the map has {length} entries; gocall scans at most {_MAP_SCAN}")
        return Operand(m.type.elem, image=bytes(m.type.elem.size), text=text)

    def _assert(self, x: Operand, t: GoType, text: str) -> Operand:
        if x.type is None or x.type.kind != Kind.INTERFACE or x.image is None:
            raise ExprError(f"invalid operation: {x.text} is not an interface")
        word, data = struct.unpack("<QQ", x.image)
        rt = self.ev.runtime_types
        dyn = None if word == 0 else rt.dynamic_type(word if x.type.fields[0].name == "_type" else rt.itab_type(word))
        if dyn is None or dyn.name != t.name:
            have = "nil" if dyn is None else dyn.name
            raise ExprError(f"interface conversion: {x.type.name} is {have}, not {t.name}")
        if pointer_shaped(t):
            return Operand(t, image=struct.pack("<Q", data), text=text)
        return Operand(t, image=self.mem.read(data, t.size), addr=data, text=text)

    # -- operators -----------------------------------------------------------------

    def _unary(self, e: Unary) -> Operand:
        if e.op == "&":
            if isinstance(e.x, Composite):
                lit = self.eval(e.x)
                assert lit.type is not None
                return self._new(lit, e.text)
            x = self.eval(e.x)
            if x.addr is None or x.type is None:
                raise ExprError(f"invalid operation: cannot take address of {describe(x)}")
            return Operand(pointer_to(x.type), image=struct.pack("<Q", x.addr), text=e.text)
        x = self.eval(e.x)
        if e.op == "*":
            return self._deref(x, e.text)
        if x.type is None:
            raise ExprError(f"invalid operation: operator {e.op} on {e.text}")
        v = self._value(x).value
        if e.op == "!" and x.type.kind == Kind.BOOL:
            return self._typed(x.type, not v, e.text)
        if isinstance(v, (int, float, complex)) and not isinstance(v, bool) and e.op in "-+^":
            r = -v if e.op == "-" else v if e.op == "+" else ~v  # type: ignore[operator]
            return self._typed(x.type, r, e.text)
        raise ExprError(f"invalid operation: operator {e.op} not defined on {describe(x)}")

    def _binary(self, e: Binary) -> Operand:
        x, y = self.eval(e.x), self.eval(e.y)
        if x.untyped and y.untyped:
            return Operand(None, arith.binary_const(e.op, x.const, y.const, x.text, y.text), text=e.text)
        t = x.type or y.type
        assert t is not None
        if e.op not in ("<<", ">>"):
            for o in (x, y):
                if o.type is not None and o.type.name != t.name:
                    raise ExprError(f"invalid operation: {e.text} (mismatched types {x.type.name if x.type else 'untyped'}"
                                    f" and {y.type.name if y.type else 'untyped'})")
        xv = x.const if x.type is None else self._value(x).value
        yv = y.const if y.type is None else self._value(y).value
        if arith.is_comparison(e.op):
            return Operand(None, arith.compare(e.op, xv, yv), text=e.text)
        if e.op in ("&&", "||"):
            return self._typed(t, (xv and yv) if e.op == "&&" else (xv or yv), e.text)
        r = arith.apply(e.op, xv, yv, integer=t.is_integer, text=e.text)
        return self._typed(t, r, e.text)

    def _typed(self, t: GoType, v: Any, text: str) -> Operand:
        """A value computed here, as an operand of type ``t`` (integers wrap, as in Go)."""
        if t.kind == Kind.STRING:
            return Operand(t, v, text=text)
        if t.is_integer:
            v = arith.wrap(int(v), t.size, t.is_signed)
        return Operand(t, image=encode(t, v, text), text=text)

    # -- literals ------------------------------------------------------------------

    def _composite(self, t: GoType, e: Composite) -> Operand:
        if t.kind == Kind.STRUCT:
            image = bytearray(t.size)
            for i, (key, val) in enumerate(e.elems):
                name = key.qualified if isinstance(key, Name) else None
                if key is not None and name is None:
                    raise ExprError(f"invalid field name {key} in struct literal")
                fields = [f for f in t.fields if f.name == name] if name else list(t.fields[i : i + 1])
                if not fields:
                    raise ExprError(f"unknown field {name} in struct literal of type {t.name}" if name else
                                    f"too many values in struct literal of type {t.name}")
                f = fields[0]
                image[f.offset : f.offset + f.type.size] = self._arg(val, f.type, f"struct literal of type {t.name}")
            return Operand(t, image=bytes(image), text=e.text)
        if t.kind in (Kind.ARRAY, Kind.SLICE) and t.elem is not None:
            elem, images, pos = t.elem, {}, 0
            for key, val in e.elems:
                pos = self._int(self.eval(key)) if key is not None else pos
                images[pos] = self._arg(val, elem, f"{'array' if t.kind == Kind.ARRAY else 'slice'} literal")
                pos += 1
            n = t.length if t.kind == Kind.ARRAY else max(images, default=-1) + 1
            if t.kind == Kind.ARRAY and images and max(images) >= n:
                raise ExprError(f"index {max(images)} out of bounds [0:{n}] in {e.text}")
            data = bytearray(n * elem.size)
            for i, img in images.items():
                data[i * elem.size : (i + 1) * elem.size] = img
            if t.kind == Kind.ARRAY:
                return Operand(t, image=bytes(data), text=e.text)
            ptr = self._alloc(array_of(elem, n), bytes(data), e.text) if n else 0
            return Operand(t, image=struct.pack("<QQQ", ptr, n, n), text=e.text)
        if t.kind == Kind.MAP:
            return self._map_literal(t, e)
        raise ExprError(f"{t.name} literals are not supported yet ({e.text})")

    def _map_literal(self, t: GoType, e: Composite) -> Operand:
        """``map[K]V{k: v, ...}``: made and filled in the target by the runtime's own
        makemap and mapassign (runtime/maps.py), so keys are hashed as the program hashes
        them; each element is stored in the slot mapassign returns."""
        assert t.key is not None and t.elem is not None
        keys: list[tuple[Operand, Expr]] = []
        constants: set[Any] = set()
        for key, val in e.elems:  # Go's compile-time checks first: nothing is allocated yet
            if key is None:
                raise ExprError(f"missing key in map literal {e.text}")
            k = self.eval(key, t.key)
            if k.untyped and k.const is not None:
                if k.const in constants:
                    raise ExprError(f"duplicate key {k.text} in map literal")
                constants.add(k.const)
            keys.append((k, val))
        entries = [(self._convert(k, t.key, "map literal"), self._arg(val, t.elem, "map literal"), k.text)
                   for k, val in keys]
        linked = self.ev.binary.pclntab.func_by_name
        mt = self._rtype(t)
        if linked(maps.MAKEMAP) is not None:
            m = self.s.runtime_call(maps.MAKEMAP, (mt, len(entries), 0))
        else:
            m = self.s.runtime_call(maps.MAKEMAP_SMALL, ())
        self.s.heap.keep(m)
        assign = maps.assign_func(t.key, t.elem, lambda name: linked(name) is not None)
        for kimg, eimg, text in entries:
            self._stored(t.key, kimg, text)
            self._stored(t.elem, eimg, text)
            key_arg: int | bytes = self._alloc(t.key, kimg, text) if assign == maps.MAPASSIGN else kimg
            slot = self.s.runtime_call(assign, (mt, m, key_arg))
            if t.elem.size:
                self.mem.write(slot, eimg)
        return Operand(t, image=struct.pack("<Q", m), text=e.text)

    def _new(self, lit: Operand, text: str) -> Operand:
        """``&T{...}``: a new object of T's size and type in the target, holding the literal."""
        assert lit.type is not None and lit.image is not None
        t = lit.type
        addr = self._alloc(t, lit.image, text)
        return Operand(pointer_to(t), image=struct.pack("<Q", addr), text=text)

    def _alloc(self, t: GoType, image: bytes, text: str) -> int:
        """A new object of type ``t`` in the target holding ``image`` (escape-checked first).

        The GC needs the object's type where it has pointers: ``t``'s descriptor, or for an
        array its element's (``mallocgc(n*size, elem, true)`` is the runtime's ``newarray``).
        A pointer-free type the program never uses (``[37]byte``) has no descriptor and needs
        none: a nil type gives a noscan object of the same size."""
        self._escape_check([(t, image, text, "a value stored in the heap")])
        rtype, of = None, t
        while rtype is None:
            off = self.names.runtime_type(of)
            rtype = None if not off else self.ev.runtime_types.rtype_addr(off)  # go1.19 DWARF says 0 for none
            if rtype is None and of.kind == Kind.ARRAY and of.elem is not None:
                of = of.elem
            elif rtype is None:
                if has_pointers(t):
                    self._rtype(t)  # raises, naming the type
                rtype = 0
        return self.s.heap.alloc(t.size, rtype, image)

    def _slice_type(self, elem: GoType) -> GoType:
        t = self.names.type("[]" + elem.name)
        return t if t is not None else slice_of(elem)

    def _rtype(self, t: GoType) -> int:
        off = self.names.runtime_type(t)
        if off is None:
            raise SymbolNotFound(f"no runtime type descriptor for {t.name} in the binary",
                                 hint="only types the program itself uses have one")
        return self.ev.runtime_types.rtype_addr(off)

    # -- calls ---------------------------------------------------------------------

    def _call(self, e: Call) -> Operand:
        plan = self.ev.call_plans.get(e) if self.s.scope is None else None
        if plan is not None:
            return self._results(e, plan[0], self.s.call(*plan, consumes=True))
        if isinstance(e.func, Name) and e.func.qualified in ("len", "cap"):
            return self._len(e)
        local = isinstance(e.func, Name) and self._is_local(e.func.qualified)
        if isinstance(e.func, (TypeExpr, Unary)) or (isinstance(e.func, Name) and not local and
                                                      self._is_type(e.func.qualified)):
            t = self._type(e.func)
            if len(e.args) != 1:
                raise ExprError(f"wrong argument count in conversion to {t.name}")
            return self._conversion(self.eval(e.args[0], t), t, e.text)
        if isinstance(e.func, Name) and not local:
            q = self.names.qualify(e.func.qualified)
            if self.names.function(q) is None and self.names.variable(q) is None and "." not in e.func.qualified[
                    e.func.qualified.find(".") + 1 :] and self.names.is_package(q.rsplit(".", 1)[0].rsplit("/", 1)[-1]):
                raise SymbolNotFound(f"function {q} is not in the binary", hint=_NOT_LINKED)
        callee = self.eval(e.func)
        fn = callee.fn if callee.fn is not None else self._func_value(callee)
        params = fn.sig.params[len(fn.bound) :]
        args = list(e.args)
        variadic = bool(params) and params[-1].type.kind == Kind.SLICE and not e.spread
        if variadic and self._packs(params, args):
            last = params[-1].type
            head, tail = args[: len(params) - 1], args[len(params) - 1 :]
            args = [*head, Composite(None, tuple((None, a) for a in tail), "...")]
            packed = args[-1]
            assert isinstance(packed, Composite)
            ops: list[Operand | None] = [*([None] * len(head)), self._composite(last, packed)]
        else:
            ops = [None] * len(args)
        if len(args) != len(params):
            want = ", ".join(p.type.name for p in params)
            which = "not enough" if len(args) < len(params) else "too many"
            raise ArgumentError(f"{which} arguments in call to {fn.name} (want ({want}), have {len(args)})")
        images = [self._image(b) for b in fn.bound]
        checks: list[tuple[GoType, bytes, str, str]] = []  # receivers pass (expr/escape.py)
        for n, (p, a, op) in enumerate(zip(params, args, ops, strict=True)):
            image = op.image if op is not None and op.image is not None else self._arg(a, p.type, f"argument to {fn.name}")
            assert image is not None
            checks.append((p.type, image, a.text, f"argument {n + 1} in call to {fn.name}"))
            images.append(image)
        self._escape_check(checks)
        if (self.s.scope is None and isinstance(e.func, Name) and not fn.bound and not fn.closure and ops == [None] * len(ops)
                and all(isinstance(a, Const) and not isinstance(a.value, str) for a in args)
                and all(next(pointer_words(t, image), None) is None for t, image, _, _ in checks)):  # fmt: skip
            # A package function with constant, pointer-free arguments: everything above depends on the
            # binary and the text alone, so the same call is not worked out again (call_plans).
            self.ev.remember_plan(e, fn, images)
        return self._results(e, fn, self.s.call(fn, images, consumes=True))

    @staticmethod
    def _results(e: Call, fn: Fn, results: list[bytes]) -> Operand:
        outs = tuple(Operand(r.type, image=img, text=e.text) for r, img in zip(fn.sig.results, results, strict=True))
        return outs[0] if len(outs) == 1 else Operand(None, text=e.text, results=outs)

    def _packs(self, params: Any, args: list[Expr]) -> bool:
        """Whether a call to a function whose last parameter is a slice packs its trailing
        arguments (DWARF does not mark variadic functions; Go's ``xs...`` is explicit)."""
        if len(args) != len(params):
            return True
        last = self.eval(args[-1], params[-1].type)
        return last.fn is not None or last.type is None and last.const is not None or (
            last.type is not None and not assignable(last.type, params[-1].type))

    def _func_value(self, f: Operand) -> Fn:
        if f.type is None or f.type.kind != Kind.FUNC or f.image is None:
            raise ExprError(f"invalid operation: cannot call non-function {describe(f)}")
        funcval = struct.unpack("<Q", f.image)[0]
        if funcval == 0:
            raise ExprError(f"invalid memory address or nil pointer dereference: {f.text} is a nil func")
        return replace(self.names.function_at(self.mem.u64(funcval)), closure=funcval)

    def _is_type(self, name: str) -> bool:
        q = self.names.qualify(name)
        return self.names.function(q) is None and self.names.variable(q) is None and self.names.type(name) is not None

    def _conversion(self, x: Operand, t: GoType, text: str) -> Operand:
        if x.type is None:
            if t.kind == Kind.STRING and isinstance(x.const, str):
                return Operand(t, x.const, text=text)
            return Operand(t, image=encode(t, x.const, f"conversion to {t.name}"), text=text)
        kinds = {x.type.kind, t.kind}
        if Kind.UNSAFE_POINTER in kinds and kinds <= _UNSAFE_CONVERTIBLE and x.image is not None:
            return Operand(t, image=x.image[:8], text=text)  # the spec's Package unsafe conversions
        v = self._value(x).value
        if (t.is_integer or t.is_float) and isinstance(v, (int, float)) and not isinstance(v, bool):
            return self._typed(t, int(v) if t.is_integer else v, text)
        if assignable(x.type, t) or x.type.kind == t.kind and x.type.size == t.size and x.image is not None:
            return Operand(t, x.const, image=x.image, addr=x.addr, text=text)
        if t.kind == Kind.STRING and x.type.kind == Kind.SLICE and isinstance(v, list):
            return Operand(t, bytes(v).decode("utf-8", "surrogateescape"), text=text)
        raise ExprError(f"cannot convert {describe(x)} to type {t.name}")

    def _len(self, e: Call) -> Operand:
        int_t = self.names.type("int")
        assert int_t is not None
        if len(e.args) != 1:
            raise ExprError(f"wrong number of arguments to {e.func.text}")
        x = self.eval(e.args[0])
        name = e.func.qualified  # type: ignore[union-attr]
        if x.type is None and isinstance(x.const, str) and name == "len":
            return self._typed(int_t, len(x.const.encode("utf-8", "surrogateescape")), e.text)
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
            n = 0 if p == 0 else self.mem.u64(p + (8 if name == "cap" else 0))
        else:
            raise ExprError(f"invalid argument: {describe(x)} for built-in {name}")
        return self._typed(int_t, n, e.text)

    # -- arguments -------------------------------------------------------------------

    def _arg(self, e: Expr, t: GoType, context: str) -> bytes:
        return self._convert(self.eval(e, t), t, context)

    def _convert(self, x: Operand, t: GoType, context: str) -> bytes:
        """The image of operand ``x`` as a value of type ``t`` (Go's assignability)."""
        if x.results is not None:
            raise ExprError(f"multiple-value {x.text} (value of type ({', '.join(r.type.name for r in x.results if r.type)})) "
                            f"in single-value context")
        if x.fn is not None:
            if t.kind == Kind.FUNC and not x.fn.bound:
                sym = self.ev.binary.symbol(x.fn.name + "·f")  # the linker's static funcval for a top-level func
                if sym is not None:
                    return struct.pack("<Q", sym)
            raise ArgumentError(f"cannot use {x.text} (value of type func) as {t.name} value in {context}")
        if t.kind == Kind.INTERFACE and (x.type is None or x.type.kind != Kind.INTERFACE):
            return self._box(x, t, context)
        if x.type is None:
            if t.kind == Kind.STRING and isinstance(x.const, str):
                return self.s.heap.string(x.const.encode("utf-8", "surrogateescape"))
            if x.const is None and t.kind not in NILABLE:
                raise ArgumentError(f"cannot use nil as {t.name} value in {context}")
            return encode(t, x.const, context)
        if not assignable(x.type, t) and not (t.kind == Kind.INTERFACE and x.type.kind == Kind.INTERFACE):
            raise ArgumentError(f"cannot use {describe(x)} as {t.name} value in {context}")
        return self._image(x)

    def _image(self, x: Operand) -> bytes:
        if x.image is not None:
            return x.image
        assert x.type is not None and x.type.kind == Kind.STRING
        return self.s.heap.string(str(x.const).encode("utf-8", "surrogateescape"))

    def _box(self, x: Operand, t: GoType, context: str) -> bytes:
        """An interface value holding ``x``: (type or itab word, data word)."""
        if x.type is None:
            if x.const is None:
                return bytes(16)
            dyn = self.names.type(default_type_name(x.const))
            assert dyn is not None
            x = Operand(dyn, image=self._convert(x, dyn, context), text=x.text)
        assert x.type is not None
        rtype = self._rtype(x.type)
        image = self._image(x)
        data = struct.unpack("<Q", image)[0] if pointer_shaped(x.type) else (
            self._alloc(x.type, image, x.text) if x.type.size else 0)
        word = rtype
        if t.fields and t.fields[0].name == "tab":
            word = self.s.runtime_call("runtime.getitab", (self._rtype(t), rtype, 0))
        return struct.pack("<QQ", word, data)

    def _escape_check(self, values: list[tuple[GoType, bytes, str, str]]) -> None:
        """Refuse pointers into the calling goroutine's stack (expr/escape.py): values as
        (type, image, text, role). Which goroutine calls is known once a thread is held,
        so one is taken now if any value holds a pointer."""
        if self.s.unsafe or all(next(pointer_words(t, image), None) is None for t, image, _, _ in values):
            return
        held = self.s.thread()
        if held.g is None:
            return
        for t, image, text, role in values:
            check_escape(t, image, text, role, held.g)

    def _stored(self, t: GoType, image: bytes, text: str) -> bytes:
        """``image`` about to be written into an object allocated in the target, escape-checked."""
        self._escape_check([(t, image, text, "a value stored in the heap")])
        return image

    def _int(self, o: Operand) -> int:
        if o.type is None:
            if isinstance(o.const, bool) or not isinstance(o.const, int):
                raise ExprError(f"invalid argument: index {o.text} must be integer")
            return o.const
        if not o.type.is_integer:
            raise ExprError(f"invalid argument: index {describe(o)} must be integer")
        return int(self._value(o).value)

    # -- values ----------------------------------------------------------------------

    def _value(self, o: Operand) -> GoValue:
        if o.type is None:
            t = self.names.type(default_type_name(o.const)) if o.const is not None else None
            if t is None:
                return GoValue(GoType("untyped nil", Kind.INVALID, 0), None)
            if t.kind == Kind.STRING:
                return GoValue(t, o.const)
            return GoValue(t, self.ev.decoder().decode(t, encode(t, o.const, o.text)).value)
        if o.image is None:
            return GoValue(o.type, o.const)
        return self.ev.decoder().decode(o.type, o.image)

    def _error_text(self, o: Operand) -> str | None:
        """``err.Error()`` for a non-nil error value, by an injected call."""
        try:
            op = self._call_bound(self._interface_method(o, "Error", f"{o.text}.Error"))
            return str(self._value(op).value)
        except (ExprError, SymbolNotFound, ArgumentError):
            return None

    def _call_bound(self, m: Operand) -> Operand:
        assert m.fn is not None
        results = self.s.call(m.fn, [self._image(b) for b in m.fn.bound], consumes=True)
        return Operand(m.fn.sig.results[0].type, image=results[0], text=m.text)
