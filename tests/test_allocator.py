"""voxpipe.core.allocator: with glibc, freed blocks below the limit stay in the heap for the next
call instead of being unmapped (each re-mapped page is a page fault: docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from voxpipe.core import allocator
from voxpipe.core.pipeline import Pipeline
from voxpipe.core.settings import PipelineSettings
from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config

# In a fresh interpreter (this process's allocator is shared with every other test): allocate and
# free a 64 MB block, then count the page faults of allocating and touching it again.
CHILD = textwrap.dedent("""
    import ctypes, resource, sys
    from voxpipe.core.allocator import retain_freed_memory
    set_ = retain_freed_memory(256 << 20) if sys.argv[1] == "retain" else None
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20
    def touch():
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    touch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch()
    print(set_, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=120, check=True)
    result, faults = out.stdout.split()
    return result, int(faults)


def test_retained_memory_is_reused_without_page_faults():
    if allocator._mallopt() is None:
        pytest.skip("the C library is not glibc")
    _, default_faults = _faults("default")
    result, retained_faults = _faults("retain")
    assert result == "True"
    pages = (64 << 20) // 4096
    assert retained_faults < pages // 20, f"{retained_faults} page faults re-using a retained block"
    if "[always]" not in _read("/sys/kernel/mm/transparent_hugepage/enabled"):  # else 2 MB pages: few faults
        assert default_faults > pages // 2, "glibc's default should map the 64 MB block afresh (its pages fault in)"


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def test_limit_must_be_positive_and_is_capped_at_a_c_int(monkeypatch):
    with pytest.raises(ValueError, match="limit_bytes must be > 0"):
        allocator.retain_freed_memory(0)
    calls = []
    monkeypatch.setattr(allocator, "_mallopt", lambda: lambda param, value: calls.append((param, value)) or 1)
    assert allocator.retain_freed_memory(1 << 40) is True
    assert calls == [(allocator.M_MMAP_THRESHOLD, 2**31 - 1), (allocator.M_TRIM_THRESHOLD, 2**31 - 1)]


def test_a_pipeline_applies_its_setting_and_zero_leaves_malloc_alone(monkeypatch):
    from voxpipe.core import pipeline as pipeline_module

    asked = []
    monkeypatch.setattr(pipeline_module, "retain_freed_memory", asked.append)
    config = tiny_pipeline_config(fixtures_root())
    Pipeline.from_config(config, ["settings.retain_freed_memory_mb=64"])
    assert asked == [64 << 20]
    Pipeline.from_config(config, ["settings.retain_freed_memory_mb=0"])
    assert asked == [64 << 20]
    assert PipelineSettings().retain_freed_memory_mb == 256
