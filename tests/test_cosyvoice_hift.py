"""CosyVoice HiFT vocoder (`cosyvoice-hift`): parity with the official `HiFTGenerator.inference`
(F0, NSF source, waveform, and the streaming source cache) and CosyVoice3's
`CausalHiFTGenerator.inference` (finalize True/False, the token2wav HiFT cache), strict loading of
`hift.pt`, errors.

Cases: every `hift_*/manifest.json` under tests/fixtures/cosyvoice/ and, when VOXPIPE_FIXTURES is
set, under $VOXPIPE_FIXTURES/cosyvoice/ too (e.g. the official full-size sizes); manifest kind
"hift" (CosyVoice2, made by generate_flow_hift.py: the official source is random, each run's RNG
seed is replayed through a torch.Generator) or "causal_hift" (CosyVoice3, generate_causal_hift.py:
the official fixed noise tables are replaced by voxpipe's `FixedSourceNoise(noise_seed)`).
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


def _cases_of_kind(kind: str) -> list[Path]:
    return [case for case in fixture_cases("hift_")
            if json.loads((case / "manifest.json").read_text()).get("kind") == kind]


CASES = _cases_of_kind("hift")
CAUSAL_CASES = _cases_of_kind("causal_hift")
TINY = HERE / "hift_tiny" / "model"
CV3_TINY = HERE / "hift_cv3_tiny" / "model"
_loaded: dict[tuple[Path, int | None], CosyVoiceHift] = {}


def vocoder(model_dir: Path, seed: int | None = 0) -> CosyVoiceHift:
    if (model_dir, seed) not in _loaded:
        _loaded[model_dir, seed] = CosyVoiceHift.create(model_dir=str(model_dir), seed=seed)
    return _loaded[model_dir, seed]


def test_committed_cases_exist():
    assert {"hift_tiny", "hift_tiny_22k"} <= {case.name for case in CASES if case.parent == HERE}
    assert {"hift_cv3_tiny"} <= {case.name for case in CAUSAL_CASES if case.parent == HERE}


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


# ---- CosyVoice3: the causal HiFT (cosyvoice3.yaml's CausalHiFTGenerator) ------------------------
@pytest.mark.parametrize("case", CAUSAL_CASES, ids=[c.name for c in CAUSAL_CASES])
def test_causal_hift_matches_official(case):
    manifest = json.loads((case / "manifest.json").read_text())
    data = np.load(case / manifest["data"])
    tolerance = float(manifest["tolerance"])
    hift = vocoder(case / manifest["model_dir"], seed=int(manifest["noise_seed"]))
    mel = torch.from_numpy(data[manifest["mel"]])
    with one_torch_thread():
        assert_close("F0", hift.model.f0(mel), data[manifest["f0"]], tolerance * 100)  # Hz
        for run in manifest["runs"]:
            if run["kind"] == "inference":
                speech, source = hift.inference(mel[:, :, :run["mel_frames"]], finalize=run["finalize"])
                assert_close(f"{run['name']} source", source, data[run["expected_source"]], tolerance)
            else:  # the official CosyVoice3 token2wav's HiFT cache, piece by piece
                stream, start, chunks = hift.causal_stream(), 0, []
                for index, frames in enumerate(run["pieces"]):
                    chunks.append(stream.push(mel[:, :, start:start + frames],
                                              finalize=index == len(run["pieces"]) - 1))
                    start += frames
                assert [chunk.shape[1] for chunk in chunks] == run["chunk_samples"]
                speech = torch.cat(chunks, dim=1)
            assert_close(f"{run['name']} speech", speech, data[run["expected_speech"]], tolerance)


def test_cosyvoice3_folder_builds_the_causal_generator():
    from voxpipe.plugins.cosyvoice.hift_causal import (
        CausalHiftConfig,
        CausalHiftGenerator,
    )

    hift = vocoder(CV3_TINY)
    assert hift.causal and isinstance(hift.model, CausalHiftGenerator) and isinstance(hift.config, CausalHiftConfig)
    assert hift.config.conv_pre_look_right == 4 and hift.lookahead_frames == 3 + 4 + 1
    assert hift.model.f0_predictor.classifier.weight.dtype == torch.float64  # as the official inference
    assert hift.describe() == {"sample_rate": 24000, "feature_sample_rate": 24000, "hop_length": 480,
                               "feature_dim": 80}
    assert not vocoder(TINY).causal and vocoder(TINY).lookahead_frames == 0


def test_causal_shapes_and_returned_samples_are_final():
    """finalize=False returns (T - 8) frames' speech, and those samples do not change when more
    mel follows: the fixed noise table makes the vocoder a function of the mel prefix."""
    hift = vocoder(CV3_TINY)
    mel = torch.randn(2, 80, 20, generator=torch.Generator().manual_seed(5)) - 4
    with one_torch_thread():
        whole, whole_source = hift.inference(mel)
        part, part_source = hift.inference(mel[:, :, :13], finalize=False)
        again, _ = hift.inference(mel[:, :, :13], finalize=False)
    assert whole.shape == (2, 20 * 480) and whole_source.shape == (2, 1, 20 * 480)
    assert part.shape == (2, (13 - 8) * 480) and part_source.shape == (2, 1, (13 - 3) * 480)
    assert torch.equal(part, again)
    assert float((part - whole[:, :part.shape[1]]).abs().max()) < 1e-5
    assert float((part_source - whole_source[..., :part_source.shape[-1]]).abs().max()) < 1e-5
    assert float((whole[1:] - hift.inference(mel[1:])[0]).abs().max()) < 1e-5  # batch items are independent
    assert float(whole.abs().max()) <= hift.config.audio_limit


def test_causal_stream_equals_the_whole_utterance():
    hift = vocoder(CV3_TINY)
    mel = torch.randn(1, 80, 30, generator=torch.Generator().manual_seed(6)) - 4
    stream = hift.causal_stream()
    with one_torch_thread():
        chunks = [stream.push(mel[:, :, :5])]  # fewer than 9 frames: nothing is final yet
        chunks += [stream.push(mel[:, :, 5:17]), stream.push(mel[:, :, 17:26]), stream.push(mel[:, :, 26:], True)]
        whole = hift.decode(mel)
    assert [c.shape[1] for c in chunks] == [0, (17 - 8) * 480, 9 * 480, (30 - 18) * 480]
    assert stream.speech_offset == 30 * 480
    assert float((torch.cat(chunks, dim=1) - whole).abs().max()) < 1e-5
    with pytest.raises(RuntimeError, match="finalized"):
        stream.push(mel[:, :, :1])


def test_noise_table_is_fixed_by_the_seed_and_grows_without_changing_rows():
    from voxpipe.plugins.cosyvoice.hift_causal_source import FixedSourceNoise

    grown = FixedSourceNoise(7, 9)
    first = grown.rows(100).clone()
    longer = grown.rows(FixedSourceNoise.GROW_SAMPLES + 50)  # a second block is drawn
    fresh = FixedSourceNoise(7, 9).rows(FixedSourceNoise.GROW_SAMPLES + 50)
    assert torch.equal(longer[:, :100], first) and torch.equal(longer, fresh)
    generator = torch.Generator().manual_seed(7)  # the recipe the fixture generator injects
    phase = torch.rand(1, 9, generator=generator)
    phase[:, 0] = 0
    assert torch.equal(grown.initial_phase, phase)
    assert torch.equal(longer, torch.rand(1, longer.shape[1], 9, generator=generator))
    assert 0 <= float(longer.min()) and float(longer.max()) < 1
    assert not torch.equal(FixedSourceNoise(8, 9).rows(100), first)


def test_causal_seed_picks_the_noise_table():
    mel = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(8)) - 4
    with one_torch_thread():
        seeded = vocoder(CV3_TINY).decode(mel)
        other = vocoder(CV3_TINY, seed=1).decode(mel)
        unseeded = CosyVoiceHift.create(model_dir=str(CV3_TINY), seed=None)
        assert torch.equal(unseeded.decode(mel), unseeded.decode(mel))  # drawn once, at load
    assert vocoder(CV3_TINY).model.noise.seed == 0 and not torch.equal(seeded, other)
    assert not torch.equal(unseeded.model.noise.rows(480), vocoder(CV3_TINY).model.noise.rows(480))


def test_causal_and_non_causal_calls_are_not_mixed():
    causal, hift = vocoder(CV3_TINY), vocoder(TINY)
    mel = torch.randn(1, 80, 10) - 4
    with pytest.raises(ValueError, match="no cache_source"):
        causal.inference(mel, torch.zeros(1, 1, 480))
    with pytest.raises(ValueError, match="no generator"):
        causal.inference(mel, generator=torch.Generator())
    with pytest.raises(ValueError, match="at least 8 mel frames"):
        causal.inference(mel[:, :, :7], finalize=False)
    with pytest.raises(ValueError, match=r"\(B, 80, T\)"):
        causal.decode(torch.zeros(1, 81, 9))
    with pytest.raises(ValueError, match="finalize=False"):
        hift.inference(mel, finalize=False)
    with pytest.raises(ValueError, match="causal_stream"):
        hift.causal_stream()
    causal.inference(mel, torch.zeros(1, 1, 0))  # an empty cache (the first CosyVoice2 chunk's) is no cache


def _cv3_folder(tmp_path: Path, edit_state=None, edit_yaml=None) -> Path:
    folder = tmp_path / "cv3"
    shutil.copytree(CV3_TINY, folder)
    if edit_state:
        state = torch.load(folder / "hift.pt", weights_only=True)
        torch.save(edit_state(state), folder / "hift.pt")
    if edit_yaml:
        yaml_file = folder / "cosyvoice3.yaml"
        yaml_file.write_text(edit_yaml(yaml_file.read_text()))
    return folder


def test_causal_checkpoint_spellings_and_strictness(tmp_path):
    def old_spelling(state):
        return {"generator." + key.replace("parametrizations.weight.original0", "weight_g")
                .replace("parametrizations.weight.original1", "weight_v"): value for key, value in state.items()}

    other = CosyVoiceHift.create(model_dir=str(_cv3_folder(tmp_path / "a", old_spelling)))
    ours = vocoder(CV3_TINY).model.state_dict()
    for key, value in other.model.state_dict().items():
        assert torch.equal(value, ours[key]), key

    def drop_and_add(state):
        state = dict(state)
        del state["f0_predictor.classifier.bias"]
        state["m_source.l_sin_gen.sine_waves"] = torch.zeros(1)
        return state

    with pytest.raises(WeightsError, match=r"missing keys: f0_predictor\.classifier\.bias.*unexpected keys: "
                                           r"m_source\.l_sin_gen\.sine_waves"):
        CosyVoiceHift.create(model_dir=str(_cv3_folder(tmp_path / "b", drop_and_add)))
    folder = _cv3_folder(tmp_path / "c")
    shutil.copy(TINY / "hift.pt", folder / "hift.pt")  # a CosyVoice2 HiFT under a cosyvoice3.yaml
    with pytest.raises(WeightsError, match="CausalHiFTGenerator"):
        CosyVoiceHift.create(model_dir=str(folder))


@pytest.mark.parametrize(("edits", "message"), [
    ([("conv_pre_look_right: 4", "conv_pre_look_right: -1")], "conv_pre_look_right: must be >= 0"),
    ([("f0_predictor.CausalConvRNNF0Predictor", "f0_predictor.ConvRNNF0Predictor")],
     "CausalHiFTGenerator takes a CausalConvRNNF0Predictor"),
    ([("conv_pre_look_right: 4", "conv_pre_look_right: 4\n    causal: True")],
     r"unknown CausalHiFTGenerator argument\(s\) \['causal'\]"),
    ([("sampling_rate: !ref <sample_rate>", "sampling_rate: 22050")], "22050"),
    ([("resblock_kernel_sizes: [3, 7, 11]", "resblock_kernel_sizes: [3, 7, 4]"),
      ("resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]",
       "resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 2, 5]]")], "kernel 4 with dilation 2 cannot be causal"),
    ([("generator.CausalHiFTGenerator", "generator.NotAGenerator")], "unknown class path"),
], ids=["negative_look_right", "non_causal_f0_predictor", "unknown_argument", "22k", "even_kernel_even_dilation",
        "unknown_class"])
def test_bad_cosyvoice3_hift_entries_are_config_errors(tmp_path, edits, message):
    def edit(text):
        for old, new in edits:
            assert old in text
            text = text.replace(old, new, 1)
        return text

    with pytest.raises(ConfigError, match=message):
        CosyVoiceHift.create(model_dir=str(_cv3_folder(tmp_path, edit_yaml=edit)))


class TestCausalHiftConformance(VocoderConformance):
    def make_vocoder(self):
        return vocoder(CV3_TINY)
