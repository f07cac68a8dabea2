"""Go expressions parsed with tree-sitter-go into gocall's small expression tree.

The text is parsed as the initializer of ``var _ = EXPR`` in a throwaway
source file, so it is Go's own grammar that decides what is valid; this module
only maps the syntax tree onto the forms gocall evaluates and names the
construct when a form is not evaluated yet.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ExprError

if TYPE_CHECKING:
    from tree_sitter import Node, Parser


# Nodes are NamedTuples, not frozen dataclasses: a dataclass compiles its methods from source at
# import (~0.4 ms each, 4.4 ms for these twelve of a cold `gocall call`). Nothing compares nodes of
# different kinds, so tuple equality (Name("x") == TypeExpr("x")) is never asked.
class Const(NamedTuple):
    """An untyped Go constant: int, float, complex, bool, str (rune constants are ints), None for nil."""

    value: int | float | complex | bool | str | None
    text: str


class Name(NamedTuple):
    """A possibly package-qualified identifier: ``main.Add``, ``strings.ToUpper``, ``int8``."""

    qualified: str

    @property
    def text(self) -> str:
        return self.qualified


class TypeExpr(NamedTuple):
    """Type syntax that is not a plain name: ``[]int``, ``*main.Point``, ``map[string]int``."""

    text: str


class Selector(NamedTuple):
    """``x.f``: a field, a method, or (when ``x`` is a package) a package member."""

    x: Expr
    field: str
    text: str


class Index(NamedTuple):
    """``x[key]``: ``key``, not ``index``, which would hide tuple.index."""

    x: Expr
    key: Expr
    text: str


class SliceExpr(NamedTuple):
    """``x[low:high]`` or ``x[low:high:max]``; omitted bounds are None."""

    x: Expr
    low: Expr | None
    high: Expr | None
    max: Expr | None
    text: str


class Unary(NamedTuple):
    op: str  # & * - + ! ^
    x: Expr
    text: str


class Binary(NamedTuple):
    op: str
    x: Expr
    y: Expr
    text: str


class Call(NamedTuple):
    func: Expr
    args: tuple[Expr, ...]
    text: str
    spread: bool = False  # the last argument is followed by ``...``


class Composite(NamedTuple):
    """``T{...}``: elements as (key or None, value); nested literals may omit their type (``type`` None)."""

    type: Expr | None
    elems: tuple[tuple[Expr | None, Expr], ...]
    text: str


class TypeAssert(NamedTuple):
    x: Expr
    type: Expr
    text: str


Expr = Const | Name | TypeExpr | Selector | Index | SliceExpr | Unary | Binary | Call | Composite | TypeAssert


class Assign(NamedTuple):
    """``x = EXPR``: the one statement gocall evaluates (at a stop: locals and globals)."""

    target: Expr
    value: Expr
    text: str

_PREFIX = b"package p\nvar _ = "


@functools.cache
def _parser() -> Parser:
    # Loaded on first use (~10 ms of a cold start): _simple_call reads the common
    # `gocall call PID 'pkg.F(1, "s")'` without them.
    import tree_sitter_go
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_go.language()))


def load_parser() -> None:
    """Load tree-sitter's Go grammar now, while nothing waits (Process.warm)."""
    _parser()


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expr:
    """Parse one Go expression; ExprError says where it is not valid Go. Trees are immutable,
    so an expression evaluated again (a warm call) is parsed once."""
    return _simple_call(text) or _parse_tree(text)


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SIMPLE_CALL = re.compile(rf"({_IDENT})\.({_IDENT})\((.*)\)", re.S)
_SIMPLE_ARG = re.compile(r'\s*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|true|false|"[^"\\\n]*")\s*(?:,|$)')
_KEYWORDS = frozenset(
    "break case chan const continue default defer else fallthrough for func go goto if import interface map "
    "package range return select struct switch type var".split())


def _simple_call(text: str) -> Call | None:
    """``pkg.F(1, -2, 2.5, "s", true)`` (a qualified name, decimal, string and bool literals)
    read without tree-sitter, as the same tree; None for anything else."""
    m = _SIMPLE_CALL.fullmatch(text)
    if m is None or m[1] in _KEYWORDS or m[2] in _KEYWORDS:
        return None
    args: list[Expr] = []
    body, pos = m[3], 0
    while body.strip() and pos < len(body):
        arg = _SIMPLE_ARG.match(body, pos)
        if arg is None:
            return None
        lit = arg[1]
        value = lit == "true" if lit in ("true", "false") else lit[1:-1] if lit[0] == '"' else \
            float(lit) if "." in lit else int(lit)
        args.append(Const(value, lit))
        pos = arg.end()
    return Call(Name(f"{m[1]}.{m[2]}"), tuple(args), text)


