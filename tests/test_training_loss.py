"""Flow-matching and distillation losses: parity with the official ZipVoice training code, and
the behaviour the parity cases cannot show (randomness, masking, errors, DDP objective).

Parity cases: every `*/manifest.json` of kind "flow_matching" / "distillation" under
tests/fixtures/training/ and, when set, $VOXPIPE_FIXTURES/training/ (made by
tests/fixtures/training/generate.py from the official code, with stored noise, times and masks).
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from voxpipe.plugins.zipvoice.loading import load_model
from voxpipe.plugins.zipvoice.scaling import swoosh_l, swoosh_r
from voxpipe.testing.threads import one_torch_thread
from voxpipe.training.distill import (
    StudentStep,
    distillation_loss,
    init_student_from_teacher,
)
from voxpipe.training.loss import (
    FlowMatchingObjective,
    condition_time_mask,
    flow_matching_loss,
)

REPO_CASES = Path(__file__).resolve().parent / "fixtures" / "training"


def training_cases(kinds: tuple[str, ...]) -> list:
    roots = [REPO_CASES]
    if os.environ.get("VOXPIPE_FIXTURES"):
        roots.append(Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "training")
    cases = []
    for root in roots:
        for manifest in sorted(root.glob("*/manifest.json")):
            if json.loads(manifest.read_text())["kind"] in kinds:
                cases.append(pytest.param(manifest.parent, id=f"{root.parent.name}/{manifest.parent.name}"))
    return cases


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@functools.lru_cache(maxsize=8)
def _loaded(folder: Path, variant: str) -> torch.nn.Module:
    return load_model(folder, variant).model


def fresh_model(folder: Path, variant: str) -> torch.nn.Module:
    """A private copy of a fixture network (loaded once per folder: building one costs more
    than a loss evaluation)."""
    return copy.deepcopy(_loaded(folder.resolve(), variant))


def read_case(case: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    manifest = json.loads((case / "manifest.json").read_text())
    return manifest, load_file(str(case / manifest["tensors"]))


def assert_gradients_match(model: torch.nn.Module, tensors: dict[str, torch.Tensor], tolerance: dict) -> None:
    """Every parameter's gradient: max |difference| <= grad_abs + grad_rel * max |reference|."""
    names = {name for name, _ in model.named_parameters()}
    reference = {key[len("grad."):] for key in tensors if key.startswith("grad.")}
    assert names == reference, f"parameter sets differ: {sorted(names ^ reference)[:5]}"
    nonzero = 0
    for name, param in model.named_parameters():
        expected = tensors[f"grad.{name}"]
        got = torch.zeros_like(param) if param.grad is None else param.grad
        # Scale-aware per tensor: rounding differences grow with the tensor's largest entries.
        allowed = tolerance["grad_abs"] + tolerance["grad_rel"] * expected.abs().max().item()
        worst = (got - expected).abs().max().item()
        assert worst <= allowed, f"gradient of {name}: max difference {worst:.3g} > {allowed:.3g}"
        nonzero += bool(expected.abs().sum() > 0)
    assert nonzero > len(names) // 2  # the case exercises most of the network


@pytest.mark.parametrize("case", training_cases(("flow_matching",)))
def test_flow_matching_loss_and_gradients_match_official(case: Path) -> None:
    manifest, tensors = read_case(case)
    network = fresh_model(case / manifest["model"], manifest["variant"])
    loss = flow_matching_loss(
        network, manifest["tokens"], tensors["features"], tensors["features_lens"], noise=tensors["noise"],
        t=tensors["t"], speech_condition_mask=tensors["speech_condition_mask"],
        condition_drop_mask=tensors["condition_drop_mask"], condition_drop_ratio=manifest["condition_drop_ratio"],
    )
    assert loss.item() == pytest.approx(manifest["loss"], abs=manifest["tolerance"]["loss_abs"])
    loss.backward()
    assert_gradients_match(network, tensors, manifest["tolerance"])


