"""Parity of the ZipVoice re-implementation with the official code (k2-fsa/ZipVoice 2f7326f).

Data-driven: every <fixtures>/zipvoice/<variant>/<case>.npz is a case (see the README next to
the fixtures for what each array is). All sizes come from the files, so the same tests run on
full-size official-config fixtures via VOXPIPE_FIXTURES.

Tolerances (|actual - ref| <= atol + rtol * |ref|):
  single calls (text side, one decoder call, one distilled guided call, one Euler step):
                                                                              1e-5 + 1e-5 rel
  one classifier-free guided call: that single-call bound carried through the guidance
    combination (see `guided_bound`): (1+g)(1e-5 + 1e-5|v_cond|) + g(1e-5 + 1e-5|v_uncond|)
  sampler outputs after all steps (trajectory, x1 and its splits, luxtts_x1):  1e-4 + 1e-5 rel
  integers, masks: exact; time grid: 1e-7.
The arithmetic itself follows the official operation order (same bits as the official code on
the same machine, Swoosh activations included: test_swoosh_order.py); what remains against
fixtures made elsewhere is the float32 rounding of that machine's kernels.
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


def assert_close(name: str, actual: torch.Tensor | np.ndarray, expected: np.ndarray, valid=None, *,
                 atol=None, rtol=None, bound: np.ndarray | None = None) -> None:
    """|actual - expected| <= atol + rtol |expected|, or <= `bound` (same shape as expected)."""
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != reference {expected.shape}"
    rule = "the derived bound" if bound is not None else f"{atol:g} + {rtol:g}*|ref|"
    if bound is None:
        bound = atol + rtol * np.abs(expected.astype(np.float64))
    if valid is not None:
        actual, expected, bound = actual[valid], expected[valid], bound[valid]
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert np.isfinite(actual).all(), f"{name}: non-finite values"
    assert (diff <= bound).all(), (
        f"{name}: max abs diff {diff.max():.3e} exceeds {rule} "
        f"({int((diff > bound).sum())} of {diff.size} values; worst excess {(diff - bound).max():.3e})"
    )


def guided_bound(v_uncond: torch.Tensor, v_cond: torch.Tensor, g: float, *, atol: float, rtol: float) -> np.ndarray:
    """Per-value tolerance of v = (1 + g) v_cond - g v_uncond, g the effective guidance scale.

    Each half is one decoder call, held to the single-call bound e = atol + rtol |v_half|
    against the official half (that is what float32 on another machine's kernels leaves: the
    official code itself, re-run here, differs from the small fixtures by up to 1.4e-6 on a
    single call and 5.7e-6 on a guided one). The combination multiplies those errors by
    1 + g and g and adds them, so the guided value can be off by up to
        (1 + g) (atol + rtol |v_cond|) + g (atol + rtol |v_uncond|),
    i.e. (1 + 2g) atol plus the relative part. ZipVoice doubles the scale for t <= 0.5, so at
    low t with scale 1 that is 5 atol (scale 1.5: 7 atol). The rounding of the combination
    itself (a few float32 ulps of (1 + g)|v_cond|) is far below the rtol term. With g = 0 this
    is the single-call bound. Full-size official-config fixtures (122.7 M parameters) measured
    1.3e-5 .. 2.1e-5 against 1e-5 + 1e-5|ref| on 1-3 of ~50 k values (issue 21); on such a
    model the official float32 guided value is itself 6.2e-6 (scale 1) / 8.7e-6 (scale 1.5)
    from the exact (float64) one, 8 % of this bound. A 1 % scale error exceeds it ~600 times
    (test_guided_tolerance_still_catches_real_errors).
    """
    v_uncond, v_cond = (v.detach().cpu().numpy().astype(np.float64) for v in (v_uncond, v_cond))
    return (1 + g) * (atol + rtol * np.abs(v_cond)) + g * (atol + rtol * np.abs(v_uncond))


class RecordingModel:
    """Stands in for an acoustic model and keeps every velocity() output (the guidance's halves)."""

    def __init__(self, model: ZipVoiceAcousticModel) -> None:
        self._model = model
        self.outputs: list[torch.Tensor] = []

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def velocity(self, *args, **kwargs) -> torch.Tensor:
        v = self._model.velocity(*args, **kwargs)
        self.outputs.append(v)
        return v


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
        self._guided: dict[str, tuple[torch.Tensor, np.ndarray]] = {}

    @property
    def guidance(self):
        distilled = self.acoustic.uses_guidance_scale_input
        kind = DistilledGuidance if distilled else ClassifierFreeGuidance
        return kind(scale=self.guidance_scale)

    def field(self):
        return self.guidance.field(self.acoustic, self.cond, self.guidance_scale)

    def effective_scale(self, t: float) -> float:
        """g in v = (1 + g) v_cond - g v_uncond: ZipVoice doubles the scale for t <= 0.5; 0 for a
        distilled model (one call, the scale is an input) and for scale 0 (one plain call)."""
        if self.acoustic.uses_guidance_scale_input or self.guidance_scale == 0:
            return 0.0
        return 2 * self.guidance_scale if t <= 0.5 else self.guidance_scale

    def guided(self, which: str) -> tuple[torch.Tensor, np.ndarray]:
        """The guided velocity at cfg_t_<which> from x0, and its tolerance (`guided_bound`)."""
        if which not in self._guided:
            t = as_float(self.ref[f"cfg_t_{which}"])
            recorder = RecordingModel(self.acoustic)
            v = self.guidance.field(recorder, self.cond, self.guidance_scale)(self.x0, torch.tensor(t))
            assert len(recorder.outputs) == 1, "guidance must make one model call per step"
            g = self.effective_scale(t)
            halves = recorder.outputs[0].chunk(2, dim=0) if g else (recorder.outputs[0], recorder.outputs[0])
            self._guided[which] = v, guided_bound(*halves, g, **SINGLE)
        return self._guided[which]

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
    """One guided call, held to the single-call bound carried through the guidance combination
    (`guided_bound`); for distilled models (g = 0) that is the single-call bound itself."""
    c = case(case_file)
    v, bound = c.guided(which)
    assert_close(f"cfg_velocity_t_{which}", v, c.ref[f"cfg_velocity_t_{which}"], c.valid_frames, bound=bound)


def swapped_time_rule(c: Case, t: float) -> torch.Tensor:
    """A plausible bug: the rule of the other side of t = 0.5 (prompt kept in the unconditional
    half and the scale doubled <-> prompt dropped and the scale as given)."""
    keep_prompt = t > 0.5
    g = 2 * c.guidance_scale if keep_prompt else c.guidance_scale
    cond = c.cond
    speech_uncond = cond.speech_condition if keep_prompt else torch.zeros_like(cond.speech_condition)
    doubled = cond.replace(
        text_condition=torch.cat([torch.zeros_like(cond.text_condition), cond.text_condition]),
        speech_condition=torch.cat([speech_uncond, cond.speech_condition]),
        padding_mask=torch.cat([cond.padding_mask, cond.padding_mask]),
    )
    v_uncond, v_cond = c.acoustic.velocity(torch.cat([c.x0, c.x0]), torch.tensor(t), doubled).chunk(2, dim=0)
    return (1 + g) * v_cond - g * v_uncond


def test_guided_tolerance_still_catches_real_errors(case_file: Path) -> None:
    """The widened bound of a classifier-free call is no blanket: at low t (the widest bound),
    a guidance scale off by 1 % and the wrong time rule both fail it. A distilled model keeps
    the single-call bound, which a 1 % scale error fails too."""
    c = case(case_file)
    which = "low"
    t = as_float(c.ref[f"cfg_t_{which}"])
    _, bound = c.guided(which)
    mutants = {"guidance scale +1 %": c.guidance.field(c.acoustic, c.cond, c.guidance_scale * 1.01)(c.x0, torch.tensor(t))}
    if c.effective_scale(t):
        mutants["time rule of t > 0.5"] = swapped_time_rule(c, t)
    expected = c.ref[f"cfg_velocity_t_{which}"]
    for label, v in mutants.items():
        with pytest.raises(AssertionError, match="exceeds the derived bound"):
            assert_close(f"{label}", v, expected, c.valid_frames, bound=bound)


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
