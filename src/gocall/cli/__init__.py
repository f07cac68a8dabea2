"""gocall's command-line front end: everything printed goes through console.Console."""

import gc
import sys


# The commands offered to the server: one-shot, with a PID to look at. Not ``attach`` and ``run``
# (a person's session, and a program whose parent must be this process), nor ``demo``.
_SERVED = ("call", "goroutines", "stack", "roots", "doctor", "info", "ps")


def main() -> None:
    """The ``gocall`` command (scripts/gocall): gocall.cli.main's ``main``, with the cyclic
    garbage collector off while its modules load. Imports allocate ~150 modules' worth of
    objects that live until exit, so every collection their allocations trigger walks them for
    nothing (~4 ms of a ~80 ms ``gocall call``, bench/cold_attach.py). They are then frozen
    (moved out of the collector's generations, ``gc.freeze``) so that the first collection after
    the collector is back on does not walk them all either; it is back on before the command
    runs, as ``gocall run`` and ``--break`` may live long.

    ``gocall call ...`` is first offered to the per-user server (cli/handoff.py), which has the
    modules loaded: this process then only relays, and ends as the command does."""
    if sys.argv[1:2] and sys.argv[1] in _SERVED:
        from .handoff import hand_over

        hand_over(sys.argv[1:])  # returns when the server cannot take it: the command runs here
    enabled = gc.isenabled()
    gc.disable()
    try:
        from .main import main as run
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    run()
