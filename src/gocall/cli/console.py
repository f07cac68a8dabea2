"""One place all CLI output goes through (as pdb's message()/error()).

Results go to stdout, diagnostics to stderr; colour only on a terminal
(rich decides), JSON always plain.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console as RichConsole
from rich.markup import escape


class Console:
    def __init__(self) -> None:
        self.out = RichConsole(highlight=False, soft_wrap=True)
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)

    def message(self, text: str, style: str | None = None) -> None:
        self.out.print(escape(text), style=style)

    def note(self, text: str) -> None:
        """Progress and commentary: stderr, dimmed, so stdout stays the results."""
        self.err.print(escape(text), style="dim")

    def error(self, text: str) -> None:
        self.err.print(f"[bold red]gocall:[/] {escape(text)}")

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()
