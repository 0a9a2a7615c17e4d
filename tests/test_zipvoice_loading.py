"""Loading ZipVoice-family models: file discovery, vocabularies, strict weights, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydantic
import pytest
import torch

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.flow.guidance import ClassifierFreeGuidance, DistilledGuidance
from voxpipe.plugins.zipvoice import register_components
from voxpipe.plugins.zipvoice.acoustic import (
    ZipVoiceAcousticModel,
    ZipVoiceDialogAcousticModel,
    ZipVoiceDialogStereoAcousticModel,
    ZipVoiceDistillAcousticModel,
)
from voxpipe.plugins.zipvoice.loading import load_model, read_state_dict, read_tokens
from voxpipe.testing import AcousticModelConformance, GuidanceConformance

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zipvoice"


def copy_model_dir(source: str, target: Path, skip: tuple[str, ...] = ()) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in (FIXTURES / source).iterdir():
        if path.suffix != ".npz" and path.name not in skip:
            shutil.copy(path, target / path.name)
    return target


# -- vocabularies --------------------------------------------------------------------------------
def test_tokens_keep_the_space_token_and_count_lines() -> None:
    vocab = read_tokens(FIXTURES / "zipvoice" / "tokens.txt")
    lines = (FIXTURES / "zipvoice" / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == len(lines)
    assert vocab["_"] == 0 and vocab[" "] == 3


def test_dialog_speaker_ids_come_from_tokens() -> None:
    model = load_model(FIXTURES / "zipvoice_dialog", "zipvoice-dialog").model
    vocab = read_tokens(FIXTURES / "zipvoice_dialog" / "tokens.txt")
    assert (model.spk_a_id, model.spk_b_id, model.pad_id) == (vocab["[S1]"], vocab["[S2]"], vocab["_"])
    assert model.embed.num_embeddings == len(vocab)


def test_malformed_tokens_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("_\t0\nno-tab-here\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tokens.txt:2"):
        read_tokens(path)


def test_dialog_without_speaker_tokens(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice_dialog", tmp_path / "m")
    shutil.copy(FIXTURES / "tokens_emilia.txt", directory / "tokens.txt")
    with pytest.raises(ConfigError, match=r"\[S1\]"):
        load_model(directory, "zipvoice-dialog")


# -- files ---------------------------------------------------------------------------------------
def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="zipvoice model directory not found: .*nowhere"):
        load_model(tmp_path / "nowhere")


def test_hub_location_resolves_to_a_local_weights_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXPIPE_WEIGHTS_DIR", str(FIXTURES))
    loaded = load_model("hf://k2-fsa/ZipVoice/zipvoice_distill", "zipvoice-distill")
    assert loaded.files["checkpoint"].parent == FIXTURES / "zipvoice_distill"


def test_file_instead_of_directory() -> None:
    with pytest.raises(WeightsError, match="model directory expected, got a file"):
        load_model(FIXTURES / "zipvoice" / "model.pt")


@pytest.mark.parametrize(
    "removed, message",
    [
        (("model.pt", "model.safetensors"), r"checkpoint not found: looked for model.safetensors, model.pt in "),
        (("model.json",), r"model config not found: looked for model.json, config.json in "),
        (("tokens.txt",), r"tokens file not found: looked for tokens.txt in "),
    ],
)
def test_missing_file_names_what_and_where(tmp_path: Path, removed: tuple[str, ...], message: str) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m", skip=removed)
    with pytest.raises(WeightsError, match=message) as error:
        load_model(directory)
    assert str(directory) in str(error.value)


def test_explicit_file_override_that_is_missing(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m")
    with pytest.raises(WeightsError, match="looked for other.pt in"):
        load_model(directory, checkpoint="other.pt")


def test_luxtts_layout_config_json(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice_distill", tmp_path / "m", skip=("model.json",))
    shutil.copy(FIXTURES / "zipvoice_distill" / "model.json", directory / "config.json")
    loaded = load_model(directory, "zipvoice-distill")
    assert loaded.files["config"].name == "config.json"


def test_both_formats_give_identical_weights() -> None:
    a = load_model(FIXTURES / "zipvoice", checkpoint="model.pt").model.state_dict()
    b = load_model(FIXTURES / "zipvoice", checkpoint="model.safetensors").model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_corrupted_checkpoint(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m", skip=("model.safetensors",))
    (directory / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        load_model(directory)


# -- strict weights ------------------------------------------------------------------------------
def test_wrong_key_lists_missing_and_unexpected(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m", skip=("model.safetensors",))
    state_dict = read_state_dict(directory / "model.pt")
    state_dict["embed.weights"] = state_dict.pop("embed.weight")
    torch.save({"model": state_dict}, directory / "model.pt")
    with pytest.raises(WeightsError) as error:
        load_model(directory)
    text = str(error.value)
    assert "missing keys: embed.weight" in text
    assert "unexpected keys: embed.weights" in text
    assert str(directory / "model.json") in text


def test_wrong_variant_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as error:
        load_model(FIXTURES / "zipvoice_distill", "zipvoice")
    text = str(error.value)
    assert "unexpected keys: fm_decoder.guidance_scale_embed.weight" in text
    assert "looks like a 'zipvoice-distill' model" in text


def test_vocabulary_size_mismatch(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m")
    shutil.copy(FIXTURES / "tokens_dialog.txt", directory / "tokens.txt")
    with pytest.raises(WeightsError, match=r"shape mismatches: embed.weight \(360, 16\) vs model \(362, 16\)"):
        load_model(directory)


def test_unknown_config_argument(tmp_path: Path) -> None:
    directory = copy_model_dir("zipvoice", tmp_path / "m")
    config = json.loads((directory / "model.json").read_text())
    config["model"]["fm_decoder_dims"] = 3
    (directory / "model.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"unknown model arguments \['fm_decoder_dims'\]"):
        load_model(directory)


# -- components ----------------------------------------------------------------------------------
def test_component_attributes() -> None:
    distill = ZipVoiceDistillAcousticModel(weights=str(FIXTURES / "zipvoice_distill"))
    assert distill.uses_guidance_scale_input and distill.feature_dim == 20 and distill.sample_rate == 24000
    stereo = ZipVoiceDialogStereoAcousticModel(weights=str(FIXTURES / "zipvoice_dialog_stereo"))
    assert stereo.feature_dim == 40 and stereo.num_channels == 2 and not stereo.uses_guidance_scale_input
    assert stereo.vocab["[S2]"] == 361 and stereo.pad_id == 0


def test_params_forbid_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError):
        ZipVoiceAcousticModel.Params(weights="x", weight_dir="y")
    params = ZipVoiceAcousticModel.Params(weights=str(FIXTURES / "zipvoice"), checkpoint="model.pt")
    model = ZipVoiceAcousticModel.from_params(params)
    assert model.files["checkpoint"].name == "model.pt"


def test_empty_prompt_transcript_is_rejected() -> None:
    from voxpipe.core.errors import TextError

    model = ZipVoiceAcousticModel(weights=str(FIXTURES / "zipvoice"))
    with pytest.raises(TextError, match="prompt transcript has no tokens"):
        model.condition([[]], [[5, 6]], torch.zeros(1, 4, 20), torch.tensor([4]))


def test_zipvoice_plugin_registers_four_models() -> None:
    registered = []
    register_components(register=registered.append)
    assert {(c.kind, c.name) for c in registered} == {
        ("acoustic_model", name)
        for name in ("zipvoice", "zipvoice-distill", "zipvoice-dialog", "zipvoice-dialog-stereo")
    }


# -- conformance suites (the same ones plugin authors use) ---------------------------------------
class TestZipVoiceConformance(AcousticModelConformance):
    def make_model(self):
        return ZipVoiceAcousticModel(weights=str(FIXTURES / "zipvoice"))


class TestZipVoiceDistillConformance(AcousticModelConformance):
    def make_model(self):
        return ZipVoiceDistillAcousticModel(weights=str(FIXTURES / "zipvoice_distill"))


class TestZipVoiceDialogConformance(AcousticModelConformance):
    def make_model(self):
        return ZipVoiceDialogAcousticModel(weights=str(FIXTURES / "zipvoice_dialog"))


class TestZipVoiceDialogStereoConformance(AcousticModelConformance):
    def make_model(self):
        return ZipVoiceDialogStereoAcousticModel(weights=str(FIXTURES / "zipvoice_dialog_stereo"))


def _model_and_conditions(model):
    return model, AcousticModelConformance()._conditions(model)


class TestClassifierFreeGuidanceConformance(GuidanceConformance):
    def make_guidance(self):
        return ClassifierFreeGuidance(scale=1.5)

    def make_model_and_conditions(self):
        return _model_and_conditions(ZipVoiceAcousticModel(weights=str(FIXTURES / "zipvoice")))


class TestDistilledGuidanceConformance(GuidanceConformance):
    def make_guidance(self):
        return DistilledGuidance(scale=3.0)

    def make_model_and_conditions(self):
        return _model_and_conditions(ZipVoiceDistillAcousticModel(weights=str(FIXTURES / "zipvoice_distill")))
