"""Flow-matching solvers and guidance rules (voxpipe.plugins.flow), on analytic fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxpipe.core.conditions import Conditions
from voxpipe.core.errors import CompatibilityError
from voxpipe.plugins.flow import register_components
from voxpipe.plugins.flow.euler import (
    EulerSolver,
    LuxTTSEulerSolver,
    draw_noise,
    shifted_timesteps,
)
from voxpipe.plugins.flow.guidance import (
    ClassifierFreeGuidance,
    DistilledGuidance,
    NoGuidance,
)


def shift_formula(u: np.ndarray, s: float) -> np.ndarray:
    return s * u / (1 + (s - 1) * u)


# -- time grid -----------------------------------------------------------------------------------
@pytest.mark.parametrize("t_shift", [0.5, 0.7, 1.0, 2.0])
@pytest.mark.parametrize("num_steps", [1, 4, 16])
def test_timesteps_formula(num_steps: int, t_shift: float) -> None:
    times = EulerSolver().timesteps(num_steps, t_shift)
    assert times.dtype == torch.float32 and times.shape == (num_steps + 1,)
    expected = shift_formula(np.linspace(0.0, 1.0, num_steps + 1), t_shift)
    np.testing.assert_allclose(times.numpy(), expected, atol=1e-7)
    assert times[0] == 0.0 and times[-1] == 1.0
    assert (times[1:] > times[:-1]).all()


def test_timesteps_shift_packs_steps_near_noise() -> None:
    shifted = shifted_timesteps(8, 0.5)
    plain = shifted_timesteps(8, 1.0)
    assert (shifted[1:-1] < plain[1:-1]).all()  # t_shift < 1 spends more steps at small t


def test_timesteps_restricted_interval_shifts_the_restricted_grid() -> None:
    # As in ZipVoice: u = linspace(t_start, t_end) first, then the shift.
    times = shifted_timesteps(4, 0.5, t_start=0.2, t_end=0.6)
    expected = shift_formula(np.linspace(0.2, 0.6, 5), 0.5)
    np.testing.assert_allclose(times.numpy(), expected, atol=1e-7)


def test_timesteps_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_steps"):
        shifted_timesteps(0, 0.5)
    with pytest.raises(ValueError, match="t_shift"):
        shifted_timesteps(4, 0.0)


# -- integration ---------------------------------------------------------------------------------
def straight_path_field(target: torch.Tensor):
    """The flow-matching field of the straight path x_t = (1 - t) x0 + t * target."""
    return lambda x, t: (target - x) / (1 - t)


@pytest.mark.parametrize("solver_cls", [EulerSolver, LuxTTSEulerSolver])
def test_constant_field_is_integrated_exactly(solver_cls) -> None:
    x0 = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    velocity = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(1))
    x1 = solver_cls(num_steps=5, t_shift=0.6).sample(lambda x, t: velocity, x0)
    torch.testing.assert_close(x1, x0 + velocity, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("solver_cls", [EulerSolver, LuxTTSEulerSolver])
@pytest.mark.parametrize("num_steps", [1, 3, 10])
def test_straight_path_reaches_target_in_any_number_of_steps(solver_cls, num_steps: int) -> None:
    x0 = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(2))
    target = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(3))
    states = []
    solver = solver_cls(num_steps=num_steps, t_shift=0.5)
    x1 = solver.sample(straight_path_field(target), x0, callback=lambda k, t, x: states.append((k, float(t), x)))
    torch.testing.assert_close(x1, target, atol=1e-5, rtol=1e-5)
    assert [k for k, _, _ in states] == list(range(num_steps))
    times = solver.timesteps(num_steps, 0.5)
    assert [t for _, t, _ in states] == times[1:].tolist()
    # Every intermediate state lies on the path.
    for _, t, x in states[:-1]:
        torch.testing.assert_close(x, (1 - t) * x0 + t * target, atol=1e-5, rtol=1e-5)


def test_euler_step_uses_velocity_at_the_start_of_each_step() -> None:
    # dx/dt = t: Euler on grid t_k gives sum v(t_k) dt, the left Riemann sum.
    x0 = torch.zeros(1, 1, 1)
    solver = EulerSolver(num_steps=4, t_shift=1.0)
    x1 = solver.sample(lambda x, t: torch.ones_like(x) * t, x0)
    assert float(x1) == pytest.approx(sum(k / 4 * 0.25 for k in range(4)), abs=1e-7)


def test_intermediate_interval() -> None:
    x0 = torch.randn(1, 3, 2, generator=torch.Generator().manual_seed(4))
    velocity = torch.full_like(x0, 2.0)
    solver = EulerSolver(num_steps=3, t_shift=0.5)
    x = solver.sample(lambda x, t: velocity, x0, t_start=0.2, t_end=0.6)
    span = float(shifted_timesteps(1, 0.5, 0.2, 0.6)[1] - shifted_timesteps(1, 0.5, 0.2, 0.6)[0])
    torch.testing.assert_close(x, x0 + 2.0 * span, atol=1e-6, rtol=1e-6)


def test_two_half_runs_equal_one_full_run() -> None:
    x0 = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(5))
    field = lambda x, t: torch.sin(3 * x) * (1 + t)
    solver = EulerSolver(t_shift=1.0)
    full = solver.sample(field, x0, num_steps=8)
    half = solver.sample(field, x0, num_steps=4, t_end=0.5)
    rest = solver.sample(field, half, num_steps=4, t_start=0.5)
    torch.testing.assert_close(rest, full, atol=1e-6, rtol=1e-6)


def test_luxtts_form_equals_euler_up_to_rounding() -> None:
    x0 = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(6))
    field = lambda x, t: torch.tanh(x) - t
    a = EulerSolver(num_steps=6, t_shift=0.5).sample(field, x0)
    b = LuxTTSEulerSolver(num_steps=6, t_shift=0.5).sample(field, x0)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_call_overrides_defaults() -> None:
    calls = []
    solver = EulerSolver(num_steps=16, t_shift=0.5)
    solver.sample(lambda x, t: calls.append(float(t)) or torch.zeros_like(x), torch.zeros(1, 1, 1), num_steps=3, t_shift=1.0)
    assert calls == pytest.approx([0.0, 1 / 3, 2 / 3])


# -- noise ---------------------------------------------------------------------------------------
def test_seeded_noise_is_deterministic_and_private() -> None:
    state = torch.get_rng_state()
    a = draw_noise((2, 5, 3), seed=123)
    b = draw_noise((2, 5, 3), seed=123)
    c = draw_noise((2, 5, 3), seed=124)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must not be touched"
    generator = torch.Generator().manual_seed(123)
    assert torch.equal(draw_noise((2, 5, 3), generator=generator), a)


def test_seeded_sampling_is_reproducible() -> None:
    field = lambda x, t: -x * (1 + t)
    runs = [EulerSolver(num_steps=5).sample(field, draw_noise((1, 8, 4), seed=7)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


# -- guidance ------------------------------------------------------------------------------------
class FakeModel:
    """velocity = x + 10 * mean(text) + 100 * mean(speech) per item; records every call."""

    def __init__(self, distilled: bool = False) -> None:
        self.uses_guidance_scale_input = distilled
        self.calls: list[dict] = []

    def velocity(self, x, t, cond, guidance_scale=None):
        self.calls.append({"batch": x.shape[0], "t": t, "guidance_scale": guidance_scale, "cond": cond})
        text = cond.text_condition.mean(dim=(1, 2), keepdim=True)
        speech = cond.speech_condition.mean(dim=(1, 2), keepdim=True)
        out = x + 10 * text + 100 * speech
        return out if guidance_scale is None else out + guidance_scale


def make_conditions(batch: int = 2, frames: int = 6, dim: int = 3) -> Conditions:
    return Conditions(
        text_condition=torch.full((batch, frames, dim), 1.0),
        speech_condition=torch.full((batch, frames, dim), 2.0),
        padding_mask=torch.zeros(batch, frames, dtype=torch.bool),
        features_lens=torch.full((batch,), frames),
        prompt_features_lens=torch.full((batch,), 2),
    )


@pytest.mark.parametrize("t, uncond_speech, g", [(0.3, 2.0, 3.0), (0.5, 2.0, 3.0), (0.8, 0.0, 1.5)])
def test_classifier_free_rule(t: float, uncond_speech: float, g: float) -> None:
    model, cond = FakeModel(), make_conditions()
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(8))
    v = ClassifierFreeGuidance().field(model, cond, 1.5)(x, torch.tensor(t))
    assert len(model.calls) == 1 and model.calls[0]["batch"] == 4  # one doubled call
    v_cond = x + 10 * 1.0 + 100 * 2.0
    v_uncond = x + 10 * 0.0 + 100 * uncond_speech
    torch.testing.assert_close(v, (1 + g) * v_cond - g * v_uncond)


def test_classifier_free_zero_scale_is_a_plain_call() -> None:
    model, cond = FakeModel(), make_conditions()
    x = torch.zeros(2, 6, 3)
    v = ClassifierFreeGuidance().field(model, cond, 0.0)(x, torch.tensor(0.3))
    assert len(model.calls) == 1 and model.calls[0]["batch"] == 2
    torch.testing.assert_close(v, x + 210.0)


def test_distilled_guidance_feeds_the_scale() -> None:
    model, cond = FakeModel(distilled=True), make_conditions()
    v = DistilledGuidance().field(model, cond, 2.5)(torch.zeros(2, 6, 3), torch.tensor(0.4))
    assert len(model.calls) == 1 and float(model.calls[0]["guidance_scale"]) == 2.5
    torch.testing.assert_close(v, torch.full((2, 6, 3), 212.5))


def test_distilled_guidance_needs_a_distilled_model() -> None:
    with pytest.raises(CompatibilityError, match="guidance scale as input"):
        DistilledGuidance().field(FakeModel(distilled=False), make_conditions(), 2.0)


def test_no_guidance() -> None:
    model, cond = FakeModel(), make_conditions()
    v = NoGuidance().field(model, cond, 5.0)(torch.zeros(2, 6, 3), torch.tensor(0.9))
    torch.testing.assert_close(v, torch.full((2, 6, 3), 210.0))
    assert model.calls[0]["guidance_scale"] is None


def test_flow_plugin_registers_its_components() -> None:
    registered = []
    register_components(register=registered.append)
    assert {(c.kind, c.name) for c in registered} == {
        ("synthesizer", "flow-matching"), ("solver", "euler"), ("solver", "luxtts-euler"),
        ("guidance", "classifier-free"), ("guidance", "distilled"), ("guidance", "none"),
    }
    solver = EulerSolver.from_params(EulerSolver.Params(num_steps=4, t_shift=0.7))
    assert (solver.num_steps, solver.t_shift) == (4, 0.7)