def _parse_tree(text: str) -> Expr:
    src = _PREFIX + text.encode() + b"\n"
    tree = _parser().parse(src)
    root = tree.root_node
    if root.has_error:
        bad = _first_error(root)
        col = max(0, bad.start_byte - len(_PREFIX)) if bad else 0
        raise ExprError(f"not a valid Go expression: {text!r} (syntax error at column {col + 1})")
    decl = root.named_children[-1]
    values = decl.named_children[0].child_by_field_name("value") if decl.named_children else None
    if decl.type != "var_declaration" or values is None or values.named_child_count != 1:
        raise ExprError(f"expected one Go expression, got {text!r}")
    node = values.named_children[0]
    return _convert(node, src)


_STMT_PREFIX = b"package p\nfunc _() {\n"


def parse_statement(text: str) -> Expr | Assign:
    """An expression, or an assignment ``x = EXPR`` (one target, one value)."""
    try:
        return parse(text)
    except ExprError as not_expr:
        src = _STMT_PREFIX + text.encode() + b"\n}\n"
        root = _parser().parse(src).root_node
        body = root.named_children[-1].child_by_field_name("body") if root.named_children else None
        stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
        if len(stmts) == 1 and stmts[0].type == "statement_list":  # newer tree-sitter-go wraps them
            stmts = [c for c in stmts[0].named_children if c.type != "comment"]
        if root.has_error or len(stmts) != 1 or stmts[0].type != "assignment_statement" or \
                _text(_field(stmts[0], "operator"), src) != "=":
            raise not_expr from None
        left, right = _field(stmts[0], "left"), _field(stmts[0], "right")
        if left.named_child_count != 1 or right.named_child_count != 1:
            raise ExprError(f"assign one value at a time: {text!r}") from None
        return Assign(_convert(left.named_children[0], src), _convert(right.named_children[0], src), text)


def _first_error(n: Node) -> Node | None:
    if n.type == "ERROR" or n.is_missing:
        return n
    for c in n.children:
        if c.has_error or c.is_missing or c.type == "ERROR":
            found = _first_error(c)
            if found:
                return found
    return None


def _text(n: Node, src: bytes) -> str:
    return src[n.start_byte : n.end_byte].decode()


def _field(n: Node, name: str) -> Node:
    child = n.child_by_field_name(name)
    assert child is not None, (n.type, name)
    return child


_TYPE_NODES = {"slice_type", "array_type", "map_type", "pointer_type", "channel_type", "function_type",
               "interface_type", "struct_type", "qualified_type", "type_identifier", "generic_type",
               "implicit_length_array_type"}


