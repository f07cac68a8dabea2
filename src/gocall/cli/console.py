"""One place all CLI output goes through (as pdb's message()/error()).

Results go to stdout, diagnostics to stderr; colour only on a terminal
(rich decides), JSON always plain.

rich is imported only when a stream is a terminal (or FORCE_COLOR asks for
colour): it costs ~40 ms of a ~130 ms CLI start, and output to a pipe, what
scripts and the benchmarks read, is plain text anyway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console as RichConsole

    from .status import LiveStatus


_HIGHLIGHT_MAX = 20_000  # characters of a Go value coloured at most (print_go)
_making = threading.Lock()  # one rich console per stream, whichever thread asks first


class _Stream:
    """stdout or stderr: plain writes, or a rich console made on first use on a terminal."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._rich: RichConsole | None = None

    @property
    def _file(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout  # looked up late: tests swap them

    def print(self, text: str, style: str | None = None, markup_prefix: str = "", plain_prefix: str = "") -> None:
        if not self._coloured():
            self._file.write(plain_prefix + text + "\n")
            self._file.flush()
            return
        from rich.markup import escape

        self.rich.print(markup_prefix + escape(text), style=style)

    def print_go(self, text: str) -> None:
        """``text``, Go syntax (a value as gofmt.py writes it), highlighted as Go on a terminal
        in the terminal's own palette; plain otherwise, and past _HIGHLIGHT_MAX characters (a
        huge slice would take longer to colour than to read)."""
        if not self._coloured() or len(text) > _HIGHLIGHT_MAX:
            self.print(text)
            return
        from rich.syntax import Syntax

        # The highlighted text, not the Syntax renderable: that one is cropped to the terminal's
        # width under soft_wrap, where a Text is left for the terminal to wrap like plain output.
        coloured = Syntax(text, "go", theme="ansi_dark", background_color="default").highlight(text)
        coloured.rstrip()
        self.rich.print(coloured)

    @property
    def rich(self) -> RichConsole:
        """The rich console writing to this stream (made on first use, by whichever thread:
        the live status line draws on stderr's from its own, cli/status.py)."""
        with _making:
            if self._rich is None:
                from rich.console import Console as RichConsole

                self._rich = RichConsole(stderr=self._stderr, highlight=False, soft_wrap=True)
            return self._rich

    def _coloured(self) -> bool:
        return self._rich is not None or self._file.isatty() or bool(os.environ.get("FORCE_COLOR"))


class Console:
    def __init__(self) -> None:
        self.out = _Stream(stderr=False)
        self.err = _Stream(stderr=True)

    def forget_streams(self) -> None:
        """As new: the rich consoles made for the last streams dropped (they keep the colours
        and width of the terminal they were made for). A gocall server's child that serves
        another command (cli/server.py) starts it so, its streams perhaps a pipe now."""
        self.out = _Stream(stderr=False)
        self.err = _Stream(stderr=True)

    def message(self, text: str, style: str | None = None) -> None:
        self.out.print(text, style=style)

    def value(self, text: str) -> None:
        """A result in Go syntax: coloured as Go on a terminal."""
        self.out.print_go(text)

    def note(self, text: str) -> None:
        """Progress and commentary: stderr, dimmed, so stdout stays the results."""
        self.err.print(text, style="dim")

    def error(self, text: str) -> None:
        self.err.print(text, markup_prefix="[bold red]gocall:[/] ", plain_prefix="gocall: ")

    def live_status(self, quiet: bool = False) -> contextlib.AbstractContextManager[LiveStatus | None]:
        """The live status line on stderr while gocall waits (cli/status.py), for the block's
        duration; None when stderr is not a terminal, with ``quiet``, and when ``--log``
        writes to stderr (its lines would break the status line)."""
        if quiet or not sys.stderr.isatty() or logging.getLogger().handlers:
            return contextlib.nullcontext()
        if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):  # as rich tells a dumb terminal
            return contextlib.nullcontext()
        from .status import LiveStatus

        return LiveStatus(lambda: self.err.rich)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()
