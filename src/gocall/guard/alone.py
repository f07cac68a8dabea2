"""What a guardian does first, in its forked child: it lives on alone, whatever gocall does."""

from __future__ import annotations

import os
import signal

from ..process.signals import TERMINATING


def live_alone(*keep: int) -> None:
    """gocall's terminating signals ignored (a guardian ends when its call is seen through, not
    when gocall's terminal closes), gocall's terminal or pipes let go (a reader of them waits for
    their end, not the guardian's), and every other descriptor closed but ``keep``."""
    for signum in TERMINATING:
        signal.signal(signum, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
