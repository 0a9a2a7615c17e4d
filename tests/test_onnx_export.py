"""ONNX export (`voxpipe export onnx`, voxpipe.export.onnx) and the onnxruntime backend
(`zipvoice-onnx`, `zipvoice-distill-onnx`) against the torch models, on the small fixture weights.

Tolerances:
- fp32 graphs vs torch (text condition, one decoder call, guided velocity, vocoder network):
  1e-4 absolute + 1e-4 relative (measured ~1e-6 .. 1e-5: operator fusion reorders float sums);
- the whole LuxTTS sampling (4 Euler steps) from the official fixture's stored noise vs the
  official features: 1e-4 absolute + 1e-4 relative, as the torch parity test;
- int8 graphs: deviation from fp32 is measured and printed, and bounded: max |int8 - fp32|
  <= 0.1 x max |fp32| for one decoder call (measured 0.028 on an AVX2-only CPU with the 7-bit
  weights the export writes; full-range int8 weights saturate onnxruntime's AVX2 kernel: 0.47).
Sizes are read from the fixture files, so the tests also run on full-size fixtures.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch

from voxpipe.cli import main as cli_main
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.testing.fixtures import assemble_official_layout, fixtures_root

ROOT = fixtures_root()
ATOL = RTOL = 1e-4
INT8_BOUND = 0.1


def token_lists(data, prefix: str) -> list[list[int]]:
    return [row[:n].tolist() for row, n in zip(data[prefix], data[f"{prefix}_lens"])]


@pytest.fixture(scope="module")
def lux_export(tmp_path_factory):
    """The bundled luxtts pipeline (small e2e model + small 48 kHz vocoder) exported by the CLI."""
    weights = assemble_official_layout(tmp_path_factory.mktemp("weights"), "luxtts")
    output = tmp_path_factory.mktemp("luxtts_onnx")
    assert cli_main(["export", "onnx", "luxtts", "-o", str(output), "--int8", "--weights-dir", str(weights)]) == 0
    return weights, output


@pytest.fixture(scope="module")
def guided_export(tmp_path_factory):
    """The classifier-free-guided ZipVoice fixture model and the small 24 kHz Vocos, Python API."""
    from voxpipe.export.onnx import export_acoustic_model, export_vocoder
    from voxpipe.plugins.vocos.vocos24k import Vocos24k
    from voxpipe.plugins.zipvoice.acoustic import ZipVoiceAcousticModel

    output = tmp_path_factory.mktemp("zipvoice_onnx")
    model = ZipVoiceAcousticModel(weights=str(ROOT / "zipvoice" / "zipvoice"))
    export_acoustic_model(model, output)
    vocoder = Vocos24k(weights=str(ROOT / "vocoders" / "vocos24k"))
    export_vocoder(vocoder, output / "vocoder.onnx")
    return model, vocoder, output


# ---- the export itself --------------------------------------------------------------------------
def test_cli_export_writes_checked_graphs_and_a_pipeline(lux_export):
    from voxpipe.core.config import build_config

    _, output = lux_export
    for name in ("text_encoder", "fm_decoder", "text_encoder_int8", "fm_decoder_int8", "vocoder"):
        graph = onnx.load(str(output / f"{name}.onnx"))
        onnx.checker.check_model(graph)
        assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in onnx.load(str(output / "fm_decoder.onnx")).metadata_props}
    assert meta["producer"] == "voxpipe" and meta["guidance"] == "distilled"
    assert (output / "tokens.txt").is_file() and (output / "model.json").is_file()
    manifest = json.loads((output / "export.json").read_text())
    assert set(manifest["int8_max_abs_deviation"]) == {"text_encoder", "fm_decoder"}
    for name, precision in (("pipeline.yaml", "fp32"), ("pipeline_int8.yaml", "int8")):
        family = build_config(output / name).components["synthesizer"]
        assert family.children["acoustic_model"].info.name == "zipvoice-distill-onnx"
        assert family.children["acoustic_model"].params.precision == precision
        assert family.children["guidance"].info.name == "distilled"


def test_export_rejects_old_opset_and_unsupported_models(tmp_path):
    assert cli_main(["export", "onnx", "luxtts", "-o", str(tmp_path), "--opset", "13"]) == 2
    assert cli_main(["export", "onnx", "kokoro", "-o", str(tmp_path)]) == 2


# ---- the backend against torch --------------------------------------------------------------------
def test_onnx_luxtts_pipeline_reproduces_official_features(lux_export):
    """Pipeline built from the exported pipeline.yaml; 4 steps from the official stored noise."""
    from voxpipe.core.pipeline import Pipeline
    from voxpipe.core.voice import Voice

    _, output = lux_export
    pipeline = Pipeline.from_config(output / "pipeline.yaml")
    family = pipeline.synthesizer
    assert family.acoustic_model.name == "zipvoice-distill-onnx"
    data = dict(np.load(ROOT / "e2e" / "luxtts_en.npz"))
    case = json.loads((ROOT / "e2e" / "manifest.json").read_text())["cases"]["luxtts_en"]["generate"]
    length = int(data["prompt_features_lens"][0])
    voice = family.resolve_voice(Voice(
        "flow-matching", {"prompt_features": torch.from_numpy(data["prompt_features"][0, :length]),
                          "prompt_token_ids": torch.from_numpy(data["prompt_token_ids"].reshape(-1)).to(torch.int64)},
        {"transcript": "", "prompt_rms": 0.1, "settings": {"sample_rate": 24000}}))
    options = family.options(dict(speed=case["speed"], num_steps=case["num_steps"],
                                  guidance_scale=case["guidance_scale"], t_shift=case["t_shift"]))
    (generated,) = family.generate_features(voice, [data["token_ids"].tolist()], options, noise=torch.from_numpy(data["x0"]))
    expected = data["pred_features"][0, : int(data["pred_features_lens"][0])]
    np.testing.assert_allclose(generated.numpy(), expected, atol=ATOL, rtol=RTOL)


def test_guided_graph_returns_classifier_free_guided_velocity(guided_export):
    """One call of the guided graph == the official per-step CFG velocity (both t rules), batch of 2."""
    from voxpipe.plugins.onnx.acoustic import OnnxZipVoiceAcousticModel

    model, _, output = guided_export
    backend = OnnxZipVoiceAcousticModel(weights=str(output))
    data = dict(np.load(ROOT / "zipvoice" / "zipvoice" / "b2.npz"))
    args = (token_lists(data, "prompt_tokens"), token_lists(data, "tokens"), torch.from_numpy(data["prompt_features"]),
            torch.from_numpy(data["prompt_features_lens"]), float(data["speed"]))
    cond, reference = backend.condition(*args), model.condition(*args)
    assert torch.equal(cond.features_lens, torch.from_numpy(data["features_lens"]))
    np.testing.assert_allclose(cond.text_condition.numpy(), data["text_condition"], atol=ATOL, rtol=RTOL)
    assert torch.equal(cond.padding_mask, reference.padding_mask)
    x0 = torch.from_numpy(data["x0"])
    for rule in ("low", "high"):
        t = torch.tensor(float(data[f"cfg_t_{rule}"]))
        v = backend.velocity(x0, t, cond, guidance_scale=float(data["guidance_scale"]))
        valid = ~cond.padding_mask
        np.testing.assert_allclose(v[valid].numpy(), data[f"cfg_velocity_t_{rule}"][valid.numpy()], atol=ATOL, rtol=RTOL)


def test_vocoder_graphs_match_torch_networks(lux_export, guided_export):
    import onnxruntime as ort

    from voxpipe.plugins.vocos.vocos48k import LuxVocos48k

    weights, output = lux_export
    generator = torch.Generator().manual_seed(3)
    vocoder48 = LuxVocos48k(weights=str(weights / "YatharthS" / "LuxTTS" / "vocoder"))
    _, vocoder24, guided_dir = guided_export
    for vocoder, path in ((vocoder48, output / "vocoder.onnx"), (vocoder24, guided_dir / "vocoder.onnx")):
        features = torch.randn(2, vocoder.feature_dim, 77, generator=generator) - 3.0
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {"features": features.numpy()})
        with torch.no_grad():
            hidden = vocoder.model.backbone(features)
            np.testing.assert_allclose(outputs[0], vocoder.model.head.out(hidden).transpose(1, 2).numpy(), atol=ATOL, rtol=RTOL)
            if len(outputs) == 2:
                upsampled = vocoder.model.upsampler(hidden.transpose(1, 2)).transpose(1, 2)
                expected = vocoder.model.head_48k.out(upsampled).transpose(1, 2).numpy()
                np.testing.assert_allclose(outputs[1], expected, atol=ATOL, rtol=RTOL)


def test_int8_deviation_is_measured_and_bounded(lux_export, capsys):
    from voxpipe.plugins.onnx.acoustic import OnnxZipVoiceDistillAcousticModel

    _, output = lux_export
    manifest = json.loads((output / "export.json").read_text())
    fp32 = OnnxZipVoiceDistillAcousticModel(weights=str(output))
    int8 = OnnxZipVoiceDistillAcousticModel(weights=str(output), precision="int8")
    assert int8.files["fm_decoder"].name == "fm_decoder_int8.onnx"
    data = dict(np.load(ROOT / "e2e" / "luxtts_en.npz"))
    args = ([data["prompt_token_ids"].tolist()], [data["token_ids"].tolist()], torch.from_numpy(data["prompt_features"]),
            torch.from_numpy(data["prompt_features_lens"]), 1.3)
    cond = fp32.condition(*args)
    x0 = torch.from_numpy(data["x0"])[:, : cond.num_frames]
    v32 = fp32.velocity(x0, torch.tensor(0.4), cond, guidance_scale=3.0)
    v8 = int8.velocity(x0, torch.tensor(0.4), int8.condition(*args), guidance_scale=3.0)
    deviation = float((v8 - v32).abs().max() / v32.abs().max())
    with capsys.disabled():
        print(f"\nint8 vs fp32: one decoder call {deviation:.4f}, export.json {manifest['int8_max_abs_deviation']}")
    assert 0 < deviation <= INT8_BOUND
    assert all(0 < d <= INT8_BOUND for d in manifest["int8_max_abs_deviation"].values())


# ---- official graph layout -------------------------------------------------------------------------
class OfficialStyleTextEncoder(torch.nn.Module):
    """Test stand-in with the official text_encoder.onnx interface: batch of one, no padding;
    the graph computes the frame count itself, dividing the prompt's frames by speed too."""

    def __init__(self, model):
        super().__init__()
        self.embed, self.text_encoder, self.pad_id = model.embed, model.text_encoder, model.pad_id

    def forward(self, tokens, prompt_tokens, prompt_features_len, speed):
        cat = torch.nn.functional.pad(torch.cat([prompt_tokens, tokens], dim=1), (0, 1), value=self.pad_id)
        count = cat.shape[1] - 1
        mask = (torch.arange(count + 1) == count).unsqueeze(0)
        embed = self.text_encoder(self.embed(cat), t=None, padding_mask=mask)
        frames = torch.ceil(prompt_features_len / prompt_tokens.shape[1] * count / speed).to(torch.int64).reshape(())
        duration = torch.div(frames, count, rounding_mode="floor").reshape(())
        body = embed[:, :-1].unsqueeze(2).expand(-1, -1, duration, -1).reshape(1, -1, embed.shape[2])
        return torch.cat([body, embed[:, -1:].expand(-1, frames - body.shape[1], -1)], dim=1)


