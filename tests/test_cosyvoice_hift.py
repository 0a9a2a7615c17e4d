"""CosyVoice HiFT vocoder (`cosyvoice-hift`): parity with the official `HiFTGenerator.inference`
(F0, NSF source, waveform, and the streaming source cache), strict loading of `hift.pt`, errors.

Cases: every `hift_*/manifest.json` under tests/fixtures/cosyvoice/ and, when VOXPIPE_FIXTURES is
set, under $VOXPIPE_FIXTURES/cosyvoice/ too (e.g. the official full-size sizes). Made by
tests/fixtures/cosyvoice/generate_flow_hift.py from an official checkout. The official source
is random: each run's RNG seed is replayed through a torch.Generator.
Tolerance: the manifest's (1e-4) x max(1, max |official|).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cosyvoice_cases import HERE, assert_close, fixture_cases

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.cosyvoice.hift import CosyVoiceHift
from voxpipe.testing import VocoderConformance
from voxpipe.testing.threads import one_torch_thread

CASES = fixture_cases("hift_")
TINY = HERE / "hift_tiny" / "model"
_loaded: dict[Path, CosyVoiceHift] = {}


def vocoder(model_dir: Path) -> CosyVoiceHift:
    if model_dir not in _loaded:
        _loaded[model_dir] = CosyVoiceHift.create(model_dir=str(model_dir))
    return _loaded[model_dir]


def test_committed_cases_exist():
    assert {"hift_tiny", "hift_tiny_22k"} <= {case.name for case in CASES if case.parent == HERE}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hift_matches_official(case):
    manifest = json.loads((case / "manifest.json").read_text())
    data = np.load(case / manifest["data"])
    tolerance = float(manifest["tolerance"])
    hift = vocoder(case / manifest["model_dir"])
    with one_torch_thread():
        f0 = hift.model.f0_predictor(torch.from_numpy(data["mel"]))
        assert_close("F0", f0, data[manifest["f0"]], tolerance * 100)  # Hz: ~100 x the waveform's scale
        for run in manifest["runs"]:
            cache = torch.from_numpy(data[run["cache_source"]]) if run["cache_source"] else None
            generator = torch.Generator().manual_seed(int(run["rng_seed"]))
            speech, source = hift.inference(torch.from_numpy(data[run["mel"]]), cache, generator=generator)
            assert_close(f"{run['name']} speech", speech, data[run["expected_speech"]], tolerance)
            assert_close(f"{run['name']} source", source, data[run["expected_source"]], tolerance)
            if cache is not None:  # the cached samples are the previous call's, verbatim
                assert torch.equal(source[:, :, :cache.shape[-1]], cache)


def test_decode_is_the_vocoder_interface_and_deterministic():
    hift = vocoder(TINY)
    mel = torch.randn(2, 80, 7, generator=torch.Generator().manual_seed(0)) - 4
    with one_torch_thread():
        first, second = hift.decode(mel), hift.decode(mel)
        seeded, _ = hift.inference(mel, generator=torch.Generator().manual_seed(hift.seed))
        other, _ = hift.inference(mel, generator=torch.Generator().manual_seed(hift.seed + 1))
    assert first.shape == (2, 7 * hift.hop_length) and first.dtype == torch.float32
    assert torch.equal(first, second) and torch.equal(first, seeded)
    assert not torch.equal(first, other)  # the NSF source really is random
    assert float(first.abs().max()) <= hift.config.audio_limit
    assert hift.describe() == {"sample_rate": 24000, "feature_sample_rate": 24000, "hop_length": 480,
                               "feature_dim": 80}


def test_cached_source_continues_the_previous_chunk():
    """Streaming: the next chunk's first source samples are the previous chunk's last ones."""
    hift = vocoder(TINY)
    mel = torch.randn(1, 80, 10, generator=torch.Generator().manual_seed(3)) - 4
    with one_torch_thread():
        _, source = hift.inference(mel[:, :, :6])
        cache = source[:, :, -2 * hift.hop_length:]
        _, continued = hift.inference(mel[:, :, 4:], cache)
        _, fresh = hift.inference(mel[:, :, 4:])
    assert torch.equal(continued[:, :, :cache.shape[-1]], cache)
    assert not torch.equal(fresh[:, :, :cache.shape[-1]], cache)
    with pytest.raises(ValueError, match="cache_source"):
        hift.inference(mel[:, :, :1], cache)  # more cached samples than the chunk has


def _rewrite(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    state = torch.load(folder / "hift.pt", weights_only=True)
    torch.save(edit(state), folder / "hift.pt")
    return folder


def test_both_weight_norm_spellings_and_the_generator_prefix_load_the_same(tmp_path):
    def old_spelling(state):
        renamed = {}
        for key, value in state.items():
            key = key.replace("parametrizations.weight.original0", "weight_g")
            key = key.replace("parametrizations.weight.original1", "weight_v")
            renamed["generator." + key] = value
        return renamed

    assert any("parametrizations.weight.original0" in key for key in torch.load(TINY / "hift.pt", weights_only=True))
    other = CosyVoiceHift.create(model_dir=str(_rewrite(tmp_path, old_spelling)))
    ours = vocoder(TINY).model.state_dict()
    for key, value in other.model.state_dict().items():
        assert torch.equal(value, ours[key]), key


def test_checkpoint_with_missing_or_extra_keys_is_refused_naming_them(tmp_path):
    def drop_and_add(state):
        state = dict(state)
        del state["conv_post.bias"]
        state["not_a_layer.weight"] = torch.zeros(1)
        return state

    with pytest.raises(WeightsError, match=r"missing keys: conv_post\.bias.*unexpected keys: not_a_layer\.weight"):
        CosyVoiceHift.create(model_dir=str(_rewrite(tmp_path, drop_and_add)))


def test_wrong_shapes_and_missing_files_are_clear_errors(tmp_path):
    hift = vocoder(TINY)
    with pytest.raises(ValueError, match=r"\(B, 80, T\).*\(1, 100, 5\)"):
        hift.decode(torch.zeros(1, 100, 5))
    with pytest.raises(ValueError, match="NaN"):
        hift.decode(torch.full((1, 80, 3), float("nan")))
    with pytest.raises(WeightsError, match="cosyvoice2.yaml"):
        CosyVoiceHift.create(model_dir=str(tmp_path))
    shutil.copy(TINY / "cosyvoice2.yaml", tmp_path / "cosyvoice2.yaml")
    with pytest.raises(WeightsError, match="hift.pt"):
        CosyVoiceHift.create(model_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="model_dir"):
        CosyVoiceHift.create()
    (tmp_path / "cosyvoice2.yaml").write_text("sample_rate: 24000\n")
    shutil.copy(TINY / "hift.pt", tmp_path / "hift.pt")
    with pytest.raises(ConfigError, match="hift"):
        CosyVoiceHift.create(model_dir=str(tmp_path))


class TestHiftConformance(VocoderConformance):
    def make_vocoder(self):
        return vocoder(TINY)


def test_registration_hands_over_the_four_components():
    from voxpipe.plugins.cosyvoice.components import register_flow_and_hift

    registered = []
    register_flow_and_hift(registered.append)
    assert {(c.kind, c.name) for c in registered} == {
        ("flow", "cosyvoice-flow"), ("solver", "cosine-euler"), ("guidance", "cosyvoice-cfg"),
        ("vocoder", "cosyvoice-hift")}
    from voxpipe.registry import get_registry

    registry = get_registry()
    for component in registered:
        assert registry.get(component.kind, component.name).cls is component
