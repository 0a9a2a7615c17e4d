"""Where a batch writes: one audio file per item, named by id, each written atomically.

An output file either does not exist or is complete: it is written beside its final name and
renamed (`Audio.save` uses `voxpipe.core.files.write_atomically`), so a run killed at any moment leaves no
truncated file. A hard kill (SIGKILL, power loss) can leave a temporary file, recognizable by its
name; the next run in the directory removes it. A lock file keeps two runs out of one directory.
"""

from __future__ import annotations

from pathlib import Path

from voxpipe.core.errors import ConfigError
from voxpipe.core.files import TEMPORARY_MARK

AUDIO_SUFFIX = ".wav"
LOCK_NAME = ".voxpipe-batch.lock"


def output_path(output_dir: Path, item_id: str) -> Path:
    return Path(output_dir) / f"{item_id}{AUDIO_SUFFIX}"


def write_audio(audio, path: Path) -> Path:
    """`Audio.save` writes through a temporary file and renames it (`write_atomically`)."""
    return audio.save(path)


def remove_leftovers(output_dir: Path) -> list[Path]:
    """Delete temporary files a killed run left in `output_dir`; returns them."""
    leftovers = [path for path in Path(output_dir).glob(f".*{TEMPORARY_MARK}*") if path.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


class DirectoryLock:
    """An exclusive lock on an output directory for the length of a run (POSIX `flock`; released
    by the system if the process dies)."""

    def __init__(self, output_dir: Path) -> None:
        self.path = Path(output_dir) / LOCK_NAME
        self._handle = None

    def __enter__(self) -> DirectoryLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per directory is then up to the user
            return self
        self._handle = open(self.path, "a")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            self._handle = None
            raise ConfigError(f"another voxpipe batch is writing to {self.path.parent}; wait for it or choose "
                              "another output directory") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