def _drop_padding_mask_input(source, destination) -> None:
    """The voxpipe decoder graph with the official 5 inputs: padding_mask becomes all-False."""
    graph_model = onnx.load(str(source))
    graph = graph_model.graph
    (mask_input,) = [i for i in graph.input if i.name == "padding_mask"]
    graph.input.remove(mask_input)
    helper = onnx.helper
    graph.node.insert(0, helper.make_node("Shape", ["x"], ["x_shape"], start=0, end=2))
    graph.node.insert(1, helper.make_node("ConstantOfShape", ["x_shape"], ["padding_mask"],
                                          value=helper.make_tensor("zero", onnx.TensorProto.BOOL, [1], [False])))
    onnx.save(graph_model, str(destination))


def test_official_graph_layout_frame_count_and_unpadded_decoding(tmp_path):
    from voxpipe.export.onnx import export_fm_decoder, export_graph
    from voxpipe.plugins.onnx.acoustic import OnnxZipVoiceDistillAcousticModel
    from voxpipe.plugins.zipvoice.acoustic import ZipVoiceDistillAcousticModel

    source = ROOT / "zipvoice" / "zipvoice_distill"
    torch_model = ZipVoiceDistillAcousticModel(weights=str(source))
    model = torch_model.model
    example = (torch.tensor([[2, 3, 4, 5]]), torch.tensor([[6, 7]]), torch.tensor(10), torch.tensor(1.0))
    export_graph(OfficialStyleTextEncoder(model), example, tmp_path / "text_encoder.onnx",
                 ["tokens", "prompt_tokens", "prompt_features_len", "speed"], ["text_condition"],
                 {"tokens": {0: "N", 1: "T"}, "prompt_tokens": {0: "N", 1: "T"}, "text_condition": {0: "N", 1: "T"}},
                 metadata={})
    export_fm_decoder(model, tmp_path / "voxpipe_decoder.onnx")
    _drop_padding_mask_input(tmp_path / "voxpipe_decoder.onnx", tmp_path / "fm_decoder.onnx")
    (tmp_path / "tokens.txt").write_bytes((source / "tokens.txt").read_bytes())
    backend = OnnxZipVoiceDistillAcousticModel(weights=str(tmp_path))
    assert backend.official_text_encoder and backend.official_decoder

    data = dict(np.load(source / "b2.npz"))
    prompt_tokens, tokens = token_lists(data, "prompt_tokens"), token_lists(data, "tokens")
    prompt_features, lens = torch.from_numpy(data["prompt_features"]), torch.from_numpy(data["prompt_features_lens"])
    speed = 1.3
    cond = backend.condition(prompt_tokens, tokens, prompt_features, lens, speed)
    for i, (p, t) in enumerate(zip(prompt_tokens, tokens)):
        ratio = np.float32(int(lens[i])) / np.float32(len(p))
        expected = math.ceil(np.float32(ratio * np.float32(len(p) + len(t))) / np.float32(speed))
        assert int(cond.features_lens[i]) == expected
    # prompt frames are divided by speed too: fewer frames than the torch model's rule
    reference = torch_model.condition(prompt_tokens, tokens, prompt_features, lens, speed)
    assert bool((cond.features_lens < reference.features_lens).all())

    x = torch.randn(cond.batch_size, cond.num_frames, backend.feature_dim, generator=torch.Generator().manual_seed(0))
    v = backend.velocity(x, torch.tensor(0.37), cond, guidance_scale=2.5)
    for i, length in enumerate(cond.features_lens.tolist()):  # each item alone, unpadded, in torch
        item = cond.replace(text_condition=cond.text_condition[i : i + 1, :length],
                            speech_condition=cond.speech_condition[i : i + 1, :length],
                            padding_mask=cond.padding_mask[i : i + 1, :length])
        expected = torch_model.velocity(x[i : i + 1, :length], torch.tensor(0.37), item, torch.tensor(2.5))
        np.testing.assert_allclose(v[i, :length].numpy(), expected[0].numpy(), atol=ATOL, rtol=RTOL)
        assert not v[i, length:].any()


# ---- errors -------------------------------------------------------------------------------------
def test_backend_errors_name_the_problem(tmp_path, lux_export):
    from voxpipe.plugins.onnx.acoustic import OnnxZipVoiceDistillAcousticModel

    with pytest.raises(WeightsError, match="not found"):
        OnnxZipVoiceDistillAcousticModel(weights=str(tmp_path / "missing"))
    with pytest.raises(WeightsError, match="text-encoder graph"):
        OnnxZipVoiceDistillAcousticModel(weights=str(tmp_path))
    backend = OnnxZipVoiceDistillAcousticModel(weights=str(lux_export[1]), intra_op_threads=1)
    data = dict(np.load(ROOT / "e2e" / "luxtts_en.npz"))
    cond = backend.condition([data["prompt_token_ids"].tolist()], [data["token_ids"].tolist()],
                             torch.from_numpy(data["prompt_features"]), torch.from_numpy(data["prompt_features_lens"]))
    with pytest.raises(ConfigError, match="distilled"):
        backend.velocity(torch.zeros(1, cond.num_frames, backend.feature_dim), torch.tensor(0.5), cond)
