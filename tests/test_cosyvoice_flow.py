"""CosyVoice 2/3 flow (`cosyvoice-flow`): parity with the official `CausalMaskedDiffWithXvec.inference`
(CosyVoice2) and `CausalMaskedDiffWithDiT.inference` (CosyVoice3, `flow_cv3_*` cases: whole,
streaming + finalize, streaming chunk with the lookahead held back, other step counts, the official
chunk-by-chunk streaming check; the official fixed noise and stored noise), its ODE through
voxpipe's `cosine-euler` solver and `cosyvoice-cfg` guidance, strict loading of `flow.pt`, errors.

Cases: every `flow_*/manifest.json` under tests/fixtures/cosyvoice/ and, when VOXPIPE_FIXTURES is
set, under $VOXPIPE_FIXTURES/cosyvoice/ too (e.g. the official full-size sizes). Made by
tests/fixtures/cosyvoice/generate_flow_hift.py from an official checkout.
Tolerance: the manifest's (1e-4) x max(1, max |official|).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cosyvoice_cases import HERE, assert_close, fixture_cases

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.cosyvoice.flow import CosyVoiceFlow, fixed_noise
from voxpipe.plugins.cosyvoice.flow_ode import CosineEulerSolver, cosine_timesteps
from voxpipe.testing import SolverConformance
from voxpipe.testing.threads import one_torch_thread

CASES = fixture_cases("flow_")
TINY = HERE / "flow_tiny"
CV3_TINY = HERE / "flow_cv3_tiny"
_loaded: dict[Path, CosyVoiceFlow] = {}


def flow_of(model_dir: Path) -> CosyVoiceFlow:
    if model_dir not in _loaded:
        _loaded[model_dir] = CosyVoiceFlow.create(model_dir=str(model_dir))
    return _loaded[model_dir]


def case_inputs(case: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    manifest = json.loads((case / "manifest.json").read_text())
    data = dict(np.load(case / manifest["data"]))
    inputs = {name: torch.from_numpy(data[key]) for name, key in manifest["inputs"].items()}
    return manifest, data, inputs


def test_committed_cases_exist():
    assert {"flow_tiny", "flow_tiny_unet", "flow_cv3_tiny", "flow_cv3_tiny_stream"} <= {
        case.name for case in CASES if case.parent == HERE}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flow_matches_official(case):
    manifest, data, inputs = case_inputs(case)
    flow = flow_of(case / manifest["model_dir"])
    with one_torch_thread():
        for run in manifest["runs"]:
            noise = torch.from_numpy(data[run["noise"]]) if run["noise"] else None
            # "tokens": the run saw only the first N tokens (a streamed chunk)
            token = inputs["token"][:, :run["tokens"]] if run.get("tokens") else inputs["token"]
            mel, cache = flow.inference(**{**inputs, "token": token}, streaming=run["streaming"],
                                        finalize=run["finalize"], noise=noise, n_timesteps=run["n_timesteps"])
            assert cache is None
            assert_close(run["name"], mel, data[run["expected"]], float(manifest["tolerance"]))


@pytest.mark.parametrize("case", [TINY, CV3_TINY], ids=["cosyvoice2", "cosyvoice3"])
def test_output_frames_follow_finalize_and_the_lookahead(case):
    manifest, _, inputs = case_inputs(case)
    flow = flow_of(case / manifest["model_dir"])
    tokens = inputs["token"].shape[1]
    with one_torch_thread():
        final, _ = flow.inference(**inputs, streaming=True, finalize=True, n_timesteps=2)
        partial, _ = flow.inference(**inputs, streaming=True, finalize=False, n_timesteps=2)
    assert final.shape == (1, 80, flow.token_mel_ratio * tokens)
    assert partial.shape == (1, 80, flow.token_mel_ratio * (tokens - flow.pre_lookahead_len))


@pytest.mark.parametrize("case", [TINY, CV3_TINY], ids=["cosyvoice2", "cosyvoice3"])
def test_streamed_chunks_reproduce_the_streaming_output(case):
    """The official check (flow.py's __main__): with chunk-causal attention, each chunk made from
    the tokens so far plus pre_lookahead_len right-context tokens gives the same frames as one
    streaming pass over everything (prompt a whole number of chunks, as the official test)."""
    manifest, _, _ = case_inputs(case)
    flow = flow_of(case / manifest["model_dir"])
    chunk = flow.chunk_tokens
    g = torch.Generator().manual_seed(0)
    token = torch.randint(0, flow.vocab_size, (1, 3 * chunk), generator=g)
    prompt = torch.randint(0, flow.vocab_size, (1, chunk), generator=g)
    feat, embedding = torch.randn(1, chunk * flow.token_mel_ratio, 80, generator=g), torch.randn(1, 192, generator=g)
    with one_torch_thread():
        whole, _ = flow.inference(token, prompt, feat, embedding, streaming=True, finalize=True, n_timesteps=3)
        for start in range(0, token.shape[1], chunk):
            end = start + chunk + flow.pre_lookahead_len
            part, _ = flow.inference(token[:, :end], prompt, feat, embedding, streaming=True,
                                     finalize=end >= token.shape[1], n_timesteps=3)
            part = part[:, :, start * flow.token_mel_ratio:]
            assert part.shape[2] == chunk * flow.token_mel_ratio
            reference = whole[:, :, start * flow.token_mel_ratio:][:, :, :part.shape[2]]
            torch.testing.assert_close(part, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", [TINY, CV3_TINY], ids=["cosyvoice2", "cosyvoice3"])
def test_the_ode_runs_through_the_solver_and_guidance_components(case):
    manifest, data, inputs = case_inputs(case)
    run = next(r for r in manifest["runs"] if r["n_timesteps"] != 10)
    noise = torch.from_numpy(data[run["noise"]])
    model_dir = str(case / manifest["model_dir"])
    # the step count as the solver's own parameter == the per-call override
    four = CosyVoiceFlow.create(model_dir=model_dir, solver={"type": "cosine-euler", "num_steps": run["n_timesteps"]})
    unguided = CosyVoiceFlow.create(model_dir=model_dir, guidance={"type": "cosyvoice-cfg", "scale": 0.0})
    with one_torch_thread():
        mel, _ = four.inference(**inputs, streaming=run["streaming"], finalize=run["finalize"], noise=noise)
        assert_close("solver num_steps", mel, data[run["expected"]], float(manifest["tolerance"]))
        guided, _ = flow_of(case / manifest["model_dir"]).inference(**inputs, noise=noise, n_timesteps=2)
        plain, _ = unguided.inference(**inputs, noise=noise, n_timesteps=2)
    assert flow_of(case / manifest["model_dir"]).guidance_scale == 0.7  # the yaml's inference_cfg_rate
    assert not torch.allclose(guided, plain, atol=1e-3)
    with pytest.raises(ConfigError, match="cosyvoice-cfg"):
        CosyVoiceFlow.create(model_dir=model_dir, guidance={"type": "classifier-free", "scale": 1.0})


def test_cosine_grid_is_the_official_one():
    grid = cosine_timesteps(10)
    official = 1 - torch.cos(torch.linspace(0, 1, 11) * 0.5 * torch.pi)
    assert torch.equal(grid, official)
    assert torch.equal(CosineEulerSolver.create(num_steps=10).timesteps(10, 1.0), grid)
    assert math.isclose(float(grid[1]), 1 - math.cos(math.pi / 20), abs_tol=1e-7)  # fine steps near noise


class TestCosineEulerConformance(SolverConformance):
    def make_solver(self):
        return CosineEulerSolver(num_steps=4)


def test_a_pipeline_section_builds_the_flow_with_its_solver(tmp_path):
    """The YAML path: {type: cosyvoice-flow, solver: {...}} through the registry."""
    from voxpipe.core.config import validate_component
    from voxpipe.registry import get_registry

    section = {"type": "cosyvoice-flow", "model_dir": str(TINY / "model"),
               "solver": {"type": "cosine-euler", "num_steps": 3}, "guidance": {"type": "cosyvoice-cfg", "scale": 0.5}}
    flow = validate_component("flow", section, "synthesizer.flow", "<test>", get_registry(), None).build("flow")
    assert isinstance(flow.solver, CosineEulerSolver) and flow.solver.num_steps == 3
    assert flow.guidance_scale == 0.5


def test_default_noise_is_the_official_fixed_noise():
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(fixed_noise(80)[:, :, :50], torch.randn(1, 80, 15000, generator=generator)[:, :, :50])


def test_bad_inputs_are_clear_errors():
    manifest, _data, inputs = case_inputs(TINY)
    flow = flow_of(TINY / manifest["model_dir"])

    def call(**changes):
        return flow.inference(**{**inputs, **changes}, n_timesteps=1)

    with pytest.raises(ValueError, match="vocab_size"):
        call(token=torch.full((1, 4), flow.vocab_size, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"prompt_feat must be \(1, frames, 80\)"):
        call(prompt_feat=torch.zeros(1, 12, 100))
    with pytest.raises(ValueError, match=r"embedding must be \(1, 192\)"):
        call(embedding=torch.zeros(192))
    with pytest.raises(ValueError, match="integer token ids"):
        call(token=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="noise must be"):
        flow.inference(**inputs, noise=torch.zeros(1, 80, 3), n_timesteps=1)
    with pytest.raises(ValueError, match="no tokens"):
        flow.inference(**{**inputs, "token": torch.zeros(1, 0, dtype=torch.int32)})


def _model_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(TINY / "model", folder)
    return folder


def test_checkpoint_with_missing_or_extra_keys_is_refused_naming_them(tmp_path):
    folder = _model_copy(tmp_path)
    state = torch.load(folder / "flow.pt", weights_only=True)
    del state["encoder_proj.bias"]
    state["decoder.estimator.extra.weight"] = torch.zeros(2)
    torch.save(state, folder / "flow.pt")
    with pytest.raises(WeightsError, match=r"missing keys: encoder_proj\.bias.*unexpected keys: decoder\.estimator\.extra"):
        CosyVoiceFlow.create(model_dir=str(folder))


def test_hyperparameters_outside_cosyvoice2_are_refused(tmp_path):
    folder = _model_copy(tmp_path)
    text = (folder / "cosyvoice2.yaml").read_text()
    (folder / "cosyvoice2.yaml").write_text(text.replace("t_scheduler: 'cosine'", "t_scheduler: 'linear'"))
    with pytest.raises(ConfigError, match="t_scheduler"):
        CosyVoiceFlow.create(model_dir=str(folder))
    (folder / "cosyvoice2.yaml").write_text(text.replace("use_cnn_module: False", "use_cnn_module: True"))
    with pytest.raises(ConfigError, match="use_cnn_module"):
        CosyVoiceFlow.create(model_dir=str(folder))
    (folder / "flow.pt").unlink()
    with pytest.raises(WeightsError, match="flow.pt"):
        CosyVoiceFlow.create(model_dir=str(folder))


# ---- CosyVoice3 (CausalMaskedDiffWithDiT) ----------------------------------------------------------
def _cv3_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "cv3"
    shutil.copytree(CV3_TINY / "model", folder)
    return folder


def test_the_hyperparameter_file_picks_the_architecture():
    from voxpipe.plugins.cosyvoice.flow import CausalDiTFlowModel, CausalFlowModel

    cv2, cv3 = flow_of(TINY / "model"), flow_of(CV3_TINY / "model")
    assert cv2.variant == "CosyVoice2" and isinstance(cv2.model, CausalFlowModel)
    assert cv3.variant == "CosyVoice3" and isinstance(cv3.model, CausalDiTFlowModel)
    # sizes come from the file: 2 DiT blocks of 32 channels, chunk_size 4 tokens (x2 mel frames)
    assert len(cv3.model.decoder.estimator.transformer_blocks) == 2
    assert cv3.params.estimator.static_chunk_size == 8 and cv3.chunk_tokens == 4
    assert cv3.describe()["variant"] == "CosyVoice3"


def test_cv3_checkpoint_is_loaded_strictly(tmp_path):
    folder = _cv3_copy(tmp_path)
    state = torch.load(folder / "flow.pt", weights_only=True)
    assert "decoder.estimator.rotary_embed.inv_freq" in state  # a saved buffer of the official DiT
    del state["decoder.estimator.rotary_embed.inv_freq"]
    state["decoder.estimator.time_embed.extra"] = torch.zeros(1)
    torch.save(state, folder / "flow.pt")
    with pytest.raises(WeightsError, match=r"missing keys: decoder\.estimator\.rotary_embed\.inv_freq.*"
                                           r"unexpected keys: decoder\.estimator\.time_embed\.extra"):
        CosyVoiceFlow.create(model_dir=str(folder))
    # a CosyVoice2 flow.pt beside a cosyvoice3.yaml does not fit the DiT
    shutil.copy(TINY / "model" / "flow.pt", folder / "flow.pt")
    with pytest.raises(WeightsError, match="pre_lookahead_layer"):
        CosyVoiceFlow.create(model_dir=str(folder))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("            dim: 32\n", "            dim: 32\n            use_cache: True\n", r"estimator: unknown argument.*use_cache"),
    ("        pre_lookahead_len: 3\n    decoder", "        pre_lookahead_len: 2\n    decoder",
     r"pre_lookahead_layer\.pre_lookahead_len 2 != pre_lookahead_len 3"),
    ("            mu_dim: 80", "            mu_dim: 64", r"mu_dim 64 != input_size 80"),
    ("            dim: 32\n", "            dim: 40\n", r"dim = 40.*multiple of 16"),
    ("            dim_head: 8", "            dim_head: 7", r"even head size"),
    ("t_scheduler: 'cosine'", "t_scheduler: 'linear'", "t_scheduler"),
    ("flow.flow.CausalMaskedDiffWithDiT", "flow.flow.MaskedDiffWithXvec",
     r"implements CausalMaskedDiffWithXvec \(CosyVoice2\), CausalMaskedDiffWithDiT \(CosyVoice3\)"),
    ("flow.DiT.dit.DiT", "flow.decoder.CausalConditionalDecoder", r"estimator.*expected DiT"),
], ids=["unknown-dit-arg", "lookahead-mismatch", "mu-dim", "conv-groups", "odd-head", "scheduler", "flow-class",
        "estimator-class"])
def test_cv3_hyperparameters_outside_the_implemented_set_are_refused(tmp_path, old, new, message):
    folder = _cv3_copy(tmp_path)
    text = (folder / "cosyvoice3.yaml").read_text()
    assert old in text
    (folder / "cosyvoice3.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as error:
        CosyVoiceFlow.create(model_dir=str(folder))
    assert "cosyvoice3.yaml" in str(error.value)


def test_cv3_streaming_attention_is_chunk_causal():
    """Streaming hides later chunks from the DiT: the first chunk's frames do not change when
    later tokens change; without streaming they do."""
    manifest, _, inputs = case_inputs(CV3_TINY)
    flow = flow_of(CV3_TINY / manifest["model_dir"])
    changed = inputs["token"].clone()
    changed[:, -2:] = (changed[:, -2:] + 1) % flow.vocab_size
    frames = flow.chunk_tokens * flow.token_mel_ratio  # the prompt (6 tokens) spans 1.5 chunks
    with one_torch_thread():
        runs = {(streaming, name): flow.inference(**{**inputs, "token": token}, streaming=streaming, n_timesteps=2)[0]
                for streaming in (True, False) for name, token in (("a", inputs["token"]), ("b", changed))}
    torch.testing.assert_close(runs[True, "a"][:, :, :frames], runs[True, "b"][:, :, :frames], atol=0, rtol=0)
    assert not torch.allclose(runs[False, "a"][:, :, :frames], runs[False, "b"][:, :, :frames], atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("flow_tiny", "flow_cv3_tiny")], ids=lambda c: c.name)
def test_fused_kernels_run_the_flow_linears_on_onednn_with_the_same_function(monkeypatch, case):
    """`kernels: fused` (what --precision auto picks for a cosyvoice pipeline): every plain Linear of
    the flow runs on oneDNN's GEMM (voxpipe/core/onednn.py), same state dict, mel within 1e-5
    relative L2 of the reference kernels (the official calls)."""
    from voxpipe.core import onednn

    if onednn.LINEAR is None:
        pytest.skip("this torch build has no oneDNN linear")
    manifest, data, inputs = case_inputs(case)
    model_dir = str(case / manifest["model_dir"])
    reference = flow_of(case / manifest["model_dir"])
    fused = CosyVoiceFlow.create(model_dir=model_dir, kernels="fused")
    assert (reference.describe()["kernels"], fused.describe()["kernels"]) == ("reference", "fused")
    assert list(fused.model.state_dict()) == list(reference.model.state_dict())
    linears = [m for m in fused.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m) is onednn.OneDnnLinear for m in linears)
    calls = []
    real = onednn.LINEAR
    monkeypatch.setattr(onednn, "LINEAR", lambda *args: calls.append(1) or real(*args))
    run = manifest["runs"][0]
    noise = torch.from_numpy(data[run["noise"]]) if run["noise"] else None
    with torch.inference_mode(), one_torch_thread():
        expected, _ = reference.inference(**inputs, streaming=run["streaming"], finalize=run["finalize"], noise=noise,
                                          n_timesteps=run["n_timesteps"])
        got, _ = fused.inference(**inputs, streaming=run["streaming"], finalize=run["finalize"], noise=noise,
                                 n_timesteps=run["n_timesteps"])
    assert calls, "no Linear ran on oneDNN"
    relative = float((got - expected).norm() / expected.norm())
    assert relative <= 1e-5, f"fused flow deviates {relative:.2e} (relative L2) from the reference kernels"
    assert onednn.use_onednn_linears(fused.model, False) == len(linears)  # and back: plain nn.Linear again
    assert all(type(m) is torch.nn.Linear for m in fused.model.modules() if isinstance(m, torch.nn.Linear))
