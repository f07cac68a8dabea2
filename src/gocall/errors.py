"""Every error gocall raises, one tree under :class:`GocallError`.

Each message says what happened and what to do about it (Delve's
``ErrPerfEventParanoid`` style); ``transient`` tells callers whether trying
again later may succeed.
"""


class GocallError(Exception):
    """Base of every error gocall raises on purpose."""

    transient = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class BinaryError(GocallError):
    """The executable cannot be read as a Go binary gocall supports."""


class NotGoBinary(BinaryError):
    """The file is not a Go executable (no .gopclntab / build info)."""


class UnsupportedGo(BinaryError):
    """Built by a Go release whose layouts gocall does not know."""


class UnsupportedBinary(BinaryError):
    """A Go binary gocall can read but not call into (no debugCallV2); says why."""


class SymbolNotFound(BinaryError):
    """A function or symbol is not in the binary (dead-code eliminated, misspelt, inlined away)."""


class ProcessError(GocallError):
    """Controlling the target process failed."""


class BadAddress(ProcessError):
    """An address the target has no readable (or writable) memory at: an expression's mistake
    (a wrong pointer, a misread location), not the process's."""


class PtraceError(ProcessError):
    """A ptrace request failed; carries errno and the thread id."""

    def __init__(self, request: str, tid: int, errno: int, hint: str | None = None) -> None:
        import os

        self.request = request
        self.tid = tid
        self.errno = errno
        super().__init__(f"ptrace({request}) on thread {tid} failed: {os.strerror(errno)}", hint)


class AttachDenied(PtraceError):
    """The kernel refused to let gocall trace or read the process (EPERM/EACCES); the message
    is the diagnosis of process/permissions.py: the failed check, its fix, and ``gocall doctor``."""

    def __init__(self, pid: int, tid: int, errno: int, diagnosis: str) -> None:
        super().__init__("SEIZE", tid, errno)
        self.pid = pid
        self.message = diagnosis
        self.args = (diagnosis,)


class TargetExited(ProcessError):
    """The target process (or the thread we drove) exited or was killed."""


class ThreadGone(PtraceError, TargetExited):
    """ptrace said ESRCH: the thread exited (or the whole target did) under our hands."""

    def __init__(self, request: str, tid: int, errno: int, hint: str | None = None) -> None:
        super().__init__(request, tid, errno, hint)
        self.message = f"thread {tid} is gone: the target exited or was killed"
        self.args = (self.message,)


class NoGoroutine(GocallError):
    """No goroutine could be found in a state where a call may be injected."""

    transient = True


class CallError(GocallError):
    """The call itself could not be made."""


class CallRefused(CallError):
    """The runtime's debugCallCheck refused the injection; ``reason`` is its own words."""

    # Reasons that depend on where the thread happened to be: moving on and trying again helps.
    _TRANSIENT = {
        "call not at safe point",
        "call from within the Go runtime",
        "executing on Go runtime stack",
        "call from unknown function",
    }

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.transient = reason in self._TRANSIENT
        super().__init__(f"runtime refused the call: {reason}")


class Interrupted(CallError):
    """A signal that would end gocall came during a call (SIGINT, SIGTERM, SIGHUP...: see
    process/signals.py); the call was finished or unwound and the target restored before raising
    this. ``signum`` is the signal (the front end exits with 128 + signum)."""

    def __init__(self, message: str) -> None:
        # The signal the engine's waits collected (an expression's session may end its hold
        # through ExitStack.close, where no exception passes through the hold to be told).
        from .process.waiting import interrupts  # errors.py is imported by every layer, this one too

        self.signum: int = interrupts.signal or 2  # SIGINT
        super().__init__(message)


class Abandoned(CallError):
    """A callee that did not return was left to a guardian process (guard/handover.py), which
    restores the thread when it returns: on a second interrupt (``signum``), or at the timeout
    when asked to (``abandon``; ``signum`` None). The message names the goroutine and the guardian."""

    def __init__(self, message: str, signum: int | None) -> None:
        self.signum = signum
        super().__init__(message)


class ArgumentError(CallError):
    """An argument cannot be converted to the callee's parameter type; nothing was injected."""


class ExprError(GocallError):
    """An expression is not valid Go, or uses a form gocall does not evaluate yet."""


class GoPanic(GocallError):
    """The callee panicked. ``value`` is the decoded panic value, ``type_name`` its dynamic type."""

    def __init__(self, type_name: str, value: object, text: str) -> None:
        self.type_name = type_name
        self.value = value
        self.text = text
        super().__init__(f"panic: {text}")


class GoError(GocallError):
    """The call returned a non-nil ``error``. ``text`` is its ``Error()``, ``results`` every
    result of the call (the error included) as Python values."""

    def __init__(self, text: str, results: list[object], go_value: str) -> None:
        self.text = text
        self.results = results
        self.go_value = go_value
        super().__init__(f"error: {text}")
