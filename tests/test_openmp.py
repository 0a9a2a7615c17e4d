"""voxpipe.core.openmp: a thread that hands its torch work to another ends its OpenMP pool (a
parked pool makes libgomp stop spinning, and every small torch op of the working thread then
waits for the kernel to wake its workers: 3-4x slower element-wise ops, docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from voxpipe.core.pipeline import Pipeline
from voxpipe.streaming import StreamingSession
from voxpipe.streaming import session as session_module
from voxpipe.testing.fixtures import (
    E2E_PROMPT_TEXT,
    fixtures_root,
    tiny_pipeline_config,
)

# In a fresh interpreter (no other test's threads): run a parallel op on 2 threads, then release.
CHILD = textwrap.dedent("""
    import os, time, torch
    from voxpipe.core.openmp import _pause_functions, release_thread_pool
    if not _pause_functions():
        print("unsupported"); raise SystemExit
    torch.set_num_threads(2)
    x = torch.randn(1 << 22)
    for _ in range(3):
        x.exp()  # a parallel region: the calling thread's pool has a worker now
    before = len(os.listdir("/proc/self/task"))
    released = release_thread_pool()
    for _ in range(200):  # the workers exit asynchronously
        after = len(os.listdir("/proc/self/task"))
        if after < before:
            break
        time.sleep(0.01)
    print(released, before, after, float((x.exp() - torch.exp(x)).abs().max()))
""")


def test_release_thread_pool_ends_the_calling_threads_openmp_workers():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
    words = out.stdout.split()
    if words == ["unsupported"]:
        pytest.skip("the loaded OpenMP runtime has no omp_pause_resource_all")
    released, before, after, error = words
    assert released == "True"
    assert int(after) < int(before), f"{before} threads before the release, {after} after"
    assert float(error) == 0.0  # a new pool computes as before


def test_a_session_releases_its_creators_pool_and_the_workers_after_each_chunk(monkeypatch):
    releases = []

    def record_release() -> bool:
        releases.append(threading.current_thread().name)
        return True

    monkeypatch.setattr(session_module, "release_thread_pool", record_release)
    pipeline = Pipeline.from_config(tiny_pipeline_config())
    voice = pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=E2E_PROMPT_TEXT)
    with StreamingSession(pipeline, voice, seed=1) as session:
        session.push_text("One sentence here. And a second one.")
        session.flush()
        chunks = [chunk for chunk in session if chunk.metadata.get("chunk_index") is not None]
    assert releases[0] != "voxpipe-stream"  # the creating thread, before its worker starts
    assert releases[1:] == ["voxpipe-stream"] * len(chunks) and len(chunks) == 2
