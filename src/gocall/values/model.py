"""A decoded Go value: its type, its parts, and its Python rendering.

One model feeds the three outputs: Go syntax (gofmt.py), JSON (``to_json``)
and plain Python objects for the API (``GoValue.value``): int, float,
complex, bool, str, list (arrays, slices), dict (maps), :class:`GoStruct`
(structs, attribute access), :class:`GoPointer` (non-nil pointers),
:class:`GoRef` (chans, funcs), None for nil.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..binary.gotypes import GoType


class GoStruct:
    """A Go struct value: fields by attribute (``p.X``) or item (``p["X"]``), in declaration order."""

    __slots__ = ("_type_name", "_fields")

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{self._type_name} has no field {name}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Go values read from the target are read-only")

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._fields)

    @property
    def go_type(self) -> str:
        name: str = self._type_name
        return name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GoStruct):
            return bool(self._type_name == other._type_name and self._fields == other._fields)
        if isinstance(other, dict):
            return bool(self._fields == other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._type_name, tuple(self._fields.items())))

    def __repr__(self) -> str:
        return f"{self._type_name}({', '.join(f'{k}={v!r}' for k, v in self._fields.items())})"


@dataclass(frozen=True)
class GoPointer:
    """A non-nil Go pointer: its address, the pointee type, and the pointee if it was loaded."""

    address: int
    type_name: str
    elem: Any = None

    def __repr__(self) -> str:
        return f"&{self.elem!r}" if self.elem is not None else f"({self.type_name})({self.address:#x})"


@dataclass(frozen=True)
class GoRef:
    """A chan or func value: where it lives in the target, and what is known of it
    (a function's name; a channel's ``len``/``cap``)."""

    address: int
    type_name: str
    detail: str = ""


@dataclass(frozen=True, eq=False)
class GoValue:
    """One decoded value.

    ``parts`` holds the parts the Go-syntax and JSON renderings need: array/slice
    elements, struct fields (in order, named by ``names``), map keys and values
    interleaved, a pointer's pointee (when loaded), an interface's dynamic value.
    ``missing`` counts elements left out by the load limits (values/limits in
    decode.py); ``address`` is the pointer/map/chan/func word; ``text`` an
    error's ``Error()`` or a func's name.
    """

    type: GoType
    value: Any
    parts: tuple[GoValue, ...] = ()
    names: tuple[str, ...] = ()
    missing: int = 0
    address: int | None = None
    text: str | None = None
    truncated: bool = field(default=False)  # this value or one inside it hit a load limit

    def to_json(self) -> dict[str, Any]:
        from .gofmt import json_value

        out = {"type": self.type.name, "value": json_value(self)}
        if self.truncated:
            out["truncated"] = True
        return out
