"""Parity of the `styletts2` family with the official Kokoro code (KModel) on seeded random weights.

Cases come from `kokoro/manifest.json` under tests/fixtures, or under $VOXPIPE_FIXTURES (the same
layout; e.g. full-size official configs). Each case holds the ids, the style, the speed, the
seed of the official run, and every intermediate the official code computed: PL-BERT output,
its projection, durations (real and rounded), F0 and energy curves, and the waveform (the
decoder's random excitation replayed from the same seed). Made by
tests/fixtures/kokoro/generate.py against an official checkout.

Tolerance: the manifest's (1e-4), as max |ours - official| <= tol * max(1, max |official|);
rounded frames must be equal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.plugins.styletts2.kokoro_config import sections_from_kokoro_config
from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer

ROOT = Path(os.environ.get("VOXPIPE_FIXTURES") or Path(__file__).resolve().parent / "fixtures") / "kokoro"
MANIFEST = ROOT / "manifest.json"

pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"no Kokoro parity fixtures at {ROOT}")


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"cases": []}


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    manifest = _manifest()
    config = json.loads((ROOT / manifest["config"]).read_text())
    sections = sections_from_kokoro_config(config, manifest.get("decoder"))
    voices = tmp_path_factory.mktemp("voices") / "voices.npz"
    np.savez(voices, fixture=np.zeros((510, 1, 2 * config["style_dim"]), np.float32))
    return StyleTTS2Synthesizer.create(**sections, weights=str(ROOT / manifest["weights"]),
                                       config_path=str(ROOT / manifest["config"]), voices_path=str(voices),
                                       voice="fixture", source_noise=True)


def _close(name: str, ours: torch.Tensor, official: np.ndarray, tolerance: float) -> None:
    ours = ours.detach().cpu().numpy().reshape(official.shape)
    scale = max(1.0, float(np.abs(official).max()))
    error = float(np.abs(ours - official).max())
    assert error <= tolerance * scale, f"{name}: max |difference| {error:.3g} > {tolerance} x {scale:.3g}"


@pytest.mark.parametrize("case", _manifest()["cases"], ids=lambda case: case["name"])
def test_every_intermediate_matches_the_official_code(family, case):
    tolerance = float(_manifest().get("tolerance", 1e-4))
    data = np.load(ROOT / case["file"])
    generator = torch.Generator().manual_seed(int(case["seed"]))
    result = family.run([int(i) for i in data["ids"]], torch.from_numpy(data["style"]), float(case["speed"]), generator)
    _close("PL-BERT output", result.bert, data["bert"], tolerance)
    _close("projection", result.projected, data["projected"], tolerance)
    _close("durations", result.durations, data["durations"], tolerance)
    assert np.array_equal(result.frames.cpu().numpy(), data["frames"]), "rounded durations differ"
    _close("F0", result.f0, data["f0"], tolerance)
    _close("energy", result.energy, data["energy"], tolerance)
    _close("waveform", result.audio, data["audio"], tolerance)
