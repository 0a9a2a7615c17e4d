"""Precision/backend choice and the quality bound of the fused fast path (voxpipe.core.precision,
`kernels: fused` of the ZipVoice acoustic models).

Quality bound of `kernels: fused` against the reference kernels, on realistic activations (the
fixture model's conditions from a real recorded prompt, the LuxTTS-style pipeline end to end):
  - one decoder call: relative L2 error of the velocity <= 1e-4 (measured 2.6e-7 here, 4.8e-6 on
    the full-size random-weight LuxTTS decoder at 744 frames: float32 rounding and summation
    order only);
  - final audio: mean absolute difference of the 24 kHz Vocos log-mel (natural log) <= 1e-3
    (measured 5.2e-6, max 8e-4; a just-audible change is of the order of 0.1).

Quality bound of bf16 (`dtype: bfloat16`, what `--precision auto` runs on CPUs with native bf16)
against the fp32 reference, on the same realistic activations:
  - one decoder call: relative L2 error of the velocity <= 5e-2 (measured 1.2e-2 with either
    kernels: bf16 keeps 8 significant bits, ~4e-3 per rounding);
  - final audio (4 steps + vocoder), its 24 kHz log-mel: relative L2 error <= 5e-2 (measured
    6.2e-3 reference kernels, 7.5e-3 fused) and mean absolute difference <= 2e-2 (measured 3.5e-3).
On the full-size random-weight LuxTTS decoder the per-call error is 1e-1: an untrained
network amplifies every perturbation some 25-50 times (float32 rounding of ~1e-7 per operation
moves it 5e-6, bf16 rounding of ~4e-3 moves it 1e-1), so that figure says nothing about trained
weights, which the official recipes train under fp16 autocast (`--use-fp16 1`); docs/performance.md.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from voxpipe.core.config import build_config
from voxpipe.core.cpu import CpuInfo
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.core.precision import (
    AUTO_KERNELS,
    choose_precision,
    default_overrides,
    resolve,
    supported_precisions,
)
from voxpipe.registry import get_registry
from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config
from voxpipe.testing.threads import one_torch_thread

PROMPT_TEXT = "He turned sharply, and faced Gregson across the table."
AVX2 = CpuInfo("AMD EPYC (Zen 2)", 2, frozenset({"avx", "avx2", "fma"}))
BF16 = CpuInfo("Intel Xeon (Sapphire Rapids)", 2, frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}))


def acoustic_class(name: str):
    return get_registry().get("acoustic_model", name).cls


# ---- quality bound of the fused kernels -------------------------------------------------------
@pytest.fixture(scope="module")
def pipelines():
    def build(kernels: str) -> Pipeline:
        config = tiny_pipeline_config()
        config["synthesizer"]["acoustic_model"]["kernels"] = kernels
        return Pipeline.from_config(config)

    with one_torch_thread():
        yield build("reference"), build("fused")


@pytest.fixture(scope="module")
def voice(pipelines):
    with one_torch_thread():
        return pipelines[0].encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)


def test_fused_decoder_call_stays_within_float32_rounding(pipelines, voice):
    reference, fused = (p.synthesizer.acoustic_model for p in pipelines)
    assert (reference.kernels, fused.kernels) == ("reference", "fused")
    prompt = voice.tensors["prompt_features"]  # (Tp, F), a real recording's features (scaled)
    prompt_tokens = voice.tensors["prompt_token_ids"].tolist()
    with one_torch_thread(), torch.inference_mode():
        lens = torch.tensor([prompt.shape[0]])
        tokens = [prompt_tokens[: len(prompt_tokens) // 2]]
        cond = reference.condition([prompt_tokens], tokens, prompt.unsqueeze(0), lens, 1.0)
        x = torch.randn(1, cond.num_frames, reference.feature_dim, generator=torch.Generator().manual_seed(0))
        v_ref = reference.velocity(x, 0.5, cond, guidance_scale=3.0)
        v_fused = fused.velocity(x, 0.5, cond, guidance_scale=3.0)
    relative = float((v_fused - v_ref).norm() / v_ref.norm())
    assert v_ref.abs().max() > 0
    assert relative <= 1e-4, f"fused decoder deviates {relative:.2e} (relative L2) from the reference kernels"


def test_fused_audio_log_mel_distance_is_bounded(pipelines, voice):
    text = "The keeper climbed the stairs with a lantern."
    with one_torch_thread():
        audio_ref = pipelines[0].synthesize(text, voice, seed=3)
        audio_fused = pipelines[1].synthesize(text, voice, seed=3)
    assert audio_ref.samples.shape == audio_fused.samples.shape
    features = get_registry().get("features", "vocos-mel").cls()
    mel_ref = features(torch.as_tensor(audio_ref.samples, dtype=torch.float32).reshape(-1))
    mel_fused = features(torch.as_tensor(audio_fused.samples, dtype=torch.float32).reshape(-1))
    distance = float((mel_ref - mel_fused).abs().mean())
    assert distance <= 1e-3, f"log-mel distance of the fused path's audio {distance:.2e} > 1e-3"


# ---- quality bound of bf16 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bf16_pipelines():
    def build(dtype: str, kernels: str) -> Pipeline:
        config = tiny_pipeline_config()
        config["synthesizer"]["acoustic_model"].update(dtype=dtype, kernels=kernels)
        return Pipeline.from_config(config)

    with one_torch_thread():
        yield {"bf16-reference": build("bfloat16", "reference"), "bf16-fused": build("bfloat16", "fused")}


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("variant", ["bf16-reference", "bf16-fused"])
def test_bf16_decoder_call_deviation_is_bounded(pipelines, bf16_pipelines, voice, variant):
    reference, bf16 = pipelines[0].synthesizer.acoustic_model, bf16_pipelines[variant].synthesizer.acoustic_model
    assert bf16.dtype == torch.bfloat16
    prompt = voice.tensors["prompt_features"]
    prompt_tokens = voice.tensors["prompt_token_ids"].tolist()
    with one_torch_thread(), torch.inference_mode():
        lens = torch.tensor([prompt.shape[0]])
        tokens = [prompt_tokens[: len(prompt_tokens) // 2]]
        x = None
        for t in (0.1, 0.9):
            conds = [m.condition([prompt_tokens], tokens, prompt.unsqueeze(0), lens, 1.0) for m in (reference, bf16)]
            if x is None:
                x = torch.randn(1, conds[0].num_frames, reference.feature_dim, generator=torch.Generator().manual_seed(0))
            v_ref = reference.velocity(x, t, conds[0], guidance_scale=3.0)
            v_bf16 = bf16.velocity(x, t, conds[1], guidance_scale=3.0)
            assert v_bf16.dtype == torch.float32 and torch.isfinite(v_bf16).all()
            relative = _relative(v_bf16, v_ref)
            assert relative <= 5e-2, f"{variant} decoder call at t={t} deviates {relative:.2e} (relative L2) from fp32"


def test_bf16_audio_log_mel_deviation_is_bounded(pipelines, bf16_pipelines, voice):
    text = "The keeper climbed the stairs with a lantern."
    features = get_registry().get("features", "vocos-mel").cls()
    with one_torch_thread():
        reference = pipelines[0].synthesize(text, voice, seed=3)
        for variant, pipeline in bf16_pipelines.items():
            audio = pipeline.synthesize(text, voice, seed=3)
            assert audio.samples.shape == reference.samples.shape
            mel_ref = features(torch.as_tensor(reference.samples, dtype=torch.float32).reshape(-1))
            mel = features(torch.as_tensor(audio.samples, dtype=torch.float32).reshape(-1))
            relative = _relative(mel, mel_ref)
            distance = float((mel - mel_ref).abs().mean())
            assert relative <= 5e-2, f"{variant}: the audio's log-mel deviates {relative:.2e} (relative L2) from fp32"
            assert distance <= 2e-2, f"{variant}: log-mel distance of the audio {distance:.2e} > 2e-2"


def test_bf16_fused_model_packs_its_weights_at_load_unless_told_not_to(pipelines, bf16_pipelines, voice):
    """`prepack_weights` (default true): a bf16 fused model keeps its Linear weights in oneDNN's
    layout from load on, where this CPU has that path; false packs nothing; both compute the
    same function (bias rounding may differ for permuted inputs, tests/test_zipformer.py)."""
    from voxpipe.plugins.zipvoice import scaling

    packed = bf16_pipelines["bf16-fused"].synthesizer.acoustic_model
    config = tiny_pipeline_config()
    config["synthesizer"]["acoustic_model"].update(dtype="bfloat16", kernels="fused", prepack_weights=False)
    plain = Pipeline.from_config(config).synthesizer.acoustic_model
    assert plain.describe()["packed_weights"] == 0
    assert bf16_pipelines["bf16-reference"].synthesizer.acoustic_model.describe()["packed_weights"] == 0
    linears = sum(hasattr(type(m), "prepack") for m in packed.model.modules())
    assert packed.describe()["packed_weights"] == (linears if scaling.bf16_weight_packing_available() else 0)
    prompt = voice.tensors["prompt_features"]
    prompt_tokens = voice.tensors["prompt_token_ids"].tolist()
    with one_torch_thread(), torch.inference_mode():
        lens = torch.tensor([prompt.shape[0]])
        conds = [m.condition([prompt_tokens], [prompt_tokens[:5]], prompt.unsqueeze(0), lens, 1.0) for m in (plain, packed)]
        x = torch.randn(1, conds[0].num_frames, plain.feature_dim, generator=torch.Generator().manual_seed(0))
        v_plain, v_packed = (m.velocity(x, 0.5, c, guidance_scale=3.0) for m, c in zip((plain, packed), conds))
    assert _relative(v_packed, v_plain) <= 1e-2


def test_bf16_swoosh_matches_float64_and_handles_overflow():
    from voxpipe.plugins.zipvoice import scaling

    x = torch.cat([torch.linspace(-30, 30, 4001), torch.tensor([90.0, 200.0, 3e38])]).bfloat16()
    for offset in (1.0, 4.0):
        got = scaling._swoosh_fused_without_constant(x, offset)
        assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
        exact = torch.nn.functional.softplus(x.double() - offset) - scaling.SWOOSH_SLOPE * x.double()
        error = (got.double() - exact).abs() / exact.abs().clamp(min=1.0)
        assert float(error.max()) <= 2 ** -6, f"bf16 Swoosh(offset {offset}) error {float(error.max()):.2e}"


@pytest.mark.parametrize("kernels", ["reference", "fused"])
def test_models_without_grad_or_built_under_inference_mode_compute_the_same_bits(pipelines, voice, kernels):
    """Weights that do not require grad (built under `torch.inference_mode()`, or
    `requires_grad_(False)`) must take the same GEMMs as ordinary parameters (torch's matmul would
    otherwise broadcast the weight per frame, 8x slower at full size) and keep the fused kernels'
    bias folding working (inference tensors have no version counter)."""
    config = tiny_pipeline_config()
    config["synthesizer"]["acoustic_model"]["kernels"] = kernels
    reference = pipelines[0 if kernels == "reference" else 1].synthesizer.acoustic_model
    with torch.inference_mode():
        built_inside = Pipeline.from_config(config).synthesizer.acoustic_model
    frozen = Pipeline.from_config(config).synthesizer.acoustic_model
    frozen.model.requires_grad_(False)
    assert not any(p.is_inference() for p in built_inside.model.parameters())
    prompt = voice.tensors["prompt_features"]
    tokens = [voice.tensors["prompt_token_ids"].tolist()]
    lens = torch.tensor([prompt.shape[0]])
    with one_torch_thread(), torch.inference_mode():
        velocities = []
        for model in (reference, built_inside, frozen):
            cond = model.condition(tokens, tokens, prompt.unsqueeze(0), lens, 1.0)
            x = torch.randn(1, cond.num_frames, model.feature_dim, generator=torch.Generator().manual_seed(1))
            velocities.append(model.velocity(x, 0.5, cond, 3.0))
    assert torch.equal(velocities[1], velocities[0]) and torch.equal(velocities[2], velocities[0])


def test_fused_bias_folding_accepts_inference_tensors():
    from voxpipe.plugins.zipvoice.scaling import ActivationAndLinear

    with torch.inference_mode():
        layer = ActivationAndLinear(8, 4, "SwooshL")
        layer.fused = True
        x = torch.randn(5, 1, 8)
        before = layer(x)
        layer.weight.mul_(2.0)  # inference tensors can change in place: the folded bias follows
        after = layer(x)
    reference = ActivationAndLinear(8, 4, "SwooshL")
    reference.load_state_dict({"weight": layer.weight.clone(), "bias": layer.bias.clone()})
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, reference(x.clone()).detach(), rtol=1e-5, atol=1e-6)


def test_unknown_kernels_value_is_a_config_error():
    config = tiny_pipeline_config()
    config["synthesizer"]["acoustic_model"]["kernels"] = "turbo"
    with pytest.raises(ConfigError, match="kernels"):
        build_config(config)


# ---- choosing a precision ---------------------------------------------------------------------
def test_supported_precisions_come_from_the_components_params():
    assert supported_precisions(acoustic_class("zipvoice-distill")) == ("fp32", "bf16")
    assert supported_precisions(acoustic_class("zipvoice-distill-onnx")) == ("fp32", "int8")


def test_auto_is_fp32_on_avx2_and_bf16_only_with_native_bf16():
    torch_precisions = ("fp32", "bf16")
    assert choose_precision("auto", torch_precisions, AVX2) == "fp32"
    assert choose_precision("auto", torch_precisions, BF16) == "bf16"
    assert choose_precision("auto", ("fp32", "int8"), BF16) == "fp32"  # int8 is never automatic


def test_bf16_without_native_bf16_is_a_clear_error():
    with pytest.raises(ConfigError, match="avx512_bf16.*10x slower"):
        choose_precision("bf16", ("fp32", "bf16"), AVX2)


def test_int8_on_a_model_without_int8_graphs_names_the_export():
    with pytest.raises(ConfigError, match="not available.*voxpipe export onnx"):
        choose_precision("int8", ("fp32", "bf16"), BF16)


def test_resolve_turns_a_choice_into_validated_overrides():
    config = build_config(tiny_pipeline_config())
    overrides, label = resolve(config, "auto", None, AVX2)
    assert overrides == ["synthesizer.acoustic_model.dtype=float32",
                         f"synthesizer.acoustic_model.kernels={AUTO_KERNELS}",
                         f"synthesizer.vocoder.kernels={AUTO_KERNELS}", "synthesizer.vocoder.dtype=float32"]
    assert "fp32" in label and AUTO_KERNELS in label and "vocoder vocos-24k" in label
    rebuilt = build_config(tiny_pipeline_config(), overrides)
    assert rebuilt.components["synthesizer"].children["acoustic_model"].params.kernels == AUTO_KERNELS
    fused = build_config(tiny_pipeline_config(), ["synthesizer.acoustic_model.kernels=fused"])
    assert fused.components["synthesizer"].children["acoustic_model"].params.kernels == "fused"
    overrides, label = resolve(config, "bf16", None, BF16)
    assert "synthesizer.acoustic_model.dtype=bfloat16" in overrides
    assert f"synthesizer.acoustic_model.kernels={AUTO_KERNELS}" in overrides  # bf16: no parity to keep
    assert f"synthesizer.vocoder.kernels={AUTO_KERNELS}" in overrides
    assert "synthesizer.vocoder.dtype=bfloat16" in overrides and "bfloat16" in label  # its body, heads float32
    assert build_config(tiny_pipeline_config(), overrides).components["synthesizer"].children["vocoder"].params.dtype \
        == "bfloat16"
    overrides, _ = resolve(config, "fp32", None, BF16)
    assert overrides == ["synthesizer.acoustic_model.dtype=float32", "synthesizer.acoustic_model.kernels=reference",
                         "synthesizer.vocoder.kernels=reference",
                         "synthesizer.vocoder.dtype=float32"]  # the parity path, vocoder included
    assert resolve(config, None, None, AVX2)[0] == []  # no flag: the config as written


def test_commands_default_to_auto_unless_the_config_sets_the_arithmetic():
    config = build_config(tiny_pipeline_config())
    vocoder = f"synthesizer.vocoder.kernels={AUTO_KERNELS}"
    assert default_overrides(config, BF16)[0] == ["synthesizer.acoustic_model.dtype=bfloat16",
                                                  f"synthesizer.acoustic_model.kernels={AUTO_KERNELS}", vocoder,
                                                  "synthesizer.vocoder.dtype=bfloat16"]
    assert default_overrides(config, AVX2)[0] == ["synthesizer.acoustic_model.dtype=float32",
                                                  f"synthesizer.acoustic_model.kernels={AUTO_KERNELS}", vocoder,
                                                  "synthesizer.vocoder.dtype=float32"]
    for pinned in ("synthesizer.acoustic_model.kernels=reference", "synthesizer.acoustic_model.dtype=float32"):
        overrides, label = default_overrides(build_config(tiny_pipeline_config(), [pinned]), BF16)
        assert (overrides, label) == ([], "zipvoice-distill: as configured (torch)")


def test_a_family_names_its_precision_component():
    """StyleTTS2 / Kokoro in torch take --precision on their decoder (Synthesizer.precision_component):
    bf16 on the iSTFTNet generator where the CPU has it; the HiFi-GAN decoder offers fp32 only;
    CosyVoice on its flow (kernels)."""
    kokoro = build_config("kokoro_torch")
    assert resolve(kokoro, "auto", None, BF16)[0] == ["synthesizer.decoder.dtype=bfloat16"]
    assert resolve(kokoro, "auto", None, AVX2)[0] == ["synthesizer.decoder.dtype=float32"]
    assert resolve(kokoro, "fp32", None, BF16)[0] == ["synthesizer.decoder.dtype=float32"]
    assert default_overrides(kokoro, BF16)[0] == ["synthesizer.decoder.dtype=bfloat16"]
    pinned = build_config("kokoro_torch", ["synthesizer.decoder.dtype=float32"])
    assert default_overrides(pinned, BF16) == ([], "istftnet: as configured (torch)")
    with pytest.raises(ConfigError, match="set synthesizer.decoder.dtype=bfloat16"):
        resolve(kokoro, "bf16", None, AVX2)
    with pytest.raises(ConfigError, match=r"int8' is not available for decoder 'istftnet' \(torch\) \(it offers fp32, bf16\)\.$"):
        resolve(kokoro, "int8", None, BF16)  # no export hint: voxpipe exports no StyleTTS2 graphs
    with pytest.raises(ConfigError, match="decoder 'istftnet' runs on torch; voxpipe has no ONNX export of it"):
        resolve(kokoro, None, "onnx", BF16)
    libritts = build_config("styletts2_libritts")
    assert resolve(libritts, "auto", None, BF16)[0] == []
    with pytest.raises(ConfigError, match="not available for decoder 'hifigan'.*offers fp32"):
        resolve(libritts, "bf16", None, BF16)
    assert resolve(build_config("kokoro"), "auto", None, BF16) == ([], "kokoro: as built (no precision or backend choice)")
    cosyvoice = build_config("cosyvoice2")  # the flow's kernels: oneDNN GEMMs under auto, the official calls for fp32
    assert resolve(cosyvoice, "auto", None, BF16)[0] == ["synthesizer.flow.kernels=fused"]
    assert resolve(cosyvoice, "fp32", None, BF16)[0] == ["synthesizer.flow.kernels=reference"]


def test_backend_other_than_the_configs_is_a_clear_error():
    config = build_config(tiny_pipeline_config())
    with pytest.raises(ConfigError, match="voxpipe export onnx"):
        resolve(config, None, "onnx", AVX2)


def test_cli_precision_flag_reaches_the_config(monkeypatch):
    from voxpipe.commands import common

    monkeypatch.setattr("voxpipe.core.precision.detect", lambda: AVX2)
    parser = argparse.ArgumentParser()
    common.add_config_args(parser)
    args = parser.parse_args(["--config", "tiny", "--precision", "auto", "--set", "synthesizer.acoustic_model.kernels=fused"])
    args.config = tiny_pipeline_config()
    config = common.load_config(args)
    acoustic = config.components["synthesizer"].children["acoustic_model"].params
    assert (acoustic.dtype, acoustic.kernels) == ("float32", AUTO_KERNELS)  # the flag decides, after --set
    args = parser.parse_args(["--precision", "bf16"])
    args.config = tiny_pipeline_config()
    with pytest.raises(ConfigError, match="bf16"):
        common.load_config(args)
    monkeypatch.setattr("voxpipe.core.precision.detect", lambda: BF16)
    for argv, expected in (([], ("bfloat16", AUTO_KERNELS)),  # no flag: auto
                           (["--precision", "fp32"], ("float32", "reference")),  # the parity path
                           (["--set", "synthesizer.acoustic_model.dtype=float32"], ("float32", "reference"))):
        args = parser.parse_args(argv)
        args.config = tiny_pipeline_config()
        acoustic = common.load_config(args).components["synthesizer"].children["acoustic_model"].params
        assert (acoustic.dtype, acoustic.kernels) == expected, argv
        assert args.arithmetic.startswith("zipvoice-distill: " + ("bf16 on torch" if not argv else
                                          "fp32 on torch" if "--precision" in argv else "as configured"))


def test_pipeline_from_config_takes_a_precision_like_the_commands(monkeypatch):
    monkeypatch.setattr("voxpipe.core.precision.detect", lambda: BF16)
    as_written = Pipeline.from_config(tiny_pipeline_config()).synthesizer.acoustic_model
    assert (as_written.dtype, as_written.kernels) == (torch.float32, "reference")
    for overrides in (["solver.num_steps=2"], {"solver.num_steps": 2}):
        pipeline = Pipeline.from_config(tiny_pipeline_config(), overrides, precision="auto")
        acoustic = pipeline.synthesizer.acoustic_model
        assert (acoustic.dtype, acoustic.kernels) == (torch.bfloat16, AUTO_KERNELS)
        assert pipeline.synthesizer.vocoder.kernels == AUTO_KERNELS
        assert pipeline.config.components["synthesizer"].children["solver"].params.num_steps == 2
    parity = Pipeline.from_config(tiny_pipeline_config(), precision="fp32").synthesizer
    assert (parity.acoustic_model.dtype, parity.acoustic_model.kernels, parity.vocoder.kernels) == (
        torch.float32, "reference", "reference")
    with pytest.raises(ConfigError, match="voxpipe export onnx"):
        Pipeline.from_config(tiny_pipeline_config(), backend="onnx")
    with pytest.raises(ConfigError, match="PipelineConfig"):
        Pipeline.from_config(build_config(tiny_pipeline_config()), precision="auto")
