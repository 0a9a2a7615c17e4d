"""Writing output files without ever losing or truncating the user's data.

`write_atomically(path, write)` lets `write` fill a temporary file in the directory of `path`
(same file system, so the final rename is atomic), flushes it to disk, then `os.replace`s it
onto `path`. A failed write (disk full, `ulimit -f`, an exception in the writer) removes the
temporary file and leaves an existing `path` exactly as it was; the error names `path`.

`refuse_same_file(output, inputs)` stops a command from writing over one of its own inputs
(`voxpipe voice create ref.wav -o ref.wav`), also when the two names reach the same file
through a symbolic or hard link.

Every output of voxpipe (audio, voice files, exported graphs and their manifests) goes through
`write_atomically`.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from voxpipe.core.errors import ConfigError, VoxpipeError

TEMPORARY_MARK = ".voxpipe-tmp-"
"""Part of every temporary file name (`.out.wav.voxpipe-tmp-1a2b3c4d.wav`), so leftovers of a
killed process are recognizable."""


class FileWriteError(VoxpipeError):
    """An output file could not be written; the previous file at that path (if any) is intact."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = path, reason


class SameFileError(ConfigError):
    """An output path names one of the command's input files (a usage error: exit code 2)."""


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write `path` through a temporary file beside it; returns `path` as a `Path`.

    write: called once with the temporary file's path (it exists, empty; the suffix of `path`
    is kept so writers that pick a format by suffix pick the same one). It writes the complete
    content there (open it by name, truncating).

    A symbolic link at `path` is written through (its target is replaced). The new file gets
    the permission bits of the file it replaces, else the process umask's default.

    Raises FileWriteError naming `path` when the directory is missing, `path` is a directory,
    or writing/renaming fails (the reason is the system's: "File too large", "No space left on
    device"); a `VoxpipeError` raised by `write` itself passes unchanged. Either way nothing is
    left behind and an existing file at `path` is untouched.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.is_dir():
        raise FileWriteError(path, "it is a directory")
    if not target.parent.is_dir():
        raise FileWriteError(path, f"directory {target.parent} does not exist")
    temporary = _create_temporary(path, target)
    try:
        write(temporary)
        _sync(temporary)
        _copy_mode(target, temporary)
        os.replace(temporary, target)
    except BaseException as failure:
        _remove_quietly(temporary)
        if isinstance(failure, VoxpipeError) or not isinstance(failure, Exception):
            raise  # already a clear error, or KeyboardInterrupt/SystemExit: never swallowed
        raise FileWriteError(path, _reason(failure)) from failure
    _sync_directory(target.parent)
    return path


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """`write_atomically` for content already in memory."""
    return write_atomically(path, lambda temporary: temporary.write_bytes(data))


def write_text_atomically(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """`write_atomically` for text (UTF-8 by default)."""
    return write_bytes_atomically(path, text.encode(encoding))


def refuse_same_file(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                     option: str = "output") -> None:
    """SameFileError if `output` is one of `inputs` (same path, symbolic link or hard link).

    A missing output cannot be an existing input; missing or None inputs are skipped (their own
    checks report them). option: how the output is named in the message ("-o/--output").
    """
    output = Path(output)
    try:
        written = output.stat()
    except OSError:
        return
    for source in inputs:
        if source is None:
            continue
        try:
            read = Path(source).stat()
        except OSError:
            continue
        if (read.st_dev, read.st_ino) == (written.st_dev, written.st_ino):
            same = "is" if os.path.abspath(source) == os.path.abspath(output) else "is the same file as"
            raise SameFileError(
                f"{option} {output} {same} the input {source}: writing it would destroy the input; "
                "choose another output path")


# ---- internals ---------------------------------------------------------------------------------
def _create_temporary(path: Path, target: Path) -> Path:
    """A new, empty file beside `target`, created exclusively (never an existing file or link)."""
    for _ in range(100):
        name = f".{target.name}{TEMPORARY_MARK}{secrets.token_hex(4)}{target.suffix}"
        temporary = target.with_name(name)
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary
        except FileExistsError:
            continue
        except OSError as failure:
            raise FileWriteError(path, _reason(failure)) from failure
    raise FileWriteError(path, "no free temporary file name in its directory")


def _sync(file: Path) -> None:
    """Flush the file's data to the disk before it replaces the old one (a crash right after the
    rename must not leave an empty file)."""
    descriptor = os.open(file, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable; some file systems cannot sync a directory, which is harmless."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _copy_mode(previous: Path, temporary: Path) -> None:
    try:
        mode = previous.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        os.chmod(temporary, stat.S_IMODE(mode))


def _remove_quietly(file: Path) -> None:
    try:
        os.unlink(file)
    except OSError:
        pass


def _reason(failure: BaseException) -> str:
    """The system's words for an OSError ("File too large"), else the exception's message."""
    if isinstance(failure, OSError) and failure.strerror:
        return failure.strerror
    if isinstance(failure, OSError) and failure.errno:
        return os.strerror(failure.errno)
    message = str(failure).strip()
    return f"{type(failure).__name__}: {message}" if message else type(failure).__name__


__all__ = [
    "TEMPORARY_MARK",
    "FileWriteError",
    "SameFileError",
    "refuse_same_file",
    "write_atomically",
    "write_bytes_atomically",
    "write_text_atomically",
]