@pytest.mark.parametrize("case", training_cases(("distillation",)))
def test_distillation_loss_and_gradients_match_official(case: Path) -> None:
    manifest, tensors = read_case(case)
    student = fresh_model(case / manifest["student"], "zipvoice-distill")
    teacher = fresh_model(case / manifest["teacher"], manifest["teacher_variant"])
    loss = distillation_loss(
        student, teacher, manifest["tokens"], tensors["features"], tensors["features_lens"], stage=manifest["stage"],
        noise=tensors["noise"], guidance_scale=tensors["guidance_scale"], t_value=manifest["t_value"],
        t_delta_fix=manifest["t_delta_fix"], t_delta_ema=manifest["t_delta_ema"],
        speech_condition_mask=tensors["speech_condition_mask"],
    )
    assert loss.item() == pytest.approx(manifest["loss"], abs=manifest["tolerance"]["loss_abs"])
    loss.backward()
    assert_gradients_match(student, tensors, manifest["tolerance"])
    assert all(p.grad is None for p in teacher.parameters())  # the teacher only gives targets


# -- behaviour -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fm_case():
    manifest, tensors = read_case(REPO_CASES / "fm_drop")
    return manifest, tensors, REPO_CASES / "fm_drop" / manifest["model"]


def test_random_draws_come_from_the_generator(fm_case) -> None:
    manifest, tensors, model_dir = fm_case
    network = fresh_model(model_dir, "zipvoice")
    args = (network, manifest["tokens"], tensors["features"], tensors["features_lens"])
    with torch.no_grad():
        first = flow_matching_loss(*args, generator=torch.Generator().manual_seed(3))
        again = flow_matching_loss(*args, generator=torch.Generator().manual_seed(3))
        other = flow_matching_loss(*args, generator=torch.Generator().manual_seed(4))
    assert first.item() == again.item()
    assert first.item() != other.item()


def test_loss_counts_only_masked_real_frames(fm_case) -> None:
    manifest, tensors, model_dir = fm_case
    network = fresh_model(model_dir, "zipvoice")
    tokens, features, lens = manifest["tokens"], tensors["features"], tensors["features_lens"]
    mask, keep_all = tensors["speech_condition_mask"], torch.zeros(len(tokens), dtype=torch.bool)
    common = {"condition_drop_mask": keep_all}
    padding = torch.arange(features.shape[1]).unsqueeze(0) >= lens.unsqueeze(1)
    with torch.no_grad():
        before = flow_matching_loss(network, tokens, features, lens, noise=tensors["noise"], t=tensors["t"],
                                    speech_condition_mask=mask, **common)
        # Marking padding frames as "to predict" changes nothing (features are 0 there).
        padded_too = flow_matching_loss(network, tokens, features, lens, noise=tensors["noise"], t=tensors["t"],
                                        speech_condition_mask=mask | padding, **common)
        # An utterance with no masked frame adds nothing: same as the batch without it.
        shortest = int(lens.argmin())
        rest = [b for b in range(len(tokens)) if b != shortest]
        none = mask.clone()
        none[shortest] = False
        without = flow_matching_loss(network, tokens, features, lens, noise=tensors["noise"], t=tensors["t"],
                                     speech_condition_mask=none, **common)
        subset = flow_matching_loss(network, [tokens[b] for b in rest], features[rest], lens[rest],
                                    noise=tensors["noise"][rest], t=tensors["t"][rest],
                                    speech_condition_mask=mask[rest], condition_drop_mask=keep_all[rest])
    assert padded_too.item() == before.item()
    assert without.item() == pytest.approx(subset.item(), abs=1e-6)
    assert without.item() != pytest.approx(before.item(), abs=1e-4)


def test_drop_ratio_one_drops_every_text_condition(fm_case) -> None:
    manifest, tensors, model_dir = fm_case
    network = fresh_model(model_dir, "zipvoice")
    batch = len(manifest["tokens"])
    draws = {"noise": tensors["noise"], "t": tensors["t"], "speech_condition_mask": tensors["speech_condition_mask"]}
    args = (network, manifest["tokens"], tensors["features"], tensors["features_lens"])
    with torch.no_grad():
        all_dropped = flow_matching_loss(*args, condition_drop_mask=torch.ones(batch, dtype=torch.bool), **draws)
        ratio_one = flow_matching_loss(*args, condition_drop_ratio=1.0, **draws)
        kept = flow_matching_loss(*args, condition_drop_ratio=0.0, **draws)
    assert ratio_one.item() == all_dropped.item()
    assert kept.item() != all_dropped.item()


