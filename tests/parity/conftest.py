"""Shared helpers of the parity tests (reference fixtures produced by the official code).

VOXPIPE_FIXTURES=/path/to/fixtures runs the same tests, unchanged, on another fixture set in
the same layout (e.g. full-size official-config fixtures).

A test module may declare ``FIXTURE_GLOBS = {"argname": "glob relative to the fixture root"}``:
every test taking `argname` is parametrized with the matching paths at collection time. A
pattern that matches nothing yields one case pointing at the missing pattern, so the test
fails (it is never silently skipped).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voxpipe.testing.fixtures import (
    fixtures_root,  # $VOXPIPE_FIXTURES, else tests/fixtures
)

__all__ = ["fixtures_root"]


@pytest.fixture(name="fixtures_root", scope="session")
def _fixtures_root_fixture() -> Path:
    return fixtures_root()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    globs = getattr(metafunc.module, "FIXTURE_GLOBS", {})
    root = fixtures_root()
    for argname, pattern in globs.items():
        if argname not in metafunc.fixturenames:
            continue
        paths = sorted(root.glob(pattern))
        ids = [path.relative_to(root).as_posix() for path in paths]
        if not paths:
            paths, ids = [root / pattern], [f"no-match:{pattern}"]
        metafunc.parametrize(argname, paths, ids=ids)
