"""Shared test helpers. Tests never touch the network: Hugging Face is forced offline."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture
def fresh_registry():
    """A registry loaded from entry points, not shared with other tests."""
    from voxpipe.registry import Registry

    registry = Registry()
    registry.load_entry_points()
    return registry
