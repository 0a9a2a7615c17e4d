"""Parity of the ZipVoice re-implementation with the official code (k2-fsa/ZipVoice 2f7326f).

Data-driven: every <fixtures>/zipvoice/<variant>/<case>.npz is a case (see the README next to
the fixtures for what each array is). All sizes come from the files, so the same tests run on
full-size official-config fixtures via VOXPIPE_FIXTURES.

Tolerances (|actual - ref| <= atol + rtol * |ref|):
  single calls (text side, one decoder call, one guided call, one Euler step): 1e-5 + 1e-5 rel
  sampler outputs after all steps (trajectory, x1 and its splits, luxtts_x1):  1e-4 + 1e-5 rel
  integers, masks: exact; time grid: 1e-7.
Only valid positions are compared (tokens <= each sequence length incl. the appended pad,
frames < features_lens, and the valid part of the split outputs).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.plugins.flow.euler import EulerSolver, LuxTTSEulerSolver
from voxpipe.plugins.flow.guidance import ClassifierFreeGuidance, DistilledGuidance
from voxpipe.plugins.zipvoice.acoustic import COMPONENTS, ZipVoiceAcousticModel
from voxpipe.plugins.zipvoice.loading import read_state_dict
from voxpipe.testing.fixtures import fixtures_root

FIXTURE_GLOBS = {
    "case_file": "zipvoice/*/*.npz",
    "variant_dir": "zipvoice/*/model.json",
    "checkpoint_file": "zipvoice/*/model.[ps]*",  # model.pt and model.safetensors
}
SINGLE = {"atol": 1e-5, "rtol": 1e-5}
FINAL = {"atol": 1e-4, "rtol": 1e-5}
COMPONENT_BY_NAME = {component.name: component for component in COMPONENTS}


@pytest.fixture(scope="module", autouse=True)
def single_thread_for_tiny_models():
    """The bundled models are tiny: per-op thread hand-off costs more than it saves (and is
    very slow on a loaded machine), so run them on one thread; full-size models keep torch's
    default. Restored after this module."""
    checkpoints = list(fixtures_root().glob("zipvoice/*/model.pt"))
    tiny = sum(path.stat().st_size for path in checkpoints) < 50_000_000
    threads = torch.get_num_threads()
    if tiny:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- helpers -------------------------------------------------------------------------------------
def component_for(directory: Path) -> type[ZipVoiceAcousticModel]:
    """Fixture directory name (zipvoice_dialog_stereo) -> component (zipvoice-dialog-stereo)."""
    name = directory.name.replace("_", "-")
    assert name in COMPONENT_BY_NAME, f"{directory}: no component named {name!r}"
    return COMPONENT_BY_NAME[name]


# Small caches: full-size models are ~0.5 GB each; cases of one variant are collected together.
@lru_cache(maxsize=2)
def load(directory: Path, checkpoint: str | None = None) -> ZipVoiceAcousticModel:
    return component_for(directory)(weights=str(directory), checkpoint=checkpoint)


def as_float(value: np.ndarray) -> float:
    """float32 scalar from the npz -> the Python float the reference was called with (0.7, not
    0.69999999), so float32 arithmetic on it rounds the same way."""
    return float(str(np.float32(value)))


def token_lists(ids: np.ndarray, lens: np.ndarray) -> list[list[int]]:
    return [row[:n].tolist() for row, n in zip(ids, lens)]


def assert_close(name: str, actual: torch.Tensor | np.ndarray, expected: np.ndarray, valid=None, *, atol, rtol) -> None:
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != reference {expected.shape}"
    if valid is not None:
        actual, expected = actual[valid], expected[valid]
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert np.isfinite(actual).all(), f"{name}: non-finite values"
    bound = atol + rtol * np.abs(expected)
    assert (diff <= bound).all(), (
        f"{name}: max abs diff {diff.max():.3e} exceeds {atol:g} + {rtol:g}*|ref| "
        f"({int((diff > bound).sum())} of {diff.size} values)"
    )


def lengths_mask(lens: np.ndarray, size: int) -> np.ndarray:
    """(B,) lengths -> (B, size) bool, True below each length."""
    return np.arange(size)[None, :] < np.asarray(lens)[:, None]


class Case:
    """One fixture case with the model's conditions and sampler run computed once."""

    def __init__(self, path: Path) -> None:
        assert path.is_file(), f"fixture case not found: {path}"
        self.path = path
        self.ref = dict(np.load(path))
        self.acoustic = load(path.parent)
        ref = self.ref
        self.prompt_tokens = token_lists(ref["prompt_tokens"], ref["prompt_tokens_lens"])
        self.tokens = token_lists(ref["tokens"], ref["tokens_lens"])
        self.cond = self.acoustic.condition(
            self.prompt_tokens,
            self.tokens,
            torch.from_numpy(ref["prompt_features"]),
            torch.from_numpy(ref["prompt_features_lens"]),
            speed=as_float(ref["speed"]),
        )
        self.valid_frames = ~ref["padding_mask"]  # (B, T)
        self.x0 = torch.from_numpy(ref["x0"])
        self.num_steps = int(ref["num_step"])
        self.t_shift = as_float(ref["t_shift"])
        self.guidance_scale = as_float(ref["guidance_scale"])

    @property
    def guidance(self):
        distilled = self.acoustic.uses_guidance_scale_input
        return DistilledGuidance() if distilled else ClassifierFreeGuidance()

    def field(self):
        return self.guidance.field(self.acoustic, self.cond, self.guidance_scale)

    def sample(self, solver: EulerSolver) -> torch.Tensor:
        """(N+1, B, T, F): x0 then the state after every step."""
        states = [self.x0]
        solver.sample(
            self.field(), self.x0, num_steps=self.num_steps, t_shift=self.t_shift,
            callback=lambda k, t, x: states.append(x),
        )
        return torch.stack(states)

    @property
    def trajectory(self) -> torch.Tensor:
        return euler_trajectory(self.path)


