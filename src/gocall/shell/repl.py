"""The shell at a terminal: prompt_toolkit's line editor (history, Ctrl-R, suggestions from
history, emacs or vi keys, Go highlighting, completion, the signature of the function being
called in the bottom bar), with the program watched while the person types.

While idle at the prompt with breakpoints in (or a program started by ``run -i``), a task
of the editor's event loop asks the engine for hits (a few milliseconds each) on every
SIGCHLD (a thread stopped on one of our INT3s) and every 50 ms:
a hit is printed above the prompt (patch_stdout) and the prompt turns to the stop. Hits
whose condition is false are stepped over by that same wait, so the program never waits
for the person.

Ctrl-C at the prompt clears the line. Once a line runs the terminal is back in its normal
mode, so Ctrl-C is a SIGINT: the engine holds it during a call and unwinds the call
(reported as an error), ``continue`` stops waiting, and anywhere else it ends the command
with the program as it was. The loop is run with ``run_until_complete``, not
``asyncio.run``, whose own SIGINT handler would cancel the whole session.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from types import FrameType

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.enums import DEFAULT_BUFFER, EditingMode
from prompt_toolkit.filters import has_focus
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.patch_stdout import patch_stdout
from pygments.lexers.go import GoLexer  # type: ignore[import-untyped]

from ..errors import GocallError
from .commands import Commands, ExitShell
from .completion import GoCompleter
from .history import open_history
from .interrupts import engine_safe_sigint
from .state import ShellState

_POLL = 0.05  # seconds between looks for hits while idle at the prompt
_WAIT = 0.003  # seconds each look may wait
# Seconds after the first prompt when the engine loads what a first evaluation needs
# (Process.warm: ~150 ms once, keys typed meanwhile wait that long) and completion indexes the
# binary's names (GoCompleter.warm, ~40 ms more on cmd/go): the first call, a stop's first
# locals, the first Tab, then answer as fast as later ones.
_WARM_AFTER = 0.2


def interactive_loop(state: ShellState, commands: Commands, vi: bool | None) -> int:
    loop = asyncio.new_event_loop()
    try:
        # proc.batch() (call/batch.py): a line's calls share one thread and one debugCallV2 run,
        # let go a millisecond after the line's last call (its timer's handler runs while the
        # prompt waits: the signal is the main thread's and wakes the loop). The program never
        # waits for the person, and nothing stays traced while they type.
        with state.proc.batch():
            return loop.run_until_complete(_session(state, commands, vi))
    finally:
        loop.close()


async def _session(state: ShellState, commands: Commands, vi: bool | None) -> int:
    completer = GoCompleter(state, commands)
    session: PromptSession[str] = PromptSession(
        history=open_history(commands.out.note),
        completer=completer,
        complete_while_typing=False,
        auto_suggest=AutoSuggestFromHistory(),
        lexer=PygmentsLexer(GoLexer),
        editing_mode=EditingMode.VI if (vi if vi is not None else _inputrc_vi()) else EditingMode.EMACS,
        key_bindings=_multiline_enter(),
        multiline=True,  # Enter submits unless a bracket is open (composite literals span lines)
        bottom_toolbar=lambda: completer.signature(session.default_buffer.document.text_before_cursor) or None,
    )
    commands.out.note(f"attached to {state.proc.pid} ({state.proc.binary.go_version}); help lists the commands")
    asyncio.get_running_loop().call_later(_WARM_AFTER, _warm, state, completer)
    while True:
        # The program is watched, and printing goes above the prompt, while the prompt is shown;
        # a command runs alone and prints straight out, in order.
        watcher = asyncio.ensure_future(_watch(state, commands, session))
        try:
            with patch_stdout(raw=True):
                line = await session.prompt_async(state.prompt)
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt: the line is cleared
        except EOFError:
            break
        finally:
            watcher.cancel()
            (failed,) = await asyncio.gather(watcher, return_exceptions=True)
            if isinstance(failed, Exception):
                commands.out.error(f"watching the program failed: {failed!r}")
        try:
            # A command that waits (a goroutine to reach Go code, a hit, a long callee) says so
            # on the status line gocall call uses (cli/status.py), erased when it ends.
            with engine_safe_sigint(), commands.out.console.live_status() as status:
                state.proc.observer = status
                try:
                    commands.run(line)
                finally:
                    state.proc.observer = None
        except ExitShell:
            break
    return 0


async def _watch(state: ShellState, commands: Commands, session: PromptSession[str]) -> None:
    # A thread stopping on one of our INT3s sends us SIGCHLD: serve it at once (a false
    # condition's thread waits for us), and look every _POLL anyway. The handler only while
    # the prompt is shown (during a command nobody drains the loop's pipe, and a storm of hits
    # would fill it), chained to any handler set before, which is put back as it was:
    # asyncio's add_signal_handler would leave SIG_DFL behind.
    woken = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGCHLD)

    def on_child(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        loop.call_soon_threadsafe(woken.set)

    signal.signal(signal.SIGCHLD, on_child)
    busy = False
    try:
        while True:
            if busy:
                await asyncio.sleep(0)  # hits keep coming: serve them again at once, keys in between
            else:
                try:
                    # Not wait_for: in 3.11 it loses a cancel that comes as the event is set,
                    # and this task then never ends (a hang on leaving the prompt).
                    async with asyncio.timeout(_POLL):
                        await woken.wait()
                except TimeoutError:
                    pass
            woken.clear()
            busy = state.needs_waiting and _look(state, commands, session)
    finally:
        signal.signal(signal.SIGCHLD, previous if previous is not None else signal.SIG_DFL)


def _warm(state: ShellState, completer: GoCompleter) -> None:
    try:
        state.proc.warm()
        completer.warm()
    except GocallError:
        pass  # what failed fails again, and is reported, when a command needs it


def _look(state: ShellState, commands: Commands, session: PromptSession[str]) -> bool:
    """One short wait for hits; whether the program was busy hitting breakpoints."""
    tested = sum(b.tests + b.hits for b in state.proc.breakpoints)
    try:
        # A SIGINT taken by another thread while the engine waits here must not raise in the
        # middle of its work (interrupts.py); one outside it is Ctrl-C at the prompt: nothing to do.
        with engine_safe_sigint():
            event = state.proc.wait(_WAIT)
    except GocallError as e:
        commands.out.error(str(e))
        return False
    except KeyboardInterrupt:
        return False
    if event is not None:
        commands.announce(event)
        session.app.invalidate()  # the prompt shows the stop
        return False
    return sum(b.tests + b.hits for b in state.proc.breakpoints) != tested


def _multiline_enter() -> KeyBindings:
    kb = KeyBindings()

    # Only in the line itself: in Ctrl-R's search field Enter accepts the search (taken there,
    # an open bracket in the searched text added lines to the search instead).
    @kb.add("enter", filter=has_focus(DEFAULT_BUFFER))
    def _(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        if _open_brackets(buf.text) > 0 and buf.document.is_cursor_at_the_end:
            buf.insert_text("\n")
        else:
            buf.validate_and_handle()

    return kb


def _open_brackets(text: str) -> int:
    text = re.sub(r'"(?:\\.|[^"\\])*"|`[^`]*`|\'(?:\\.|[^\'\\])*\'', "", text)  # brackets in literals do not count
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


def _inputrc_vi() -> bool:
    """``set editing-mode vi`` in ~/.inputrc (or $INPUTRC), as readline users set it."""
    path = os.environ.get("INPUTRC") or os.path.expanduser("~/.inputrc")
    try:
        with open(path) as f:
            return any(re.fullmatch(r"\s*set\s+editing-mode\s+vi\s*", line) for line in f)
    except OSError:
        return False