def _convert(n: Node, src: bytes) -> Expr:
    t = n.type
    text = _text(n, src)
    match t:
        case "parenthesized_expression":
            return _convert(n.named_children[0], src)
        case "int_literal":
            return Const(int(text.replace("_", ""), 0) if not _is_legacy_octal(text) else int(text, 8), text)
        case "float_literal":
            return Const(_float(text), text)
        case "imaginary_literal":
            body = text[:-1].replace("_", "")
            return Const(complex(0, _float(body) if re.search(r"[.eEpP]", body) else int(body, 0)), text)
        case "rune_literal":
            return Const(ord(_unescape(text[1:-1], "'")), text)
        case "interpreted_string_literal":
            return Const(_unescape(text[1:-1], '"'), text)
        case "raw_string_literal":
            return Const(text[1:-1].replace("\r", ""), text)
        case "true" | "false":
            return Const(t == "true", text)
        case "nil":
            return Const(None, text)
        case "identifier" | "type_identifier" | "field_identifier" | "package_identifier":
            return Name(text)
        case "qualified_type":
            return Name(text)
        case "selector_expression":
            operand = _field(n, "operand")
            field = _text(_field(n, "field"), src)
            if operand.type == "identifier":
                return Name(f"{_text(operand, src)}.{field}")
            return Selector(_convert(operand, src), field, text)
        case "index_expression":
            return Index(_convert(_field(n, "operand"), src), _convert(_field(n, "index"), src), text)
        case "slice_expression":
            low, high, cap_ = (_optional(n.child_by_field_name(f), src) for f in ("start", "end", "capacity"))
            return SliceExpr(_convert(_field(n, "operand"), src), low, high, cap_, text)
        case "unary_expression":
            return _unary(n, src, text)
        case "binary_expression":
            op = _text(_field(n, "operator"), src)
            x, y = _convert(_field(n, "left"), src), _convert(_field(n, "right"), src)
            return _fold(op, x, y, text)
        case "call_expression":
            fn = _convert(_field(n, "function"), src)
            args_node = n.child_by_field_name("arguments")
            nodes = args_node.named_children if args_node else []
            spread = bool(nodes) and nodes[-1].type == "variadic_argument"
            args = tuple(_convert(a.named_children[0] if a.type == "variadic_argument" else a, src) for a in nodes)
            return Call(fn, args, text, spread)
        case "type_conversion_expression":
            return Call(_convert(_field(n, "type"), src), (_convert(_field(n, "operand"), src),), text)
        case "composite_literal":
            return Composite(_convert(_field(n, "type"), src), _elements(_field(n, "body"), src), text)
        case "literal_value":
            return Composite(None, _elements(n, src), text)
        case "literal_element":
            return _convert(n.named_children[0], src)
        case "type_assertion_expression":
            return TypeAssert(_convert(_field(n, "operand"), src), _convert(_field(n, "type"), src), text)
    if t in _TYPE_NODES:
        return TypeExpr(text)
    raise ExprError(f"{_describe(t)} ({text!r}) is not supported")


def _optional(n: Node | None, src: bytes) -> Expr | None:
    return None if n is None else _convert(n, src)


def _elements(body: Node, src: bytes) -> tuple[tuple[Expr | None, Expr], ...]:
    out: list[tuple[Expr | None, Expr]] = []
    for e in body.named_children:
        if e.type == "keyed_element":
            out.append((_convert(_field(e, "key"), src), _convert(_field(e, "value"), src)))
        elif e.type != "comment":
            out.append((None, _convert(e, src)))
    return out and tuple(out) or ()


def _fold(op: str, x: Expr, y: Expr, text: str) -> Expr:
    """Constant expressions are evaluated here, as the compiler does (exact integer arithmetic)."""
    if isinstance(x, Const) and isinstance(y, Const) and x.value is not None and y.value is not None:
        from ..values.arith import binary_const

        return Const(binary_const(op, x.value, y.value, x.text, y.text), text)
    return Binary(op, x, y, text)


def _unary(n: Node, src: bytes, text: str) -> Expr:
    op = _text(_field(n, "operator"), src)
    x = _convert(_field(n, "operand"), src)
    if not isinstance(x, Const) or x.value is None:
        if isinstance(x, (TypeExpr, Name)) and op == "*" and isinstance(x, TypeExpr):
            return TypeExpr(text)
        return Unary(op, x, text)
    v = x.value
    if op == "-" and isinstance(v, (int, float, complex)) and not isinstance(v, bool):
        return Const(-v, text)
    if op == "+" and isinstance(v, (int, float, complex)) and not isinstance(v, bool):
        return Const(v, text)
    if op == "!" and isinstance(v, bool):
        return Const(not v, text)
    if op == "^" and isinstance(v, int) and not isinstance(v, bool):
        return Const(~v, text)
    raise ExprError(f"invalid operation: operator {op} not defined on {x.text}")


def _is_legacy_octal(text: str) -> bool:
    return len(text) > 1 and text[0] == "0" and text[1].isdigit()


def _float(text: str) -> float:
    text = text.replace("_", "")
    return float.fromhex(text) if text[:2].lower() == "0x" else float(text)


_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(body: str, quote: str) -> str:
    """Go's escape sequences (spec: Rune literals); \\xHH and octal give bytes."""
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE or e == quote:
            out += _SIMPLE.get(e, e).encode()
            i += 2
        elif e == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif e in "01234567":
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + n], 16)).encode()
            i += 2 + n
        else:
            raise ExprError(f"unknown escape sequence \\{e}")
    return out.decode("utf-8", "surrogateescape")


def _describe(node_type: str) -> str:
    return node_type.replace("_", " ")
