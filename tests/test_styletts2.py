"""The `styletts2` family on tiny random weights: components, strict loading, voices, options.

Real Kokoro weights are checked in tests/test_styletts2_kokoro.py; parity with the official
code on the fixtures in tests/test_styletts2_parity.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.core.voice import Voice
from voxpipe.plugins.styletts2.checkpoints import (
    fold_weight_norm,
    load_official_modules,
    target_modules,
)
from voxpipe.plugins.styletts2.istftnet import StyleDecoder
from voxpipe.plugins.styletts2.onnx_weights import _lstm_weights, _scope_path
from voxpipe.plugins.styletts2.prosody import ProsodyPredictor
from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer
from voxpipe.plugins.styletts2.text import PLBert, TextEncoder
from voxpipe.testing.conformance import SynthesizerConformance

TINY = {
    "plbert": {"type": "albert", "vocab_size": 178, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
               "max_position_embeddings": 64, "num_hidden_layers": 2, "embedding_size": 8, "output_dim": 16},
    "text_encoder": {"type": "styletts2", "channels": 16, "kernel_size": 3, "depth": 2, "n_symbols": 178},
    "prosody_predictor": {"type": "styletts2", "style_dim": 8, "hidden_dim": 16, "num_layers": 2, "max_dur": 5},
    "decoder": {"type": "istftnet", "dim_in": 16, "style_dim": 8, "hidden": 32, "residual_dim": 8,
                "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]], "upsample_rates": [4, 3],
                "upsample_kernel_sizes": [8, 5], "upsample_initial_channel": 16, "gen_istft_n_fft": 8,
                "gen_istft_hop_size": 2},
}
SAMPLES_PER_FRAME = 2 * 4 * 3 * 2
CLASSES = {"plbert": PLBert, "text_encoder": TextEncoder, "prosody_predictor": ProsodyPredictor, "decoder": StyleDecoder}


def tiny_components(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    parts = {key: CLASSES[key].create(**{k: v for k, v in section.items() if k != "type"}) for key, section in TINY.items()}
    for module in parts.values():  # random, non-trivial values everywhere (norm affines and alphas too)
        for parameter in module.parameters():
            parameter.data.normal_(0, 0.3)
        for name, sub in module.named_modules():
            if isinstance(sub, torch.nn.InstanceNorm1d):
                sub.weight.data.uniform_(0.5, 1.5)
        for name, parameter in module.named_parameters():
            if "alpha" in name:
                parameter.data.uniform_(0.5, 1.5)
    return parts


def official_checkpoint(parts: dict) -> dict:
    """The components' weights in Kokoro's {module: state_dict} layout, with `module.` prefixes
    on one module as DataParallel saves them."""
    targets = target_modules(parts["plbert"], parts["prosody_predictor"], parts["text_encoder"], parts["decoder"])
    checkpoint = {name: {k: v.clone() for k, v in module.state_dict().items()} for name, module in targets.items()}
    checkpoint["predictor"] = {f"module.{k}": v for k, v in checkpoint["predictor"].items()}
    return checkpoint


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("styletts2")
    torch.save(official_checkpoint(tiny_components()), root / "tiny.pth")
    rng = np.random.default_rng(0)
    np.savez(root / "voices.npz", tiny_a=rng.normal(0, 0.5, (40, 1, 16)).astype(np.float32),
             tiny_b=rng.normal(0, 0.5, (40, 1, 16)).astype(np.float32))
    config = {"vocab": {chr(ord("a") + i): i + 1 for i in range(26)}, "n_token": 178, "hidden_dim": 16, "style_dim": 8,
              "n_layer": 2, "max_dur": 5, "text_encoder_kernel_size": 3,
              "plbert": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
                         "max_position_embeddings": 64, "num_hidden_layers": 2},
              "istftnet": {"upsample_rates": [4, 3], "upsample_kernel_sizes": [8, 5], "upsample_initial_channel": 16,
                           "gen_istft_n_fft": 8, "gen_istft_hop_size": 2}}
    (root / "config.json").write_text(json.dumps(config))
    return root


def build(files, **overrides) -> StyleTTS2Synthesizer:
    values = {**TINY, "weights": str(files / "tiny.pth"), "config_path": str(files / "config.json"),
              "voices_path": str(files / "voices.npz"), "voice": "tiny_a", "source_noise": False, **overrides}
    return StyleTTS2Synthesizer.create(**values)


@pytest.fixture(scope="module")
def tiny(tiny_files):
    return build(tiny_files)


def test_loads_official_layout_and_speaks(tiny):
    ids = [3, 5, 7, 9, 11]
    options = tiny.options({})
    (wave,) = tiny.synthesize([ids], tiny.resolve_voice(None), options, seeds=[0])
    result = tiny.run(ids, tiny.style_row(tiny.resolve_voice(None), len(ids)))
    assert wave.shape == (1, int(result.frames.sum()) * SAMPLES_PER_FRAME)
    assert result.frames.shape == (len(ids) + 2,) and bool((result.frames >= 1).all())
    assert result.f0.shape == (1, 2 * int(result.frames.sum()))
    assert bool(torch.isfinite(wave).all()) and float(wave.abs().max()) > 0
    # the loaded weights are the saved ones (module. prefix stripped)
    saved = torch.load(tiny.weights_source, weights_only=True)
    assert torch.equal(tiny.predictor.lstm.weight_ih_l0, saved["predictor"]["module.lstm.weight_ih_l0"])


def test_bf16_decoder_keeps_weights_once_in_bf16_and_the_spectrum_in_float32(tiny_files, tiny):
    """`decoder.dtype: bfloat16`: the generator's upsampling stages hold their (loaded) weights in
    bf16; the harmonic source, conv_post and the inverse STFT stay float32; same durations and F0,
    a float32 waveform (the quality bound, on the real weights: test_styletts2_kokoro.py)."""
    bf16 = build(tiny_files, decoder={**TINY["decoder"], "dtype": "bfloat16"})
    generator = bf16.decoder.generator
    assert bf16.decoder.describe()["dtype"] == "bfloat16" and tiny.decoder.describe()["dtype"] == "float32"
    assert {p.dtype for p in (*generator.ups.parameters(), *generator.resblocks.parameters(),
                              *generator.noise_res.parameters())} == {torch.bfloat16}
    assert {p.dtype for p in (*generator.conv_post.parameters(), *generator.m_source.parameters(),
                              *bf16.decoder.encode.parameters())} == {torch.float32}
    # and channels-last memory through the bf16 stages; the float32 decoder keeps the official calls
    assert generator.channels_last and all(block.channels_last for block in generator.resblocks)
    assert not tiny.decoder.generator.channels_last and not any(b.channels_last for b in tiny.decoder.generator.resblocks)
    reference = tiny.decoder.generator.ups[0].weight
    assert torch.equal(generator.ups[0].weight, reference.to(torch.bfloat16))  # rounded once, from the same file
    ids = [3, 5, 7, 9, 11, 13, 15]
    style = tiny.style_row(tiny.resolve_voice(None), len(ids))
    expected, actual = tiny.run(ids, style), bf16.run(ids, style)
    assert torch.equal(actual.frames, expected.frames) and torch.equal(actual.f0, expected.f0)
    assert actual.audio.dtype == torch.float32 and actual.audio.shape == expected.audio.shape
    # bf16 did run; how close it stays is bounded on the real weights (these random ones put
    # |audio| at 1e23: exp of the log-magnitudes conv_post predicts)
    assert bool(torch.isfinite(actual.audio).all()) and not torch.equal(actual.audio, expected.audio)


def test_channels_last_helpers_compute_the_plain_operations():
    """voxpipe/plugins/styletts2/channels_last.py (the bf16 generator's layout): same values as the
    plain modules, outputs in channels-last memory (strides (T*C, 1, C)), any input layout."""
    from voxpipe.plugins.styletts2 import channels_last
    from voxpipe.plugins.styletts2.layers import AdaIN1d

    torch.manual_seed(0)
    plain = torch.randn(1, 6, 40)
    for x in (plain, channels_last.to_channels_last(plain)):
        for module, run in ((torch.nn.Conv1d(6, 4, 5, dilation=3, padding=6), channels_last.conv1d),
                            (torch.nn.Conv1d(6, 4, 8, stride=4, padding=2), channels_last.conv1d),
                            (torch.nn.ConvTranspose1d(6, 4, 12, 6, padding=3), channels_last.conv_transpose1d)):
            with torch.no_grad():
                expected, actual = module(plain), run(module, x)
            torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
            assert actual.stride() == (actual.shape[1] * actual.shape[2], 1, actual.shape[1])
    norm = AdaIN1d(3, 6)
    with torch.no_grad():
        norm.norm.weight.uniform_(0.5, 1.5)
        norm.norm.bias.uniform_(-1, 1)
    style, batch = torch.randn(1, 3), torch.randn(2, 6, 40)
    with torch.no_grad():
        expected, expected_batch = norm(plain, style), norm(batch, style.expand(2, 3))
        norm.channels_last = True
        actual = norm(channels_last.to_channels_last(plain), style)
        actual_batch = norm(batch, style.expand(2, 3))  # more than one item: the plain instance norm
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    assert actual.stride() == (6 * 40, 1, 6)
    assert torch.equal(actual_batch, expected_batch)


def test_speed_shortens_and_is_validated(tiny):
    ids = [3, 5, 7, 9, 11, 13, 15]
    style = tiny.resolve_voice("tiny_b")
    slow = tiny.synthesize([ids], style, tiny.options({"speed": 0.5}), seeds=[0])[0]
    fast = tiny.synthesize([ids], style, tiny.options({"speed": 2.0}), seeds=[0])[0]
    assert slow.shape[1] > fast.shape[1]
    with pytest.raises(ConfigError, match="speed"):
        tiny.options({"speed": 0})
    with pytest.raises(ConfigError, match="speed"):
        tiny.options({"speed": float("nan")})
    with pytest.raises(ConfigError, match="no option 'sped'"):
        tiny.options({"sped": 1.0})


def noisy_model(files) -> StyleTTS2Synthesizer:
    """One tiny model with source noise on, shared by the tests that need one."""
    if files not in _BUILT:
        _BUILT[files] = build(files, source_noise=True)
    return _BUILT[files]


_BUILT: dict = {}


def test_source_noise_follows_the_seed(tiny_files):
    noisy = noisy_model(tiny_files)
    ids, style, options = [4, 6, 8], noisy.resolve_voice(None), noisy.options({})
    first = noisy.synthesize([ids, ids], style, options, seeds=[1, 2])
    again = noisy.synthesize([ids], style, options, seeds=[1])[0]
    assert torch.equal(first[0], again)
    assert not torch.equal(first[0], first[1])


def test_voices_blends_and_voice_files(tiny, tmp_path):
    assert tiny.voices() == ["tiny_a", "tiny_b"]
    blend = tiny.resolve_voice("tiny_a:0.25,tiny_b:0.75")
    expected = 0.25 * tiny.resolve_voice("tiny_a") + 0.75 * tiny.resolve_voice("tiny_b")
    assert torch.allclose(blend, expected)
    with pytest.raises(ConfigError, match="Available voices: tiny_a, tiny_b"):
        tiny.resolve_voice("tiny_c")
    pack = torch.randn(40, 1, 16)
    path = tiny.new_voice({"style_pack": pack}, {"made_by": "test"}).save(tmp_path / "mine.voice")
    assert torch.equal(tiny.resolve_voice(Voice.load(path)), pack[:, 0])
    with pytest.raises(ConfigError, match="made for synthesizer 'kokoro'"):
        tiny.resolve_voice(Voice("kokoro", {"style_pack": pack}))
    with pytest.raises(ConfigError, match=r"\(16,\) vector"):
        tiny.resolve_voice(torch.randn(12))


def test_bad_ids_are_refused_before_running(tiny):
    with pytest.raises(TextError, match="outside the model's vocabulary"):
        tiny.synthesize([[1, 500]], tiny.resolve_voice(None), tiny.options({}), seeds=[0])
    with pytest.raises(TextError, match="at most"):
        tiny.synthesize([[1] * 70], tiny.resolve_voice(None), tiny.options({}), seeds=[0])
    (empty,) = tiny.synthesize([[]], tiny.resolve_voice(None), tiny.options({}), seeds=[0])
    assert empty.shape == (1, 0)


def test_checkpoint_with_missing_or_extra_keys_is_named(tiny_files, tmp_path):
    checkpoint = torch.load(tiny_files / "tiny.pth", weights_only=True)
    del checkpoint["decoder"]["generator.conv_post.bias"]
    checkpoint["text_encoder"]["surplus.weight"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="generator.conv_post.bias"):
        build(tiny_files, weights=str(tmp_path / "bad.pth"))
    del checkpoint["decoder"]
    checkpoint["diffusion"] = {}
    torch.save(checkpoint, tmp_path / "modules.pth")
    with pytest.raises(WeightsError, match=r"missing \['decoder'\], unexpected \['diffusion'\]"):
        build(tiny_files, weights=str(tmp_path / "modules.pth"))


def test_checkpoint_of_other_sizes_names_the_shapes(tiny_files):
    wider = {**TINY, "text_encoder": {**TINY["text_encoder"], "kernel_size": 5}}
    with pytest.raises((WeightsError, ConfigError), match="kernel_size|shape"):
        build(tiny_files, **wider)


def test_config_that_disagrees_with_the_components_is_named(tiny_files, tmp_path):
    config = json.loads((tiny_files / "config.json").read_text())
    config["hidden_dim"] = 512
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="hidden_dim = 512 but the components have 16"):
        build(tiny_files, config_path=str(tmp_path / "config.json"))


def test_mismatched_component_widths_are_refused(tiny_files):
    with pytest.raises(ConfigError, match="widths disagree"):
        build(tiny_files, decoder={**TINY["decoder"], "dim_in": 24})


def test_unknown_device_is_a_config_error(tiny_files):
    with pytest.raises(ConfigError, match="device 'gpu0'"):
        build(tiny_files, device="gpu0")


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")  # the spelling old checkpoints use
def test_weight_norm_is_folded_as_torch_computes_it():
    from torch.nn.utils import weight_norm as old_weight_norm
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    for make in (lambda: torch.nn.Conv1d(4, 6, 3), lambda: torch.nn.ConvTranspose1d(4, 4, 3, groups=4)):
        for wrap in (weight_norm, old_weight_norm):
            layer = wrap(make())
            state = {f"layer.{k}": v for k, v in layer.state_dict().items()}
            folded = fold_weight_norm(state)
            assert set(folded) == {"layer.weight", "layer.bias"}
            assert torch.allclose(folded["layer.weight"], layer.weight, atol=1e-6)
    with pytest.raises(WeightsError, match="weight_g but no weight_v"):
        fold_weight_norm({"conv.weight_g": torch.ones(2, 1, 1)})


def test_instance_norm_affines_default_to_identity(tiny_files):
    parts = tiny_components()
    checkpoint = official_checkpoint(parts)
    checkpoint["decoder"] = {k: v for k, v in checkpoint["decoder"].items() if ".norm.weight" not in k
                             and ".norm.bias" not in k}
    fresh = tiny_components(seed=1)
    targets = target_modules(fresh["plbert"], fresh["prosody_predictor"], fresh["text_encoder"], fresh["decoder"])
    load_official_modules(targets, checkpoint, "test")
    assert torch.equal(fresh["decoder"].encode.norm1.norm.weight, torch.ones(18))
    assert torch.equal(fresh["prosody_predictor"].F0[0].norm1.norm.weight, parts["prosody_predictor"].F0[0].norm1.norm.weight)


def test_onnx_scopes_map_to_module_paths():
    assert _scope_path("/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant") == "encoder.text_encoder.cnn.0.0"
    assert (_scope_path("/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_3/MatMul_quant")
            == "encoder.bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query")
    assert _scope_path("/encoder/F0.1/conv1x1/Conv_quant") == "encoder.predictor.F0.1.conv1x1"
    assert _scope_path("/encoder/shared/LSTM_quant") == "encoder.predictor.shared"
    assert _scope_path("/decoder/decoder/asr_res/asr_res.0/Conv_quant") == "decoder.decoder.asr_res.0"


def test_onnx_lstm_layout_is_converted_to_torch():
    """An LSTM exported the ONNX way (gates i, o, f, c; W stored (in, 4H)) comes back as torch's."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 2, bidirectional=True, batch_first=True)
    order = (0, 3, 1, 2)  # ONNX gate k is torch gate order[k]

    def onnx_gates(matrix):  # (4H, ...) torch order -> ONNX order along dim 0
        gates = matrix.chunk(4, dim=0)
        return torch.cat([gates[k] for k in order], dim=0)

    arrays = {}
    directions = ["", "_reverse"]
    arrays["W"] = np.stack([onnx_gates(getattr(lstm, f"weight_ih_l0{d}")).T.detach().numpy() for d in directions])
    arrays["R"] = np.stack([onnx_gates(getattr(lstm, f"weight_hh_l0{d}")).T.detach().numpy() for d in directions])
    arrays["B"] = np.stack([torch.cat([onnx_gates(getattr(lstm, f"bias_ih_l0{d}")), onnx_gates(getattr(lstm, f"bias_hh_l0{d}"))]).detach().numpy()
                            for d in directions])

    class Graph:
        def array(self, name):
            return arrays[name]

        def dequantize(self, name, zero_point, axis, scale=None):
            return arrays[name]

    class Node:
        input = ("x", "W", "R", "B", "", "", "", "", "ws", "", "rs", "")

    params = _lstm_weights(Graph(), Node())
    for name, value in lstm.named_parameters():
        assert np.allclose(params[name], value.detach().numpy()), name


class TestStyleTTS2IsASynthesizer(SynthesizerConformance):
    @pytest.fixture(autouse=True)
    def _files(self, tiny_files):
        self.files = tiny_files

    def make_synthesizer(self):
        return noisy_model(self.files)  # source noise on: the seeds matter


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_components_are_registered_with_strict_params(kind):
    from pydantic import ValidationError

    from voxpipe.registry import get_registry

    cls = CLASSES[kind]
    assert get_registry().get(cls.kind, cls.name).cls is cls
    assert cls.summary() and "\n" not in cls.summary()
    with pytest.raises(ValidationError):
        cls.Params.model_validate({"surely_not_a_parameter": 1})
