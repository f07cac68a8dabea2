"""Everything the shell prints goes through here: text for a person (colour on a terminal,
through the CLI's console) or, with ``--json``, one JSON object per input line.

An expression's object has the shape of one item of ``gocall call --json`` (``expr``,
``results``, ``panic``, ``error``, ``goroutine``, ``location``) plus ``ms``; a command's is
``{"command", "result", "error"}``, ``result`` being what the command found (a list of
goroutines, a stop...)."""

from __future__ import annotations

from typing import Any

from ..call.engine import Site
from ..cli.console import Console
from ..cli.render import evaluation_text
from ..expr.eval import Evaluation


class Output:
    def __init__(self, as_json: bool, plain: bool) -> None:
        self.as_json = as_json
        self.plain = plain  # script mode: no timing notes (a transcript stays the same run to run)
        self.console = Console()
        self._record: dict[str, Any] | None = None

    # -- one input line -----------------------------------------------------------------

    def begin(self, line: str) -> None:
        self._record = {"command": line, "result": None, "error": None} if self.as_json else None

    def end(self) -> None:
        if self._record is not None:
            self.console.json(self._record)
        self._record = None

    # -- what commands and expressions print ---------------------------------------------

    def evaluation(self, ev: Evaluation, site: Site | None, ms: float) -> None:
        if self._record is not None:
            record: dict[str, Any] = ev.to_json()
            if site is not None:
                record["goroutine"], record["location"] = site.goroutine, site.to_json()
            record["ms"] = round(ms, 3)
            self._record = record
            return
        text, kind = evaluation_text(ev)
        if kind == "error":
            self.console.error(text)
            return
        if kind == "panic":
            self.console.message(text, style="yellow")
        else:
            self.console.value(text)  # Go syntax, coloured on a terminal
        if not self.plain:
            where = site.where if site is not None else (f"goroutine {ev.goroutine}" if ev.goroutine else "")
            self.note(f"{ms:.2f} ms" + (f", {where}" if where and ev.calls else ""))

    def lines(self, lines: list[str], result: Any = None, styles: list[str | None] | None = None) -> None:
        """A command's text (and what --json says instead)."""
        if self._record is not None:
            self._record["result"] = result
            return
        for i, line in enumerate(lines):
            self.console.message(line, style=styles[i] if styles else None)

    def note(self, text: str) -> None:
        """Commentary (dim, on stderr); none with --json."""
        if self._record is None:
            self.console.note(text)

    def error(self, text: str) -> None:
        if self._record is not None:
            self._record["error"] = text
        else:
            self.console.error(text)

    def event(self, text: str, result: Any = None) -> None:
        """Something the program did on its own (a hit, its exit): a line, or a JSON object."""
        if self.as_json:
            self.console.json({"event": text, "result": result})
        else:
            self.console.message(text, style="bold magenta")