@lru_cache(maxsize=2)
def case(path: Path) -> Case:
    return Case(path)


@cache  # tensors only (no model): each case is sampled once per session
def euler_trajectory(path: Path) -> torch.Tensor:
    return case(path).sample(EulerSolver())


# -- loading -------------------------------------------------------------------------------------
def test_variant_has_checkpoint(variant_dir: Path) -> None:
    assert variant_dir.is_file(), f"no model.json: {variant_dir}"
    assert (variant_dir.parent / "model.pt").is_file(), f"{variant_dir.parent} has no model.pt"


def test_strict_load(checkpoint_file: Path) -> None:
    """Both weight formats load strictly and every parameter equals the file's tensor."""
    assert checkpoint_file.is_file(), f"checkpoint not found: {checkpoint_file}"
    model = load(checkpoint_file.parent, checkpoint_file.name).model
    reference = read_state_dict(checkpoint_file)
    result = model.load_state_dict(reference, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key


# -- text side -----------------------------------------------------------------------------------
def test_text_side(case_file: Path) -> None:
    c = case(case_file)
    ref = c.ref
    cat_tokens = [p + t for p, t in zip(c.prompt_tokens, c.tokens)]
    with torch.no_grad():
        text_embed, cat_lens = c.acoustic.model.encode_text(cat_tokens)
    # Rows up to and including the appended pad (the row padding frames read).
    used_rows = lengths_mask(cat_lens.numpy() + 1, ref["text_embed"].shape[1])
    assert_close("text_embed", text_embed, ref["text_embed"], used_rows, **SINGLE)
    np.testing.assert_array_equal(c.cond.features_lens.numpy(), ref["features_lens"], "features_lens")
    np.testing.assert_array_equal(c.cond.padding_mask.numpy(), ref["padding_mask"], "padding_mask")
    assert_close("text_condition", c.cond.text_condition, ref["text_condition"], c.valid_frames, **SINGLE)
    np.testing.assert_array_equal(c.cond.prompt_features_lens.numpy(), ref["prompt_features_lens"])


# -- one decoder call / one guided call ----------------------------------------------------------
def test_fm_velocity(case_file: Path) -> None:
    c = case(case_file)
    ref = c.ref
    scale = None if np.isnan(ref["fm_guidance_scale"]) else as_float(ref["fm_guidance_scale"])
    assert (scale is not None) == c.acoustic.uses_guidance_scale_input
    v = c.acoustic.velocity(c.x0, torch.tensor(as_float(ref["fm_t"])), c.cond, guidance_scale=scale)
    assert_close("fm_velocity", v, ref["fm_velocity"], c.valid_frames, **SINGLE)


@pytest.mark.parametrize("which", ["low", "high"])
def test_guided_velocity(case_file: Path, which: str) -> None:
    c = case(case_file)
    t = torch.tensor(as_float(c.ref[f"cfg_t_{which}"]))
    v = c.field()(c.x0, t)
    assert_close(f"cfg_velocity_t_{which}", v, c.ref[f"cfg_velocity_t_{which}"], c.valid_frames, **SINGLE)


# -- sampler -------------------------------------------------------------------------------------
def test_timesteps(case_file: Path) -> None:
    c = case(case_file)
    times = EulerSolver().timesteps(c.num_steps, c.t_shift)
    assert_close("timesteps", times, c.ref["timesteps"], atol=1e-7, rtol=0)
    assert_close("step_t", times[:-1], c.ref["step_t"], atol=1e-7, rtol=0)


def test_first_step(case_file: Path) -> None:
    c = case(case_file)
    assert_close("x_step1", c.trajectory[1], c.ref["x_step1"], c.valid_frames, **SINGLE)


def test_trajectory_and_outputs(case_file: Path) -> None:
    c = case(case_file)
    ref = c.ref
    x1 = c.trajectory[-1]
    if "trajectory" in ref:
        frames = np.broadcast_to(c.valid_frames, ref["trajectory"].shape[:3])
        assert_close("trajectory", c.trajectory, ref["trajectory"], frames, **FINAL)
    assert_close("x1", x1, ref["x1"], c.valid_frames, **FINAL)

    generated, generated_lens, prompt_part = c.acoustic.split_output(x1, c.cond)
    np.testing.assert_array_equal(generated_lens.numpy(), ref["x1_wo_prompt_lens"], "x1_wo_prompt_lens")
    gen_valid = lengths_mask(ref["x1_wo_prompt_lens"], ref["x1_wo_prompt"].shape[1])
    assert_close("x1_wo_prompt", generated, ref["x1_wo_prompt"], gen_valid, **FINAL)
    prompt_valid = lengths_mask(ref["prompt_features_lens"], ref["x1_prompt"].shape[1])
    assert_close("x1_prompt", prompt_part, ref["x1_prompt"], prompt_valid, **FINAL)


def test_luxtts_sampler(case_file: Path) -> None:
    c = case(case_file)
    if "luxtts_x1" not in c.ref:
        assert not c.acoustic.uses_guidance_scale_input, "distilled case without luxtts_x1"
        return
    x1 = c.sample(LuxTTSEulerSolver())[-1]
    assert_close("luxtts_x1", x1, c.ref["luxtts_x1"], c.valid_frames, **FINAL)
