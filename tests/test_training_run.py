"""`voxpipe train`: exact resume, two processes under torchrun (gloo), checkpoints a pipeline loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml
from training_fixtures import prepared_cuts, tiny_recipe, write_clips

from voxpipe.cli import main
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.testing.threads import one_torch_thread
from voxpipe.training.average import average_between
from voxpipe.training.checkpointing import (
    list_checkpoints,
    load_checkpoint,
)
from voxpipe.training.progress import read_loss_file
from voxpipe.training.recipe import load_recipe
from voxpipe.training.trainer import train


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    return prepared_cuts(tmp_path_factory.mktemp("data"))


def assert_same_state(left, right, where=""):
    """Bit-for-bit equality of nested checkpoint state (tensors, numbers, lists, dicts)."""
    if isinstance(left, torch.Tensor):
        assert torch.equal(left, right), where
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            assert_same_state(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right)):
            assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert left == right, where


def test_resumed_run_matches_uninterrupted_run_bit_for_bit(tmp_path, cuts):
    # 7 steps cross an epoch boundary (8 clips of 0.6-1.3 s in batches of <= 3 s); the cut at step 3
    # is mid-epoch, so the sampler must skip exactly the batches already taken.
    # The official optimizer and schedule (ScaledAdam + Eden), whose state must round-trip too.
    official = {"optim": {"type": "scaled-adam", "lr": 0.02, "clip_grad_norm": None},
                "schedule": {"type": "eden", "lr_batches": 10, "lr_epochs": 2, "warmup_batches": 3}}
    with one_torch_thread():
        whole = train(load_recipe(tiny_recipe(tmp_path / "whole", cuts, **official), ["training.max_steps=7"]))
        first = train(load_recipe(tiny_recipe(tmp_path / "parts", cuts, **official), ["training.max_steps=3"]))
        second = train(load_recipe(tiny_recipe(tmp_path / "parts", cuts, **official), ["training.max_steps=7"]))
    assert whole.epoch >= 1 and first.step == 3 and second.resumed_from == tmp_path / "parts" / "checkpoint-3.pt"
    assert second.step == whole.step == 7
    reference, resumed = load_checkpoint(whole.checkpoint), load_checkpoint(second.checkpoint)
    assert reference["model_avg"] is not None  # averaged every 2 steps (checkpoint.average_period)
    for key in ("model", "model_avg", "optimizer", "scheduler", "rng", "step", "epoch", "batch_in_epoch",
                "seconds_seen"):
        assert_same_state(reference[key], resumed[key], key)
    assert read_loss_file(tmp_path / "whole" / "loss.tsv") == read_loss_file(tmp_path / "parts" / "loss.tsv")
    assert [p.name for p in list_checkpoints(tmp_path / "parts")] == ["checkpoint-6.pt", "checkpoint-7.pt"]  # keep_last 2


def test_train_command_writes_checkpoints_a_pipeline_loads(tmp_path, cuts, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "run", cuts, training={"max_steps": 12},
                                               checkpoint={"keep_last": 3})))
    with one_torch_thread():
        assert main(["train", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trained to step 12" in out and f"pipeline: {tmp_path / 'run' / 'pipeline.yaml'}" in out
    losses = [row["loss"] for row in read_loss_file(tmp_path / "run" / "loss.tsv")]
    assert len(losses) == 12 and sum(losses[-4:]) < sum(losses[:4])  # it learns something
    exported = yaml.safe_load((tmp_path / "run" / "pipeline.yaml").read_text())
    assert exported["tokenizer"]["tokens"] == str(tmp_path / "run" / "export" / "tokens.txt")  # self-contained
    pipeline = Pipeline.from_config(tmp_path / "run" / "pipeline.yaml")
    prompt = write_clips(tmp_path / "prompt", 1)[0]
    with one_torch_thread():
        audio = pipeline.synthesize("hello there", pipeline.encode_prompt(prompt[2], prompt[1]), seed=0)
    assert audio.num_samples > 0 and torch.isfinite(audio.samples).all()
    # The exported model is the mean over the steps since the oldest kept checkpoint (8, 12] (the
    # official iter-N-avg-K), not the running average since step 0; the pipeline loads it strictly.
    start, end = (load_checkpoint(tmp_path / "run" / f"checkpoint-{n}.pt") for n in (8, 12))
    recent = average_between(start["model_avg"], 8, end["model_avg"], 12, average_period=2)
    weights = pipeline.synthesizer.acoustic_model.model.state_dict()
    for key, value in recent.items():
        assert torch.equal(weights[key], value.to(torch.float32)), key
    differs = [key for key, value in end["model_avg"].items() if not torch.equal(weights[key], value.float())]
    assert differs and any(not torch.equal(weights[k], end["model"][k]) for k in differs)


def test_two_processes_with_torchrun_and_gloo(tmp_path, cuts):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "ddp", cuts, training={"max_steps": 2})))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "voxpipe.cli", "train", str(path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained to step 2") == 1  # rank 0 reports and exports
    state = load_checkpoint(tmp_path / "ddp" / "checkpoint-2.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["generator"], state["rng"][1]["generator"])  # own draws per process
    assert (tmp_path / "ddp" / "pipeline.yaml").is_file()
    # A 2-process checkpoint does not resume silently in one process.
    with pytest.raises(ConfigError, match="written by 2 processes, this run has 1"):
        train(load_recipe(tiny_recipe(tmp_path / "ddp", cuts, training={"max_steps": 3})))


def test_fine_tune_from_an_official_layout_with_a_frozen_text_encoder(tmp_path, cuts):
    """init_from: a model directory in the official layout (here the zipvoice fixture, same
    tokens.txt as the tokenizer); freeze keeps the text encoder's weights as loaded."""
    from training_fixtures import TOKENS

    from voxpipe.plugins.zipvoice.loading import load_model

    official = TOKENS.parent
    recipe = tiny_recipe(tmp_path / "tune", cuts, init_from=str(official), freeze=["text_encoder"],
                         training={"max_steps": 2})
    del recipe["model"]
    with one_torch_thread():
        train(load_recipe(recipe))
    before = load_model(official).model.state_dict()
    after = load_model(tmp_path / "tune" / "export").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("text_encoder."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("fm_decoder."))
    assert load_model(tmp_path / "tune" / "export").config["model"] == load_model(official).config["model"]
