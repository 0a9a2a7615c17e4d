"""Export of a trained network to the official layout: round trip through voxpipe's loader, the
official checkpoint structure, float64 averages, and refusal before writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from voxpipe.core.errors import WeightsError
from voxpipe.core.tokenizer import read_tokens_file
from voxpipe.plugins.zipvoice.loading import load_model
from voxpipe.training.average import new_averaged_model
from voxpipe.training.export import export_model

MODELS = Path(__file__).resolve().parent / "fixtures" / "training" / "models"


def trained(variant: str, folder: str):
    loaded = load_model(MODELS / folder, variant)
    with torch.no_grad():  # "training" changed every weight
        for param in loaded.model.parameters():
            param.add_(0.01)
    return loaded


@pytest.mark.parametrize(("variant", "folder"), [("zipvoice", "zipvoice"), ("zipvoice-distill", "zipvoice_distill")])
def test_round_trip_through_the_loader(tmp_path: Path, variant: str, folder: str) -> None:
    loaded = trained(variant, folder)
    paths = export_model(loaded.model, tmp_path / "out", model_config=loaded.config["model"], vocab=loaded.vocab,
                         variant=variant, feature=loaded.config["feature"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"model.pt", "model.safetensors", "model.json",
                                                              "tokens.txt"}
    assert read_tokens_file(paths["tokens"]) == loaded.vocab
    assert json.loads(paths["config"].read_text()) == loaded.config
    # Official layout: {"model": state_dict} with the official parameter names.
    official = torch.load(paths["checkpoint"], map_location="cpu", weights_only=True)
    assert set(official) == {"model"}
    for checkpoint in ("model.pt", "model.safetensors"):
        again = load_model(tmp_path / "out", variant, checkpoint=checkpoint).model
        for name, value in loaded.model.state_dict().items():
            assert torch.equal(again.state_dict()[name], value), (checkpoint, name)
            assert torch.equal(official["model"][name], value)


def test_float64_average_is_exported_as_float32(tmp_path: Path) -> None:
    loaded = trained("zipvoice", "zipvoice")
    averaged = new_averaged_model(loaded.model)
    export_model(averaged, tmp_path, model_config=loaded.config["model"], vocab=loaded.vocab)
    again = load_model(tmp_path, "zipvoice").model
    for name, value in again.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, loaded.model.state_dict()[name])


def test_mismatched_config_is_refused_before_writing(tmp_path: Path) -> None:
    loaded = trained("zipvoice", "zipvoice")
    wrong = dict(loaded.config["model"], fm_decoder_dim=loaded.config["model"]["fm_decoder_dim"] * 2)
    with pytest.raises(WeightsError, match="fm_decoder"):
        export_model(loaded.model, tmp_path / "out", model_config=wrong, vocab=loaded.vocab)
    smaller_vocab = {token: index for token, index in loaded.vocab.items() if index < 5}
    with pytest.raises(WeightsError, match="5 tokens"):
        export_model(loaded.model, tmp_path / "out", model_config=loaded.config["model"], vocab=smaller_vocab)
    assert not (tmp_path / "out").exists()
