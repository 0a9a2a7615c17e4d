"""Small C kernels, compiled on first use with this machine's C compiler and loaded with ctypes.

Why: what is left of a bf16 Zipformer decoder call besides its matrix multiplies is element-wise
arithmetic that torch evaluates one operation at a time, at float32 accuracy even for bf16 data
(the Swoosh activation: five passes over the widest activations, `log1p` alone 7 % of a call). A
few lines of C compiled with `-O3 -march=native` do such a chain in one vectorized pass. Measured
instead (docs/performance.md): torch.compile's inductor (the same libm-accuracy arithmetic in one
pass: 1.09x on the Swoosh, 18 s to compile it) and a table lookup through torch's gathers (1.1x).
An extension built at install time would turn voxpipe into a platform wheel; compiling a few
kilobytes of C once per machine (~0.3 s, cached) keeps it pure Python, and a machine without a
C compiler keeps the torch path.

`load(source)` compiles a .c file shipped in the package into the cache (voxpipe/core/cache.py;
only if this user owns that directory and no one else may write to it, else into a private
temporary directory removed once the library is loaded) under a name that hashes the source,
the compiler and its version, the flags and the CPU (model and flags: `-march=native` code must
not run on another CPU), through a temporary file and a rename (concurrent processes both write
a whole library); it never raises: a `NativeLibrary` whose `library` is None says why in
`status`, and callers keep their torch code.

OpenMP: compiled with `-fopenmp` where the compiler has it. A GCC-built library then needs
`libgomp.so.1`, which the dynamic loader resolves to the copy torch's Linux wheels already
loaded, so kernels run on torch's thread pool. If loading it brought in a second OpenMP runtime,
`threads_ok` is False: two pools on the same cores make every torch operation wait for kernel
wake-ups (voxpipe/core/openmp.py).

`VOXPIPE_NATIVE_KERNELS=0` turns native kernels off; `CC` chooses the compiler (default: the
compiler Python was built with if it is installed, else cc, gcc, clang).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from voxpipe.core.cache import cache_root
from voxpipe.core.cpu import detect
from voxpipe.core.openmp import loaded_runtimes

SWITCH_ENV = "VOXPIPE_NATIVE_KERNELS"
COMPILE_TIMEOUT_SECONDS = 120
# -fno-math-errno lets rintf/fabsf vectorize; no -ffast-math: the kernels test for NaN.
COMMON_FLAGS = ("-O3", "-fno-math-errno", "-fPIC", "-shared")
OPENMP_FLAG = "-fopenmp"
NO_COMPILER = "unavailable: no C compiler found (install gcc or clang, or set CC)"
FAILED_SUFFIX = ".failed"  # remembers a compile that failed, so later processes do not retry it

_lock = threading.Lock()


@dataclass(frozen=True)
class NativeLibrary:
    """A loaded kernel library (None when unavailable), why or from where, and whether its
    kernels may use more than one thread (OpenMP shared with torch)."""

    library: ctypes.CDLL | None
    status: str
    threads_ok: bool = False


def enabled() -> bool:
    """False when VOXPIPE_NATIVE_KERNELS is 0/false/off/no."""
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def find_compiler() -> list[str] | None:
    """The C compiler command ($CC, else Python's build compiler if installed, else cc, gcc,
    clang), its program resolved to a path; None if none is installed."""
    configured = os.environ.get("CC", "").strip()
    if configured:
        candidates = [shlex.split(configured)]
    else:
        built_with = sysconfig.get_config_var("CC") or ""
        candidates = ([shlex.split(built_with)] if built_with.strip() else []) + [["cc"], ["gcc"], ["clang"]]
    for command in candidates:
        program = shutil.which(command[0])
        if program:
            return [program, *command[1:]]
    return None


def _off() -> str:
    return f"off ({SWITCH_ENV}={os.environ.get(SWITCH_ENV)})"


def describe() -> str:
    """One line for `voxpipe plugins --cpu`: whether native kernels can be built here, with what."""
    if not enabled():
        return _off()
    compiler = find_compiler()
    if compiler is None:
        return f"{NO_COMPILER}; the torch operations run instead"
    version = _compiler_version(compiler) or compiler[0]
    return f"on: compiled on first use with {version} ({_arch_flag()}) into {cache_root() / 'native'}"


def _arch_flag() -> str:
    return "-march=native" if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686") else "-mcpu=native"


def _compiler_version(compiler: list[str]) -> str:
    """First line of `compiler --version` ("" if it does not answer)."""
    try:
        result = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _library_name(source: Path, text: str, compiler: list[str], version: str, flags: tuple[str, ...]) -> str:
    """<stem>-<16 hex digits>.so, the digits hashing everything the machine code depends on."""
    cpu = detect()
    digest = hashlib.sha256()
    for part in (text, " ".join(compiler), version, " ".join(flags), platform.machine(), cpu.model,
                 " ".join(sorted(cpu.flags))):
        digest.update(part.encode())
        digest.update(b"\0")
    return f"{source.stem}-{digest.hexdigest()[:16]}.so"


def _compile(compiler: list[str], flags: tuple[str, ...], source: Path, target: Path) -> tuple[str, bool]:
    """Build `target` from `source`: ("", _) on success, else (the complaint, whether the compiler
    itself refused: worth remembering, unlike a timeout or a full disk)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".so")
    os.close(handle)
    try:
        result = subprocess.run([*compiler, *flags, *COMMON_FLAGS, str(source), "-o", temporary],
                                capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS, check=False)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            return (lines[0][:200] if lines else f"exit status {result.returncode}"), True
        os.replace(temporary, target)
        return "", False
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)[:200], False
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _directory() -> tuple[Path, bool]:
    """(cache_root()/native, False) if this user owns it and no one else can write to it (a
    library planted there would run in this process), else (a fresh private temporary directory,
    True): the caller removes it once the library is loaded."""
    try:
        directory = cache_root() / "native"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _owned_by_this_user(directory):
            mode = directory.stat().st_mode
            if mode & 0o022:
                directory.chmod(mode & ~0o022)
            if not directory.stat().st_mode & 0o022 and os.access(directory, os.W_OK):
                return directory, False
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        pass
    return Path(tempfile.mkdtemp(prefix="voxpipe-native-")), True


