"""Training recipes: validated like pipeline files, errors name the file, key and close matches."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from training_fixtures import TINY_MODEL, tiny_recipe

from voxpipe.core.errors import ConfigError
from voxpipe.training.recipe import EXPORT_DIR, check_freeze, load_recipe


def write(tmp_path: Path, recipe: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def error_of(tmp_path: Path, recipe: dict, overrides=()) -> str:
    path = write(tmp_path, recipe)
    with pytest.raises(ConfigError) as caught:
        load_recipe(path, overrides)
    message = str(caught.value)
    assert str(path) in message  # every error names the file
    return message


def test_valid_recipe_resolves_paths_and_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, tiny_recipe(Path("ckpt"), Path("data/cuts.jsonl.gz"))),
                         ["training.max_steps=9", "solver.num_steps=3"])
    assert recipe.directory == tmp_path / "ckpt"  # relative to the recipe file
    assert recipe.data.train == str(tmp_path / "data" / "cuts.jsonl.gz")
    assert recipe.training.max_steps == 9
    assert recipe.pipeline.components["synthesizer"].children["solver"].params.num_steps == 3
    # A left-out acoustic-model `weights` is the export directory: the resolved pipeline is the exported one.
    assert recipe.acoustic_model.params.weights == str(tmp_path / "ckpt" / EXPORT_DIR)
    assert recipe.optim.type == "adamw" and recipe.schedule.type == "constant" and recipe.init_from is None


@pytest.mark.parametrize("change, expected", [
    ({"optimm": {}}, ["top level", "unknown key 'optimm'", "did you mean 'optim'"]),
    ({"optim": {"lrr": 0.1}}, ["optim.lrr", "did you mean 'lr'"]),
    ({"training": {"max_steps": 0}}, ["training.max_steps", "greater than or equal to 1", "got 0"]),
    ({"schedule": {"type": "cosine"}}, ["schedule.type", "'eden' or 'constant'", "'cosine'"]),
    ({"data": "cuts.jsonl.gz"}, ["data: expected a mapping"]),
    ({"model": None}, ["from scratch", "needs a 'model' section"]),
    ({"init_from": "no/such/dir"}, ["init_from", "'no/such/dir' is not a directory"]),
    ({"freeze": "text_encoder"}, ["freeze: expected a list"]),
])
def test_bad_recipes_name_key_and_expectation(tmp_path, change, expected):
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    recipe.update(change)
    if change.get("model", 0) is None:
        del recipe["model"]
    message = error_of(tmp_path, recipe)
    for part in expected:
        assert part in message, message


def test_missing_required_sections(tmp_path):
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    del recipe["checkpoint"]
    assert "missing required section 'checkpoint'" in error_of(tmp_path, recipe)
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    del recipe["data"]["train"]
    assert "data.train: missing required key" in error_of(tmp_path, recipe)


def test_pipeline_part_is_checked_by_the_pipeline_machinery(tmp_path):
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    recipe["synthesizer"]["solver"]["num_step"] = 3
    message = error_of(tmp_path, recipe)
    assert "synthesizer.solver.num_step" in message and "did you mean 'num_steps'" in message
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    recipe["synthesizer"]["acoustic_model"] = {"type": "zipvoice-onnx"}
    assert "no trainable torch network" in error_of(tmp_path, recipe)


def test_model_and_init_from_conflict_and_pipeline_init_needs_weights(tmp_path):
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz", init_from=str(tmp_path))
    assert "remove 'model' or set init_from: null" in error_of(tmp_path, recipe)
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz", init_from="pipeline")
    del recipe["model"]
    assert "acoustic_model.weights, which is not set" in error_of(tmp_path, recipe)


def test_override_of_a_recipe_section_is_validated(tmp_path):
    recipe = tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz")
    assert "optim.lr" in error_of(tmp_path, recipe, ["optim.lr=-1"])


def test_unknown_freeze_module_and_model_argument(tmp_path):
    from voxpipe.plugins.zipvoice.model import ZipVoice

    recipe = load_recipe(write(tmp_path, tiny_recipe(tmp_path / "ckpt", tmp_path / "c.jsonl.gz",
                                                     freeze=["text_encodr"])))
    network = ZipVoice(**TINY_MODEL, vocab_size=10, pad_id=0)
    with pytest.raises(ConfigError, match="freeze: unknown module 'text_encodr'; did you mean 'text_encoder'"):
        check_freeze(recipe, network)

    from voxpipe.training.trainer import build_network

    bad = load_recipe(write(tmp_path, tiny_recipe(tmp_path / "ckpt", tmp_path / "c.jsonl.gz",
                                                   model={"fm_decoder_dimm": 8})))
    tokenizer = bad.pipeline.components["tokenizer"].build("tokenizer")
    features = bad.pipeline.components["synthesizer"].children["features"].build("features")
    with pytest.raises(ConfigError, match=r"model.*unknown model arguments \['fm_decoder_dimm'\]"):
        build_network(bad, tokenizer, features)


def test_train_command_checks_a_recipe(tmp_path, capsys):
    from voxpipe.cli import main

    path = write(tmp_path, tiny_recipe(tmp_path / "ckpt", tmp_path / "cuts.jsonl.gz"))
    assert main(["train", str(path), "--check"]) == 0
    assert "valid recipe" in capsys.readouterr().out
    assert main(["train", str(path), "--check", "--set", "checkpoint.every_step=3"]) == 2
    assert "did you mean 'every_steps'" in capsys.readouterr().err
