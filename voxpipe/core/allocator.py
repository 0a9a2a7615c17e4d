"""Keeping freed memory for reuse instead of returning it to the OS (glibc malloc).

torch's CPU tensors come from malloc. With glibc's defaults, a block of more than 128 KB (a
threshold glibc raises on its own, up to 32 MB, as large blocks are freed) is an mmap of fresh
pages, and freeing it unmaps them: the next tensor of that size faults its pages in again, one
4 KB page at a time. A full-size decoder call allocates hundreds of such activations (attention
scores alone are heads x frames^2), so this costs ~1 million page faults per synthesis; under
KVM each is expensive. `retain_freed_memory(limit)` sets glibc's mmap and trim thresholds to
`limit` bytes: blocks below it come from the heap, and up to `limit` bytes of freed memory stay
mapped for the next call. Measured on full-size LuxTTS in bf16 (docs/performance.md): minor page
faults 0.5-1.5 million -> 0.3 million (those of loading) and 6-25 % less time per synthesis on a
Zen 5 VM; no change on a Zen 4 VM. The price: the process keeps its peak working set (+30 MB
resident after a LuxTTS synthesis) instead of giving it back between calls. The default limit
(`settings.retain_freed_memory_mb`, 256 MB) holds a full-size decoder's largest activations
(attention scores over a 25 s chunk); 1 GB was as fast, but then long outputs (minutes of audio,
built up in the same heap) fragmented it: +700 MB peak resident on a 2,000-word text.

The setting is process-wide (as torch's thread count is): it lasts until changed, whichever
pipeline asked. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MAX_LIMIT = 2**31 - 1  # mallopt takes a C int


@functools.cache
def _mallopt():
    """glibc's `mallopt`, or None on another C library."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def retain_freed_memory(limit_bytes: int) -> bool:
    """Serve blocks below `limit_bytes` from the heap and keep up to that much freed memory mapped
    (glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD). True if set; False where the C library is not
    glibc. `limit_bytes` is capped at 2 GiB - 1 (mallopt takes a C int)."""
    if limit_bytes <= 0:
        raise ValueError(f"limit_bytes must be > 0, got {limit_bytes}")
    mallopt = _mallopt()
    if mallopt is None:
        return False
    limit = min(int(limit_bytes), MAX_LIMIT)
    return bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))