def _owned_by_this_user(path: Path) -> bool:
    return not hasattr(os, "getuid") or path.stat().st_uid == os.getuid()


def load(source: Path) -> NativeLibrary:
    """The kernels of the C file `source`, compiled for this machine (once, then cached)."""
    return _load(str(Path(source).resolve()))


def reset() -> None:
    """Forget loaded libraries (tests: another cache directory, compiler or switch)."""
    _load.cache_clear()


@functools.cache
def _load(source_path: str) -> NativeLibrary:
    import torch  # noqa: F401 - torch's OpenMP runtime must be loaded first, for the library to share it

    if not enabled():
        return NativeLibrary(None, _off())
    source = Path(source_path)
    try:
        text = source.read_text()
    except OSError as error:
        return NativeLibrary(None, f"unavailable: cannot read {source}: {error.strerror}")
    compiler = find_compiler()
    if compiler is None:
        return NativeLibrary(None, NO_COMPILER)
    version = _compiler_version(compiler)
    with _lock:
        directory, temporary = _directory()
        try:
            return _build_and_load(source, text, compiler, version, directory, temporary)
        finally:
            if temporary:  # a loaded library stays mapped after its file is gone
                shutil.rmtree(directory, ignore_errors=True)


def _build_and_load(source: Path, text: str, compiler: list[str], version: str, directory: Path,
                    temporary: bool) -> NativeLibrary:
    """The most capable build of `source` that compiles and loads, from `directory` (built there
    if missing): OpenMP + this CPU's instructions, then without OpenMP, then generic code."""
    complaint = ""
    for flags in ((_arch_flag(), OPENMP_FLAG), (_arch_flag(),), ()):
        target = directory / _library_name(source, text, compiler, version, flags)
        failed = target.with_name(target.name + FAILED_SUFFIX)
        if not target.is_file():
            if failed.is_file():
                complaint = complaint or failed.read_text(errors="replace").strip()
                continue
            complaint, refused = _compile(compiler, flags, source, target)
            if complaint:
                if refused:
                    _remember_failure(failed, complaint)
                continue
        before = loaded_runtimes()
        try:
            library = ctypes.CDLL(str(target))
        except OSError as error:
            complaint = str(error)[:200]
            continue
        after = loaded_runtimes()
        threads_ok = OPENMP_FLAG in flags and before is not None and after is not None and after <= before
        threads = "OpenMP shared with torch" if threads_ok else "one thread"
        where = "a private temporary copy (the cache directory is not usable)" if temporary else str(target)
        return NativeLibrary(library, f"compiled with {version or compiler[0]} ({' '.join(flags) or 'generic'}; "
                                      f"{threads}): {where}", threads_ok)
    return NativeLibrary(None, f"unavailable: {Path(compiler[0]).name} could not build {source.name}: {complaint}")


def _remember_failure(marker: Path, complaint: str) -> None:
    try:
        marker.write_text(complaint + "\n")
    except OSError:
        pass
