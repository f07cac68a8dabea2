"""The shell's history: one file per user in the state directory, read back by the next
session. A file that cannot be read or written is reported once and the session goes on
with a history in memory."""

from __future__ import annotations

import os
from collections.abc import Callable

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from .state import state_dir


def open_history(report: Callable[[str], None], path: str | None = None) -> History:
    path = path or os.environ.get("GOCALL_HISTORY") or os.path.join(state_dir(), "history")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        history = FileHistory(path)
        list(history.load_history_strings())  # a broken file fails here, not in the editor's thread
        with open(path, "ab"):
            pass  # and one we cannot write, here too
        return history
    except (OSError, UnicodeError, ValueError) as e:
        report(f"history not kept: {path}: {getattr(e, 'strerror', None) or e} (fix or remove the file)")
        return InMemoryHistory()
