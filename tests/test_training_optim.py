"""ScaledAdam + Eden: parity with the official optimizer and scheduler on stored gradients, exact
resume through state dicts, and model averaging / EMA.

Parity cases: every `*/manifest.json` of kind "optimizer" under tests/fixtures/training/ and,
when set, $VOXPIPE_FIXTURES/training/ (tests/fixtures/training/generate.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from voxpipe.training.average import (
    average_between,
    ema_update,
    new_averaged_model,
    update_averaged_model,
)
from voxpipe.training.optim import Eden, ScaledAdam

REPO_CASES = Path(__file__).resolve().parent / "fixtures" / "training"


def optimizer_cases() -> list:
    roots = [REPO_CASES]
    if os.environ.get("VOXPIPE_FIXTURES"):
        roots.append(Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "training")
    return [
        pytest.param(manifest.parent, id=f"{root.parent.name}/{manifest.parent.name}")
        for root in roots
        for manifest in sorted(root.glob("*/manifest.json"))
        if json.loads(manifest.read_text())["kind"] == "optimizer"
    ]


def build(manifest: dict, tensors: dict[str, torch.Tensor]):
    params = {name: torch.nn.Parameter(tensors[f"init.{name}"].clone()) for name in manifest["names"]}
    groups, start = [], 0
    for size, factor in zip(manifest["group_sizes"], manifest["group_lr_factors"]):
        names = manifest["names"][start:start + size]
        groups.append({"named_params": [(n, params[n]) for n in names], "lr": manifest["settings"]["lr"] * factor})
        start += size
    optimizer = ScaledAdam(groups, **manifest["settings"])
    return params, optimizer, Eden(optimizer, **manifest["eden"])


def run_step(manifest, tensors, params, optimizer, scheduler, step: int) -> None:
    for name, param in params.items():
        param.grad = tensors[f"grad.{step}.{name}"].clone()
    scheduler.step_batch(step)
    if manifest["hours_per_batch"] > 0:
        scheduler.step_epoch(step * manifest["hours_per_batch"])
    optimizer.step()


@pytest.mark.parametrize("case", optimizer_cases())
def test_scaled_adam_and_eden_match_official(case: Path) -> None:
    manifest = json.loads((case / "manifest.json").read_text())
    tensors = load_file(str(case / manifest["tensors"]))
    params, optimizer, scheduler = build(manifest, tensors)
    tolerance = manifest["tolerance"]
    for step in range(manifest["steps"]):
        run_step(manifest, tensors, params, optimizer, scheduler, step)
        assert scheduler.get_last_lr() == pytest.approx(manifest["lrs"][step], rel=1e-12)
        for name, param in params.items():
            torch.testing.assert_close(param.detach(), tensors[f"after.{step}.{name}"], atol=tolerance["param_abs"],
                                       rtol=tolerance["param_rel"], msg=lambda m, n=name, s=step: f"{n} after step {s}: {m}")


def test_resume_from_state_dicts_is_exact() -> None:
    case = REPO_CASES / "optim_eden_batches"
    manifest = json.loads((case / "manifest.json").read_text())
    tensors = load_file(str(case / manifest["tensors"]))
    steps, cut = manifest["steps"], manifest["steps"] // 2 + 1  # cut past clipping/size updates
    straight = build(manifest, tensors)
    for step in range(steps):
        run_step(manifest, tensors, *straight, step)

    first = build(manifest, tensors)
    for step in range(cut):
        run_step(manifest, tensors, *first, step)
    saved = {"params": {n: p.detach().clone() for n, p in first[0].items()},
             "optimizer": first[1].state_dict(), "scheduler": first[2].state_dict()}
    resumed = build(manifest, tensors)
    with torch.no_grad():
        for name, param in resumed[0].items():
            param.copy_(saved["params"][name])
    resumed[1].load_state_dict(saved["optimizer"])
    resumed[2].load_state_dict(saved["scheduler"])
    for step in range(cut, steps):
        run_step(manifest, tensors, *resumed, step)
    for name in manifest["names"]:
        assert torch.equal(resumed[0][name], straight[0][name]), name


def test_eden_warms_up_then_decays() -> None:
    param = torch.nn.Parameter(torch.ones(3, 3))
    optimizer = ScaledAdam([param], lr=0.04)
    scheduler = Eden(optimizer, lr_batches=100, lr_epochs=2, warmup_batches=10, warmup_start=0.5)
    assert optimizer.param_groups[0]["lr"] == 0.04  # untouched until the first step_batch
    rates = []
    for batch in range(0, 400, 5):
        scheduler.step_batch(batch)
        rates.append(scheduler.get_last_lr()[0])
    assert rates[0] == pytest.approx(0.02)  # warmup_start x base lr
    peak = rates.index(max(rates))
    assert 0 < peak <= 2 and all(a > b for a, b in zip(rates[peak:], rates[peak + 1:]))
    before = scheduler.get_last_lr()[0]
    scheduler.step_epoch(4)
    assert scheduler.get_last_lr()[0] < before  # epochs (or hours) decay it further


def test_bad_settings_are_refused() -> None:
    param = torch.nn.Parameter(torch.ones(2, 2))
    with pytest.raises(ValueError, match="betas"):
        ScaledAdam([param], betas=(0.99, 0.9))
    with pytest.raises(ValueError, match="clipping_scale"):
        ScaledAdam([param], clipping_scale=0.0)
    with pytest.raises(ValueError, match="empty"):
        ScaledAdam([])
    with pytest.raises(ValueError, match="lr_batches"):
        Eden(ScaledAdam([param]), lr_batches=0, lr_epochs=1)


def test_clipping_limits_a_gradient_spike_and_leaves_grad_untouched() -> None:
    torch.manual_seed(0)
    param = torch.nn.Parameter(torch.randn(8, 8))
    optimizer = ScaledAdam([param], lr=0.01, clipping_scale=2.0, clipping_update_period=4)
    for step in range(12):
        param.grad = torch.randn(8, 8) * (1000.0 if step == 11 else 1.0)
        spike = param.grad.clone()
        optimizer.step()
    assert torch.equal(param.grad, spike)
    assert optimizer.state[param]["num_clipped"] >= 1


# -- averaging -----------------------------------------------------------------------------------
def test_running_average_is_the_mean_of_every_period_th_model() -> None:
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    averaged = new_averaged_model(model)
    assert averaged.weight.dtype == torch.float64 and not averaged.weight.requires_grad
    snapshots = []
    for step in range(1, 13):
        with torch.no_grad():
            model.weight.add_(torch.randn(2, 3))
        if update_averaged_model(model, averaged, step, average_period=3):
            snapshots.append(model.weight.detach().double().clone())
        if step == 6:
            at_six = {k: v.clone() for k, v in averaged.state_dict().items()}
    assert len(snapshots) == 4
    torch.testing.assert_close(averaged.weight, torch.stack(snapshots).mean(0))
    # The mean over steps (6, 12] from the averages saved at 6 and 12.
    between = average_between(at_six, 6, averaged.state_dict(), 12, average_period=3)
    torch.testing.assert_close(between["weight"], torch.stack(snapshots[2:]).mean(0))
    with pytest.raises(ValueError, match="later end"):
        average_between(at_six, 6, at_six, 7, average_period=3)


def test_ema_update() -> None:
    model, ema = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = {k: v * 0.9 + model.state_dict()[k] * 0.1 for k, v in ema.state_dict().items()}
    ema_update(model, ema, decay=0.9)
    for name, value in ema.state_dict().items():
        torch.testing.assert_close(value, expected[name])
    with pytest.raises(ValueError, match="decay"):
        ema_update(model, ema, decay=1.5)
