"""`voxpipe train` with the two ZipVoice-Distill stages (training.loss distill-stage1 / -stage2):
teacher -> stage 1 -> stage 2 -> an exported pipeline that synthesizes; the trainer's loss is
`distillation_loss`; exact resume including the EMA teacher; torchrun; recipe errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from test_training_run import assert_same_state
from training_fixtures import prepared_cuts, tiny_recipe, write_clips

from voxpipe.cli import main
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.plugins.zipvoice.loading import load_model
from voxpipe.testing.threads import one_torch_thread
from voxpipe.training.checkpointing import load_checkpoint, seed_everything
from voxpipe.training.loss import FEATURE_SCALE
from voxpipe.training.recipe import load_recipe
from voxpipe.training.trainer import freeze_modules, train


def distill_recipe(directory, cuts, teacher, stage: int, **sections) -> dict:
    """The tiny recipe turned into a distillation stage: the student is a zipvoice-distill run with
    distilled guidance, architecture and vocabulary from `teacher`; as the official recipe, only
    the decoder is trained."""
    training = {"loss": f"distill-stage{stage}", "max_steps": 3, **sections.pop("training", {})}
    recipe = tiny_recipe(directory, cuts, training=training, **sections)
    del recipe["model"]
    recipe["synthesizer"]["acoustic_model"] = {"type": "zipvoice-distill"}
    recipe["synthesizer"]["guidance"] = {"type": "distilled", "scale": 3.0}
    recipe["teacher"] = str(teacher)
    recipe["freeze"] = ["embed", "text_encoder"]
    return recipe


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    return prepared_cuts(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, cuts):
    """A tiny flow-matching ZipVoice, trained a few steps and exported (stage 1's teacher)."""
    directory = tmp_path_factory.mktemp("teacher")
    with one_torch_thread():
        train(load_recipe(tiny_recipe(directory, cuts, training={"max_steps": 2})))
    return directory / "export"


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, cuts, teacher):
    """Stage 1 run through the command line; its export is stage 2's teacher."""
    directory = tmp_path_factory.mktemp("stage1")
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(distill_recipe(directory / "run", cuts, teacher, 1)))
    with one_torch_thread():
        assert main(["train", str(path)]) == 0
    return directory / "run"


def test_stage1_student_is_the_teacher_plus_a_trained_decoder(stage1, teacher):
    before = load_model(teacher, "zipvoice").model.state_dict()
    student = load_model(stage1 / "export", "zipvoice-distill")  # the official zipvoice_distill layout
    after = student.model.state_dict()
    assert sorted(p.name for p in (stage1 / "export").iterdir()) == ["model.json", "model.pt", "model.safetensors",
                                                                     "tokens.txt"]
    assert set(after) - set(before) and all("guidance_scale_embed" in key for key in set(after) - set(before))
    assert student.config == load_model(teacher, "zipvoice").config and student.vocab == load_model(teacher).vocab
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("fm_decoder."))  # frozen
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("fm_decoder."))
    state = load_checkpoint(stage1 / "checkpoint-3.pt")
    assert state["loss"] == "distill-stage1" and state["teacher"] is None  # the fixed teacher is reloaded


def test_stage2_exports_a_distilled_pipeline_that_synthesizes(tmp_path, cuts, stage1):
    recipe = distill_recipe(tmp_path / "run", cuts, stage1 / "export", 2, training={"max_steps": 2, "ema_decay": 0.5},
                            checkpoint={"export_averaged": False})
    with one_torch_thread():
        result = train(load_recipe(recipe))
    exported = yaml.safe_load(result.pipeline.read_text())
    assert exported["synthesizer"]["acoustic_model"]["type"] == "zipvoice-distill"
    assert exported["synthesizer"]["guidance"] == {"type": "distilled", "scale": 3.0}
    state = load_checkpoint(result.checkpoint)
    # EMA teacher: started as the stage-1 model, then teacher = 0.5 teacher + 0.5 student after each step.
    start = load_model(stage1 / "export", "zipvoice-distill").model.state_dict()
    moved = [k for k in start if not torch.equal(start[k], state["teacher"][k])]
    assert moved and all(k.startswith("fm_decoder.") for k in moved)
    assert not torch.equal(state["teacher"][moved[0]], state["model"][moved[0]])
    pipeline = Pipeline.from_config(result.pipeline)
    weights = pipeline.synthesizer.acoustic_model.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in state["model"].items())  # export_averaged: false
    prompt = write_clips(tmp_path / "prompt", 1)[0]
    with one_torch_thread():
        audio = pipeline.synthesize("hello there", pipeline.encode_prompt(prompt[2], prompt[1]), seed=0)
    assert audio.num_samples > 0 and torch.isfinite(audio.samples).all()


