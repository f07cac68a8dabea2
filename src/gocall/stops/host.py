"""What stops/ need of the process above them (:class:`gocall.Process` provides it), as a
protocol: stops/ are a layer below session.py and stop.py, and imports only point down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..binary import GoBinary
    from ..call.engine import CallEngine
    from ..expr.eval import Evaluator
    from ..process.memory import Memory
    from ..runtime.layouts import Layout
    from ..runtime.view import RuntimeView


class Process(Protocol):
    """The attached process's binary, memory and engines (read-only here)."""

    @property
    def binary(self) -> GoBinary: ...
    @property
    def mem(self) -> Memory: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def engine(self) -> CallEngine: ...
    @property
    def evaluator(self) -> Evaluator: ...
    @property
    def runtime(self) -> RuntimeView: ...
