"""A decoded Go value: its type and its Python rendering.

One model feeds the three outputs: Go syntax (gofmt.py), JSON (``to_json``)
and plain Python objects for the API (``GoValue.value``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..binary.gotypes import GoType


@dataclass(frozen=True)
class GoValue:
    type: GoType
    value: Any  # int, float, bool, str, complex, None, ...

    def to_json(self) -> dict[str, Any]:
        from .gofmt import json_value

        return {"type": self.type.name, "value": json_value(self)}