@pytest.mark.parametrize("stage", [1, 2])
def test_the_trainers_loss_is_distillation_loss_on_the_same_draws(tmp_path, cuts, teacher, stage1, stage):
    """Step 1's loss, recomputed outside the trainer from the same initial networks, batch and
    generator seed (the trainer's draws all come from that generator); without the Zipformer's
    training-time regularisers, which draw from it too."""
    from voxpipe.training.data import load_cuts, make_loader
    from voxpipe.training.distill import StudentStep, distillation_loss
    from voxpipe.training.teacher import build_distillation

    recipe = load_recipe(distill_recipe(tmp_path / "run", cuts, teacher if stage == 1 else stage1 / "export", stage,
                                        training={"max_steps": 1, "regularize": False}))  # the exact network
    with one_torch_thread():
        result = train(recipe)
        tokenizer = recipe.pipeline.components["tokenizer"].build("tokenizer")
        features = recipe.pipeline.components["synthesizer"].children["features"].build("synthesizer.features")
        seed = recipe.training.seed
        seed_everything(seed)
        student, distillation, _, _ = build_distillation(recipe, tokenizer, features)
        freeze_modules(recipe, student)
        batch = next(iter(make_loader(load_cuts(recipe.data.train), recipe.data, seed=seed, epoch=0, skip=0)))
        loss = distillation_loss(StudentStep(student), distillation.teacher, batch["tokens"],
                                 batch["features"] * FEATURE_SCALE, batch["features_lens"], stage=stage,
                                 generator=torch.Generator().manual_seed(seed))
    assert result.step == 1 and result.loss == loss.item()


def test_stage2_resume_is_bit_identical_including_the_ema_teacher(tmp_path, cuts, teacher, stage1):
    official = {"optim": {"type": "scaled-adam", "lr": 0.0001, "clip_grad_norm": None},
                "schedule": {"type": "constant", "warmup_batches": 0}}
    with one_torch_thread():
        whole = train(load_recipe(distill_recipe(tmp_path / "whole", cuts, stage1 / "export", 2, **official),
                                  ["training.max_steps=5", "training.ema_decay=0.9"]))
        train(load_recipe(distill_recipe(tmp_path / "parts", cuts, stage1 / "export", 2, **official),
                          ["training.max_steps=2", "training.ema_decay=0.9"]))
        second = train(load_recipe(distill_recipe(tmp_path / "parts", cuts, stage1 / "export", 2, **official),
                                   ["training.max_steps=5", "training.ema_decay=0.9"]))
    assert second.resumed_from == tmp_path / "parts" / "checkpoint-2.pt" and whole.epoch >= 1
    reference, resumed = load_checkpoint(whole.checkpoint), load_checkpoint(second.checkpoint)
    for key in ("model", "teacher", "model_avg", "optimizer", "scheduler", "rng", "step", "epoch", "seconds_seen"):
        assert_same_state(reference[key], resumed[key], key)
    # Resuming a distillation checkpoint with another loss, or other regularisers, is refused.
    with pytest.raises(ConfigError, match="written by a training.loss distill-stage2 run"):
        train(load_recipe(distill_recipe(tmp_path / "parts", cuts, teacher, 1), ["training.max_steps=6"]))
    with pytest.raises(ConfigError, match="written with training.regularize True, this recipe has False"):
        train(load_recipe(distill_recipe(tmp_path / "parts", cuts, stage1 / "export", 2, **official),
                          ["training.max_steps=6", "training.regularize=false"]))


def test_stage1_resume_with_another_teacher_is_refused(tmp_path, cuts, teacher):
    with one_torch_thread():
        train(load_recipe(distill_recipe(tmp_path / "run", cuts, teacher, 1, training={"max_steps": 1})))
        other = tmp_path / "other_teacher"
        shutil.copytree(teacher, other)
        weights = load_model(other, "zipvoice").model.state_dict()
        weights = {key: value + 0.01 if value.is_floating_point() else value for key, value in weights.items()}
        (other / "model.safetensors").unlink()
        torch.save({"model": weights}, other / "model.pt")
        state = load_checkpoint(tmp_path / "run" / "checkpoint-1.pt")
        assert len(state["teacher_digest"]) == 64 and state["teacher"] is None
        with pytest.raises(ConfigError, match="checkpoint-1.pt: written with another stage-1 teacher"):
            train(load_recipe(distill_recipe(tmp_path / "run", cuts, other, 1, training={"max_steps": 2})))
        # the same teacher in another folder resumes
        moved = tmp_path / "moved_teacher"
        shutil.copytree(teacher, moved)
        assert train(load_recipe(distill_recipe(tmp_path / "run", cuts, moved, 1, training={"max_steps": 2}))).step == 2


