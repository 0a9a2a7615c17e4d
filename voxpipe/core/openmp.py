"""Ending a thread's OpenMP worker pool when that thread hands its torch work to another.

torch's CPU kernels run on OpenMP (libgomp in the Linux wheels). Each thread that runs a parallel
torch operation gets its own pool of OpenMP worker threads, parked for as long as that thread
lives. Once a process has more OpenMP threads than CPUs, libgomp stops spinning between parallel
regions (its "throttled" spin count: 100 iterations instead of 300 000) and wakes its workers
through the kernel for every operation. So after the main thread has loaded a model (its pool
parked), a streaming worker thread on 2 cores ran small element-wise ops 3-4x slower and a
full-size LuxTTS decoder call in 0.45-0.50 s instead of 0.28 s (docs/performance.md).

`release_thread_pool()` ends the calling thread's pool (OpenMP 5.0 `omp_pause_resource_all` with
`omp_pause_soft`); that thread's next parallel operation starts a new one (~0.1 ms). Threads call
it when they hand their torch work to another thread, and between turns of work that alternate
between threads.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

OMP_PAUSE_SOFT = 1
OPENMP_RUNTIMES = ("libgomp", "libiomp5", "libomp")  # GNU (torch's Linux wheels), Intel, LLVM


def loaded_runtimes() -> frozenset[str] | None:
    """Paths of the OpenMP runtimes mapped into this process (torch's, and any other copy a
    library brought); None where /proc/self/maps cannot be read."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    paths = {fields[-1] for fields in (line.split(maxsplit=5) for line in maps) if len(fields) == 6}
    return frozenset(path for path in paths if Path(path).name.startswith(OPENMP_RUNTIMES))


@functools.cache
def _pause_functions() -> tuple:
    """`omp_pause_resource_all` of every OpenMP runtime loaded in this process (torch's, and any
    other copy a library bundles); empty without /proc/self/maps or without OpenMP 5.0 pauses."""
    import torch  # noqa: F401 - loads the runtime torch uses

    found = []
    for path in sorted(loaded_runtimes() or ()):
        try:
            pause = ctypes.CDLL(path).omp_pause_resource_all  # the loaded library's own handle
        except (OSError, AttributeError):
            continue
        pause.argtypes, pause.restype = [ctypes.c_int], ctypes.c_int
        found.append(pause)
    return tuple(found)


def release_thread_pool() -> bool:
    """End the calling thread's OpenMP worker pools; True if a runtime did. Call it outside any
    torch operation (between calls from Python is always outside)."""
    results = [pause(OMP_PAUSE_SOFT) == 0 for pause in _pause_functions()]
    return any(results)