def test_objective_module_gives_the_same_loss(fm_case) -> None:
    manifest, tensors, model_dir = fm_case
    network = fresh_model(model_dir, "zipvoice")
    kwargs = {"noise": tensors["noise"], "t": tensors["t"], "speech_condition_mask": tensors["speech_condition_mask"],
              "condition_drop_mask": tensors["condition_drop_mask"]}
    args = (manifest["tokens"], tensors["features"], tensors["features_lens"])
    objective = FlowMatchingObjective(network)
    assert objective.model is network
    assert flow_matching_loss(objective, *args, **kwargs).item() == flow_matching_loss(network, *args, **kwargs).item()


def test_span_mask_covers_70_to_100_percent_in_one_run() -> None:
    lens = torch.tensor([10, 57, 200, 1])
    for seed in range(20):
        mask = condition_time_mask(lens, 210, generator=torch.Generator().manual_seed(seed))
        assert mask.shape == (4, 210)
        for row, length in zip(mask, lens.tolist()):
            on = row.nonzero().flatten()
            assert int(row[length:].sum()) == 0
            assert int(0.7 * length) <= len(on) <= length
            if len(on):
                assert on[-1] - on[0] + 1 == len(on)  # contiguous


def test_bad_inputs_are_named(fm_case) -> None:
    manifest, tensors, model_dir = fm_case
    network = fresh_model(model_dir, "zipvoice")
    features, lens = tensors["features"], tensors["features_lens"]
    with pytest.raises(ValueError, match="channels"):
        flow_matching_loss(network, manifest["tokens"], features[..., :5], lens)
    with pytest.raises(ValueError, match="features_lens"):
        flow_matching_loss(network, manifest["tokens"], features, lens[:2])
    with pytest.raises(ValueError, match="tokens"):
        flow_matching_loss(network, manifest["tokens"][:2], features, lens)
    with pytest.raises(ValueError, match="speech_condition_mask"):
        flow_matching_loss(network, manifest["tokens"], features, lens, speech_condition_mask=torch.ones(3, 4, dtype=torch.bool))


def test_distillation_checks_models_and_stage() -> None:
    manifest, tensors = read_case(REPO_CASES / "distill_stage1")
    case = REPO_CASES / "distill_stage1"
    student = fresh_model(case / manifest["student"], "zipvoice-distill")
    teacher = fresh_model(case / manifest["teacher"], "zipvoice")
    args = (manifest["tokens"], tensors["features"], tensors["features_lens"])
    with pytest.raises(ValueError, match="stage"):
        distillation_loss(student, teacher, *args, stage=3)
    with pytest.raises(TypeError, match="ZipVoiceDistill"):
        distillation_loss(teacher, teacher, *args, stage=1)
    with pytest.raises(TypeError, match="EMA"):
        distillation_loss(student, teacher, *args, stage=2)
    # Stage 1 starts from the teacher: all shared weights copied, the guidance embedding kept.
    embed_before = {k: v.clone() for k, v in student.state_dict().items() if "guidance_scale_embed" in k}
    init_student_from_teacher(student, teacher)
    for name, value in teacher.state_dict().items():
        assert torch.equal(student.state_dict()[name], value)
    assert all(torch.equal(student.state_dict()[k], v) for k, v in embed_before.items())
    with torch.no_grad():
        loss = distillation_loss(student, teacher, *args, stage=1, generator=torch.Generator().manual_seed(0))
        wrapped = distillation_loss(StudentStep(student), teacher, *args, stage=1,
                                    generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    assert wrapped.item() == loss.item()  # the module DDP wraps computes the same loss


def test_swoosh_training_path_has_the_inference_values_and_finite_gradients() -> None:
    x = torch.cat([torch.linspace(-60, 60, 241), torch.tensor([88.5, 89.0, 95.0, 300.0])])
    for swoosh in (swoosh_l, swoosh_r):
        with torch.no_grad():
            inference = swoosh(x)
        leaf = x.clone().requires_grad_(True)
        training = swoosh(leaf)
        assert torch.equal(training.detach(), inference)
        training.sum().backward()
        assert torch.isfinite(leaf.grad).all()