@pytest.mark.slow
def test_stage1_under_torchrun_with_two_processes(tmp_path, cuts, teacher):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(distill_recipe(tmp_path / "ddp", cuts, teacher, 1, training={"max_steps": 2})))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "voxpipe.cli", "train", str(path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained to step 2") == 1
    state = load_checkpoint(tmp_path / "ddp" / "checkpoint-2.pt")
    assert state["world_size"] == 2 and state["loss"] == "distill-stage1"
    assert load_model(tmp_path / "ddp" / "export", "zipvoice-distill").model is not None


# ---- recipe errors, before any training ----------------------------------------------------------
def recipe_error(recipe: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        train(load_recipe(recipe))
    return str(caught.value)


def test_recipe_errors_name_the_key(tmp_path, cuts, teacher, stage1):
    def case(stage=1, source=teacher, **changes):
        recipe = distill_recipe(tmp_path / "never", cuts, source, stage)
        for key, value in changes.items():
            if value is None:
                recipe.pop(key, None)
            elif isinstance(value, dict) and key in recipe:
                recipe[key] = {**recipe[key], **value}
            else:
                recipe[key] = value
        return recipe_error(recipe)

    assert "teacher: training.loss distill-stage2 needs a 'teacher'" in case(2, teacher=None)
    assert "teacher: 'no/such/dir'" in case(1, source="no/such/dir") and "is not a directory" in case(1, source="x")
    assert "lacks model.json, tokens.txt, model.pt" in case(1, source=str(tmp_path))
    wrong = case(1, source=stage1 / "export")  # a distilled model is no stage-1 teacher
    assert "teacher:" in wrong and "is not a 'zipvoice' model" in wrong and "zipvoice-distill" in wrong
    assert "teacher:" in case(2, source=teacher) and "stage-1 result" in case(2, source=teacher)
    assert "init_from: a distillation student starts from its teacher" in case(1, init_from="pipeline")
    assert "model: the student's architecture is the teacher's" in case(1, model={"feat_dim": 20})
    synthesizer = distill_recipe(tmp_path, cuts, teacher, 1)["synthesizer"]
    assert "synthesizer.acoustic_model.type: training.loss distill-stage1 trains a 'zipvoice-distill' student" in case(
        1, synthesizer={**synthesizer, "acoustic_model": {"type": "zipvoice"}})
    assert "synthesizer.guidance.type" in case(1, synthesizer={**synthesizer, "guidance": {"type": "classifier-free"}})
    flow = tiny_recipe(tmp_path / "never", cuts, teacher=str(teacher))
    assert "teacher: only the distillation losses use a teacher" in recipe_error(flow)
    assert "training.ema_decay: only training.loss distill-stage2 uses it" in case(1, training={"ema_decay": 0.99})
    # Heavier checks when the teacher is loaded, still before the first step.
    assert "teacher: the teacher generates F=20" in case(
        1, synthesizer={**synthesizer, "features": {"type": "vocos-mel", "n_mels": 30}})
    renamed = tmp_path / "renamed"
    shutil.copytree(teacher, renamed)
    tokens = (renamed / "tokens.txt").read_text().splitlines()
    tokens[-1] = "\u00a7\t" + tokens[-1].split("\t")[1]
    (renamed / "tokens.txt").write_text("\n".join(tokens) + "\n")
    assert "teacher: its tokens.txt" in case(1, source=renamed) and "tokenizer's vocabulary" in case(1, source=renamed)
    assert not (tmp_path / "never").exists()


def test_committed_recipes_continue_the_worked_example(teacher):
    """configs/recipes/tiny_zipvoice_distill_stage{1,2}.yaml: stage 1's teacher is the tiny recipe's
    export, stage 2's is stage 1's export (paths relative to the recipe files); they validate."""
    from pathlib import Path

    recipes = Path(__file__).resolve().parents[1] / "configs" / "recipes"
    tiny = load_recipe(recipes / "tiny_zipvoice.yaml")
    expected_teacher = tiny.export_dir
    for stage in (1, 2):
        path = recipes / f"tiny_zipvoice_distill_stage{stage}.yaml"
        written = (path.parent / yaml.safe_load(path.read_text())["teacher"]).resolve()
        assert written == expected_teacher.resolve(), stage
        recipe = load_recipe(path, [f"teacher={teacher}"])  # the worked example's teacher may not exist here
        assert recipe.distill_stage == stage and recipe.data.train == tiny.data.train
        assert recipe.acoustic_model.info.name == "zipvoice-distill"
        assert recipe.pipeline.components["synthesizer"].children["solver"].params.num_steps == 8
        assert set(recipe.freeze) == {"embed", "text_encoder"}
        expected_teacher = recipe.export_dir
